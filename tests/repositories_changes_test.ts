// The repositories record their changes in the change feed, in the
// transaction of each write: real libSQL store, real feed, real bus.
import assert from "node:assert/strict";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import {
  createConfigRepository,
  createConversationRepository,
  createUserService,
} from "../repositories/mod.ts";
import { type ChangeEvent, openChangeFeed } from "../changes/mod.ts";
import { createMessageBus } from "../bus/mod.ts";

const FAST = {
  argon2: { memoryKiB: 64, iterations: 1 },
  allowWeakArgon2: true,
} as const;

function msgs(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    role: "user" as const,
    content: `m${i}`,
  }));
}

Deno.test("deleting a conversation or a user records a messages delete for every removed message", async () => {
  await using store = await openTestStore();
  await using bus = createMessageBus();
  const published: [string, unknown][] = [];
  bus.subscribe("data.changed.*", (payload, { topic }) => {
    published.push([topic, payload]);
  });
  await using feed = await openChangeFeed(store.storage, { bus });
  const seen: ChangeEvent[] = [];
  const reg = await feed.register({
    name: "index",
    handle(batch) {
      seen.push(...batch);
      return Promise.resolve();
    },
  });
  const users = createUserService(store.storage, { ...FAST, changes: feed });
  const conversations = createConversationRepository(store.storage, {
    changes: feed,
  });
  await users.createUser({ id: "u" });
  await conversations.createConversation({ id: "a", userId: "u" });
  await conversations.createConversation({ id: "b", userId: "u" });
  await conversations.createConversation({ id: "c" });
  const ra = await conversations.appendMessages("a", msgs(3));
  const rb = await conversations.appendMessages("b", msgs(2));
  const rc = await conversations.appendMessages("c", msgs(2));
  await reg.catchUp();
  const ids = (first: number, last: number) =>
    Array.from({ length: last - first + 1 }, (_, i) => String(first + i));
  const inserts = seen.filter((e) => e.table === "messages");
  assert.deepEqual(inserts.map((e) => [e.op, e.scope, e.keys]), [
    ["insert", "a", ids(ra.firstId, ra.lastId)],
    ["insert", "b", ids(rb.firstId, rb.lastId)],
    ["insert", "c", ids(rc.firstId, rc.lastId)],
  ]);
  seen.length = 0;

  assert.equal(await conversations.deleteConversation("c"), true);
  assert.equal(await users.deleteUser("u"), true);
  await reg.catchUp();
  assert.deepEqual(
    seen.map((e) => [e.table, e.op, e.scope, e.keys]),
    [
      ["messages", "delete", "c", ids(rc.firstId, rc.lastId)],
      ["conversations", "delete", undefined, ["c"]],
      ["messages", "delete", "a", ids(ra.firstId, ra.lastId)],
      ["messages", "delete", "b", ids(rb.firstId, rb.lastId)],
      ["conversations", "delete", "u", ["a", "b"]],
      ["users", "delete", undefined, ["u"]],
    ],
  );
  // The bus got the same changes after each commit, with op and scope.
  assert.deepEqual(
    published.filter(([t]) => t === "data.changed.users").map(([, p]) => p),
    [
      { op: "insert", keys: ["u"], scope: undefined },
      { op: "delete", keys: ["u"], scope: undefined },
    ],
  );
});

Deno.test("a write that rolls back records nothing and publishes nothing", async () => {
  await using store = await openTestStore();
  await using bus = createMessageBus();
  let published = 0;
  bus.subscribe("data.changed.*", () => {
    published++;
  });
  await using feed = await openChangeFeed(store.storage, { bus });
  const conversations = createConversationRepository(store.storage, {
    changes: feed,
  });
  await assert.rejects(
    conversations.appendMessages("missing", msgs(2)),
    { code: "NOT_FOUND" },
  );
  await conversations.createConversation({ id: "x" });
  await assert.rejects(conversations.createConversation({ id: "x" }), {
    code: "ALREADY_EXISTS",
  });
  assert.equal(published, 1);
  const rs = await store.storage.execute(
    "SELECT COUNT(*) AS n FROM change_events",
  );
  assert.ok(Number(rs.rows[0]!.n) <= 1);
});

Deno.test("config writes record update and delete changes keyed namespace/key", async () => {
  await using store = await openTestStore();
  await using feed = await openChangeFeed(store.storage);
  const seen: ChangeEvent[] = [];
  const reg = await feed.register({
    name: "t",
    tables: ["config"],
    handle(batch) {
      seen.push(...batch);
      return Promise.resolve();
    },
  });
  const config = createConfigRepository(store.storage, { changes: feed });
  await config.set("ui", "theme", "dark");
  await config.delete("ui", "theme");
  await reg.catchUp();
  assert.deepEqual(seen.map((e) => [e.op, e.keys]), [
    ["update", ["ui/theme"]],
    ["delete", ["ui/theme"]],
  ]);
});

Deno.test("messages keep their model and conversations their imported times", async () => {
  await using store = await openTestStore();
  const conversations = createConversationRepository(store.storage);
  const c = await conversations.createConversation({
    id: "imp",
    createdAt: 1_600_000_000_000,
    updatedAt: 1_600_000_500_000,
  });
  assert.equal(c.createdAt, 1_600_000_000_000);
  assert.equal(c.updatedAt, 1_600_000_500_000);
  const got = await conversations.getConversation("imp");
  assert.equal(got.createdAt, 1_600_000_000_000);
  for (
    const bad of [
      { createdAt: 1.5 },
      { createdAt: Infinity },
      { createdAt: -1 },
      { createdAt: 10, updatedAt: 5 },
    ]
  ) {
    await assert.rejects(
      conversations.createConversation({ id: "bad", ...bad }),
      { code: "INVALID_INPUT" },
    );
  }
  const m = await conversations.appendMessage("imp", {
    role: "assistant",
    content: "hi",
    model: "gpt-4o-mini",
  });
  assert.equal(m.model, "gpt-4o-mini");
  await conversations.appendMessage("imp", { role: "user", content: "yo" });
  assert.deepEqual(
    (await conversations.listMessages("imp")).items.map((x) => x.model),
    ["gpt-4o-mini", undefined],
  );
  assert.equal((await conversations.getMessage(m.id)).model, "gpt-4o-mini");
  assert.deepEqual(
    (await conversations.recentMessages("imp", 1)).map((x) => x.content),
    ["yo"],
  );
  await assert.rejects(
    conversations.appendMessage("imp", {
      role: "user",
      content: "x",
      model: "",
    }),
    { code: "INVALID_INPUT" },
  );
  await assert.rejects(conversations.getMessage(999), { code: "NOT_FOUND" });
});
