import assert from "node:assert/strict";
import {
  openTestStore,
  type TestStore,
} from "../../repositories/_doc_helpers.ts";
import { coreSchema } from "../../repositories/core_schema.ts";
import { createConversationRepository } from "../../repositories/mod.ts";
import { createSchemaRegistry, openMigrator } from "../../schema/mod.ts";
import type { ChangeEvent } from "../../changes/types.ts";
import {
  openUseLiteEmbedder,
  type UseLiteEmbedder,
} from "../embedders/use_lite_embedder.ts";
import { openExactStore } from "../_exact_store_test_helper.ts";
import type { VectorStore } from "../types.ts";
import { memorySchema } from "./memory_schema.ts";
import {
  type IndexProgress,
  openSemanticMemory,
  type SemanticMemoryOptions,
} from "./semantic_memory.ts";
import { rejectsWith } from "../../tests/_helpers.ts";

let embedder: UseLiteEmbedder | undefined;
async function model(): Promise<UseLiteEmbedder> {
  embedder ??= await openUseLiteEmbedder({ workers: 0 });
  return embedder;
}

interface Fixture extends AsyncDisposable {
  db: TestStore;
  store: VectorStore;
  repo: ReturnType<typeof createConversationRepository>;
}

async function fixture(): Promise<Fixture> {
  const db = await openTestStore();
  await using migrator = await openMigrator(
    db.storage,
    createSchemaRegistry([coreSchema, memorySchema]),
  );
  await migrator.migrate();
  const store = openExactStore({
    name: "messages",
    embedderId: "use-lite-512",
    dimensions: 512,
    metric: "cosine",
  });
  return {
    db,
    store,
    repo: createConversationRepository(db.storage),
    async [Symbol.asyncDispose]() {
      await store.close();
      await db[Symbol.asyncDispose]();
    },
  };
}

async function memoryOf(
  f: Fixture,
  extra: Partial<SemanticMemoryOptions> = {},
) {
  return await openSemanticMemory({
    storage: f.db.storage,
    embedder: await model(),
    store: f.store,
    ...extra,
  });
}

const ctx = () => ({ signal: new AbortController().signal });
let seq = 0;
const event = (
  op: ChangeEvent["op"],
  keys: (number | string)[],
  scope = "c",
): ChangeEvent => ({
  table: "messages",
  op,
  keys: keys.map(String),
  scope,
  seq: ++seq,
  at: Date.now(),
});

Deno.test("backfill indexes newest first with progress; keyword search works before any vector", async () => {
  await using f = await fixture();
  const c = await f.repo.createConversation({ id: "trip" });
  const r = await f.repo.appendMessages(
    c.id,
    Array.from({ length: 1200 }, (_, i) => ({
      role: i % 2 ? "assistant" as const : "user" as const,
      content: i === 3
        ? "Booking reference QX-9042 for the ferry to Tallinn"
        : `Message ${i} about daily life`,
    })),
  );
  const progress: IndexProgress[] = [];
  await using memory = await memoryOf(f, {
    background: false,
    onProgress: (p) => progress.push(p),
  });
  await memory.indexer.backfill!(ctx());
  const kw = progress.filter((p) => p.phase === "keyword");
  assert.deepEqual(kw.map((p) => p.done), [500, 1000, 1200]);
  assert.equal(kw[0]!.total, 1200);
  const s = await memory.status();
  assert.deepEqual(s, {
    indexed: 1200,
    embedded: 0,
    pending: 1200,
    backfilled: true,
  });
  // Keyword search at once, while nothing is embedded.
  const [hit] = await memory.search("QX-9042", { k: 3 });
  assert.equal(hit!.messageId, r.firstId + 3);
  assert.match(hit!.content, /Tallinn/);
  assert.equal(hit!.keywordRank, 1);
  assert.equal(hit!.vectorRank, undefined);
  // Embedding runs newest first: a partial pass covers the newest ids.
  const ac = new AbortController();
  const partial = await openSemanticMemory({
    storage: f.db.storage,
    embedder: await model(),
    store: f.store,
    background: false,
    embedBatchSize: 16,
    onProgress: (p) => {
      if (p.phase === "vector" && p.done >= 32) ac.abort();
    },
  });
  await rejectsWith(
    () => partial.indexPending({ signal: ac.signal }),
    "ABORTED",
  );
  await partial.close();
  const ids = (await f.db.storage.execute(
    "SELECT message_id FROM memory_items WHERE embedded = 1 ORDER BY message_id",
  )).rows.map((row) => Number(row.message_id));
  assert.equal(ids.length, 32);
  assert.equal(ids[0], r.lastId - 31);
  assert.equal(await f.store.count(), 64, "a bare and a context vector each");
});

Deno.test("backfill resumes below the last page after an abort", async () => {
  await using f = await fixture();
  const c = await f.repo.createConversation({ id: "long" });
  await f.repo.appendMessages(
    c.id,
    Array.from(
      { length: 1100 },
      (_, i) => ({ role: "user" as const, content: `note ${i}` }),
    ),
  );
  const ac = new AbortController();
  const pages: number[] = [];
  await using memory = await memoryOf(f, {
    background: false,
    onProgress: (p) => {
      pages.push(p.done);
      if (p.done === 500) ac.abort();
    },
  });
  await rejectsWith(
    () => memory.indexer.backfill!({ signal: ac.signal }),
    "ABORTED",
  );
  assert.equal((await memory.status()).indexed, 500);
  assert.equal((await memory.status()).backfilled, false);
  await memory.indexer.backfill!(ctx());
  assert.deepEqual(pages, [500, 1000, 1100]);
  assert.equal((await memory.status()).indexed, 1100);
});

Deno.test("the indexer follows inserts, updates and deletes; nothing of a deleted conversation remains", async () => {
  await using f = await fixture();
  await using memory = await memoryOf(f);
  const a = await f.repo.createConversation({ id: "a" });
  const b = await f.repo.createConversation({ id: "b" });
  const ra = await f.repo.appendMessages(a.id, [
    { role: "user", content: "My sister Lena loves old jazz records" },
    {
      role: "assistant",
      content: "A Nina Simone reissue would make a lovely gift",
    },
  ]);
  const rb = await f.repo.appendMessages(b.id, [
    { role: "user", content: "The brakes of my car squeal" },
    {
      role: "assistant",
      content: "The pads are probably worn and should be replaced",
    },
    { role: "user", content: "   " },
  ]);
  await memory.indexer.handle([
    event("insert", [ra.firstId, ra.lastId], "a"),
    event("insert", [rb.firstId, rb.firstId + 1, rb.lastId], "b"),
  ], ctx());
  await memory.whenIdle();
  assert.deepEqual(await memory.status(), {
    indexed: 4,
    embedded: 4,
    pending: 0,
    backfilled: false,
  });
  assert.equal(await f.store.count(), 8);
  const [gift] = await memory.search("birthday present for a music fan", {
    k: 1,
  });
  assert.equal(gift!.conversationId, "a");
  assert.ok(gift!.vectorRank !== undefined);

  // An update re-indexes the new text (the old words are gone).
  const column = f.db.storage.sealedColumn("messages", "content");
  await f.db.storage.execute({
    sql: "UPDATE messages SET content = ? WHERE id = ?",
    args: [
      await column.seal(rb.firstId, "The clutch of my motorbike slips"),
      rb.firstId,
    ],
  });
  await memory.indexer.handle([event("update", [rb.firstId], "b")], ctx());
  await memory.whenIdle();
  assert.equal((await memory.search("squeal", { mode: "keyword" })).length, 0);
  const [moto] = await memory.search("clutch", { mode: "keyword" });
  assert.equal(moto!.messageId, rb.firstId);

  // Deleting one message: its text leaves its neighbours' context too.
  const rc = await f.repo.appendMessages(a.id, [
    { role: "user", content: "Where should we store the passport scans?" },
    {
      role: "assistant",
      content: "Keep them in the encrypted vault called Marmoset",
    },
  ]);
  await memory.indexer.handle(
    [event("insert", [rc.firstId, rc.lastId], "a")],
    ctx(),
  );
  assert.equal(
    (await memory.search("marmoset", { mode: "keyword" })).length,
    2,
  );
  await f.db.storage.execute({
    sql: "DELETE FROM messages WHERE id = ?",
    args: [rc.lastId],
  });
  await memory.indexer.handle([event("delete", [rc.lastId], "a")], ctx());
  await memory.whenIdle();
  assert.equal(
    (await memory.search("marmoset", { mode: "keyword" })).length,
    0,
  );
  assert.equal((await memory.status()).pending, 0);
  await f.db.storage.execute({
    sql: "DELETE FROM messages WHERE id = ?",
    args: [rc.firstId],
  });
  await memory.indexer.handle([event("delete", [rc.firstId], "a")], ctx());

  // Deleting a conversation: the repository deletes its rows; the feed
  // records messages deletes for all of them.
  await f.repo.deleteConversation("b");
  await memory.indexer.handle([
    event("delete", [rb.firstId, rb.firstId + 1, rb.lastId], "b"),
  ], ctx());
  assert.equal(await f.store.count({ conversationId: "b" }), 0);
  assert.equal(
    (await memory.search("clutch motorbike", { mode: "keyword" })).length,
    0,
  );
  const left = await f.db.storage.execute(
    "SELECT COUNT(*) AS n FROM memory_items WHERE conversation_id = 'b'",
  );
  assert.equal(Number(left.rows[0]!.n), 0);
  const fts = await f.db.storage.execute({
    sql: "SELECT COUNT(*) AS n FROM memory_fts WHERE rowid IN (?, ?)",
    args: [rb.firstId, rb.firstId + 1],
  });
  assert.equal(Number(fts.rows[0]!.n), 0);

  // An insert event for a row already gone counts as a delete.
  await f.repo.deleteConversation("a");
  await memory.indexer.handle(
    [event("insert", [ra.firstId, ra.lastId], "a")],
    ctx(),
  );
  assert.equal(await f.store.count(), 0);
  assert.deepEqual(await memory.status(), {
    indexed: 0,
    embedded: 0,
    pending: 0,
    backfilled: false,
  });
});

Deno.test("the keyword index keeps no text and the file holds no plaintext", async () => {
  await using f = await fixture();
  await using memory = await memoryOf(f);
  const c = await f.repo.createConversation({ id: "secret" });
  const marker = "Zebrafinch7731 holds the marker";
  const r = await f.repo.appendMessages(c.id, [{
    role: "user",
    content: marker,
  }]);
  await memory.indexer.handle([event("insert", [r.firstId], "secret")], ctx());
  await memory.whenIdle();
  const rs = await f.db.storage.execute("SELECT body, context FROM memory_fts");
  assert.deepEqual(rs.rows.map((row) => [row.body, row.context]), [[
    null,
    null,
  ]]);
  assert.equal(
    (await memory.search("zebrafinch7731", { mode: "keyword" }))[0]!.content,
    marker,
  );
  await f.db.closeStorage();
  for (const e of Deno.readDirSync(f.db.dir)) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${f.db.dir}/${e.name}`);
    } catch (err) {
      // A -wal or -shm file may vanish as the closed handle checkpoints.
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    const text = new TextDecoder("latin1").decode(bytes);
    assert.ok(!text.includes("Zebrafinch7731"), e.name);
    assert.ok(!text.toLowerCase().includes("zebrafinch7731"), e.name);
  }
  await f.db.reopen();
});

Deno.test("search filters, MMR and recency", async () => {
  await using f = await fixture();
  const day = 86_400_000;
  const now = Date.UTC(2026, 0, 1);
  await using memory = await memoryOf(f, { now: () => now });
  const old = await f.repo.createConversation({ id: "old" });
  const fresh = await f.repo.createConversation({ id: "fresh" });
  const ro = await f.repo.appendMessages(old.id, [
    {
      role: "user",
      content: "We booked a hotel in Porto for the holiday",
      createdAt: now - 400 * day,
    },
    {
      role: "assistant",
      content: "Porto is lovely in spring",
      createdAt: now - 400 * day,
    },
  ]);
  const rf = await f.repo.appendMessages(fresh.id, [
    {
      role: "user",
      content: "We booked a hotel in Porto for the holidays",
      createdAt: now - day,
    },
    {
      role: "user",
      content: "Our hotel in Porto is booked for the holiday",
      createdAt: now - day,
    },
    {
      role: "assistant",
      content: "Remember to pack sunscreen",
      createdAt: now - day,
    },
  ]);
  await memory.indexer.handle([
    event("insert", [ro.firstId, ro.lastId], "old"),
    event("insert", [rf.firstId, rf.firstId + 1, rf.lastId], "fresh"),
  ], ctx());
  await memory.whenIdle();

  const q = "hotel booking in Porto";
  const inOld = await memory.search(q, { filter: { conversationId: "old" } });
  assert.ok(inOld.length > 0 && inOld.every((h) => h.conversationId === "old"));
  const users = await memory.search(q, {
    filter: {
      $and: [{ role: "user" }, { createdAt: { $gte: now - 2 * day } }],
    },
  });
  assert.deepEqual(
    new Set(users.map((h) => h.messageId)),
    new Set([rf.firstId, rf.firstId + 1]),
  );
  const ors = await memory.search(q, {
    mode: "keyword",
    filter: {
      $or: [{ messageId: ro.firstId }, { messageId: { $in: [rf.lastId] } }],
    },
  });
  // The sunscreen reply matches through its question (its pair context).
  assert.deepEqual(
    new Set(ors.map((h) => h.messageId)),
    new Set([ro.firstId, rf.lastId]),
  );

  const recent = await memory.search(q, {
    k: 3,
    recency: { halfLifeMs: 30 * day, weight: 0.9 },
  });
  assert.ok(recent.slice(0, 2).every((h) => h.conversationId === "fresh"));

  // The two near-duplicates: MMR keeps only one of them in the top 2.
  const plain = await memory.search(q, {
    k: 2,
    recency: { halfLifeMs: 30 * day, weight: 0.9 },
  });
  assert.deepEqual(
    new Set(plain.map((h) => h.messageId)),
    new Set([rf.firstId, rf.firstId + 1]),
  );
  const diverse = await memory.search(q, {
    k: 2,
    mmr: { lambda: 0.3 },
    recency: { halfLifeMs: 30 * day, weight: 0.9 },
  });
  assert.equal(
    diverse.filter((h) => h.conversationId === "fresh" && h.role === "user")
      .length,
    1,
  );
});

Deno.test("related() finds similar messages and conversations elsewhere", async () => {
  await using f = await fixture();
  await using memory = await memoryOf(f);
  const talks: Record<string, string[]> = {
    cats: [
      "We adopted a kitten from the shelter",
      "Kittens need time to settle in a new home",
    ],
    cats2: [
      "My cat keeps scratching the sofa",
      "A scratching post near the sofa helps cats",
    ],
    tax: [
      "I have to file my tax return",
      "Collect the receipts for your deductible expenses",
    ],
  };
  const events: ChangeEvent[] = [];
  const first = new Map<string, number>();
  for (const [id, texts] of Object.entries(talks)) {
    await f.repo.createConversation({ id });
    const r = await f.repo.appendMessages(
      id,
      texts.map((content) => ({ role: "user" as const, content })),
    );
    first.set(id, r.firstId);
    events.push(event("insert", [r.firstId, r.lastId], id));
  }
  await memory.indexer.handle(events, ctx());
  await memory.whenIdle();
  const byMessage = await memory.related(first.get("cats")!, { k: 1 });
  assert.equal(byMessage[0]!.conversationId, "cats2");
  const byConversation = await memory.related("cats", { k: 2 });
  assert.deepEqual(byConversation.map((h) => h.conversationId), [
    "cats2",
    "tax",
  ]);
  await rejectsWith(() => memory.related(999_999), "NOT_FOUND");
  await rejectsWith(() => memory.related("nope"), "NOT_FOUND");
  await rejectsWith(() => memory.related(-1), "INVALID_INPUT");
  await rejectsWith(() => memory.related({} as never), "INVALID_INPUT");
});

Deno.test("bad input is refused with typed errors and changes nothing", async () => {
  await using f = await fixture();
  const memory = await memoryOf(f);
  for (const text of ["", "   ", 3, "x".repeat(10_001)]) {
    await rejectsWith(() => memory.search(text as never), "INVALID_INPUT");
  }
  for (const k of [0, -1, 1.5, 1001, Number.NaN, "3"]) {
    await rejectsWith(
      () => memory.search("hello", { k: k as never }),
      "INVALID_INPUT",
    );
  }
  for (
    const filter of [
      {},
      [],
      "x",
      { nope: "a" },
      { role: 3 },
      { createdAt: "yesterday" },
      { role: { $gt: "a" } },
      { createdAt: { $gt: 1, $lt: 2 } },
      { role: { $regex: "a" } },
      { $and: [] },
      { $or: "x" },
      { role: { $in: [] } },
    ]
  ) {
    await rejectsWith(
      () => memory.search("hello", { filter: filter as never }),
      "INVALID_INPUT",
    );
  }
  await rejectsWith(
    () => memory.search("hello", { mode: "fuzzy" as never }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () => memory.search("hello", { mmr: { lambda: 2 } }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () => memory.search("hello", { recency: { halfLifeMs: 0 } }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () => memory.search("hello", { fusion: { keywordWeight: -1 } }),
    "INVALID_INPUT",
  );
  const ac = new AbortController();
  ac.abort();
  await rejectsWith(
    () => memory.search("hello", { signal: ac.signal }),
    "ABORTED",
  );
  assert.deepEqual(await memory.status(), {
    indexed: 0,
    embedded: 0,
    pending: 0,
    backfilled: false,
  });
  await memory.close();
  await memory.close();
  assert.equal(memory.closed, true);
  await rejectsWith(() => memory.search("hello"), "STORE_CLOSED");
  await rejectsWith(() => memory.indexer.handle([], ctx()), "STORE_CLOSED");
});

Deno.test("a new collection makes every message wait for its vector again", async () => {
  await using f = await fixture();
  const c = await f.repo.createConversation({ id: "c" });
  const r = await f.repo.appendMessages(c.id, [{
    role: "user",
    content: "Remember the milk",
  }]);
  const first = await memoryOf(f);
  await first.indexer.handle([event("insert", [r.firstId])], ctx());
  await first.whenIdle();
  assert.equal((await first.status()).embedded, 1);
  await first.close();
  await using other = openExactStore({
    name: "other",
    embedderId: "use-lite-512",
    dimensions: 512,
    metric: "cosine",
  });
  await using second = await openSemanticMemory({
    storage: f.db.storage,
    embedder: await model(),
    store: other,
    background: false,
  });
  assert.deepEqual(await second.status(), {
    indexed: 1,
    embedded: 0,
    pending: 1,
    backfilled: false,
  });
  assert.equal(await second.indexPending(), 1);
  assert.equal(await other.count(), 2);
});

Deno.test("openSemanticMemory() refuses a store of another embedder and a store without the memory schema", async () => {
  await using f = await fixture();
  await using other = openExactStore({
    name: "x",
    embedderId: "ollama:bge-m3",
    dimensions: 1024,
    metric: "cosine",
  });
  await rejectsWith(
    () =>
      openSemanticMemory({
        storage: f.db.storage,
        embedder: embedder!,
        store: other,
      }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () =>
      openSemanticMemory({
        storage: f.db.storage,
        embedder: embedder!,
        store: f.store,
        context: "all" as never,
      }),
    "INVALID_INPUT",
  );
  await using bare = await openTestStore();
  await rejectsWith(
    () =>
      openSemanticMemory({
        storage: bare.storage,
        embedder: embedder!,
        store: f.store,
      }),
    "SCHEMA_INVALID",
  );
});

Deno.test("a message committed but never handled is found after reopening", async () => {
  await using f = await fixture();
  const c = await f.repo.createConversation({ id: "crash" });
  const r = await f.repo.appendMessages(c.id, [{
    role: "user",
    content: "The spare key is under the blue flowerpot",
  }]);
  // A first process indexes nothing (killed before the feed delivered).
  const first = await memoryOf(f);
  await first.close();
  await f.db.reopen();
  // The next open: the feed redelivers the event from the cursor.
  await using memory = await memoryOf(f);
  await memory.indexer.handle([event("insert", [r.firstId], "crash")], ctx());
  assert.equal(
    (await memory.search("spare key", { mode: "keyword" }))[0]!.messageId,
    r.firstId,
  );
  await memory.whenIdle();
  assert.equal(
    (await memory.search("where did I hide the house key", {
      mode: "vector",
      k: 1,
    }))[0]!.messageId,
    r.firstId,
  );
});

Deno.test("stemmed keyword search; an index of an older analyzer is rebuilt on open, vectors kept", async () => {
  await using f = await fixture();
  const c = await f.repo.createConversation({ id: "kids" });
  const r = await f.repo.appendMessages(c.id, [
    { role: "user", content: "Die Kinder spielen heute im Garten" },
    { role: "user", content: "We were running along the river" },
    { role: "user", content: "Los niños comieron paella" },
  ]);
  {
    await using memory = await memoryOf(f, { background: false });
    await memory.indexer.backfill!(ctx());
    // Other inflections of the indexed words match.
    for (const [q, i] of [["Kind", 0], ["runs", 1], ["niña", 2]] as const) {
      const [hit] = await memory.search(q, { k: 1, mode: "keyword" });
      assert.equal(hit?.messageId, r.firstId + i, q);
    }
    await memory.indexPending();
  }
  // Simulate an index written by an older analyzer: raw, unstemmed tokens.
  await f.db.storage.execute("DELETE FROM memory_state WHERE key = 'keywords'");
  await f.db.storage.execute(
    "INSERT INTO memory_fts (memory_fts) VALUES ('delete-all')",
  );
  await f.db.storage.execute({
    sql: "INSERT INTO memory_fts (rowid, body, context) VALUES (?, ?, '')",
    args: [r.firstId, "Die Kinder spielen heute im Garten"],
  });
  const vectors = await f.store.count();
  await using memory = await memoryOf(f, { background: false });
  const [hit] = await memory.search("Kind", { k: 1, mode: "keyword" });
  assert.equal(hit?.messageId, r.firstId, "rebuilt with stems");
  const [run] = await memory.search("runs", { k: 1, mode: "keyword" });
  assert.equal(run?.messageId, r.firstId + 1, "every item re-entered");
  assert.equal(await f.store.count(), vectors);
  assert.equal((await memory.status()).pending, 0, "no re-embedding");
});

Deno.test({
  name: "close the shared model",
  fn: async () => {
    await embedder?.close();
  },
});
