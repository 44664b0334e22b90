// Embedding throughput of the default model (USE-lite) on realistic chat
// messages, and hybrid search latency of semantic memory on a 10k index.
//
//   deno bench -A bench/embedding_bench.ts
//   BENCH_MEMORY_SIZE=100000 deno bench -A bench/embedding_bench.ts
//
// Messages: the texts of testdata/retrieval/ joined to the length mix of real
// chat (median 84 characters, up to 465; log-normal). Every bench embeds the
// same 512 messages with the duplicate cache off, so msgs/s = 512 / time.
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { coreSchema } from "../repositories/core_schema.ts";
import { createConversationRepository } from "../repositories/mod.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { memorySchema } from "../vector/memory/memory_schema.ts";
import { openSemanticMemory } from "../vector/memory/semantic_memory.ts";
import { openUseLiteEmbedder } from "../vector/embedders/use_lite_embedder.ts";
import { openExactStore } from "../vector/_exact_store_test_helper.ts";
import type { Embedder } from "../vector/types.ts";
import { loadRetrievalSet } from "../tests/_retrieval.ts";

const set = await loadRetrievalSet();
const pool = set.conversations.flatMap((c) => c.messages.map((m) => m.content));

let seed = 42;
const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
function gauss(): number {
  return Math.sqrt(-2 * Math.log(rand() || 1e-9)) *
    Math.cos(2 * Math.PI * rand());
}
/** A message of realistic length built from the set's sentences. */
function message(): string {
  const target = Math.min(
    465,
    Math.max(4, Math.round(84 * Math.exp(0.75 * gauss()))),
  );
  let text = "";
  while (text.length < target) {
    text += (text ? " " : "") + pool[Math.floor(rand() * pool.length)]!;
  }
  if (text.length > target) {
    const cut = text.lastIndexOf(" ", target);
    text = text.slice(0, cut > 0 ? cut : target);
  }
  return text;
}
const MESSAGES = Array.from({ length: 512 }, message);

const naive = await openUseLiteEmbedder({
  workers: 0,
  batchSize: 64,
  lengthSorted: false,
  cacheSize: 0,
  maxTokens: 4096,
});
const oneThread = await openUseLiteEmbedder({ workers: 0, cacheSize: 0 });
const twoWorkers = await openUseLiteEmbedder({ workers: 2, cacheSize: 0 });
for (const e of [naive, oneThread, twoWorkers]) {
  await e.embed(MESSAGES.slice(0, 32));
}

Deno.bench({
  name:
    "USE-lite 512 msgs: 1 thread, unsorted batches of 64, no cut (baseline)",
  group: "embed",
  baseline: true,
  n: 3,
  warmup: 0,
  async fn() {
    await naive.embed(MESSAGES);
  },
});
Deno.bench({
  name:
    "USE-lite 512 msgs: 1 thread, length-sorted batches of 32, cut at 128 tokens",
  group: "embed",
  n: 3,
  warmup: 0,
  async fn() {
    await oneThread.embed(MESSAGES);
  },
});
Deno.bench({
  name:
    "USE-lite 512 msgs: 2 workers, length-sorted batches of 32, cut at 128 tokens",
  group: "embed",
  n: 3,
  warmup: 0,
  async fn() {
    await twoWorkers.embed(MESSAGES);
  },
});

// ---- hybrid search latency ------------------------------------------------

const SIZE = Number(Deno.env.get("BENCH_MEMORY_SIZE") ?? 10_000);
const db = await openTestStore();
await (await openMigrator(
  db.storage,
  createSchemaRegistry([coreSchema, memorySchema]),
)).migrate();
const repo = createConversationRepository(db.storage);
// SIZE messages in conversations of 8; vectors for the index are the real
// vectors of 512 distinct texts with a little noise (embedding SIZE texts
// would take minutes); queries are embedded for real.
const distinct = MESSAGES;
const baseVectors = await twoWorkers.embed(distinct);
const vectorOf = new Map<string, Float32Array>();
for (let c = 0; c < SIZE / 8; c++) {
  const id = `conv${c}`;
  await repo.createConversation({ id });
  const batch = Array.from({ length: 8 }, (_, i) => {
    const n = c * 8 + i;
    const base = n % distinct.length;
    const content = `${distinct[base]} (${n})`;
    const v = baseVectors[base]!.map((x) => x + 0.02 * gauss());
    vectorOf.set(content, v);
    return {
      role: i % 2 ? "assistant" as const : "user" as const,
      content,
      createdAt: Date.UTC(2025, 0, 1) + n * 60_000,
    };
  });
  await repo.appendMessages(id, batch);
}
const indexEmbedder: Embedder = {
  id: twoWorkers.id,
  dimensions: 512,
  embed: async (texts, options) => {
    const miss = texts.filter((t) => !vectorOf.has(t));
    const fresh = miss.length ? await twoWorkers.embed(miss, options) : [];
    let j = 0;
    return texts.map((t) => vectorOf.get(t) ?? fresh[j++]!);
  },
};
const store = openExactStore({
  name: "bench",
  embedderId: twoWorkers.id,
  dimensions: 512,
  metric: "cosine",
});
const memory = await openSemanticMemory({
  storage: db.storage,
  embedder: indexEmbedder,
  store,
  context: "message",
  background: false,
});
await memory.indexer.backfill!({ signal: new AbortController().signal });
await memory.indexPending();
const QUERIES = set.queries.map((q) => q.text);
let qi = 0;

Deno.bench({
  name:
    `hybrid search top-10, ${SIZE} messages (embed query + bm25 + exact vector scan + open)`,
  group: "search",
  baseline: true,
  async fn() {
    await memory.search(QUERIES[qi++ % QUERIES.length]!, { k: 10 });
  },
});
Deno.bench({
  name: `keyword search top-10, ${SIZE} messages (bm25 + open)`,
  group: "search",
  async fn() {
    await memory.search(QUERIES[qi++ % QUERIES.length]!, {
      k: 10,
      mode: "keyword",
    });
  },
});
Deno.bench({
  name: `query embedding alone (one short text, 2 workers)`,
  group: "search",
  async fn() {
    await twoWorkers.embed([QUERIES[qi++ % QUERIES.length]! + " " + qi]);
  },
});

globalThis.addEventListener("unload", () => {
  // Workers would keep the process alive.
  naive.close();
  oneThread.close();
  twoWorkers.close();
});
