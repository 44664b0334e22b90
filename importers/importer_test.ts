import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openImporter, resolveImporterOptions } from "./importer.ts";
import { chatgptFixture } from "../testdata/exports/generate.ts";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import {
  type ConversationRepository,
  createConversationRepository,
} from "../repositories/mod.ts";
import { isAicoDataError } from "../errors.ts";
import type { Storage } from "../storage/mod.ts";

const DATA = fileURLToPath(new URL("../testdata/exports/", import.meta.url));

async function totals(
  storage: Storage,
): Promise<{ conversations: number; messages: number; sources: number }> {
  const n = async (sql: string) =>
    Number((await storage.execute(sql)).rows[0]?.n);
  return {
    conversations: await n("SELECT count(*) AS n FROM conversations"),
    messages: await n("SELECT count(*) AS n FROM messages"),
    sources: await n("SELECT count(*) AS n FROM import_sources"),
  };
}

async function contents(
  repo: ConversationRepository,
  id: string,
): Promise<string[]> {
  return (await repo.listMessages(id)).items.map((m) => m.content);
}

Deno.test("importFile() stores every fixture format with its titles and original times", async () => {
  await using store = await openTestStore();
  await using importer = await openImporter(store.storage);
  const repo = createConversationRepository(store.storage);
  const cases = [
    ["chatgpt_conversations.json", "chatgpt", 4, 9],
    ["claude_conversations.json", "claude", 4, 9],
    ["messages.jsonl", "jsonl", 2, 4],
  ] as const;
  for (const [file, format, conversations, messages] of cases) {
    const r = await importer.importFile(`${DATA}${file}`);
    assert.equal(r.format, format);
    assert.equal(r.conversationsAdded, conversations, file);
    assert.equal(r.messagesAdded, messages, file);
  }
  const c = await repo.getConversation("cg-branches");
  assert.equal(c.title, "Tea or coffee");
  const msgs = (await repo.listMessages("cg-branches")).items;
  assert.deepEqual(msgs.map((m) => m.createdAt), [
    1_700_000_001_500,
    1_700_000_002_750,
  ]);
  // A null time takes the previous message's.
  const mm = (await repo.listMessages("cg-multimodal")).items;
  assert.equal(mm[2]?.createdAt, mm[1]?.createdAt);
  assert.deepEqual(await contents(repo, "cl-thinking"), [
    "Does tea help me sleep?",
    "Chamomile can help.",
  ]);
  assert.equal((await repo.getConversation("cl-empty")).messageCount, 0);
  assert.equal((await repo.getConversation("cl-noname")).title, undefined);
  assert.deepEqual(await contents(repo, "jl-1"), ["ok", "ok", "ok"]);
});

Deno.test("importFile() of the same export again, or of its ZIP, adds nothing", async () => {
  await using store = await openTestStore();
  await using importer = await openImporter(store.storage);
  await importer.importFile(`${DATA}chatgpt_conversations.json`);
  await importer.importFile(`${DATA}claude_export.zip`);
  await importer.importFile(`${DATA}messages.jsonl`);
  const before = await totals(store.storage);
  for (
    const file of [
      "chatgpt_conversations.json",
      "chatgpt_export.zip",
      "claude_conversations.json",
      "claude_export.zip",
      "messages.jsonl",
    ]
  ) {
    const r = await importer.importFile(`${DATA}${file}`);
    assert.equal(r.messagesAdded, 0, file);
    assert.equal(r.conversationsAdded, 0, file);
    assert.equal(r.messagesSkipped, r.messagesRead, file);
  }
  assert.deepEqual(await totals(store.storage), before);
});

Deno.test("importFile() of an updated export adds only the new messages and branches", async () => {
  await using store = await openTestStore();
  await using importer = await openImporter(store.storage);
  const repo = createConversationRepository(store.storage);
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const v1 = chatgptFixture();
    await Deno.writeTextFile(file, JSON.stringify(v1));
    await importer.importFile(file);
    // The user went on in cg-branches: a new answer under a1.
    const v2 = structuredClone(v1) as {
      id: string;
      current_node?: string;
      mapping: Record<string, { children: string[] }>;
    }[];
    const conv = v2[0]!;
    conv.mapping.a1!.children.push("u2");
    conv.mapping.u2 = {
      id: "u2",
      parent: "a1",
      children: [],
      message: {
        id: "u2",
        author: { role: "user" },
        create_time: 1_700_000_090,
        content: { content_type: "text", parts: ["And matcha?"] },
      },
    } as never;
    conv.current_node = "u2";
    await Deno.writeTextFile(file, JSON.stringify(v2));
    const r = await importer.importFile(file);
    assert.equal(r.messagesAdded, 1);
    assert.equal(r.conversationsAdded, 0);
    assert.deepEqual(await contents(repo, "cg-branches"), [
      "Should I drink tea or coffee?",
      "Green tea has less caffeine.",
      "And matcha?",
    ]);
    const branches = await importer.importFile(file, { allBranches: true });
    assert.equal(branches.conversationsAdded, 2);
    assert.ok(branches.messagesAdded > 0);
    assert.equal(
      (await importer.importFile(file, { allBranches: true })).messagesAdded,
      0,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("importFile() of a malformed file stores nothing of it", async () => {
  await using store = await openTestStore();
  await using importer = await openImporter(store.storage);
  await importer.importFile(`${DATA}messages.jsonl`);
  const before = await totals(store.storage);
  for (
    const file of [
      "malformed_chatgpt.json",
      "malformed_claude.json",
      "malformed.jsonl",
      "truncated.json",
      "corrupt_crc.zip",
    ]
  ) {
    await assert.rejects(
      importer.importFile(`${DATA}${file}`),
      (err) => isAicoDataError(err, "IMPORT_INVALID"),
      file,
    );
    assert.deepEqual(await totals(store.storage), before, file);
  }
});

Deno.test("importFile() aborted midway stores nothing; the rerun imports everything once", async () => {
  await using store = await openTestStore();
  await using importer = await openImporter(store.storage);
  const controller = new AbortController();
  const file = `${DATA}sample_chatgpt_export.json`;
  await assert.rejects(
    importer.importFile(file, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.conversations === 10) controller.abort(new Error("interrupted"));
      },
    }),
    /interrupted/,
  );
  assert.equal((await totals(store.storage)).messages, 0);
  const r = await importer.importFile(file);
  assert.equal(r.conversationsAdded, 36);
  assert.equal(r.messagesAdded, 144);
  assert.equal((await totals(store.storage)).messages, 144);
});

Deno.test("importFile() appends JSON Lines to a conversation the app made, and gives taken export ids a new one", async () => {
  await using store = await openTestStore();
  const repo = createConversationRepository(store.storage);
  await repo.createConversation({ id: "jl-1", title: "Mine" });
  await repo.createConversation({ id: "cl-thinking", title: "Not Claude's" });
  await using importer = await openImporter(store.storage);
  await importer.importFile(`${DATA}messages.jsonl`);
  assert.deepEqual(await contents(repo, "jl-1"), ["ok", "ok", "ok"]);
  assert.equal((await repo.getConversation("jl-1")).title, "Mine");
  const r = await importer.importFile(`${DATA}claude_conversations.json`);
  assert.equal(r.conversationsAdded, 4);
  assert.equal((await repo.getConversation("cl-thinking")).messageCount, 0);
});

Deno.test("importFile() after close throws STORE_CLOSED", async () => {
  await using store = await openTestStore();
  const importer = await openImporter(store.storage);
  await importer.close();
  await importer.close();
  assert.equal(importer.closed, true);
  await assert.rejects(
    importer.importFile(`${DATA}messages.jsonl`),
    (err) => isAicoDataError(err, "STORE_CLOSED"),
  );
});

Deno.test("resolveImporterOptions() accepts the defaults and refuses malformed options", () => {
  const cases: [unknown, boolean][] = [
    [undefined, true],
    [{}, true],
    [{ userId: "u-1" }, true],
    [{ userId: "" }, false],
    [{ userId: "a b" }, false],
    [{ userId: 7 }, false],
    [{ changes: {} }, false],
    [null, false],
  ];
  for (const [options, ok] of cases) {
    if (ok) {
      assert.ok(Object.isFrozen(resolveImporterOptions(options as never)));
    } else {
      assert.throws(
        () => resolveImporterOptions(options as never),
        (err) => isAicoDataError(err, "INVALID_INPUT"),
        JSON.stringify(options),
      );
    }
  }
});

Deno.test("importFile() of a file naming one conversation twice and reusing an id stores each message once", async () => {
  await using store = await openTestStore();
  await using importer = await openImporter(store.storage);
  const repo = createConversationRepository(store.storage);
  await repo.createConversation({ id: "taken" });
  const node = (id: string, parent: string | null, text: string | null) => ({
    id,
    parent,
    children: [],
    message: text === null ? null : {
      id,
      author: { role: id.startsWith("u") ? "user" : "assistant" },
      create_time: 1_700_000_000,
      content: { content_type: "text", parts: [text] },
    },
  });
  const conversation = (id: string, texts: string[]) => ({
    id,
    title: id,
    current_node: texts.length === 0
      ? "root"
      : `${texts.length % 2 ? "u" : "a"}${texts.length}`,
    mapping: Object.fromEntries([
      ["root", node("root", null, null)],
      ...texts.map((t, i) => {
        const key = `${(i + 1) % 2 ? "u" : "a"}${i + 1}`;
        const parent = i === 0 ? "root" : `${i % 2 ? "u" : "a"}${i}`;
        return [key, node(key, parent, t)];
      }),
    ]),
  });
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      file,
      JSON.stringify([
        conversation("twice", ["one", "two"]),
        conversation("taken", ["mine"]),
        conversation("other", ["x"]),
        // The same conversation again, grown by one message.
        conversation("twice", ["one", "two", "three"]),
      ]),
    );
    const r = await importer.importFile(file);
    assert.equal(r.conversationsRead, 4);
    assert.equal(r.conversationsAdded, 3);
    assert.equal(r.messagesAdded, 5);
    assert.equal(r.messagesSkipped, 2);
    assert.deepEqual(await contents(repo, "twice"), ["one", "two", "three"]);
    assert.deepEqual(await contents(repo, "taken"), []);
    assert.deepEqual(await contents(repo, "other"), ["x"]);
    const renamed = (await repo.listConversations()).items.filter((c) =>
      c.title === "taken"
    );
    assert.equal(renamed.length, 1);
    assert.notEqual(renamed[0]!.id, "taken");
    assert.deepEqual(await contents(repo, renamed[0]!.id), ["mine"]);
    const again = await importer.importFile(file);
    assert.equal(again.messagesAdded, 0);
    assert.equal(again.conversationsAdded, 0);
    assert.deepEqual(await totals(store.storage), {
      conversations: 4,
      messages: 5,
      sources: 8,
    });
  } finally {
    await Deno.remove(file);
  }
});
