/**
 * Semantic memory: find past messages by meaning and by keyword.
 *
 * - {@linkcode memorySchema}: the keyword index (a contentless FTS5 table,
 *   tokens only, inside the encrypted libSQL file) and its bookkeeping;
 *   register it beside the core schema.
 * - {@linkcode openSemanticMemory}: `search()` (hybrid: FTS5 bm25 fused
 *   with vector hits by weighted reciprocal rank fusion; optional maximal
 *   marginal relevance and recency decay), `related()`, and the
 *   {@linkcode SemanticMemory.indexer}, a durable change-feed consumer.
 *
 * Register the indexer with the change feed: `await feed.register(memory.indexer)`.
 * Its backfill enters existing messages into the keyword index newest
 * first (resumable) and leaves the embedding to the background, so keyword
 * search works at once after an import.
 *
 * @example Hybrid search over a conversation
 * ```ts
 * import { memorySchema, openSemanticMemory } from "./mod.ts";
 * import { openUseLiteEmbedder } from "../embedders/mod.ts";
 * import { openEmbeddedVectorStore } from "../mod.ts";
 * import { openTestStore } from "../../repositories/_doc_helpers.ts";
 * import { coreSchema } from "../../repositories/core_schema.ts";
 * import { createConversationRepository } from "../../repositories/mod.ts";
 * import { createSchemaRegistry, openMigrator } from "../../schema/mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using db = await openTestStore();
 * await (await openMigrator(db.storage, createSchemaRegistry([coreSchema, memorySchema]))).migrate();
 * await using embedder = await openUseLiteEmbedder({ workers: 0 });
 * await using store = await openEmbeddedVectorStore(db.storage, { name: "messages", embedderId: embedder.id, dimensions: 512 });
 * await using memory = await openSemanticMemory({ storage: db.storage, embedder, store });
 * const conversations = createConversationRepository(db.storage);
 * const c = await conversations.createConversation();
 * await conversations.appendMessages(c.id, [
 *   { role: "user", content: "The plumber Jarek fixed the leaking pipe" },
 *   { role: "user", content: "We should plant tulips in the garden" },
 * ]);
 * await memory.indexer.backfill!({ signal: new AbortController().signal });
 * await memory.whenIdle();
 * const [hit] = await memory.search("who repaired the water leak?", { k: 1 });
 * assert.match(hit!.content, /plumber/);
 * ```
 *
 * @module
 */
export {
  MEMORY_FTS_TOKENIZER,
  MEMORY_V1_UP,
  memorySchema,
} from "./memory_schema.ts";
export {
  type ContextMode,
  DEFAULT_FUSION,
  type FusionOptions,
  type IndexProgress,
  type MemoryHit,
  type MemoryStatus,
  type MmrOptions,
  openSemanticMemory,
  type RecencyOptions,
  type RelatedOptions,
  type ResolvedSemanticMemoryOptions,
  resolveSemanticMemoryOptions,
  type SearchOptions,
  type SemanticMemory,
  type SemanticMemoryOptions,
} from "./semantic_memory.ts";
export type {
  CollectionInfo,
  Embedder,
  EmbedOptions,
  FieldFilter,
  Metadata,
  MetadataFilter,
  MetadataValue,
  VectorHit,
  VectorMetric,
  VectorQuery,
  VectorRecord,
  VectorStore,
} from "../types.ts";
export type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
  ChangeInput,
  ChangeOp,
} from "../../changes/types.ts";
