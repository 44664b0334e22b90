// deno-lint-ignore-file no-console
// Retrieval quality on testdata/retrieval/: recall@5 and MRR@10 for
// keyword-only, vector-only and hybrid search.
//
//   deno run -A bench/retrieval_eval.ts                   # default: USE-lite
//   deno run -A bench/retrieval_eval.ts --context message # what is embedded
//   deno run -A bench/retrieval_eval.ts --ollama http://127.0.0.1:11434 --model nomic-embed-text
//   deno run -A bench/retrieval_eval.ts --openai http://127.0.0.1:8080 --model bge-m3
//   deno run -A bench/retrieval_eval.ts --onnx /path/to/model-folder
import { parseArgs } from "node:util";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { coreSchema } from "../repositories/core_schema.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { memorySchema } from "../vector/memory/memory_schema.ts";
import { openSemanticMemory } from "../vector/memory/semantic_memory.ts";
import type { ContextMode } from "../vector/memory/semantic_memory.ts";
import { openUseLiteEmbedder } from "../vector/embedders/use_lite_embedder.ts";
import { openOllamaEmbedder } from "../vector/embedders/ollama_embedder.ts";
import { openOnnxEmbedder } from "../vector/embedders/onnx_embedder.ts";
import { openOpenAICompatibleEmbedder } from "../vector/embedders/openai_compatible_embedder.ts";
import { openExactStore } from "../vector/_exact_store_test_helper.ts";
import type { Embedder } from "../vector/types.ts";
import {
  evaluate,
  formatEvaluation,
  loadRetrievalSet,
  writeRetrievalSet,
} from "../tests/_retrieval.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    context: { type: "string", default: "pair" },
    ollama: { type: "string" },
    openai: { type: "string" },
    onnx: { type: "string" },
    model: { type: "string", default: "" },
    kw: { type: "string" },
    vw: { type: "string" },
    rrf: { type: "string" },
  },
});

let embedder: Embedder & { close?(): Promise<void> };
if (values.ollama) {
  embedder = await openOllamaEmbedder({
    url: values.ollama,
    model: values.model,
  });
} else if (values.openai) {
  embedder = await openOpenAICompatibleEmbedder({
    url: values.openai,
    model: values.model,
  });
} else if (values.onnx) {
  embedder = await openOnnxEmbedder({ modelPath: values.onnx });
} else {
  embedder = await openUseLiteEmbedder();
}
const set = await loadRetrievalSet();
await using db = await openTestStore();
await (await openMigrator(
  db.storage,
  createSchemaRegistry([coreSchema, memorySchema]),
)).migrate();
const ids = await writeRetrievalSet(db.storage, set);
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
  context: values.context as ContextMode,
  background: false,
  fusion: {
    ...(values.kw === undefined ? {} : { keywordWeight: Number(values.kw) }),
    ...(values.vw === undefined ? {} : { vectorWeight: Number(values.vw) }),
    ...(values.rrf === undefined ? {} : { rankConstant: Number(values.rrf) }),
  },
});
const t0 = performance.now();
await memory.indexer.backfill!({ signal: new AbortController().signal });
await memory.indexPending();
console.log(
  `${embedder.id}, context "${values.context}": ${ids.size} messages, ${set.queries.length} queries, indexed in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s`,
);
const results: Record<string, number> = {};
for (const mode of ["keyword", "vector", "hybrid"] as const) {
  const e = await evaluate(memory, set, ids, { mode });
  results[mode] = e.overall.recallAt5;
  console.log(formatEvaluation(mode, e));
}
console.log(
  `hybrid / best single (recall@5): ${
    (results.hybrid! / Math.max(results.keyword!, results.vector!)).toFixed(2)
  }x`,
);
await embedder.close?.();
