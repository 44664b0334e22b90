import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "./_doc_helpers.ts";
import {
  createConversationRepository,
  MAX_MESSAGE_BYTES,
  type NewMessage,
  resolveConversationRepositoryOptions,
} from "./conversation_repository.ts";
import { createUserService } from "./user_service.ts";

const msgs = (n: number, from = 0): NewMessage[] =>
  Array.from({ length: n }, (_, i) => ({
    role: i % 2 ? "assistant" as const : "user" as const,
    content: `message ${from + i} '; DROP TABLE messages; -- 🦕`,
    createdAt: 1_000 + from + i,
  }));

Deno.test("createConversation(), getConversation() and updateConversation() keep a sealed title", async () => {
  await using store = await openTestStore();
  let now = 10;
  const conversations = createConversationRepository(store.storage, {
    now: () => now,
  });
  const c = await conversations.createConversation({
    id: "c1",
    title: "Trip to Zürich",
    metadata: { pinned: true },
  });
  assert.deepEqual(c, {
    id: "c1",
    userId: undefined,
    title: "Trip to Zürich",
    metadata: { pinned: true },
    messageCount: 0,
    lastSeq: 0,
    createdAt: 10,
    updatedAt: 10,
  });
  assert.deepEqual(await conversations.getConversation("c1"), c);
  const raw = (await store.storage.execute("SELECT title FROM conversations"))
    .rows[0]?.title;
  assert.ok(
    raw instanceof Uint8Array &&
      !new TextDecoder().decode(raw).includes("Zürich"),
  );
  now = 20;
  const u = await conversations.updateConversation("c1", {
    title: null,
    metadata: {},
  });
  assert.deepEqual(u, { ...c, title: undefined, metadata: {}, updatedAt: 20 });
  await assert.rejects(
    conversations.createConversation({ id: "c1" }),
    (e) => isAicoDataError(e, "ALREADY_EXISTS"),
  );
  await assert.rejects(
    conversations.getConversation("nope"),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  await assert.rejects(
    conversations.updateConversation("nope", { title: "x" }),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  await assert.rejects(
    conversations.createConversation({ userId: "ghost" }),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
});

Deno.test("appendMessages() assigns consecutive seq and ids and stores content sealed", async () => {
  await using store = await openTestStore();
  const conversations = createConversationRepository(store.storage);
  const a = await conversations.createConversation({ id: "a" });
  const b = await conversations.createConversation({ id: "b" });
  const r1 = await conversations.appendMessages(a.id, msgs(1500));
  assert.deepEqual(r1, {
    firstSeq: 1,
    lastSeq: 1500,
    firstId: 1,
    lastId: 1500,
    count: 1500,
  });
  const one = await conversations.appendMessage(b.id, {
    role: "system",
    content: "",
  });
  assert.deepEqual({ ...one }, {
    id: 1501,
    conversationId: "b",
    seq: 1,
    role: "system",
    content: "",
    createdAt: one.createdAt,
    model: undefined,
  });
  const r2 = await conversations.appendMessages(a.id, msgs(3, 1500));
  assert.deepEqual(r2, {
    firstSeq: 1501,
    lastSeq: 1503,
    firstId: 1502,
    lastId: 1504,
    count: 3,
  });
  const conv = await conversations.getConversation("a");
  assert.equal(conv.messageCount, 1503);
  assert.equal(conv.lastSeq, 1503);
  assert.equal(conv.updatedAt >= 2_502, true);
  const raw = await store.storage.execute(
    "SELECT content FROM messages WHERE id = 1",
  );
  assert.ok(
    !new TextDecoder().decode(raw.rows[0]?.content as Uint8Array).includes(
      "DROP",
    ),
  );
  const all: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await conversations.listMessages("a", {
      limit: 400,
      ...(cursor ? { cursor } : {}),
    });
    all.push(...page.items.map((m) => m.content));
    cursor = page.nextCursor;
  } while (cursor);
  assert.deepEqual(all, msgs(1503).map((m) => m.content));
  const desc = await conversations.listMessages("a", {
    order: "desc",
    limit: 2,
  });
  assert.deepEqual(desc.items.map((m) => m.seq), [1503, 1502]);
  const next = await conversations.listMessages("a", {
    order: "desc",
    limit: 2,
    cursor: desc.nextCursor!,
  });
  assert.deepEqual(next.items.map((m) => m.seq), [1501, 1500]);
});

Deno.test("parallel appendMessages() calls on one conversation get disjoint seq and id ranges and all content opens", async () => {
  await using store = await openTestStore();
  const conversations = createConversationRepository(store.storage);
  const c = await conversations.createConversation();
  const results = await Promise.all(
    Array.from(
      { length: 8 },
      (_, k) => conversations.appendMessages(c.id, msgs(300, k * 300)),
    ),
  );
  const seqs = results.flatMap((r) =>
    Array.from({ length: r.count }, (_, i) => r.firstSeq + i)
  ).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 2400 }, (_, i) => i + 1));
  const ids = new Set(
    results.flatMap((r) =>
      Array.from({ length: r.count }, (_, i) => r.firstId + i)
    ),
  );
  assert.equal(ids.size, 2400);
  const page = await conversations.listMessages(c.id, { limit: 1000 });
  assert.equal(page.items.length, 1000);
  assert.equal((await conversations.getConversation(c.id)).messageCount, 2400);
  const contents = new Set<string>();
  let cursor: string | undefined;
  do {
    const p = await conversations.listMessages(c.id, {
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    for (const m of p.items) contents.add(m.content);
    cursor = p.nextCursor;
  } while (cursor);
  assert.deepEqual(contents, new Set(msgs(2400).map((m) => m.content)));
});

Deno.test("a message's sealed content moved to another row fails with AUTH_FAILED", async () => {
  await using store = await openTestStore();
  const conversations = createConversationRepository(store.storage);
  const c = await conversations.createConversation();
  await conversations.appendMessages(c.id, msgs(2));
  await store.storage.execute(
    "UPDATE messages SET content = (SELECT content FROM messages WHERE seq = 1) WHERE seq = 2",
  );
  await assert.rejects(
    conversations.listMessages(c.id),
    (e) => isAicoDataError(e, "AUTH_FAILED"),
  );
});

Deno.test("invalid messages give INVALID_INPUT and a batch stores nothing", async () => {
  await using store = await openTestStore();
  const conversations = createConversationRepository(store.storage);
  await conversations.createConversation({ id: "c" });
  await conversations.appendMessages("c", msgs(2));
  const bad: unknown[] = [
    null,
    { role: "robot", content: "x" },
    { role: "user", content: 5 },
    { role: "user", content: "\udfff" },
    { role: "user", content: "é".repeat(MAX_MESSAGE_BYTES / 2 + 1) },
    { role: "user", content: "x", createdAt: -1 },
    { role: "user", content: "x", createdAt: "yesterday" },
  ];
  for (const m of bad) {
    await assert.rejects(
      conversations.appendMessages("c", [...msgs(5), m as NewMessage]),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      JSON.stringify(m)?.slice(0, 60),
    );
  }
  await assert.rejects(
    conversations.appendMessages("c", []),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await assert.rejects(
    conversations.appendMessages("'; --", msgs(1)),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await assert.rejects(
    conversations.appendMessages("missing", msgs(1)),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  for (
    const nc of [{ id: "bad id" }, { title: 5 }, { title: "x".repeat(1025) }, {
      metadata: [],
    }, { userId: "a b" }]
  ) {
    await assert.rejects(
      conversations.createConversation(nc as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
  for (
    const q of [{ limit: 0 }, { limit: 1001 }, { order: "up" }, {
      cursor: "zz!",
    }]
  ) {
    await assert.rejects(
      conversations.listMessages("c", q as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM messages")).rows[0]
      ?.n,
    2,
  );
  assert.equal((await conversations.getConversation("c")).messageCount, 2);
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM conversations"))
      .rows[0]?.n,
    1,
  );
});

Deno.test("listConversations() pages by most recent update, per user", async () => {
  await using store = await openTestStore();
  let now = 0;
  const clock = (): number => now;
  const users = createUserService(store.storage, {
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  await users.createUser({ id: "u1" });
  await users.createUser({ id: "u2" });
  const conversations = createConversationRepository(store.storage, {
    now: clock,
  });
  for (let i = 0; i < 25; i++) {
    now = 100 + Math.floor(i / 3);
    await conversations.createConversation({
      id: `c${String(i).padStart(2, "0")}`,
      userId: i % 2 ? "u1" : "u2",
    });
  }
  now = 1_000;
  await conversations.appendMessage("c03", { role: "user", content: "bump" });
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await conversations.listConversations({
      limit: 4,
      ...(cursor ? { cursor } : {}),
    });
    seen.push(...page.items.map((c) => c.id));
    cursor = page.nextCursor;
  } while (cursor);
  assert.equal(seen.length, 25);
  assert.equal(new Set(seen).size, 25);
  assert.equal(seen[0], "c03");
  const u1 = await conversations.listConversations({
    userId: "u1",
    limit: 100,
  });
  assert.equal(u1.items.length, 12);
  assert.ok(u1.items.every((c) => c.userId === "u1"));
});

Deno.test("deleteConversation() removes its messages; deleteUser() removes the user's conversations", async () => {
  await using store = await openTestStore();
  const users = createUserService(store.storage, {
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  const conversations = createConversationRepository(store.storage);
  await users.createUser({ id: "u" });
  await conversations.createConversation({ id: "keep" });
  await conversations.createConversation({ id: "gone" });
  await conversations.createConversation({ id: "owned", userId: "u" });
  for (const id of ["keep", "gone", "owned"]) {
    await conversations.appendMessages(id, msgs(10));
  }
  assert.equal(await conversations.deleteConversation("gone"), true);
  assert.equal(await conversations.deleteConversation("gone"), false);
  assert.deepEqual((await conversations.listMessages("gone")).items, []);
  assert.equal(await users.deleteUser("u"), true);
  await assert.rejects(
    conversations.getConversation("owned"),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  const count = await store.storage.execute(
    "SELECT conversation_id, COUNT(*) AS n FROM messages GROUP BY 1",
  );
  assert.deepEqual(count.rows.map((r) => [r.conversation_id, r.n]), [[
    "keep",
    10,
  ]]);
  // Ids of deleted messages are never reused (no replay of an old sealed copy).
  await conversations.deleteConversation("keep");
  await conversations.createConversation({ id: "new" });
  const r = await conversations.appendMessages("new", msgs(1));
  assert.equal(r.firstId, 31);
});

Deno.test("resolveConversationRepositoryOptions() applies defaults and refuses a bad clock", () => {
  assert.equal(resolveConversationRepositoryOptions().now, Date.now);
  assert.throws(
    () => resolveConversationRepositoryOptions({ now: 0 as never }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});

Deno.test("createConversations() stores what createConversation() and appendMessages() store, in one transaction", async () => {
  await using store = await openTestStore();
  const now = 5_000;
  const recorded: {
    table: string;
    op: string;
    keys: readonly string[];
    scope?: string;
  }[] = [];
  const conversations = createConversationRepository(store.storage, {
    now: () => now,
    changes: {
      record: (_tx, changes) => (recorded.push(...changes), Promise.resolve()),
      committed: () => {},
    },
  });
  const users = createUserService(store.storage, {
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  await users.createUser({ id: "u" });
  await conversations.createConversation({ id: "before" });
  await conversations.appendMessages("before", msgs(2));
  recorded.length = 0;
  const made = await conversations.createConversations([
    {
      conversation: {
        id: "a",
        title: "Tea 🍵",
        createdAt: 100,
        updatedAt: 200,
      },
      messages: msgs(3),
    },
    { conversation: { id: "empty", userId: "u", createdAt: 50 }, messages: [] },
    { conversation: { id: "b", userId: "u" }, messages: msgs(130, 3) },
  ]);
  assert.deepEqual(
    made.map((
      r,
    ) => [r.id, r.firstSeq, r.lastSeq, r.firstId, r.lastId, r.count]),
    [
      ["a", 1, 3, 3, 5, 3],
      ["empty", 1, 0, 6, 5, 0],
      ["b", 1, 130, 6, 135, 130],
    ],
  );
  const a = await conversations.getConversation("a");
  assert.deepEqual(a, {
    id: "a",
    userId: undefined,
    title: "Tea 🍵",
    metadata: {},
    messageCount: 3,
    lastSeq: 3,
    createdAt: 100,
    // As an append sets it: the newest of now and the messages' times.
    updatedAt: now,
  });
  const empty = await conversations.getConversation("empty");
  assert.equal(empty.messageCount, 0);
  assert.equal(empty.updatedAt, 50);
  const b = await conversations.listMessages("b", { limit: 1000 });
  assert.deepEqual(
    b.items.map((m) => [m.id, m.seq, m.role, m.content, m.createdAt]),
    msgs(130, 3).map((m, i) => [6 + i, i + 1, m.role, m.content, m.createdAt]),
  );
  assert.deepEqual(
    recorded.map((c) => [c.table, c.op, c.scope, c.keys.length]),
    [
      ["conversations", "insert", undefined, 1],
      ["conversations", "insert", "u", 2],
      ["messages", "insert", "a", 3],
      ["messages", "insert", "b", 130],
    ],
  );
  assert.deepEqual(recorded[2]!.keys, ["3", "4", "5"]);
  // A later append continues the seq and the ids.
  const next = await conversations.appendMessages("a", msgs(1));
  assert.deepEqual([next.firstSeq, next.firstId], [4, 136]);
});

Deno.test("createConversations() stores nothing when one conversation is refused", async () => {
  await using store = await openTestStore();
  const conversations = createConversationRepository(store.storage);
  await conversations.createConversation({ id: "taken" });
  const count = async () =>
    Number(
      (await store.storage.execute(
        "SELECT (SELECT count(*) FROM conversations) + (SELECT count(*) FROM messages) AS n",
      )).rows[0]?.n,
    );
  const before = await count();
  for (
    const [items, code] of [
      [[{ conversation: { id: "x" }, messages: msgs(2) }, {
        conversation: { id: "taken" },
        messages: msgs(1),
      }], "ALREADY_EXISTS"],
      [[{ conversation: { id: "y" }, messages: [] }, {
        conversation: { id: "y" },
        messages: [],
      }], "ALREADY_EXISTS"],
      [
        [{ conversation: { id: "z", userId: "ghost" }, messages: msgs(1) }],
        "NOT_FOUND",
      ],
      [[{
        conversation: { id: "w" },
        messages: [{ role: "robot", content: "x" }],
      }], "INVALID_INPUT"],
      [
        [{ conversation: { id: "v", title: "t".repeat(2000) }, messages: [] }],
        "INVALID_INPUT",
      ],
      [[{ conversation: { id: "bad id!" }, messages: [] }], "INVALID_INPUT"],
    ] as const
  ) {
    await assert.rejects(
      conversations.createConversations(items as never),
      (e) => isAicoDataError(e, code),
    );
  }
  assert.equal(await count(), before);
  assert.deepEqual(await conversations.createConversations([]), []);
});
