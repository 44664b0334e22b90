/**
 * The contracts of semantic memory: an {@linkcode Embedder} turns texts into
 * vectors, a {@linkcode VectorStore} keeps them and finds the nearest. The
 * embedded store (vectors inside the encrypted libSQL file) and the Chroma
 * store implement the same interface and pass one conformance suite.
 *
 * @module
 */

/** Options of {@linkcode Embedder.embed}. */
export interface EmbedOptions {
  /** Stops the work; the promise rejects with `ABORTED`. */
  readonly signal?: AbortSignal;
}

/** Turns texts into fixed-size vectors. */
export interface Embedder {
  /**
   * A stable identifier of the model and its settings, for example
   * `"use-lite-512"` or `"ollama:nomic-embed-text"`; recorded in every
   * collection, so that one built by another model is refused.
   */
  readonly id: string;
  /** The vector size. */
  readonly dimensions: number;
  /**
   * Embeds texts in batches.
   *
   * @param texts The texts (an empty or blank text gets a zero vector or
   * `INVALID_INPUT`, as the implementation documents).
   * @param options Abort signal.
   * @returns One `Float32Array` of `dimensions` per text, in order.
   */
  embed(
    texts: readonly string[],
    options?: EmbedOptions,
  ): Promise<Float32Array[]>;
  /** Releases the model (workers, sessions); safe to call twice. */
  close?(): Promise<void>;
}

/** A metadata value that filters can test. */
export type MetadataValue = string | number | boolean;

/** The metadata of one vector: flat, filterable fields. */
export type Metadata = Readonly<Record<string, MetadataValue>>;

/** A comparison on one field, in Chroma's `where` language. */
export type FieldFilter =
  | MetadataValue
  | { readonly $eq: MetadataValue }
  | { readonly $ne: MetadataValue }
  | { readonly $gt: number }
  | { readonly $gte: number }
  | { readonly $lt: number }
  | { readonly $lte: number }
  | { readonly $in: readonly MetadataValue[] }
  | { readonly $nin: readonly MetadataValue[] };

/**
 * A metadata filter in Chroma's `where` language: `{ field: value }`,
 * `{ field: { $op: value } }`, `{ $and: [...] }`, `{ $or: [...] }`. Several
 * fields in one object are an implicit `$and`.
 */
export type MetadataFilter =
  | { readonly $and: readonly MetadataFilter[] }
  | { readonly $or: readonly MetadataFilter[] }
  | { readonly [field: string]: FieldFilter };

/** One vector to store. */
export interface VectorRecord {
  /** A unique id (1 to 512 characters). */
  readonly id: string;
  /** The vector: `dimensions` finite numbers. */
  readonly vector: Float32Array | readonly number[];
  /** Filterable metadata. */
  readonly metadata?: Metadata;
  /**
   * A document kept with the vector (the embedded store keeps it inside the
   * encrypted file; the Chroma store seals it with the `vector-doc` key).
   */
  readonly document?: string;
}

/** A query. */
export interface VectorQuery {
  /** The query vector. */
  readonly vector: Float32Array | readonly number[];
  /** How many neighbours (1 to 10,000). */
  readonly k: number;
  /** Only vectors whose metadata match. */
  readonly filter?: MetadataFilter;
  /** Also return the stored documents. @default {false} */
  readonly includeDocuments?: boolean;
}

/** One neighbour. */
export interface VectorHit {
  /** The record id. */
  readonly id: string;
  /** Similarity: higher is nearer (cosine similarity for `"cosine"`). */
  readonly score: number;
  /** The record's metadata. */
  readonly metadata: Metadata;
  /** The document, when asked for and stored. */
  readonly document?: string;
}

/** The distance a collection uses. */
export type VectorMetric = "cosine" | "dot" | "l2";

/** What a collection records about how its vectors were made. */
export interface CollectionInfo {
  /** The collection name. */
  readonly name: string;
  /** The embedder id. */
  readonly embedderId: string;
  /** The vector size. */
  readonly dimensions: number;
  /** The metric. */
  readonly metric: VectorMetric;
}

/** A collection of vectors. */
export interface VectorStore extends AsyncDisposable {
  /** What the collection records. */
  readonly info: CollectionInfo;
  /**
   * Inserts or replaces records (all or nothing).
   *
   * @param records The records.
   * @returns When stored.
   * @throws {AicoDataError} `INVALID_INPUT` for a wrong dimension, a
   * non-finite component, a bad id or metadata; nothing is stored then.
   */
  upsert(records: readonly VectorRecord[]): Promise<void>;
  /**
   * Finds the `k` nearest records.
   *
   * @param query The query.
   * @returns Hits, nearest first.
   * @throws {AicoDataError} `INVALID_INPUT` for a bad vector, `k` or filter.
   */
  query(query: VectorQuery): Promise<VectorHit[]>;
  /**
   * Deletes records by id or by filter.
   *
   * @param target Ids, or `{ filter }`.
   * @returns How many were deleted.
   */
  delete(
    target: readonly string[] | { readonly filter: MetadataFilter },
  ): Promise<number>;
  /**
   * Counts records.
   *
   * @param filter Only those matching.
   * @returns The count.
   */
  count(filter?: MetadataFilter): Promise<number>;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /** Releases the collection; safe to call twice. */
  close(): Promise<void>;
}
