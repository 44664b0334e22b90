/**
 * The embedded vector store: vectors inside the encrypted libSQL database,
 * an in-memory index, no server ({@linkcode openEmbeddedVectorStore}).
 *
 * @module
 */

import { AicoDataError } from "../errors.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import type { SchemaDefinition } from "../schema/schema_version.ts";
import type {
  SqlExecutor,
  Transaction,
  TransactionMode,
  Value,
} from "../storage/types.ts";
import { VECTOR_SCHEMA } from "./_schema.ts";
import { norm, quantize, shortlistFor, VectorIndex } from "./_index.ts";
import {
  decodeHead,
  decodeQuant,
  deleteSegment,
  insertSegment,
  jsonCell,
  num,
  readSegment,
  removeFromSegment,
  SEGMENT_MAX,
  type SegmentRecord,
  SMALL_SEGMENT,
} from "./_segments.ts";
import {
  checkCollectionName,
  checkDeleteTarget,
  checkDimensions,
  type CheckedRecord,
  checkEmbedderId,
  checkMetric,
  checkQuery,
  checkRecords,
  checkSignal,
  checkVector,
} from "./_validate.ts";
import { compileFilter, type FilterPredicate } from "./filter.ts";
import type {
  CollectionInfo,
  Embedder,
  Metadata,
  MetadataFilter,
  VectorHit,
  VectorMetric,
  VectorQuery,
  VectorRecord,
  VectorStore,
} from "./types.ts";

/**
 * The schema of the embedded store (`vector`, owner `core`): register it
 * with the other schemas of the database so that the composition root
 * migrates it; {@linkcode openEmbeddedVectorStore} also applies it when it
 * is not applied yet.
 */
export const vectorSchema: SchemaDefinition = VECTOR_SCHEMA;

/**
 * What the embedded store needs of a database: statements and write
 * transactions (a `Storage` from `openStorage()` has them).
 */
export interface VectorStorage extends SqlExecutor {
  /** Whether the database is closed. */
  readonly closed: boolean;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    mode?: TransactionMode,
  ): Promise<T>;
}

type Storage = VectorStorage;

/** Options of {@linkcode openEmbeddedVectorStore}. */
export interface EmbeddedVectorStoreOptions {
  /** The collection name: 3 to 512 characters of `[a-zA-Z0-9._-]`. */
  readonly name: string;
  /** The id of the embedder whose vectors the collection holds. */
  readonly embedderId: string;
  /** The vector size. */
  readonly dimensions: number;
  /**
   * The metric. Scores: cosine similarity, dot product, or the negated
   * squared Euclidean distance for `"l2"` (higher is always nearer).
   *
   * @default {"cosine"}
   */
  readonly metric?: VectorMetric;
  /**
   * Create the collection when it does not exist; otherwise `NOT_FOUND`.
   *
   * @default {true}
   */
  readonly create?: boolean;
  /**
   * How many nearest sign-bit codes a query ranks by their int16 vectors
   * (more: higher recall, slower); raised to `size / 500` for large
   * collections and `4 × k` for large `k`, and four times as many with a
   * filter.
   *
   * @default {200}
   */
  readonly shortlist?: number;
  /** Stops opening (loading); rejects with `ABORTED`. */
  readonly signal?: AbortSignal;
}

/** Options after {@linkcode resolveEmbeddedVectorStoreOptions}. */
export interface ResolvedEmbeddedVectorStoreOptions {
  /** See {@linkcode EmbeddedVectorStoreOptions.name}. */
  readonly name: string;
  /** See {@linkcode EmbeddedVectorStoreOptions.embedderId}. */
  readonly embedderId: string;
  /** See {@linkcode EmbeddedVectorStoreOptions.dimensions}. */
  readonly dimensions: number;
  /** See {@linkcode EmbeddedVectorStoreOptions.metric}. */
  readonly metric: VectorMetric;
  /** See {@linkcode EmbeddedVectorStoreOptions.create}. */
  readonly create: boolean;
  /** See {@linkcode EmbeddedVectorStoreOptions.shortlist}. */
  readonly shortlist: number;
  /** See {@linkcode EmbeddedVectorStoreOptions.signal}. */
  readonly signal: AbortSignal | undefined;
}

/**
 * Checks {@linkcode EmbeddedVectorStoreOptions} and fills in defaults.
 *
 * @param options The options as given.
 * @returns The frozen resolved options.
 * @throws {AicoDataError} `INVALID_INPUT` for a bad name, embedder id,
 * dimension, metric or shortlist.
 *
 * @example Defaults
 * ```ts
 * import { resolveEmbeddedVectorStoreOptions } from "./embedded_store.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveEmbeddedVectorStoreOptions({ name: "memory", embedderId: "use-lite-512", dimensions: 512 });
 * assert.equal(o.metric, "cosine");
 * assert.equal(o.shortlist, 200);
 * assert.equal(o.create, true);
 * ```
 */
export function resolveEmbeddedVectorStoreOptions(
  options: EmbeddedVectorStoreOptions,
): ResolvedEmbeddedVectorStoreOptions {
  const action = "open vector store";
  if (typeof options !== "object" || options === null) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: options must be an object`,
    );
  }
  const shortlist = options.shortlist ?? 200;
  if (!Number.isSafeInteger(shortlist) || shortlist < 10 || shortlist > 1e6) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: shortlist "${
        String(shortlist)
      }" is not an integer from 10 to 1000000`,
    );
  }
  const create = options.create ?? true;
  if (typeof create !== "boolean") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: create is not a boolean`,
    );
  }
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: signal is not an AbortSignal`,
    );
  }
  return Object.freeze({
    name: checkCollectionName(options.name, action),
    embedderId: checkEmbedderId(options.embedderId, action),
    dimensions: checkDimensions(options.dimensions, action),
    metric: checkMetric(options.metric ?? "cosine", action),
    create,
    shortlist,
    signal: options.signal,
  });
}

/** What {@linkcode EmbeddedVectorStore.reembed} gets per record. */
export interface ReembedItem {
  /** The record id. */
  readonly id: string;
  /** The stored document, if any. */
  readonly document: string | undefined;
  /** The record's metadata. */
  readonly metadata: Metadata;
}

/** A function computing new vectors for records (one per item, in order). */
export type ReembedFunction = (
  items: readonly ReembedItem[],
  options: { readonly signal?: AbortSignal },
) => Promise<readonly (Float32Array | readonly number[])[]>;

/** Options of {@linkcode EmbeddedVectorStore.reembed}. */
export interface ReembedOptions {
  /** Stops the rebuild (resumable later); rejects with `ABORTED`. */
  readonly signal?: AbortSignal;
  /** Required with a {@linkcode ReembedFunction}: the new embedder id. */
  readonly embedderId?: string;
  /** Required with a {@linkcode ReembedFunction}: the new vector size. */
  readonly dimensions?: number;
  /** The metric of the rebuilt collection. @default {the current metric} */
  readonly metric?: VectorMetric;
  /** Records embedded and written per step. @default {256} */
  readonly batchSize?: number;
  /** Called after each committed step. */
  readonly onProgress?: (progress: ReembedProgress) => void;
}

/** Progress of a rebuild. */
export interface ReembedProgress {
  /** Records in the rebuilt collection so far (resumed ones included). */
  readonly done: number;
  /** Records in the collection. */
  readonly total: number;
}

/** The result of {@linkcode EmbeddedVectorStore.reembed}. */
export interface ReembedReport {
  /** Records embedded by this call (fewer than `total` when resumed). */
  readonly embedded: number;
  /** Records in the collection after the swap. */
  readonly total: number;
  /** Whether the rebuild continued a shadow left by an earlier run. */
  readonly resumed: boolean;
}

/** The embedded store: a {@linkcode VectorStore} plus rebuilding. */
export interface EmbeddedVectorStore extends VectorStore {
  /**
   * Rebuilds the collection with another embedder: records are embedded
   * again (from their documents, or by `source` when it is a function) into
   * a shadow collection, step by step (each step committed), then the
   * shadow replaces the collection in one transaction and the index is
   * reloaded. Queries keep answering from the old vectors meanwhile; upserts
   * and deletes during the rebuild are carried over.
   *
   * @remarks Crash-safe and resumable: before the swap the old collection is
   * complete and in use (the partial shadow is ignored by queries); after
   * it, the new one. Calling `reembed()` again with the same embedder id
   * and dimensions continues the shadow; with others, it starts over. When
   * the collection already has that embedder and no shadow exists, nothing
   * is done.
   *
   * @param source An embedder (`id`, `dimensions`, `embed(texts)`; every
   * record needs a document), or a function given the records.
   * @param options Signal, and the embedder id and dimensions with a function.
   * @returns How many records were embedded.
   * @throws {AicoDataError} `INVALID_INPUT` (a record without document for an
   * embedder, a bad vector from the source: nothing of that step is kept),
   * `ABORTED`, `STORE_CLOSED`.
   */
  reembed(
    source: Pick<Embedder, "id" | "dimensions" | "embed"> | ReembedFunction,
    options?: ReembedOptions,
  ): Promise<ReembedReport>;
  /**
   * Waits until every vector of the collection is in memory. Open reads
   * the compact part of the index (ids, norms, metadata, sign-bit codes)
   * and loads the int16 vectors in the background; a query before that
   * first loads the segments of its own candidates, so its results are the
   * same, only slower.
   *
   * @returns When the background load is done (at once when there is none;
   * also after `close()`).
   */
  whenLoaded(): Promise<void>;
}

interface CollectionRow {
  readonly cid: number;
  readonly info: CollectionInfo;
}

const EMPTY: Metadata = Object.freeze({});
const openNames = new WeakMap<Storage, Set<string>>();

function metaText(m: Metadata): string | null {
  for (const _ in m) return JSON.stringify(m);
  return null;
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => "?").join(", ");
}

function toInfo(row: Record<string, Value>): CollectionRow {
  return {
    cid: num(row.cid),
    info: Object.freeze({
      name: String(row.name),
      embedderId: String(row.embedder_id),
      dimensions: num(row.dimensions),
      metric: String(row.metric) as VectorMetric,
    }),
  };
}

/** Normalises for the index space: unit length for cosine. */
function indexSpace(
  v: Float32Array,
  n: number,
  metric: VectorMetric,
): Float32Array {
  if (metric !== "cosine" || n === 0) return v;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

/** A tiny FIFO mutex for the writes of one store. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

async function selectCollection(
  db: Storage | Transaction,
  name: string,
  state: "ready" | "shadow",
): Promise<CollectionRow | undefined> {
  const { rows } = await db.execute(
    "SELECT cid, name, embedder_id, dimensions, metric FROM vector_collections WHERE name = ? AND state = ?",
    [name, state],
  );
  return rows[0] === undefined ? undefined : toInfo(rows[0]);
}

interface Prepared extends SegmentRecord {
  readonly document: string | undefined;
  /** The vector (transient, for its code). */
  readonly raw: Float32Array;
  /** What brings it into index space (1 / norm for cosine, else 1). */
  readonly mul: number;
}

/** Records from this many on get a fixed centre and persisted codes. */
const FREEZE_AT = 4096;

function prepare(r: CheckedRecord, metric: VectorMetric): Prepared {
  const n = norm(r.vector);
  const v = r.vector;
  const mul = metric === "cosine" && n > 0 ? 1 / n : 1;
  return {
    id: r.id,
    norm: n,
    quant: quantize(v, mul),
    metaText: metaText(r.metadata),
    metadata: r.metadata,
    code: null,
    document: r.document,
    raw: v,
    mul,
  };
}

/** Ids of a collection's segments, by sid, read without the vectors. */
async function segmentIds(
  db: Storage | Transaction,
  cid: number,
): Promise<Map<number, string[]>> {
  const { rows } = await db.execute(
    "SELECT sid, ids FROM vector_segments WHERE cid = ?",
    [cid],
  );
  return new Map(rows.map((r) => [num(r.sid), jsonCell(r.ids) as string[]]));
}

async function markStale(
  tx: Transaction,
  shadowCid: number,
  ids: readonly string[],
): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    await tx.execute(
      `INSERT OR IGNORE INTO vector_stale (cid, id) VALUES ${
        part.map(() => "(?, ?)").join(", ")
      }`,
      part.flatMap((id) => [shadowCid, id]),
    );
  }
}

async function writeDocuments(
  tx: Transaction,
  name: string,
  prepared: readonly Prepared[],
  replaced: ReadonlySet<string>,
): Promise<void> {
  const withDoc = prepared.filter((p) => p.document !== undefined);
  for (let i = 0; i < withDoc.length; i += 200) {
    const part = withDoc.slice(i, i + 200);
    await tx.execute(
      `INSERT OR REPLACE INTO vector_documents (name, id, document) VALUES ${
        part.map(() => "(?, ?, ?)").join(", ")
      }`,
      part.flatMap((p) => [name, p.id, p.document!]),
    );
  }
  const noDoc = prepared.filter((p) =>
    p.document === undefined && replaced.has(p.id)
  ).map((p) => p.id);
  await deleteDocuments(tx, name, noDoc);
}

async function deleteDocuments(
  tx: Transaction,
  name: string,
  ids: readonly string[],
): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    await tx.execute(
      `DELETE FROM vector_documents WHERE name = ? AND id IN (${
        placeholders(part.length)
      })`,
      [name, ...part],
    );
  }
}

/** Inserts records as segments of at most SEGMENT_MAX; returns sid per record. */
async function insertSegments(
  tx: Transaction,
  cid: number,
  records: readonly SegmentRecord[],
  dims: number,
): Promise<number[]> {
  const sids: number[] = [];
  for (let i = 0; i < records.length; i += SEGMENT_MAX) {
    const part = records.slice(i, i + SEGMENT_MAX);
    const sid = await insertSegment(tx, cid, part, dims);
    for (let j = 0; j < part.length; j++) sids.push(sid);
  }
  return sids;
}

class EmbeddedStore implements EmbeddedVectorStore {
  #storage: Storage;
  #cid: number;
  #info: CollectionInfo;
  #index: VectorIndex;
  #shortlist: number;
  #shadowCid: number | undefined;
  /** Records per segment of the live collection. */
  #segments: Map<number, number>;
  #closed = false;
  #writes = new Mutex();
  /** The background load of the vectors open left out (see loadIndex). */
  #loader: Promise<void> = Promise.resolve();
  #loaderTimer: ReturnType<typeof setTimeout> | undefined;
  #loaderWake: (() => void) | undefined;

  constructor(
    storage: Storage,
    shortlist: number,
    row: CollectionRow,
    loaded: Loaded,
    shadowCid: number | undefined,
  ) {
    this.#storage = storage;
    this.#shortlist = shortlist;
    this.#cid = row.cid;
    this.#info = row.info;
    this.#index = loaded.index;
    this.#segments = loaded.segments;
    this.#shadowCid = shadowCid;
    if (loaded.index.missing > 0) this.#loader = this.#loadRest(loaded.index);
  }

  /** Loads the vectors left out by open, a page at a time, yielding between pages. */
  async #loadRest(index: VectorIndex): Promise<void> {
    const dims = this.#info.dimensions;
    let last = 0;
    try {
      // Open returns first; the loader starts on the next turn.
      await this.#pause();
      while (!this.#closed && this.#index === index && index.missing > 0) {
        const { rows } = await this.#storage.execute(
          "SELECT s.sid, s.n, s.ids, q.quant FROM vector_segments s JOIN vector_quant q ON q.sid = s.sid WHERE s.cid = ? AND s.sid > ? ORDER BY s.sid LIMIT ?",
          [this.#cid, last, QUANT_PAGE],
        );
        if (this.#closed || this.#index !== index) return;
        fillRows(index, rows, dims);
        if (rows.length < QUANT_PAGE) {
          // Records merged into segments behind the pass meanwhile.
          await fillSegments(this.#storage, index, index.unreadyRows(), dims);
          return;
        }
        last = num(rows[rows.length - 1]!.sid);
        await this.#pause();
      }
    } catch {
      // Closed storage or a damaged row: a query loads (and reports) what
      // it needs itself.
    }
  }

  /** Yields to the event loop (queries, writes) between loader steps; close() wakes it. */
  async #pause(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#loaderWake = resolve;
      this.#loaderTimer = setTimeout(resolve, 0);
    });
    this.#loaderTimer = undefined;
    this.#loaderWake = undefined;
  }

  whenLoaded(): Promise<void> {
    return this.#loader;
  }

  get info(): CollectionInfo {
    return this.#info;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #check(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: the vector store is closed`,
      );
    }
  }

  /** Removes ids from their segments (inside `tx`); returns the sids touched. */
  async #removeFromSegments(
    tx: Transaction,
    ids: readonly string[],
  ): Promise<Map<number, number>> {
    const bySid = new Map<number, Set<string>>();
    for (const id of ids) {
      const sid = this.#index.rowOf(id);
      if (sid === undefined) continue;
      let set = bySid.get(sid);
      if (set === undefined) bySid.set(sid, set = new Set());
      set.add(id);
    }
    const sizes = new Map<number, number>();
    for (const [sid, drop] of bySid) {
      const kept = await removeFromSegment(
        tx,
        this.#cid,
        sid,
        drop,
        this.#info.dimensions,
      );
      sizes.set(sid, kept.length);
    }
    return sizes;
  }

  async upsert(records: readonly VectorRecord[]): Promise<void> {
    this.#check("upsert");
    const dims = this.#info.dimensions;
    const checked = checkRecords(records, dims);
    if (checked.length === 0) return;
    const metric = this.#info.metric;
    let prepared = checked.map((r) => prepare(r, metric));
    await this.#writes.run(async () => {
      this.#check("upsert");
      const index = this.#index;
      // Fix the centre once the collection is big enough; from then on
      // codes are persisted (open copies them instead of computing them).
      const candidate = !index.frozen && index.size >= FREEZE_AT
        ? index.meanCentre()
        : undefined;
      if (candidate !== undefined || index.frozen) {
        prepared = prepared.map((p) => ({
          ...p,
          code: index.encodeVector(p.raw, candidate, p.mul),
        }));
      }
      const replaced = new Set(
        prepared.filter((p) => index.has(p.id)).map((p) => p.id),
      );
      const shadow = this.#shadowCid;
      const { sids, sizes, merged } = await this.#storage.transaction(
        async (tx) => {
          const sizes = await this.#removeFromSegments(tx, [...replaced]);
          const sids = await insertSegments(tx, this.#cid, prepared, dims);
          await writeDocuments(tx, this.#info.name, prepared, replaced);
          if (shadow !== undefined) {
            await markStale(tx, shadow, prepared.map((p) => p.id));
          }
          if (candidate !== undefined) {
            await tx.execute(
              "UPDATE vector_collections SET centre = ? WHERE cid = ?",
              [new Uint8Array(candidate.buffer), this.#cid],
            );
          }
          const merged = await this.#mergeSmall(tx, sizes, sids);
          return { sids, sizes, merged };
        },
      );
      for (const [sid, n] of sizes) {
        if (n === 0) this.#segments.delete(sid);
        else this.#segments.set(sid, n);
      }
      if (candidate !== undefined) {
        index.freeze(candidate);
        await this.#persistCodes();
      }
      for (let i = 0; i < prepared.length; i++) {
        const p = prepared[i]!;
        const sid = sids[i]!;
        this.#segments.set(sid, (this.#segments.get(sid) ?? 0) + 1);
        index.add(
          {
            id: p.id,
            row: sid,
            norm: p.norm,
            quant: p.quant,
            metadata: p.metadata,
          },
          false,
          p.code,
        );
      }
      if (merged !== undefined) this.#applyMerge(merged);
    });
  }

  /**
   * Writes the codes of segments stored before the centre was fixed, so
   * that open can copy them instead of reading those vectors to compute
   * them. Its own transaction: a crash before it only leaves open to
   * compute them, as before.
   */
  async #persistCodes(): Promise<void> {
    const { rows } = await this.#storage.execute(
      "SELECT sid, ids FROM vector_segments WHERE cid = ? AND codes IS NULL",
      [this.#cid],
    );
    if (rows.length === 0) return;
    await this.#storage.transaction(async (tx) => {
      for (const r of rows) {
        const codes = this.#index.codesOf(jsonCell(r.ids) as string[]);
        if (codes === undefined) continue;
        await tx.execute(
          "UPDATE vector_segments SET codes = ? WHERE sid = ? AND codes IS NULL",
          [codes, num(r.sid)],
        );
      }
    });
  }

  /**
   * Merges small segments when many pile up (one-by-one upserts), inside
   * the upsert's transaction. Returns the moves to apply to the index.
   */
  async #mergeSmall(
    tx: Transaction,
    sizes: ReadonlyMap<number, number>,
    newSids: readonly number[],
  ): Promise<
    | { from: number[]; moves: Map<string, number>; sizes: Map<number, number> }
    | undefined
  > {
    const current = new Map(this.#segments);
    for (const [sid, n] of sizes) {
      if (n === 0) current.delete(sid);
      else current.set(sid, n);
    }
    for (const sid of newSids) current.set(sid, (current.get(sid) ?? 0) + 1);
    const small = [...current].filter(([, n]) => n < SMALL_SEGMENT);
    if (small.length < 32) return undefined;
    const dims = this.#info.dimensions;
    const records: SegmentRecord[] = [];
    for (const [sid] of small) {
      records.push(...await readSegment(tx, sid, dims));
      await deleteSegment(tx, sid);
    }
    const sids = await insertSegments(tx, this.#cid, records, dims);
    const moves = new Map<string, number>();
    const newSizes = new Map<number, number>();
    records.forEach((r, i) => {
      moves.set(r.id, sids[i]!);
      newSizes.set(sids[i]!, (newSizes.get(sids[i]!) ?? 0) + 1);
    });
    return { from: small.map(([sid]) => sid), moves, sizes: newSizes };
  }

  #applyMerge(
    merged: {
      from: number[];
      moves: Map<string, number>;
      sizes: Map<number, number>;
    },
  ): void {
    for (const sid of merged.from) this.#segments.delete(sid);
    for (const [sid, n] of merged.sizes) this.#segments.set(sid, n);
    for (const [id, sid] of merged.moves) this.#index.setRow(id, sid);
  }

  async query(query: VectorQuery): Promise<VectorHit[]> {
    this.#check("query");
    const q = checkQuery(query, this.#info.dimensions);
    const metric = this.#info.metric;
    const index = this.#index;
    const qn = norm(q.vector);
    const qi = indexSpace(q.vector, qn, metric);
    const shortlist = shortlistFor(
      index.size,
      this.#shortlist,
      q.k,
      q.predicate !== undefined,
    );
    // Vectors not loaded yet (just after open): those of the candidates first.
    for (let round = 0; round < 8 && index.missing > 0; round++) {
      const need = index.unreadyRowsFor(qi, shortlist, q.predicate);
      if (need.length === 0) break;
      await fillSegments(this.#storage, index, need, this.#info.dimensions);
      this.#check("query");
    }
    const cands = index.search(qi, shortlist, q.k, q.predicate);
    let docs: Map<string, string> | undefined;
    if (q.includeDocuments && cands.length > 0) {
      docs = new Map();
      const ids = cands.map((c) => c.id);
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500);
        const { rows } = await this.#storage.execute(
          `SELECT id, document FROM vector_documents WHERE name = ? AND id IN (${
            placeholders(part.length)
          })`,
          [this.#info.name, ...part],
        );
        for (const r of rows) docs.set(String(r.id), String(r.document));
      }
      this.#check("query");
    }
    const hits: VectorHit[] = [];
    for (const c of cands) {
      const score = c.approx;
      const metadata = c.metadata;
      const doc = docs?.get(c.id);
      hits.push(
        doc !== undefined
          ? { id: c.id, score, metadata, document: doc }
          : { id: c.id, score, metadata },
      );
    }
    return hits;
  }

  async delete(
    target: readonly string[] | { readonly filter: MetadataFilter },
  ): Promise<number> {
    this.#check("delete");
    const t = checkDeleteTarget(target);
    return await this.#writes.run(async () => {
      this.#check("delete");
      const index = this.#index;
      const ids = "ids" in t
        ? t.ids.filter((id) => index.has(id))
        : index.matching(t.predicate).map((m) => m.id);
      const shadow = this.#shadowCid;
      if (ids.length === 0) return 0;
      const sizes = await this.#storage.transaction(async (tx) => {
        const sizes = await this.#removeFromSegments(tx, ids);
        await deleteDocuments(tx, this.#info.name, ids);
        if (shadow !== undefined) await markStale(tx, shadow, ids);
        return sizes;
      });
      for (const [sid, n] of sizes) {
        if (n === 0) this.#segments.delete(sid);
        else this.#segments.set(sid, n);
      }
      for (const id of ids) index.remove(id);
      return ids.length;
    });
  }

  count(filter?: MetadataFilter): Promise<number> {
    try {
      this.#check("count");
      const pred: FilterPredicate | undefined = filter === undefined
        ? undefined
        : compileFilter(filter);
      return Promise.resolve(this.#index.count(pred));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async reembed(
    source: Pick<Embedder, "id" | "dimensions" | "embed"> | ReembedFunction,
    options: ReembedOptions = {},
  ): Promise<ReembedReport> {
    this.#check("reembed");
    const action = "reembed";
    const isFn = typeof source === "function";
    if (!isFn && (typeof source !== "object" || source === null)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot reembed: expected an embedder or a function",
      );
    }
    const embedderId = checkEmbedderId(
      isFn ? options.embedderId : source.id,
      action,
    );
    const dimensions = checkDimensions(
      isFn ? options.dimensions : source.dimensions,
      action,
    );
    const metric = checkMetric(options.metric ?? this.#info.metric, action);
    const batchSize = options.batchSize ?? 256;
    if (
      !Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot reembed: batchSize is not an integer from 1 to 10000",
      );
    }
    const signal = options.signal;
    checkSignal(signal);
    const storage = this.#storage;
    const name = this.#info.name;

    // The shadow: continue one with the same embedder, else start over.
    const start = await this.#writes.run(async () => {
      this.#check(action);
      return await storage.transaction(async (tx) => {
        const existing = await selectCollection(tx, name, "shadow");
        const same = existing !== undefined &&
          existing.info.embedderId === embedderId &&
          existing.info.dimensions === dimensions &&
          existing.info.metric === metric;
        if (existing !== undefined && !same) {
          await dropCollection(tx, existing.cid);
        }
        if (same) return { cid: existing!.cid, resumed: true };
        if (
          this.#info.embedderId === embedderId &&
          this.#info.dimensions === dimensions && this.#info.metric === metric
        ) return undefined;
        const r = await tx.execute(
          "INSERT INTO vector_collections (name, state, embedder_id, dimensions, metric, created_at) VALUES (?, 'shadow', ?, ?, ?, ?)",
          [name, embedderId, dimensions, metric, Date.now()],
        );
        return { cid: Number(r.lastInsertRowid), resumed: false };
      });
    });
    if (start === undefined) {
      this.#shadowCid = undefined;
      return { embedded: 0, total: this.#index.size, resumed: false };
    }
    const shadowCid = start.cid;
    this.#shadowCid = shadowCid;
    let embedded = 0;

    /** Embeds `ids` of the live collection into shadow segments (in `tx`). */
    const embedInto = async (
      ids: readonly string[],
    ): Promise<Prepared[]> => {
      const docs = new Map<string, string>();
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500);
        const { rows } = await storage.execute(
          `SELECT id, document FROM vector_documents WHERE name = ? AND id IN (${
            placeholders(part.length)
          })`,
          [name, ...part],
        );
        for (const r of rows) docs.set(String(r.id), String(r.document));
      }
      const items: ReembedItem[] = ids.map((id) => ({
        id,
        document: docs.get(id),
        metadata: this.#index.metadataOf(id) ?? EMPTY,
      }));
      let vectors: readonly (Float32Array | readonly number[])[];
      if (isFn) {
        vectors = await source(items, signal === undefined ? {} : { signal });
      } else {
        const texts = items.map((it) => {
          if (it.document === undefined) {
            throw new AicoDataError(
              "INVALID_INPUT",
              `Cannot reembed: record "${it.id}" has no document, pass a function`,
            );
          }
          return it.document;
        });
        vectors = await source.embed(
          texts,
          signal === undefined ? {} : { signal },
        );
      }
      checkSignal(signal);
      if (!Array.isArray(vectors) || vectors.length !== items.length) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot reembed: the source returned ${
            Array.isArray(vectors) ? vectors.length : "no"
          } vectors for ${items.length} records`,
        );
      }
      return items.map((it, i) =>
        prepare({
          id: it.id,
          vector: checkVector(vectors[i], dimensions, action),
          metadata: it.metadata,
          document: it.document,
        }, metric)
      );
    };

    // Pass 1, outside the write lock: everything not in the shadow yet.
    const done = new Set<string>();
    for (const ids of (await segmentIds(storage, shadowCid)).values()) {
      for (const id of ids) done.add(id);
    }
    const todo = this.#index.ids().filter((id) => !done.has(id));
    const total = this.#index.size;
    for (let i = 0; i < todo.length; i += batchSize) {
      checkSignal(signal);
      this.#check(action);
      const ids = todo.slice(i, i + batchSize).filter((id) =>
        this.#index.has(id)
      );
      if (ids.length === 0) continue;
      const prepared = await embedInto(ids);
      await this.#writes.run(async () => {
        this.#check(action);
        await storage.transaction(async (tx) => {
          await insertSegments(tx, shadowCid, prepared, dimensions);
        });
      });
      embedded += prepared.length;
      for (const id of ids) done.add(id);
      options.onProgress?.({ done: Math.min(done.size, total), total });
    }

    // Pass 2, under the write lock: redo what changed meanwhile, then swap.
    return await this.#writes.run(async () => {
      this.#check(action);
      checkSignal(signal);
      const stale = new Set(
        (await storage.execute("SELECT id FROM vector_stale WHERE cid = ?", [
          shadowCid,
        ])).rows.map((r) => String(r.id)),
      );
      const shadowSegs = await segmentIds(storage, shadowCid);
      const have = new Set<string>();
      const rewrite = new Map<number, Set<string>>();
      for (const [sid, ids] of shadowSegs) {
        for (const id of ids) {
          if (stale.has(id) || !this.#index.has(id)) {
            let set = rewrite.get(sid);
            if (set === undefined) rewrite.set(sid, set = new Set());
            set.add(id);
          } else have.add(id);
        }
      }
      const missing = this.#index.ids().filter((id) => !have.has(id));
      const redo: Prepared[] = [];
      for (let i = 0; i < missing.length; i += batchSize) {
        redo.push(...await embedInto(missing.slice(i, i + batchSize)));
      }
      embedded += redo.length;
      await storage.transaction(async (tx) => {
        for (const [sid, drop] of rewrite) {
          await removeFromSegment(tx, shadowCid, sid, drop, dimensions);
        }
        await insertSegments(tx, shadowCid, redo, dimensions);
        await dropCollection(tx, this.#cid);
        await tx.execute(
          "UPDATE vector_collections SET state = 'ready' WHERE cid = ?",
          [shadowCid],
        );
      });
      const row = await selectCollection(storage, name, "ready");
      const loaded = await loadIndex(storage, row!, undefined, false);
      this.#cid = row!.cid;
      this.#info = row!.info;
      this.#index = loaded.index;
      this.#segments = loaded.segments;
      this.#shadowCid = undefined;
      options.onProgress?.({ done: this.#index.size, total: this.#index.size });
      return { embedded, total: this.#index.size, resumed: start.resumed };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return await this.#loader;
    this.#closed = true;
    if (this.#loaderTimer !== undefined) clearTimeout(this.#loaderTimer);
    this.#loaderWake?.();
    openNames.get(this.#storage)?.delete(this.#info.name);
    // The background load may be inside a read: the caller may close the
    // storage next, so close returns only once the loader has stopped.
    await this.#loader;
    this.#index.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Deletes a collection's segments, stale marks and row (not documents). */
async function dropCollection(tx: Transaction, cid: number): Promise<void> {
  await tx.execute(
    "DELETE FROM vector_quant WHERE sid IN (SELECT sid FROM vector_segments WHERE cid = ?)",
    [cid],
  );
  await tx.execute("DELETE FROM vector_segments WHERE cid = ?", [cid]);
  await tx.execute("DELETE FROM vector_stale WHERE cid = ?", [cid]);
  await tx.execute("DELETE FROM vector_collections WHERE cid = ?", [cid]);
}

interface Loaded {
  readonly index: VectorIndex;
  readonly segments: Map<number, number>;
}

/** Segments whose vectors one statement of the loader reads. */
const QUANT_PAGE = 32;

/**
 * Reads the vectors of segments `sids` of collection `cid` into the index
 * (the slots still waiting for them).
 */
async function fillSegments(
  storage: Storage,
  index: VectorIndex,
  sids: readonly number[],
  dims: number,
): Promise<void> {
  for (let i = 0; i < sids.length; i += QUANT_PAGE) {
    const part = sids.slice(i, i + QUANT_PAGE);
    const { rows } = await storage.execute(
      `SELECT s.sid, s.n, s.ids, q.quant FROM vector_segments s JOIN vector_quant q ON q.sid = s.sid WHERE s.sid IN (${
        placeholders(part.length)
      })`,
      part,
    );
    fillRows(index, rows, dims);
  }
}

function fillRows(
  index: VectorIndex,
  rows: readonly Record<string, Value>[],
  dims: number,
): void {
  for (const r of rows) {
    const sid = num(r.sid);
    const n = num(r.n);
    let ids: unknown;
    try {
      ids = jsonCell(r.ids);
    } catch (err) {
      throw new AicoDataError(
        "CORRUPT_STORE",
        "Cannot read vector segment: bad JSON",
        { cause: err },
      );
    }
    if (!Array.isArray(ids) || ids.length !== n) {
      throw new AicoDataError(
        "CORRUPT_STORE",
        `Cannot read vector segment: segment ${sid} has inconsistent sizes`,
      );
    }
    const { scales, q16 } = decodeQuant(r.quant, n, dims, sid);
    index.fillSegment(sid, ids as string[], scales, q16);
  }
}

/**
 * Loads a collection into a new index. Open reads the compact columns
 * (ids, norms, metadata, codes); with `lazy` and a fixed centre, the
 * vectors of segments that have their codes are left to
 * {@linkcode EmbeddedStore}'s loader (the index shortlists by codes, and a
 * query loads the segments of its candidates first), the others are read
 * now.
 */
async function loadIndex(
  storage: Storage,
  row: CollectionRow,
  signal: AbortSignal | undefined,
  lazy: boolean,
): Promise<Loaded> {
  const dims = row.info.dimensions;
  const { rows: crow } = await storage.execute(
    "SELECT centre FROM vector_collections WHERE cid = ?",
    [row.cid],
  );
  const centreBytes = crow[0]?.centre;
  let centre: Float32Array | undefined;
  if (centreBytes instanceof Uint8Array) {
    if (centreBytes.length !== 4 * dims) {
      throw new AicoDataError(
        "CORRUPT_STORE",
        "Cannot open vector store: the centre is damaged",
      );
    }
    centre = new Float32Array(centreBytes.slice().buffer);
  }
  const index = new VectorIndex(dims, row.info.metric, centre);
  const { rows: total } = await storage.execute(
    "SELECT coalesce(sum(n), 0) AS n FROM vector_segments WHERE cid = ?",
    [row.cid],
  );
  index.reserve(num(total[0]?.n));
  const segments = new Map<number, number>();
  const now: number[] = [];
  let last = 0;
  for (;;) {
    checkSignal(signal);
    const { rows } = await storage.execute(
      "SELECT sid, n, ids, norms, metadata, codes FROM vector_segments WHERE cid = ? AND sid > ? ORDER BY sid LIMIT 256",
      [row.cid, last],
    );
    for (const r of rows) {
      const sid = num(r.sid);
      const h = decodeHead(r, dims);
      segments.set(sid, h.ids.length);
      index.addSegment(sid, h.ids, h.norms, null, null, h.metas, h.codes);
      if (!lazy || centre === undefined || h.codes === null) now.push(sid);
      last = sid;
    }
    if (rows.length < 256) break;
  }
  checkSignal(signal);
  // Codes missing (or no centre yet): they are computed from the vectors.
  await fillSegments(storage, index, now, dims);
  index.finishLoad();
  return { index, segments };
}

/**
 * Opens (or creates) a collection of the embedded vector store inside an
 * encrypted libSQL database: the vectors, their metadata and documents are
 * rows of the database (never a file of their own, never a temporary file),
 * and an in-memory index answers queries.
 *
 * @remarks
 * **Index.** Vectors are kept as int16 with one float32 scale each (for
 * cosine, of the unit vector): every component within 2^-16 of the largest,
 * so scores are within about 1e-5 of float32 ones. Per record, memory holds
 * that copy, a sign-bit code of the centred vector and the metadata; a query
 * takes the `shortlist` nearest codes (WebAssembly `i64.popcnt` Hamming scan;
 * from 50k records first over 128-bit prefixes, which pick eight times as
 * many candidates for the full codes; with a filter, the nearest matching
 * ones, four times as many) and ranks them by their int16 vectors. The centre is fixed (and codes persisted)
 * once a collection has 4096 records. Open reads the compact segment
 * columns (ids, norms, metadata and codes: about `dimensions / 8 + 60`
 * bytes per record), never one row per record; the int16 vectors
 * (`2 × dimensions` bytes per record) load in the background after open,
 * and a query before that first loads the segments of its own candidates
 * (see `whenLoaded()`).
 * Memory: about `2.2 × dimensions` bytes per record plus ids and metadata.
 *
 * **One writer.** Keep one open store per collection (in every process):
 * another instance would not see this one's writes in its index. A second
 * open of the same name on the same `Storage` fails with `BUSY`.
 *
 * **Deletes** remove the rows (vector, metadata, document); freed pages of
 * the database stay encrypted like the rest of the file.
 *
 * Permissions: those of the storage.
 *
 * @param storage An open local or remote `Storage` (from `openStorage()`).
 * @param options The collection's name, embedder id, dimensions and metric.
 * @returns The store.
 * @throws {AicoDataError} `EMBEDDER_MISMATCH` when the collection was made
 * with another embedder id, dimension or metric; `NOT_FOUND` when it does
 * not exist and `create` is `false`; `BUSY` when already open on this
 * storage; `INVALID_INPUT` for bad options; `ABORTED`; `CORRUPT_STORE`.
 *
 * @example Store, find, delete
 * ```ts
 * import { openEmbeddedVectorStore } from "./embedded_store.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/user.db`, { key: await importDataKey(generateDataKey()) });
 *   await using store = await openEmbeddedVectorStore(db, { name: "memory", embedderId: "demo-3", dimensions: 3 });
 *   await store.upsert([
 *     { id: "a", vector: [1, 0, 0], metadata: { role: "user" }, document: "tea" },
 *     { id: "b", vector: [0, 1, 0], metadata: { role: "assistant" } },
 *   ]);
 *   const hits = await store.query({ vector: [0.9, 0.1, 0], k: 1, includeDocuments: true });
 *   assert.equal(hits[0]?.id, "a");
 *   assert.equal(hits[0]?.document, "tea");
 *   assert.equal(await store.count({ role: "assistant" }), 1);
 *   assert.equal(await store.delete(["a"]), 1);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openEmbeddedVectorStore(
  storage: VectorStorage,
  options: EmbeddedVectorStoreOptions,
): Promise<EmbeddedVectorStore> {
  const o = resolveEmbeddedVectorStoreOptions(options);
  if (
    typeof storage !== "object" || storage === null ||
    typeof storage.transaction !== "function"
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open vector store: expected a Storage",
    );
  }
  if (storage.closed) {
    throw new AicoDataError(
      "STORE_CLOSED",
      "Cannot open vector store: the storage is closed",
    );
  }
  checkSignal(o.signal);
  let names = openNames.get(storage);
  if (names === undefined) openNames.set(storage, names = new Set());
  if (names.has(o.name)) {
    throw new AicoDataError(
      "BUSY",
      `Cannot open vector store: collection "${o.name}" is already open on this storage`,
    );
  }
  names.add(o.name);
  try {
    {
      await using migrator = await openMigrator(
        storage,
        createSchemaRegistry([VECTOR_SCHEMA]),
      );
      const plan = await migrator.plan();
      if (plan.some((p) => p.pending.length > 0)) await migrator.migrate();
    }
    let row = await selectCollection(storage, o.name, "ready");
    if (row === undefined) {
      if (!o.create) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot open vector store: collection "${o.name}" does not exist`,
        );
      }
      row = await storage.transaction(async (tx) => {
        const again = await selectCollection(tx, o.name, "ready");
        if (again !== undefined) return again;
        const r = await tx.execute(
          "INSERT INTO vector_collections (name, state, embedder_id, dimensions, metric, created_at) VALUES (?, 'ready', ?, ?, ?, ?)",
          [o.name, o.embedderId, o.dimensions, o.metric, Date.now()],
        );
        return {
          cid: Number(r.lastInsertRowid),
          info: Object.freeze({
            name: o.name,
            embedderId: o.embedderId,
            dimensions: o.dimensions,
            metric: o.metric,
          }),
        };
      });
    }
    const got = row.info;
    if (
      got.embedderId !== o.embedderId || got.dimensions !== o.dimensions ||
      got.metric !== o.metric
    ) {
      throw new AicoDataError(
        "EMBEDDER_MISMATCH",
        `Cannot open vector store: collection "${o.name}" holds vectors of embedder "${got.embedderId}" (${got.dimensions} dimensions, ${got.metric}), not "${o.embedderId}" (${o.dimensions}, ${o.metric})`,
      );
    }
    const shadow = await selectCollection(storage, o.name, "shadow");
    const loaded = await loadIndex(storage, row, o.signal, true);
    return new EmbeddedStore(storage, o.shortlist, row, loaded, shadow?.cid);
  } catch (err) {
    names.delete(o.name);
    throw err;
  }
}
