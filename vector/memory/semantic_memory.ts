/**
 * Semantic memory: find past messages by meaning and by keyword. A keyword
 * index (FTS5, inside the encrypted libSQL file) and a vector index (any
 * {@linkcode VectorStore}) are kept in step with the messages by an indexer
 * that is a durable {@linkcode ChangeConsumer} of the change feed.
 *
 * @module
 */
import { AicoDataError } from "../../errors.ts";
import type { Storage } from "../../storage/mod.ts";
import type { InValue } from "../../storage/types.ts";
import type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
} from "../../changes/types.ts";
import type {
  Embedder,
  MetadataFilter,
  VectorRecord,
  VectorStore,
} from "../types.ts";
import { compileFilter, storeFilter } from "./_filter_sql.ts";
import { ANALYZER_VERSION, ftsQuery, indexRow } from "./_keywords.ts";
import { fuseRanks, recencyFactor, selectMmr } from "./_fusion.ts";
import {
  contentColumn,
  type ContextMode,
  contextText,
  type IndexedMessage,
  type MessageInContext,
  neighbourText,
  readMessages,
  readPositions,
  withNeighbours,
} from "./_messages.ts";

export type { ContextMode };

/** How keyword and vector hits are fused. */
export interface FusionOptions {
  /**
   * Weight of the keyword (bm25) ranking in reciprocal rank fusion.
   *
   * @default {1}
   */
  readonly keywordWeight?: number;
  /**
   * Weight of the vector ranking.
   *
   * @default {1}
   */
  readonly vectorWeight?: number;
  /**
   * The RRF constant k in weight / (k + rank). Smaller values trust the
   * top of each list more (10 measured best on `testdata/retrieval/`,
   * against the common 60).
   *
   * @default {10}
   */
  readonly rankConstant?: number;
  /**
   * How many hits each side contributes before fusion.
   *
   * @default {50}
   */
  readonly depth?: number;
}

/** What one step of indexing reports. */
export interface IndexProgress {
  /** `"keyword"`: messages entered into the keyword index (backfill); `"vector"`: messages embedded. */
  readonly phase: "keyword" | "vector";
  /** Done so far in this phase. */
  readonly done: number;
  /** Known total of this phase (messages in the store, or waiting for a vector). */
  readonly total: number;
}

/** Options of {@linkcode openSemanticMemory}. */
export interface SemanticMemoryOptions {
  /** The store holding the core and memory schemas (migrated). */
  readonly storage: Storage;
  /** Turns texts into vectors. */
  readonly embedder: Embedder;
  /** Keeps the vectors; its collection must record this embedder's id and dimension. */
  readonly store: VectorStore;
  /**
   * What is embedded besides each message: `"pair"` its question or answer
   * (the user message with the reply after it, a reply with the question
   * before it), `"window"` both neighbours, `"message"` nothing. With
   * `"pair"` and `"window"` each message gets two vectors, the bare message
   * and the message in context, and a query matches either.
   *
   * @default {"pair"}
   */
  readonly context?: ContextMode;
  /**
   * The consumer name (its cursor key in the change feed).
   *
   * @default {"vector.messages"}
   */
  readonly name?: string;
  /**
   * Messages embedded per step of the background embedding.
   *
   * @default {64}
   */
  readonly embedBatchSize?: number;
  /**
   * Embed in the background as soon as messages enter the keyword index;
   * with `false` only {@linkcode SemanticMemory.indexPending} embeds.
   *
   * @default {true}
   */
  readonly background?: boolean;
  /**
   * Called after each backfill page and each embedding step.
   *
   * @default {undefined}
   */
  readonly onProgress?: (progress: IndexProgress) => void;
  /**
   * Default fusion settings of {@linkcode SemanticMemory.search}.
   *
   * @default {{ keywordWeight: 1, vectorWeight: 1, rankConstant: 10, depth: 50 }}
   */
  readonly fusion?: FusionOptions;
  /**
   * The clock for recency, ms since the epoch.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/** The resolved form of {@linkcode SemanticMemoryOptions}. */
export interface ResolvedSemanticMemoryOptions {
  /** See {@linkcode SemanticMemoryOptions.storage}. */
  readonly storage: Storage;
  /** See {@linkcode SemanticMemoryOptions.embedder}. */
  readonly embedder: Embedder;
  /** See {@linkcode SemanticMemoryOptions.store}. */
  readonly store: VectorStore;
  /** See {@linkcode SemanticMemoryOptions.context}. */
  readonly context: ContextMode;
  /** See {@linkcode SemanticMemoryOptions.name}. */
  readonly name: string;
  /** See {@linkcode SemanticMemoryOptions.embedBatchSize}. */
  readonly embedBatchSize: number;
  /** See {@linkcode SemanticMemoryOptions.background}. */
  readonly background: boolean;
  /** See {@linkcode SemanticMemoryOptions.onProgress}. */
  readonly onProgress: ((progress: IndexProgress) => void) | undefined;
  /** See {@linkcode SemanticMemoryOptions.fusion}. */
  readonly fusion: Required<FusionOptions>;
  /** See {@linkcode SemanticMemoryOptions.now}. */
  readonly now: () => number;
}

/** Recency decay of {@linkcode SearchOptions.recency}. */
export interface RecencyOptions {
  /** After this many ms a hit's recency bonus halves. */
  readonly halfLifeMs: number;
  /**
   * How much of the score recency may take away (0 to 1): a hit of age
   * `a` keeps `1 - weight + weight * 0.5^(a / halfLifeMs)` of its score.
   *
   * @default {0.3}
   */
  readonly weight?: number;
}

/** Maximal marginal relevance of {@linkcode SearchOptions.mmr}. */
export interface MmrOptions {
  /**
   * Relevance against diversity, 0 to 1 (1: relevance only).
   *
   * @default {0.7}
   */
  readonly lambda?: number;
  /**
   * Candidates re-ranked (the best of the fused list; each is embedded).
   *
   * @default {4 * k, at most 50}
   */
  readonly candidates?: number;
}

/** Options of {@linkcode SemanticMemory.search}. */
export interface SearchOptions {
  /**
   * How many hits (1 to 1000).
   *
   * @default {10}
   */
  readonly k?: number;
  /**
   * Only messages matching, in Chroma's `where` language over the fields
   * `conversationId` (string), `role` (string), `createdAt` (number, ms)
   * and `messageId` (number).
   *
   * @default {undefined}
   */
  readonly filter?: MetadataFilter;
  /**
   * `"hybrid"` fuses keyword and vector hits; `"vector"` and `"keyword"`
   * use one side only.
   *
   * @default {"hybrid"}
   */
  readonly mode?: "hybrid" | "vector" | "keyword";
  /**
   * Overrides of the fusion settings for this search.
   *
   * @default {undefined} (the memory's settings)
   */
  readonly fusion?: FusionOptions;
  /**
   * Diversify the hits by maximal marginal relevance (`true` for defaults).
   *
   * @default {undefined} (off)
   */
  readonly mmr?: boolean | MmrOptions;
  /**
   * Prefer recent messages.
   *
   * @default {undefined} (off)
   */
  readonly recency?: RecencyOptions;
  /**
   * Stops the search; it rejects with `ABORTED`.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** One message found. */
export interface MemoryHit {
  /** The message id. */
  readonly messageId: number;
  /** Its conversation. */
  readonly conversationId: string;
  /** Who wrote it. */
  readonly role: string;
  /** The opened content. */
  readonly content: string;
  /** When it was written, ms since the epoch. */
  readonly createdAt: number;
  /** The fused score: higher is better (comparable within one search only). */
  readonly score: number;
  /** Its rank in the keyword list (1 = best), when it was there. */
  readonly keywordRank?: number;
  /** Its rank in the vector list, when it was there. */
  readonly vectorRank?: number;
}

/** Options of {@linkcode SemanticMemory.related}. */
export interface RelatedOptions {
  /**
   * How many hits (1 to 1000).
   *
   * @default {5}
   */
  readonly k?: number;
  /**
   * Stops the search.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** How far indexing is. */
export interface MemoryStatus {
  /** Messages in the keyword index. */
  readonly indexed: number;
  /** Messages with current vectors. */
  readonly embedded: number;
  /** Messages waiting for their vectors. */
  readonly pending: number;
  /** Whether the backfill of existing messages finished. */
  readonly backfilled: boolean;
}

/** Semantic memory over the messages of one store. */
export interface SemanticMemory extends AsyncDisposable {
  /**
   * The indexer: register it with the change feed
   * (`feed.register(memory.indexer)`). It takes `messages` events; on an
   * insert or update it enters the message (and the neighbour whose context
   * changed) into the keyword index at once and queues it for embedding; on
   * a delete it removes the keyword row and the vectors. Its `backfill`
   * enters every existing message, newest first, resumable, and leaves the
   * embedding to the background.
   */
  readonly indexer: ChangeConsumer;
  /**
   * Finds messages by meaning and keywords.
   *
   * @param text The query (1 to 10,000 characters, not blank).
   * @param options See {@linkcode SearchOptions}.
   * @returns The hits, best first, with opened content.
   * @throws {AicoDataError} `INVALID_INPUT` for a blank or long text, a bad
   * `k`, mode or malformed filter; `ABORTED`; `STORE_CLOSED`.
   */
  search(text: string, options?: SearchOptions): Promise<MemoryHit[]>;
  /**
   * Messages of other conversations similar to a message (a number: its id)
   * or to a whole conversation (a string: its id; one hit per related
   * conversation, its most similar message).
   *
   * @param target A message id or a conversation id.
   * @param options See {@linkcode RelatedOptions}.
   * @returns The hits, most similar first.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`, `ABORTED`, `STORE_CLOSED`.
   */
  related(
    target: number | string,
    options?: RelatedOptions,
  ): Promise<MemoryHit[]>;
  /**
   * Embeds every message waiting for its vector, newest first, now.
   *
   * @param options `signal` stops after the current step (progress is kept).
   * @returns How many were embedded.
   * @throws {AicoDataError} `ABORTED`, `STORE_CLOSED`, the embedder's errors.
   */
  indexPending(options?: { readonly signal?: AbortSignal }): Promise<number>;
  /**
   * Waits until the background embedding has nothing left to do.
   *
   * @returns When idle.
   * @throws The background embedding's last error.
   */
  whenIdle(): Promise<void>;
  /**
   * How far indexing is.
   *
   * @returns Counts.
   */
  status(): Promise<MemoryStatus>;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /**
   * Stops the background embedding (waits for its current step); does not
   * close the storage, the embedder or the store. Safe to call twice.
   */
  close(): Promise<void>;
}

const WHAT = "open semantic memory";
const MAX_QUERY_CHARS = 10_000;
const MAX_K = 1000;
const NAME = /^[a-z][a-z0-9_.-]{0,63}$/;
const BACKFILL_PAGE = 500;
/** Messages read, opened and indexed at once by the change handler. */
const INDEX_SLICE = 500;
/** Rows of one multi-row statement of the keyword index. */
const ROWS_PER_STATEMENT = 100;

function* slices<T>(list: readonly T[], n: number): Generator<T[]> {
  for (let i = 0; i < list.length; i += n) yield list.slice(i, i + n);
}
const marks = (n: number) => new Array(n).fill("?").join(", ");
const tuples = (n: number, one: string) => new Array(n).fill(one).join(", ");

function invalid(what: string, detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot ${what}: ${detail}`);
}

function checkInt(
  v: unknown,
  name: string,
  what: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(what, `"${name}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

function checkFusion(
  f: unknown,
  base: Required<FusionOptions>,
  what: string,
): Required<FusionOptions> {
  if (f === undefined) return base;
  if (typeof f !== "object" || f === null) {
    throw invalid(what, '"fusion" must be an object');
  }
  const o = f as FusionOptions;
  const weight = (v: unknown, name: string, d: number) => {
    if (v === undefined) return d;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 100) {
      throw invalid(what, `"${name}" must be a number from 0 to 100`);
    }
    return v;
  };
  return Object.freeze({
    keywordWeight: weight(o.keywordWeight, "keywordWeight", base.keywordWeight),
    vectorWeight: weight(o.vectorWeight, "vectorWeight", base.vectorWeight),
    rankConstant: weight(o.rankConstant, "rankConstant", base.rankConstant),
    depth: checkInt(o.depth, "depth", what, 1, 10_000, base.depth),
  });
}

/** The fusion defaults, measured on `testdata/retrieval/` (see the docs). */
export const DEFAULT_FUSION: Required<FusionOptions> = Object.freeze({
  keywordWeight: 1,
  vectorWeight: 1,
  rankConstant: 10,
  depth: 50,
});

/**
 * Normalises {@linkcode SemanticMemoryOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a missing or malformed option,
 * or a store whose collection records another embedder or dimension.
 *
 * @example A bad context mode
 * ```ts
 * import { resolveSemanticMemoryOptions } from "./semantic_memory.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => resolveSemanticMemoryOptions({} as never));
 * ```
 */
export function resolveSemanticMemoryOptions(
  options: SemanticMemoryOptions,
): ResolvedSemanticMemoryOptions {
  if (typeof options !== "object" || options === null) {
    throw invalid(WHAT, "options must be an object");
  }
  const o = options;
  if (typeof o.storage?.execute !== "function") {
    throw invalid(WHAT, '"storage" must be a store');
  }
  const e = o.embedder;
  if (
    typeof e?.embed !== "function" || typeof e.id !== "string" ||
    !Number.isInteger(e.dimensions) || e.dimensions < 1
  ) {
    throw invalid(WHAT, '"embedder" must be an Embedder');
  }
  const s = o.store;
  if (typeof s?.query !== "function" || typeof s.info !== "object") {
    throw invalid(WHAT, '"store" must be a VectorStore');
  }
  if (s.info.embedderId !== e.id || s.info.dimensions !== e.dimensions) {
    throw invalid(
      WHAT,
      `the collection "${s.info.name}" holds vectors of "${s.info.embedderId}" (${s.info.dimensions}-d), not of "${e.id}" (${e.dimensions}-d)`,
    );
  }
  const context = o.context ?? "pair";
  if (!["message", "pair", "window"].includes(context)) {
    throw invalid(WHAT, '"context" must be "message", "pair" or "window"');
  }
  const name = o.name ?? "vector.messages";
  if (typeof name !== "string" || !NAME.test(name)) {
    throw invalid(WHAT, '"name" must match [a-z][a-z0-9_.-]{0,63}');
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== "function") {
    throw invalid(WHAT, '"onProgress" must be a function');
  }
  if (o.now !== undefined && typeof o.now !== "function") {
    throw invalid(WHAT, '"now" must be a function');
  }
  if (o.background !== undefined && typeof o.background !== "boolean") {
    throw invalid(WHAT, '"background" must be a boolean');
  }
  return Object.freeze({
    storage: o.storage,
    embedder: e,
    store: s,
    context,
    name,
    embedBatchSize: checkInt(
      o.embedBatchSize,
      "embedBatchSize",
      WHAT,
      1,
      4096,
      64,
    ),
    background: o.background ?? true,
    onProgress: o.onProgress,
    fusion: checkFusion(o.fusion, DEFAULT_FUSION, WHAT),
    now: o.now ?? Date.now,
  });
}

function abortIf(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new AicoDataError("ABORTED", `Cannot ${what}: aborted`, {
      cause: signal.reason,
    });
  }
}

/** A one-at-a-time lock for the writes of the index. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

const bareId = (id: number) => String(id);
const contextId = (id: number) => `${id}:c`;

class SemanticMemoryImpl implements SemanticMemory {
  #o: ResolvedSemanticMemoryOptions;
  #db: Storage;
  #column;
  #lock = new Mutex();
  #closed = false;
  #loop: Promise<void> | undefined;
  #again = false;
  #loopError: unknown;
  #stop = new AbortController();
  readonly indexer: ChangeConsumer;

  constructor(o: ResolvedSemanticMemoryOptions) {
    this.#o = o;
    this.#db = o.storage;
    this.#column = contentColumn(o.storage);
    this.indexer = Object.freeze({
      name: o.name,
      tables: Object.freeze(["messages"]),
      batchSize: 500,
      backfill: (ctx: ChangeBatchContext) => this.#backfill(ctx),
      handle: (batch: readonly ChangeEvent[], ctx: ChangeBatchContext) =>
        this.#handle(batch, ctx),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #guard(what: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${what}: the semantic memory is closed`,
      );
    }
  }

  // ---- indexing ---------------------------------------------------------

  /** Enters messages into the keyword index and queues them for vectors. */
  async #indexKeywords(items: readonly MessageInContext[]): Promise<void> {
    if (items.length === 0) return;
    const mode = this.#o.context;
    // Multi-row statements, ROWS_PER_STATEMENT rows each: the same rows as
    // one statement per message, at a fraction of the per-statement cost.
    const ids: number[] = [];
    const empty: number[] = [];
    const fts: (number | string)[] = [];
    const rows: (number | string)[] = [];
    for (const it of items) {
      const m = it.message;
      ids.push(m.id);
      if (m.content.trim() === "") {
        // Nothing to find: no keyword row, no vector.
        empty.push(m.id);
        continue;
      }
      // Stemmed tokens, not the text (the table is contentless anyway).
      const neighbour = neighbourText(it, mode);
      const row = indexRow(m.content, neighbour);
      fts.push(m.id, row.body, row.context);
      rows.push(m.id, m.conversationId, m.seq, m.role, m.createdAt);
    }
    await this.#db.transaction(async (tx) => {
      for (const part of slices(ids, ROWS_PER_STATEMENT)) {
        await tx.execute({
          sql: `DELETE FROM memory_fts WHERE rowid IN (${marks(part.length)})`,
          args: part,
        });
      }
      for (const part of slices(empty, ROWS_PER_STATEMENT)) {
        await tx.execute({
          sql: `DELETE FROM memory_items WHERE message_id IN (${
            marks(part.length)
          })`,
          args: part,
        });
      }
      for (const part of slices(fts, 3 * ROWS_PER_STATEMENT)) {
        await tx.execute({
          sql: "INSERT INTO memory_fts (rowid, body, context) VALUES " +
            tuples(part.length / 3, "(?, ?, ?)"),
          args: part,
        });
      }
      for (const part of slices(rows, 5 * ROWS_PER_STATEMENT)) {
        await tx.execute({
          sql:
            "INSERT INTO memory_items (message_id, conversation_id, seq, role, created_at, embedded, version) " +
            "VALUES " + tuples(part.length / 5, "(?, ?, ?, ?, ?, 0, 0)") +
            " ON CONFLICT (message_id) DO UPDATE SET " +
            "conversation_id = excluded.conversation_id, seq = excluded.seq, role = excluded.role, " +
            "created_at = excluded.created_at, embedded = 0, version = version + 1",
          args: part,
        });
      }
    }, "write");
  }

  /**
   * Removes messages from both indexes (caller holds the lock); returns the
   * positions of their neighbours, whose context held their text.
   */
  async #remove(ids: readonly number[]): Promise<[string, number][]> {
    const around: [string, number][] = [];
    for (let s = 0; s < ids.length; s += 500) {
      const part = ids.slice(s, s + 500);
      const marks = part.map(() => "?").join(", ");
      const rs = await this.#db.execute({
        sql:
          `SELECT conversation_id, seq FROM memory_items WHERE message_id IN (${marks})`,
        args: part,
      });
      for (const r of rs.rows) {
        const c = String(r.conversation_id), q = Number(r.seq);
        around.push([c, q - 1], [c, q + 1]);
      }
      await this.#db.transaction(async (tx) => {
        for (const id of part) {
          await tx.execute({
            sql: "DELETE FROM memory_fts WHERE rowid = ?",
            args: [id],
          });
        }
        await tx.execute({
          sql: `DELETE FROM memory_items WHERE message_id IN (${marks})`,
          args: part,
        });
      }, "write");
      const vectorIds: string[] = [];
      for (const id of part) vectorIds.push(bareId(id), contextId(id));
      await this.#o.store.delete(vectorIds);
    }
    return around;
  }

  async #handle(
    batch: readonly ChangeEvent[],
    ctx: ChangeBatchContext,
  ): Promise<void> {
    this.#guard("index messages");
    // The last event of each id decides (events come in seq order).
    const last = new Map<number, "upsert" | "delete">();
    for (const ev of batch) {
      if (ev.table !== "messages") continue;
      for (const key of ev.keys) {
        const id = Number(key);
        if (!Number.isSafeInteger(id)) continue;
        last.set(id, ev.op === "delete" ? "delete" : "upsert");
      }
    }
    const upserts = [...last].filter(([, op]) => op === "upsert").map(([id]) =>
      id
    );
    const deletes = [...last].filter(([, op]) => op === "delete").map(([id]) =>
      id
    );
    abortIf(ctx.signal, "index messages");
    // One event may name many messages (an import batch records one event
    // per conversation): index them a slice at a time, so that memory holds
    // one slice of texts, whatever the batch.
    if (deletes.length > 0) {
      await this.#lock.run(() => this.#removeAndIndex(deletes, []));
    }
    for (let i = 0; i < upserts.length; i += INDEX_SLICE) {
      abortIf(ctx.signal, "index messages");
      await this.#lock.run(() =>
        this.#removeAndIndex([], upserts.slice(i, i + INDEX_SLICE))
      );
    }
    this.#kick();
  }

  async #removeAndIndex(
    deletes: readonly number[],
    upserts: readonly number[],
  ): Promise<void> {
    const around = await this.#remove(deletes);
    const found = await readMessages(this.#db, this.#column, upserts);
    // A row gone since the event was recorded was deleted: remove it too.
    around.push(
      ...await this.#remove(upserts.filter((id) => !found.has(id))),
    );
    const messages = [...found.values()];
    const withCtx = await withNeighbours(this.#db, this.#column, messages);
    if (this.#o.context !== "message") {
      // Neighbours of changed or deleted messages have a new context:
      // re-index them, so that no old or deleted text stays behind in
      // their keyword row or context vector.
      const extra = new Map<number, IndexedMessage>();
      for (const it of withCtx) {
        for (const n of [it.previous, it.next]) {
          if (n && !found.has(n.id)) extra.set(n.id, n);
        }
      }
      const gone = new Set(deletes);
      const at = await readPositions(this.#db, this.#column, around);
      for (const m of at.values()) {
        if (!found.has(m.id) && !gone.has(m.id)) extra.set(m.id, m);
      }
      withCtx.push(
        ...await withNeighbours(this.#db, this.#column, [...extra.values()]),
      );
    }
    await this.#indexKeywords(withCtx);
  }

  async #state(key: string): Promise<string | undefined> {
    const rs = await this.#db.execute({
      sql: "SELECT value FROM memory_state WHERE key = ?",
      args: [key],
    });
    const v = rs.rows[0]?.value;
    return v === undefined || v === null ? undefined : String(v);
  }

  async #setState(key: string, value: string): Promise<void> {
    await this.#db.execute({
      sql:
        "INSERT INTO memory_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      args: [key, value],
    });
  }

  async #backfill(ctx: ChangeBatchContext): Promise<void> {
    this.#guard("backfill semantic memory");
    const what = "backfill semantic memory";
    const total = Number(
      (await this.#db.execute("SELECT COUNT(*) AS n FROM messages")).rows[0]
        ?.n ?? 0,
    );
    // Resumable: restart below the lowest id done (newest first).
    const saved = await this.#state("backfill_before");
    let before = saved === undefined ? Number.MAX_SAFE_INTEGER : Number(saved);
    let done = saved === undefined ? 0 : Number(
      (await this.#db.execute({
        sql: "SELECT COUNT(*) AS n FROM messages WHERE id >= ?",
        args: [before],
      })).rows[0]?.n ?? 0,
    );
    if ((await this.#state("backfill_done")) === "1") {
      done = total;
    } else {
      for (;;) {
        abortIf(ctx.signal, what);
        this.#guard(what);
        const rs = await this.#db.execute({
          sql: "SELECT id FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?",
          args: [before, BACKFILL_PAGE],
        });
        if (rs.rows.length === 0) break;
        const ids = rs.rows.map((r) => Number(r.id));
        await this.#lock.run(async () => {
          const found = await readMessages(this.#db, this.#column, ids);
          const items = await withNeighbours(this.#db, this.#column, [
            ...found.values(),
          ]);
          await this.#indexKeywords(items);
          before = ids[ids.length - 1]!;
          await this.#setState("backfill_before", String(before));
        });
        done += ids.length;
        this.#o.onProgress?.({
          phase: "keyword",
          done,
          total: Math.max(total, done),
        });
        // Vectors of the newest messages start while older pages are read.
        this.#kick();
      }
      await this.#setState("backfill_done", "1");
    }
    this.#kick();
  }

  /**
   * Rebuilds the keyword rows of every indexed message when they were made
   * by another analyzer (an older version of `_keywords.ts`): the vectors
   * stay, only the tokens change.
   */
  async rebuildKeywords(): Promise<void> {
    if ((await this.#state("keywords")) === ANALYZER_VERSION) return;
    await this.#lock.run(async () => {
      let after = 0;
      for (;;) {
        const rs = await this.#db.execute({
          sql:
            "SELECT message_id FROM memory_items WHERE message_id > ? ORDER BY message_id LIMIT ?",
          args: [after, BACKFILL_PAGE],
        });
        if (rs.rows.length === 0) break;
        const ids = rs.rows.map((r) => Number(r.message_id));
        after = ids[ids.length - 1]!;
        const found = await readMessages(this.#db, this.#column, ids);
        const items = await withNeighbours(this.#db, this.#column, [
          ...found.values(),
        ]);
        await this.#rewriteKeywords(items);
      }
      await this.#setState("keywords", ANALYZER_VERSION);
    });
  }

  /** Replaces the keyword rows of messages, leaving their vectors alone. */
  async #rewriteKeywords(items: readonly MessageInContext[]): Promise<void> {
    const mode = this.#o.context;
    await this.#db.transaction(async (tx) => {
      for (const it of items) {
        const m = it.message;
        await tx.execute({
          sql: "DELETE FROM memory_fts WHERE rowid = ?",
          args: [m.id],
        });
        if (m.content.trim() === "") continue;
        const neighbour = neighbourText(it, mode);
        const row = indexRow(m.content, neighbour);
        await tx.execute({
          sql: "INSERT INTO memory_fts (rowid, body, context) VALUES (?, ?, ?)",
          args: [m.id, row.body, row.context],
        });
      }
    }, "write");
  }

  /** Resumes the background embedding of messages left pending. */
  resume(): void {
    this.#kick();
  }

  /** Starts the background embedding when it is enabled and idle. */
  #kick(): void {
    if (!this.#o.background || this.#closed) return;
    if (this.#loop) {
      this.#again = true;
      return;
    }
    this.#loopError = undefined;
    this.#loop = (async () => {
      try {
        do {
          this.#again = false;
          await this.#embedPending(this.#stop.signal);
        } while (this.#again && !this.#closed);
      } catch (e) {
        if (!this.#closed) this.#loopError = e;
      } finally {
        this.#loop = undefined;
      }
    })();
  }

  /** One pass over the pending messages, newest first. */
  async #embedPending(signal: AbortSignal | undefined): Promise<number> {
    const what = "embed messages";
    const mode = this.#o.context;
    let done = 0;
    let total = Number(
      (await this.#db.execute(
        "SELECT COUNT(*) AS n FROM memory_items WHERE embedded = 0",
      ))
        .rows[0]?.n ?? 0,
    );
    for (;;) {
      abortIf(signal, what);
      if (this.#closed) break;
      const rs = await this.#db.execute({
        sql:
          "SELECT message_id, version FROM memory_items WHERE embedded = 0 ORDER BY message_id DESC LIMIT ?",
        args: [this.#o.embedBatchSize],
      });
      if (rs.rows.length === 0) break;
      const versions = new Map<number, number>();
      for (const r of rs.rows) {
        versions.set(Number(r.message_id), Number(r.version));
      }
      const found = await readMessages(this.#db, this.#column, [
        ...versions.keys(),
      ]);
      const items = await withNeighbours(this.#db, this.#column, [
        ...found.values(),
      ]);
      const texts: string[] = [];
      for (const it of items) {
        texts.push(it.message.content);
        if (mode !== "message") texts.push(contextText(it, mode));
      }
      const vectors = await this.#o.embedder.embed(
        texts,
        signal ? { signal } : {},
      );
      await this.#lock.run(async () => {
        // Only rows unchanged since they were read get their vectors.
        const current = await this.#db.execute({
          sql:
            `SELECT message_id, version FROM memory_items WHERE embedded = 0 AND message_id IN (${
              [...versions.keys()].map(() => "?").join(", ")
            })`,
          args: [...versions.keys()],
        });
        const still = new Set<number>();
        for (const r of current.rows) {
          const id = Number(r.message_id);
          if (versions.get(id) === Number(r.version)) still.add(id);
        }
        const records: VectorRecord[] = [];
        const per = mode === "message" ? 1 : 2;
        items.forEach((it, i) => {
          const m = it.message;
          if (!still.has(m.id)) return;
          const metadata = {
            messageId: m.id,
            conversationId: m.conversationId,
            role: m.role,
            createdAt: m.createdAt,
          };
          records.push({
            id: bareId(m.id),
            vector: vectors[i * per]!,
            metadata,
          });
          if (per === 2) {
            records.push({
              id: contextId(m.id),
              vector: vectors[i * per + 1]!,
              metadata,
            });
          }
        });
        if (records.length > 0) await this.#o.store.upsert(records);
        const ids = [...still];
        // Ids read but gone (deleted meanwhile, or not found) are dropped.
        const gone = [...versions.keys()].filter((id) => !found.has(id));
        const args: InValue[] = [];
        for (const id of ids) args.push(id, versions.get(id)!);
        await this.#db.transaction(async (tx) => {
          for (const id of ids) {
            await tx.execute({
              sql:
                "UPDATE memory_items SET embedded = 1 WHERE message_id = ? AND version = ?",
              args: [id, versions.get(id)!],
            });
          }
          for (const id of gone) {
            await tx.execute({
              sql: "DELETE FROM memory_items WHERE message_id = ?",
              args: [id],
            });
          }
        }, "write");
        done += ids.length + gone.length;
      });
      total = Math.max(total, done);
      this.#o.onProgress?.({ phase: "vector", done, total });
    }
    return done;
  }

  async indexPending(
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<number> {
    this.#guard("index pending messages");
    while (this.#loop) await this.#loop.catch(() => {});
    return await this.#embedPending(options.signal);
  }

  async whenIdle(): Promise<void> {
    while (this.#loop) await this.#loop;
    if (this.#loopError !== undefined) {
      const e = this.#loopError;
      this.#loopError = undefined;
      throw e;
    }
  }

  async status(): Promise<MemoryStatus> {
    this.#guard("read semantic memory status");
    const rs = await this.#db.execute(
      "SELECT COUNT(*) AS n, COALESCE(SUM(embedded), 0) AS e FROM memory_items",
    );
    const n = Number(rs.rows[0]?.n ?? 0);
    const e = Number(rs.rows[0]?.e ?? 0);
    return {
      indexed: n,
      embedded: e,
      pending: n - e,
      backfilled: (await this.#state("backfill_done")) === "1",
    };
  }

  // ---- search -----------------------------------------------------------

  async #keywordHits(
    text: string,
    filter: { sql: string; args: (string | number)[] } | undefined,
    depth: number,
  ): Promise<number[]> {
    const match = ftsQuery(text);
    if (match === undefined) return [];
    const where = filter ? ` AND ${filter.sql}` : "";
    const rs = await this.#db.execute({
      sql:
        "SELECT f.rowid AS id, bm25(memory_fts, 1.0, 0.35) AS s FROM memory_fts f " +
        "JOIN memory_items i ON i.message_id = f.rowid " +
        `WHERE memory_fts MATCH ?${where} ORDER BY s LIMIT ?`,
      args: [match, ...(filter?.args ?? []), depth],
    });
    return rs.rows.map((r) => Number(r.id));
  }

  async #vectorHits(
    vector: Float32Array,
    filter: MetadataFilter | undefined,
    depth: number,
  ): Promise<{ ids: number[]; scores: Map<number, number> }> {
    const per = this.#o.context === "message" ? 1 : 2;
    const hits = await this.#o.store.query({
      vector,
      k: Math.min(10_000, depth * per),
      ...(filter ? { filter } : {}),
    });
    const ids: number[] = [];
    const scores = new Map<number, number>();
    for (const h of hits) {
      const id = Number(h.metadata.messageId);
      if (!Number.isSafeInteger(id) || scores.has(id)) continue;
      scores.set(id, h.score);
      ids.push(id);
      if (ids.length >= depth) break;
    }
    return { ids, scores };
  }

  async search(
    text: string,
    options: SearchOptions = {},
  ): Promise<MemoryHit[]> {
    const what = "search";
    this.#guard(what);
    if (typeof text !== "string" || text.trim() === "") {
      throw invalid(what, "the query must be a non-blank string");
    }
    if (text.length > MAX_QUERY_CHARS) {
      throw invalid(
        what,
        `the query must be at most ${MAX_QUERY_CHARS} characters`,
      );
    }
    if (typeof options !== "object" || options === null) {
      throw invalid(what, "options must be an object");
    }
    const k = checkInt(options.k, "k", what, 1, MAX_K, 10);
    const mode = options.mode ?? "hybrid";
    if (mode !== "hybrid" && mode !== "vector" && mode !== "keyword") {
      throw invalid(what, '"mode" must be "hybrid", "vector" or "keyword"');
    }
    const fusion = checkFusion(options.fusion, this.#o.fusion, what);
    const filterSql = options.filter === undefined
      ? undefined
      : compileFilter(options.filter);
    const filter = options.filter === undefined
      ? undefined
      : storeFilter(options.filter);
    const mmr = checkMmr(options.mmr, k, what);
    const recency = checkRecency(options.recency, what);
    const signal = options.signal;
    abortIf(signal, what);
    const depth = Math.max(fusion.depth, k);
    const keyword = mode === "vector"
      ? []
      : await this.#keywordHits(text, filterSql, depth);
    abortIf(signal, what);
    let vector: number[] = [];
    if (mode !== "keyword") {
      const [qv] = await this.#o.embedder.embed(
        [text],
        signal ? { signal } : {},
      );
      vector = (await this.#vectorHits(qv!, filter, depth)).ids;
    }
    abortIf(signal, what);
    const fused = fuseRanks([
      { ids: keyword, weight: mode === "vector" ? 0 : fusion.keywordWeight },
      { ids: vector, weight: mode === "keyword" ? 0 : fusion.vectorWeight },
    ], fusion.rankConstant);
    const kwRank = new Map(keyword.map((id, i) => [id, i + 1]));
    const vecRank = new Map(vector.map((id, i) => [id, i + 1]));
    const ranked = [...fused].sort((a, b) => b[1] - a[1] || b[0] - a[0]);
    const now = this.#o.now();
    // Recency needs each hit's age: read the candidates' times first.
    const want = recency ? ranked : ranked.slice(0, mmr ? mmr.candidates : k);
    const rows = await readMessages(
      this.#db,
      this.#column,
      want.map(([id]) => id),
    );
    let scored = want
      .filter(([id]) => rows.has(id))
      .map(([id, s]) => {
        const m = rows.get(id)!;
        const score = recency
          ? s *
            recencyFactor(now - m.createdAt, recency.halfLifeMs, recency.weight)
          : s;
        return { m, score };
      });
    if (recency) scored.sort((a, b) => b.score - a.score || b.m.id - a.m.id);
    if (mmr) {
      const cand = scored.slice(0, mmr.candidates);
      const vecs = await this.#o.embedder.embed(
        cand.map((c) => c.m.content),
        signal ? { signal } : {},
      );
      const order = selectMmr(cand.map((c) => c.score), vecs, k, mmr.lambda);
      scored = order.map((i) => cand[i]!);
    }
    return scored.slice(0, k).map(({ m, score }) =>
      toHit(m, score, kwRank, vecRank)
    );
  }

  async related(
    target: number | string,
    options: RelatedOptions = {},
  ): Promise<MemoryHit[]> {
    const what = "find related messages";
    this.#guard(what);
    if (typeof options !== "object" || options === null) {
      throw invalid(what, "options must be an object");
    }
    const k = checkInt(options.k, "k", what, 1, MAX_K, 5);
    const signal = options.signal;
    const embedOpts = signal ? { signal } : {};
    let query: Float32Array;
    let conversationId: string;
    if (typeof target === "number") {
      if (!Number.isSafeInteger(target) || target < 1) {
        throw invalid(what, "a message id must be a positive integer");
      }
      const found = await readMessages(this.#db, this.#column, [target]);
      const m = found.get(target);
      if (!m) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot ${what}: message ${target} not found`,
        );
      }
      conversationId = m.conversationId;
      const [it] = await withNeighbours(this.#db, this.#column, [m]);
      const [v] = await this.#o.embedder.embed([
        contextText(it!, this.#o.context),
      ], embedOpts);
      query = v!;
    } else if (
      typeof target === "string" && /^[A-Za-z0-9_-]{1,128}$/.test(target)
    ) {
      conversationId = target;
      const rs = await this.#db.execute({
        sql:
          "SELECT id FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 64",
        args: [target],
      });
      if (rs.rows.length === 0) {
        const c = await this.#db.execute({
          sql: "SELECT 1 AS x FROM conversations WHERE id = ?",
          args: [target],
        });
        if (c.rows.length === 0) {
          throw new AicoDataError(
            "NOT_FOUND",
            `Cannot ${what}: conversation "${target}" not found`,
          );
        }
        return [];
      }
      const found = await readMessages(
        this.#db,
        this.#column,
        rs.rows.map((r) => Number(r.id)),
      );
      const texts = [...found.values()].map((m) => m.content).filter((t) =>
        t.trim() !== ""
      );
      if (texts.length === 0) return [];
      const vecs = await this.#o.embedder.embed(texts, embedOpts);
      query = new Float32Array(this.#o.embedder.dimensions);
      for (const v of vecs) {
        let n = 0;
        for (const x of v) n += x * x;
        n = Math.sqrt(n) || 1;
        for (let i = 0; i < v.length; i++) query[i] = query[i]! + v[i]! / n;
      }
      // The centroid, scaled to unit length (for dot-product stores).
      let n = 0;
      for (const x of query) n += x * x;
      n = Math.sqrt(n) || 1;
      for (let i = 0; i < query.length; i++) query[i] = query[i]! / n;
    } else {
      throw invalid(
        what,
        "expected a message id (number) or a conversation id (string)",
      );
    }
    abortIf(signal, what);
    const perConversation = typeof target === "string";
    const { ids, scores } = await this.#vectorHits(
      query,
      { conversationId: { $ne: conversationId } },
      Math.min(10_000, perConversation ? k * 20 : k),
    );
    const picked: number[] = [];
    const seen = new Set<string>();
    const rows = await readMessages(this.#db, this.#column, ids);
    for (const id of ids) {
      const m = rows.get(id);
      if (!m) continue;
      if (perConversation) {
        if (seen.has(m.conversationId)) continue;
        seen.add(m.conversationId);
      }
      picked.push(id);
      if (picked.length >= k) break;
    }
    const vecRank = new Map(ids.map((id, i) => [id, i + 1]));
    return picked.map((id) =>
      toHit(rows.get(id)!, scores.get(id)!, new Map(), vecRank)
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    await this.#loop?.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function toHit(
  m: IndexedMessage,
  score: number,
  kwRank: Map<number, number>,
  vecRank: Map<number, number>,
): MemoryHit {
  const kr = kwRank.get(m.id);
  const vr = vecRank.get(m.id);
  return {
    messageId: m.id,
    conversationId: m.conversationId,
    role: m.role,
    content: m.content,
    createdAt: m.createdAt,
    score,
    ...(kr === undefined ? {} : { keywordRank: kr }),
    ...(vr === undefined ? {} : { vectorRank: vr }),
  };
}

function checkMmr(
  v: unknown,
  k: number,
  what: string,
): { lambda: number; candidates: number } | undefined {
  if (v === undefined || v === false) return undefined;
  const o = v === true ? {} : v;
  if (typeof o !== "object" || o === null) {
    throw invalid(what, '"mmr" must be a boolean or an object');
  }
  const m = o as MmrOptions;
  const lambda = m.lambda ?? 0.7;
  if (typeof lambda !== "number" || !(lambda >= 0 && lambda <= 1)) {
    throw invalid(what, '"mmr.lambda" must be a number from 0 to 1');
  }
  const candidates = checkInt(
    m.candidates,
    "mmr.candidates",
    what,
    k,
    1000,
    Math.max(k, Math.min(50, 4 * k)),
  );
  return { lambda, candidates };
}

function checkRecency(
  v: unknown,
  what: string,
): { halfLifeMs: number; weight: number } | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null) {
    throw invalid(what, '"recency" must be an object');
  }
  const r = v as RecencyOptions;
  if (
    typeof r.halfLifeMs !== "number" || !(r.halfLifeMs > 0) ||
    !Number.isFinite(r.halfLifeMs)
  ) {
    throw invalid(what, '"recency.halfLifeMs" must be a positive number');
  }
  const weight = r.weight ?? 0.3;
  if (typeof weight !== "number" || !(weight >= 0 && weight <= 1)) {
    throw invalid(what, '"recency.weight" must be a number from 0 to 1');
  }
  return { halfLifeMs: r.halfLifeMs, weight };
}

/**
 * Opens semantic memory over a store that holds the core schema and
 * {@linkcode memorySchema} (migrated), an embedder and a vector store whose
 * collection was made for that embedder. Nothing is indexed until its
 * {@linkcode SemanticMemory.indexer} is registered with the change feed (or
 * its `backfill` / `handle` are called). Message text stays inside the
 * encrypted file: the keyword index is a contentless FTS5 table (tokens
 * only) and content is opened from the sealed `messages.content` column at
 * search time.
 *
 * Permissions: those of the storage, the embedder and the vector store.
 *
 * @param options See {@linkcode SemanticMemoryOptions}.
 * @returns The semantic memory.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options or a store
 * of another embedder; `SCHEMA_INVALID` when the memory schema is not
 * migrated.
 *
 * @example Index, then search by meaning and by keyword
 * ```ts
 * import { openSemanticMemory } from "./semantic_memory.ts";
 * import { memorySchema } from "./memory_schema.ts";
 * import { openUseLiteEmbedder } from "../embedders/use_lite_embedder.ts";
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
 *
 * const conversations = createConversationRepository(db.storage);
 * const c = await conversations.createConversation();
 * await conversations.appendMessages(c.id, [
 *   { role: "user", content: "My flight LH-4711 to Lisbon leaves on Friday" },
 *   { role: "user", content: "I adopted a small kitten last week" },
 * ]);
 * await memory.indexer.backfill!({ signal: new AbortController().signal });
 * await memory.whenIdle();
 *
 * const [pet] = await memory.search("new cat at home", { k: 1 });
 * assert.match(pet!.content, /kitten/);
 * const [trip] = await memory.search("LH-4711", { k: 1, mode: "keyword" });
 * assert.match(trip!.content, /Lisbon/);
 * ```
 */
export async function openSemanticMemory(
  options: SemanticMemoryOptions,
): Promise<SemanticMemory> {
  const o = resolveSemanticMemoryOptions(options);
  const rs = await o.storage.execute(
    "SELECT COUNT(*) AS n FROM sqlite_master WHERE name IN ('memory_fts', 'memory_items', 'memory_state')",
  );
  if (Number(rs.rows[0]?.n) !== 3) {
    throw new AicoDataError(
      "SCHEMA_INVALID",
      'Cannot open semantic memory: the "memory" schema is not migrated',
    );
  }
  // Vectors live in the store: another collection or embedder than last
  // time holds none of them, so every message waits for its vector again.
  const target = JSON.stringify([
    o.store.info.name,
    o.embedder.id,
    o.embedder.dimensions,
  ]);
  const seen = await o.storage.execute(
    "SELECT value FROM memory_state WHERE key = 'vectors'",
  );
  const before = seen.rows[0]?.value;
  if (before !== target) {
    await o.storage.transaction(async (tx) => {
      if (before !== undefined) {
        await tx.execute(
          "UPDATE memory_items SET embedded = 0, version = version + 1",
        );
      }
      await tx.execute({
        sql: "INSERT INTO memory_state (key, value) VALUES ('vectors', ?) " +
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args: [target],
      });
    }, "write");
  }
  const memory = new SemanticMemoryImpl(o);
  // A keyword index made by an older analyzer is rebuilt (tokens only).
  await memory.rebuildKeywords();
  // Messages left waiting by an earlier process get their vectors now.
  memory.resume();
  return memory;
}
