// deno-lint-ignore-file no-console -- the test prints the measured figures
// Retrieval quality of semantic memory on testdata/retrieval/ (636 messages
// in 106 conversations, 80 labelled queries: English paraphrases, keyword-only
// names and codes, German and Spanish), with the real USE-lite model and a
// real encrypted libSQL store.
import assert from "node:assert/strict";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { coreSchema } from "../repositories/core_schema.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { memorySchema } from "../vector/memory/memory_schema.ts";
import { openSemanticMemory } from "../vector/memory/semantic_memory.ts";
import { openUseLiteEmbedder } from "../vector/embedders/use_lite_embedder.ts";
import { openExactStore } from "../vector/_exact_store_test_helper.ts";
import {
  evaluate,
  formatEvaluation,
  loadRetrievalSet,
  writeRetrievalSet,
} from "./_retrieval.ts";

/**
 * Hybrid's recall@5 over the better single method, asserted at the level
 * measured with USE-lite and the stemmed keyword index: 1.24x (keyword
 * 0.556, vector 0.606, hybrid 0.750; before the stemmer 1.18x: keyword
 * 0.496, hybrid 0.715). The issue asks for 1.5x; on this set the union of
 * both top-5 lists holds 0.823, so 1.5x (0.91) is out of reach with
 * this model — see docs/SEMANTIC_MEMORY.md.
 */
const MIN_RATIO = 1.2;

Deno.test("hybrid search beats keyword-only and vector-only on the labelled set", async () => {
  const set = await loadRetrievalSet();
  assert.ok(set.queries.length >= 60);
  const total = set.conversations.reduce((n, c) => n + c.messages.length, 0);
  assert.ok(total >= 600);
  await using db = await openTestStore();
  await (await openMigrator(
    db.storage,
    createSchemaRegistry([coreSchema, memorySchema]),
  )).migrate();
  const ids = await writeRetrievalSet(db.storage, set);
  await using embedder = await openUseLiteEmbedder();
  await using store = openExactStore({
    name: "eval",
    embedderId: embedder.id,
    dimensions: embedder.dimensions,
    metric: "cosine",
  });
  await using memory = await openSemanticMemory({
    storage: db.storage,
    embedder,
    store,
    background: false,
  });
  await memory.indexer.backfill!({ signal: new AbortController().signal });
  await memory.indexPending();
  const keyword = await evaluate(memory, set, ids, { mode: "keyword" });
  const vector = await evaluate(memory, set, ids, { mode: "vector" });
  const hybrid = await evaluate(memory, set, ids, { mode: "hybrid" });
  console.log(
    `\n${formatEvaluation("keyword", keyword)}\n${
      formatEvaluation("vector", vector)
    }\n${formatEvaluation("hybrid", hybrid)}`,
  );
  const best = Math.max(keyword.overall.recallAt5, vector.overall.recallAt5);
  const ratio = hybrid.overall.recallAt5 / best;
  console.log(`hybrid / best single recall@5: ${ratio.toFixed(2)}x`);
  assert.ok(ratio >= MIN_RATIO, `ratio ${ratio.toFixed(3)}`);
  assert.ok(
    hybrid.overall.mrrAt10 >
      Math.max(keyword.overall.mrrAt10, vector.overall.mrrAt10),
  );
  // The stemmed keyword index (0.496 before it) and the fused result.
  assert.ok(keyword.overall.recallAt5 >= 0.55, "keyword recall@5");
  assert.ok(hybrid.overall.recallAt5 >= 0.74, "hybrid recall@5");
  // Each side keeps its strength inside the fusion.
  assert.ok(hybrid.byKind.keyword!.recallAt5 >= 0.9);
  assert.ok(
    hybrid.byKind.paraphrase!.recallAt5 > keyword.byKind.paraphrase!.recallAt5,
  );
});
