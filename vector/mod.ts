/**
 * Semantic memory's storage: {@linkcode VectorStore}s that keep vectors
 * with metadata and documents and find the nearest, in two backends that
 * pass one conformance suite.
 *
 * - {@linkcode openEmbeddedVectorStore} (the default): vectors inside the
 *   encrypted libSQL database (schema {@linkcode vectorSchema}), an
 *   in-memory index (sign-bit codes scanned with a WebAssembly popcount
 *   kernel, int16 rescoring), no server, nothing outside the encrypted
 *   file; `reembed()` rebuilds a collection with another embedder, crash-safe.
 * - {@linkcode openChromaVectorStore}: a Chroma server (any URL, or one
 *   started by {@linkcode startLocalChroma}); documents and non-filterable
 *   metadata are sealed with the `vector-doc` key, but **Chroma stores the
 *   vectors and the filterable metadata unencrypted**.
 * - Filters in Chroma's `where` language on both ({@linkcode compileFilter}).
 *
 * Each collection records its embedder id, dimensions and metric; opening
 * it with another gives `EMBEDDER_MISMATCH`.
 *
 * @example Nearest neighbours in the encrypted store
 * ```ts
 * import { openEmbeddedVectorStore } from "./mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/user.db`, { key: await importDataKey(generateDataKey()) });
 *   await using memory = await openEmbeddedVectorStore(db, { name: "messages", embedderId: "demo-2", dimensions: 2 });
 *   await memory.upsert([
 *     { id: "m1", vector: [1, 0], metadata: { conversation: "c1" }, document: "I like tea" },
 *     { id: "m2", vector: [0, 1], metadata: { conversation: "c2" }, document: "Trains are late" },
 *   ]);
 *   const [hit] = await memory.query({ vector: [0.9, 0.2], k: 1, filter: { conversation: { $in: ["c1", "c2"] } } });
 *   assert.equal(hit?.id, "m1");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
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
} from "./types.ts";
export {
  type ChromaWhere,
  compileFilter,
  type FilterPredicate,
  MAX_FILTER_DEPTH,
  MAX_FILTER_NODES,
  MAX_METADATA_FIELDS,
  MAX_METADATA_KEY_LENGTH,
  MAX_METADATA_STRING_LENGTH,
  toChromaWhere,
  validateFilter,
  validateMetadata,
} from "./filter.ts";
export {
  type EmbeddedVectorStore,
  type EmbeddedVectorStoreOptions,
  openEmbeddedVectorStore,
  type ReembedFunction,
  type ReembedItem,
  type ReembedOptions,
  type ReembedProgress,
  type ReembedReport,
  type ResolvedEmbeddedVectorStoreOptions,
  resolveEmbeddedVectorStoreOptions,
  vectorSchema,
  type VectorStorage,
} from "./embedded_store.ts";
export {
  type ChromaVectorStoreOptions,
  type DocumentSealer,
  openChromaVectorStore,
} from "./chroma_store.ts";
export {
  type LocalChroma,
  type LocalChromaOptions,
  startLocalChroma,
} from "./chroma_server.ts";
export type {
  MigrationFunction,
  MigrationStep,
  SchemaDefinition,
  SchemaVersion,
} from "../schema/mod.ts";
export type {
  InArgs,
  InStatement,
  InValue,
  ResultSet,
  Row,
  SqlExecutor,
  Transaction,
  TransactionMode,
  Value,
} from "../storage/types.ts";
export type { SealedColumnSpec } from "../storage/mod.ts";
