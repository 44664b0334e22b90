/**
 * {@linkcode openChangeFeed}: the durable change feed over a libSQL store.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type {
  InStatement,
  ResultSet,
  Transaction,
  TransactionMode,
  Value,
} from "../storage/types.ts";
import type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
  ChangeFeed,
  ChangeInput,
  ChangeOp,
  ConsumerRegistration,
  ConsumerStatus,
} from "./types.ts";

/** What the feed needs of a store (a `Storage` from `openStorage()` has it). */
export interface ChangeFeedStorage {
  /** Runs one statement. */
  execute(stmt: string | InStatement): Promise<ResultSet>;
  /** Runs statements in one transaction. */
  batch(
    stmts: readonly (string | InStatement)[],
    mode?: TransactionMode,
  ): Promise<ResultSet[]>;
}

/** The payload of a `data.changed.<table>` bus event. */
export interface DataChanged {
  /** What happened. */
  readonly op: ChangeOp;
  /** The keys of the changed rows. */
  readonly keys: readonly string[];
  /** The grouping key, when the writer gave one. */
  readonly scope: string | undefined;
}

/** The topics the feed publishes: `data.changed.<table>`. */
export type DataChangedTopics = {
  [topic: `data.changed.${string}`]: DataChanged;
};

/** Where the feed publishes after commit: a `MessageBus` or anything with `publish`. */
export interface ChangePublisher {
  /** Publishes one event; its return value is ignored. */
  publish(topic: `data.changed.${string}`, payload: DataChanged): unknown;
}

/** Options of {@linkcode openChangeFeed}. */
export interface ChangeFeedOptions {
  /**
   * Where committed changes are published as `data.changed.<table>`
   * `{ op, keys, scope }` (in process, at most once: cache invalidation).
   *
   * @default {undefined} (nothing is published)
   */
  readonly bus?: ChangePublisher;
  /**
   * The clock, ms since the epoch.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
  /**
   * Receives failures that have no caller: a consumer's failed batch (it is
   * retried with back-off), a failed publication or purge.
   *
   * @default {() => {}}
   */
  readonly onError?: (error: unknown) => void;
  /**
   * The batch size of consumers that do not set `batchSize`.
   *
   * @default {500}
   */
  readonly batchSize?: number;
  /**
   * The first retry delay after a failed batch, ms; it doubles at each
   * further failure, up to `retryMaxMs`.
   *
   * @default {100}
   */
  readonly retryBaseMs?: number;
  /**
   * The longest retry delay, ms.
   *
   * @default {30000}
   */
  readonly retryMaxMs?: number;
  /**
   * Aborting it closes the feed's consumers' signals (as `close()` does).
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** The resolved form of {@linkcode ChangeFeedOptions}. */
export interface ResolvedChangeFeedOptions {
  /** See {@linkcode ChangeFeedOptions.bus}. */
  readonly bus: ChangePublisher | undefined;
  /** See {@linkcode ChangeFeedOptions.now}. */
  readonly now: () => number;
  /** See {@linkcode ChangeFeedOptions.onError}. */
  readonly onError: (error: unknown) => void;
  /** See {@linkcode ChangeFeedOptions.batchSize}. */
  readonly batchSize: number;
  /** See {@linkcode ChangeFeedOptions.retryBaseMs}. */
  readonly retryBaseMs: number;
  /** See {@linkcode ChangeFeedOptions.retryMaxMs}. */
  readonly retryMaxMs: number;
  /** See {@linkcode ChangeFeedOptions.signal}. */
  readonly signal: AbortSignal | undefined;
}

function invalid(what: string, detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot ${what}: ${detail}`);
}

function checkCount(
  value: unknown,
  name: string,
  what: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw invalid(what, `"${name}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * Normalises {@linkcode ChangeFeedOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveChangeFeedOptions } from "./change_feed.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveChangeFeedOptions();
 * assert.equal(o.batchSize, 500);
 * assert.equal(o.bus, undefined);
 * ```
 */
export function resolveChangeFeedOptions(
  options: ChangeFeedOptions = {},
): ResolvedChangeFeedOptions {
  const what = "open change feed";
  if (typeof options !== "object" || options === null) {
    throw invalid(what, "options must be an object");
  }
  const bus = options.bus;
  if (bus !== undefined && typeof bus?.publish !== "function") {
    throw invalid(what, '"bus" must have a publish function');
  }
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => {});
  if (typeof now !== "function") {
    throw invalid(what, '"now" must be a function');
  }
  if (typeof onError !== "function") {
    throw invalid(what, '"onError" must be a function');
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid(what, '"signal" must be an AbortSignal');
  }
  const retryBaseMs = checkCount(
    options.retryBaseMs,
    "retryBaseMs",
    what,
    100,
    0,
    3_600_000,
  );
  return Object.freeze({
    bus,
    now,
    onError,
    batchSize: checkCount(
      options.batchSize,
      "batchSize",
      what,
      500,
      1,
      100_000,
    ),
    retryBaseMs,
    retryMaxMs: checkCount(
      options.retryMaxMs,
      "retryMaxMs",
      what,
      Math.max(30_000, retryBaseMs),
      retryBaseMs,
      86_400_000,
    ),
    signal,
  });
}

const TABLE_RE = /^[a-z][a-z0-9_]{0,62}$/;
const NAME_RE = /^[a-z][a-z0-9_.-]{0,63}$/;
const OPS: ReadonlySet<string> = new Set(["insert", "update", "delete"]);
/** Recorded events per INSERT statement. */
const INSERT_CHUNK = 64;
/** Commits between two purges when no consumer holds a cursor. */
const PURGE_EVERY = 64;

function toNumber(v: Value | undefined): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return 0;
}

function toText(v: Value | undefined): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return "";
}

function checkChange(c: unknown, i: number): ChangeInput {
  const what = "record change";
  if (typeof c !== "object" || c === null) {
    throw invalid(what, `change ${i} must be an object`);
  }
  const r = c as Record<string, unknown>;
  if (typeof r.table !== "string" || !TABLE_RE.test(r.table)) {
    throw invalid(what, `malformed table name "${String(r.table)}"`);
  }
  if (typeof r.op !== "string" || !OPS.has(r.op)) {
    throw invalid(what, '"op" must be insert, update or delete');
  }
  const keys = r.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw invalid(what, '"keys" must be a non-empty array of strings');
  }
  for (const k of keys) {
    if (typeof k !== "string") {
      throw invalid(what, '"keys" must be a non-empty array of strings');
    }
  }
  if (r.scope !== undefined && typeof r.scope !== "string") {
    throw invalid(what, '"scope" must be a string');
  }
  return {
    table: r.table,
    op: r.op as ChangeOp,
    keys: keys as string[],
    ...(r.scope === undefined ? {} : { scope: r.scope as string }),
  };
}

function toEvent(row: Record<string, Value>): ChangeEvent {
  const scope = row.scope;
  return {
    seq: toNumber(row.seq),
    table: toText(row.tbl),
    op: toText(row.op) as ChangeOp,
    keys: JSON.parse(toText(row.keys)) as string[],
    ...(scope === null || scope === undefined ? {} : { scope: toText(scope) }),
    at: toNumber(row.at),
  };
}

function closedError(what: string): AicoDataError {
  return new AicoDataError(
    "STORE_CLOSED",
    `Cannot ${what}: the change feed is closed`,
  );
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ??
    new DOMException("The operation was aborted", "AbortError");
}

function errorText(err: unknown): string {
  const text = err instanceof Error
    ? `${err.name}: ${err.message}`
    : String(err);
  return text.slice(0, 2000);
}

interface Pending {
  changes: ChangeInput[];
  lastSeq: number;
}

/** One registered consumer and its delivery loop. */
class Registration implements ConsumerRegistration {
  readonly name: string;
  readonly #feed: ChangeFeedImpl;
  readonly #consumer: ChangeConsumer;
  readonly #tables: ReadonlySet<string> | undefined;
  readonly #batchSize: number;
  /** The cursor as this process knows it. */
  cursor: number;
  #ready: boolean;
  /** Serialises steps: one batch at a time. */
  #chain: Promise<unknown> = Promise.resolve();
  #scheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #retryAt = 0;
  stopped = false;

  constructor(
    feed: ChangeFeedImpl,
    consumer: ChangeConsumer,
    cursor: number,
    ready: boolean,
    batchSize: number,
  ) {
    this.name = consumer.name;
    this.#feed = feed;
    this.#consumer = consumer;
    this.#tables = consumer.tables === undefined
      ? undefined
      : new Set(consumer.tables);
    this.#batchSize = batchSize;
    this.cursor = cursor;
    this.#ready = ready;
  }

  /** Runs one step (backfill or one batch); `true` when it did something. */
  #step(): Promise<boolean> {
    const run = this.#chain.then(async () => {
      if (this.stopped || this.#feed.closed) return false;
      const ctx: ChangeBatchContext = { signal: this.#feed.signal };
      if (!this.#ready) {
        await this.#consumer.backfill?.(ctx);
        await this.#feed.db.execute({
          sql:
            "UPDATE change_cursors SET state = 'ready', last_error = NULL, updated_at = ? WHERE name = ?",
          args: [this.#feed.options.now(), this.name],
        });
        this.#ready = true;
        return true;
      }
      const rs = await this.#feed.db.execute({
        sql:
          "SELECT seq, tbl, op, keys, scope, at FROM change_events WHERE seq > ? ORDER BY seq LIMIT ?",
        args: [this.cursor, this.#batchSize],
      });
      if (rs.rows.length === 0) return false;
      const events = rs.rows.map(toEvent);
      const last = events[events.length - 1]!.seq;
      const tables = this.#tables;
      const batch = tables === undefined
        ? events
        : events.filter((e) => tables.has(e.table));
      if (batch.length > 0) {
        if (this.#feed.signal.aborted) throw abortError(this.#feed.signal);
        await this.#consumer.handle(batch, ctx);
      }
      // The cursor moves only now that the handler succeeded; events no
      // cursor needs any more are purged in the same transaction.
      await this.#feed.db.batch([
        {
          sql:
            "UPDATE change_cursors SET seq = ?, last_error = NULL, updated_at = ? WHERE name = ? AND seq < ?",
          args: [last, this.#feed.options.now(), this.name, last],
        },
        "DELETE FROM change_events WHERE seq <= (SELECT MIN(seq) FROM change_cursors)",
      ], "write");
      this.cursor = last;
      return true;
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Schedules a background run (after a commit, at open, after back-off). */
  kick(): void {
    if (this.#scheduled || this.stopped || this.#feed.closed) return;
    const wait = this.#retryAt - this.#feed.options.now();
    if (wait > 0) {
      if (this.#timer === undefined) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#retryAt = 0;
          this.kick();
        }, wait);
      }
      return;
    }
    this.#scheduled = true;
    this.#feed.track(this.#background());
  }

  async #background(): Promise<void> {
    try {
      while (await this.#step()) {
        this.#failures = 0;
      }
      this.#failures = 0;
    } catch (err) {
      await this.#failed(err);
    } finally {
      this.#scheduled = false;
    }
  }

  async #failed(err: unknown): Promise<void> {
    if (this.stopped || this.#feed.closed) return;
    this.#failures++;
    const o = this.#feed.options;
    const delay = Math.min(
      o.retryMaxMs,
      o.retryBaseMs * 2 ** Math.min(this.#failures - 1, 30),
    );
    this.#retryAt = o.now() + delay;
    o.onError(err);
    try {
      await this.#feed.db.execute({
        sql:
          "UPDATE change_cursors SET last_error = ?, updated_at = ? WHERE name = ?",
        args: [errorText(err), o.now(), this.name],
      });
    } catch (e) {
      o.onError(e);
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#retryAt = 0;
      this.kick();
    }, delay);
  }

  async catchUp(
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<void> {
    const signal = options.signal;
    if (this.#feed.closed) throw closedError("catch up");
    const target = await this.#feed.head();
    while (this.cursor < target || !this.#ready) {
      if (signal?.aborted) throw abortError(signal);
      if (this.stopped) {
        throw new AicoDataError(
          "STORE_CLOSED",
          `Cannot catch up: consumer "${this.name}" is stopped`,
        );
      }
      if (this.#feed.closed) throw closedError("catch up");
      if (!(await this.#step())) break;
    }
  }

  clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async settle(): Promise<void> {
    await this.#chain;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer();
    await this.#chain;
    this.#feed.forget(this);
  }

  async unregister(): Promise<void> {
    await this.stop();
    if (this.#feed.closed) throw closedError("unregister consumer");
    await this.#feed.db.execute({
      sql: "DELETE FROM change_cursors WHERE name = ?",
      args: [this.name],
    });
  }
}

class ChangeFeedImpl implements ChangeFeed {
  readonly db: ChangeFeedStorage;
  readonly options: ResolvedChangeFeedOptions;
  readonly #abort = new AbortController();
  readonly signal: AbortSignal;
  readonly #pending = new WeakMap<Transaction, Pending>();
  readonly #active = new Map<string, Registration>();
  readonly #reserved = new Set<string>();
  readonly #work = new Set<Promise<unknown>>();
  #closed = false;
  #published = 0;
  #commitsSincePurge = 0;

  constructor(db: ChangeFeedStorage, options: ResolvedChangeFeedOptions) {
    this.db = db;
    this.options = options;
    this.signal = options.signal === undefined
      ? this.#abort.signal
      : AbortSignal.any([this.#abort.signal, options.signal]);
  }

  get closed(): boolean {
    return this.#closed;
  }

  track(p: Promise<unknown>): void {
    this.#work.add(p);
    p.finally(() => this.#work.delete(p)).catch(() => {});
  }

  forget(reg: Registration): void {
    if (this.#active.get(reg.name) === reg) this.#active.delete(reg.name);
  }

  async record(
    tx: Transaction,
    changes: readonly ChangeInput[],
  ): Promise<void> {
    if (this.#closed) throw closedError("record change");
    if (!Array.isArray(changes)) {
      throw invalid("record change", "expected an array of changes");
    }
    const checked = changes.map(checkChange);
    if (checked.length === 0) return;
    const at = this.options.now();
    let lastSeq = 0;
    for (let start = 0; start < checked.length; start += INSERT_CHUNK) {
      const part = checked.slice(start, start + INSERT_CHUNK);
      const args: (string | number | null)[] = [];
      for (const c of part) {
        args.push(c.table, c.op, JSON.stringify(c.keys), c.scope ?? null, at);
      }
      const rs = await tx.execute({
        sql: "INSERT INTO change_events (tbl, op, keys, scope, at) VALUES " +
          part.map(() => "(?, ?, ?, ?, ?)").join(", "),
        args,
      });
      lastSeq = toNumber(rs.lastInsertRowid ?? 0);
    }
    const pending = this.#pending.get(tx);
    if (pending === undefined) {
      this.#pending.set(tx, { changes: checked, lastSeq });
    } else {
      pending.changes.push(...checked);
      pending.lastSeq = lastSeq;
    }
  }

  committed(tx: Transaction): void {
    const pending = this.#pending.get(tx);
    if (pending === undefined) return;
    this.#pending.delete(tx);
    if (this.#closed) return;
    this.#publish(pending.changes);
    if (pending.lastSeq > this.#published) this.#published = pending.lastSeq;
    for (const reg of this.#active.values()) reg.kick();
    if (++this.#commitsSincePurge >= PURGE_EVERY) this.#purgeSoon();
  }

  #publish(changes: readonly ChangeInput[]): void {
    const bus = this.options.bus;
    if (bus === undefined) return;
    for (const c of changes) {
      try {
        bus.publish(`data.changed.${c.table}`, {
          op: c.op,
          keys: c.keys,
          scope: c.scope,
        });
      } catch (err) {
        this.options.onError(err);
      }
    }
  }

  #purgeSoon(): void {
    this.#commitsSincePurge = 0;
    this.track(this.purge().catch((err) => this.options.onError(err)));
  }

  /**
   * Deletes the events no cursor needs: below the lowest cursor, or, when
   * no consumer holds a cursor, those already published in this process.
   */
  async purge(): Promise<void> {
    await this.db.execute({
      sql:
        "DELETE FROM change_events WHERE seq <= COALESCE((SELECT MIN(seq) FROM change_cursors), ?)",
      args: [this.#published],
    });
  }

  /** At open: republishes what a crash may have left unpublished. */
  async replay(): Promise<void> {
    let after = 0;
    for (;;) {
      const rs = await this.db.execute({
        sql:
          "SELECT seq, tbl, op, keys, scope, at FROM change_events WHERE seq > ? ORDER BY seq LIMIT 500",
        args: [after],
      });
      if (rs.rows.length === 0) break;
      const events = rs.rows.map(toEvent);
      this.#publish(events);
      after = events[events.length - 1]!.seq;
      if (rs.rows.length < 500) break;
    }
    if (after > this.#published) this.#published = after;
    await this.purge();
  }

  async register(consumer: ChangeConsumer): Promise<ConsumerRegistration> {
    const what = "register consumer";
    if (this.#closed) throw closedError(what);
    if (typeof consumer !== "object" || consumer === null) {
      throw invalid(what, "a consumer must be an object");
    }
    const name = consumer.name;
    if (typeof name !== "string" || !NAME_RE.test(name)) {
      throw invalid(what, `malformed consumer name "${String(name)}"`);
    }
    if (typeof consumer.handle !== "function") {
      throw invalid(what, '"handle" must be a function');
    }
    if (
      consumer.backfill !== undefined && typeof consumer.backfill !== "function"
    ) {
      throw invalid(what, '"backfill" must be a function');
    }
    if (
      consumer.tables !== undefined &&
      (!Array.isArray(consumer.tables) ||
        !consumer.tables.every((t) =>
          typeof t === "string" && TABLE_RE.test(t)
        ))
    ) {
      throw invalid(what, '"tables" must be an array of table names');
    }
    const batchSize = checkCount(
      consumer.batchSize,
      "batchSize",
      what,
      this.options.batchSize,
      1,
      100_000,
    );
    if (this.#active.has(name)) {
      throw invalid(what, `consumer "${name}" is registered already`);
    }
    if (this.#reserved.has(name)) {
      throw invalid(what, `consumer "${name}" is registered already`);
    }
    // Reserve the name before the first await.
    this.#reserved.add(name);
    try {
      const rs = await this.db.execute({
        sql: "SELECT seq, state FROM change_cursors WHERE name = ?",
        args: [name],
      });
      let cursor: number;
      let ready: boolean;
      const row = rs.rows[0];
      if (row === undefined) {
        // The cursor starts at the position read before any backfill, so
        // nothing committed meanwhile is missed; the row keeps those events.
        cursor = await this.head();
        ready = consumer.backfill === undefined;
        await this.db.execute({
          sql:
            "INSERT INTO change_cursors (name, seq, state, updated_at) VALUES (?, ?, ?, ?)",
          args: [
            name,
            cursor,
            ready ? "ready" : "backfill",
            this.options.now(),
          ],
        });
      } else {
        cursor = toNumber(row.seq);
        ready = toText(row.state) === "ready" ||
          consumer.backfill === undefined;
      }
      if (this.#closed) throw closedError(what);
      const reg = new Registration(this, consumer, cursor, ready, batchSize);
      this.#active.set(name, reg);
      reg.kick();
      return reg;
    } finally {
      this.#reserved.delete(name);
    }
  }

  async drain(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closed) throw closedError("drain");
    for (const reg of [...this.#active.values()]) await reg.catchUp(options);
  }

  async head(): Promise<number> {
    if (this.#closed) throw closedError("read head");
    const rs = await this.db.execute(
      "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_events'), 0), " +
        "COALESCE((SELECT MAX(seq) FROM change_events), 0)) AS head",
    );
    return toNumber(rs.rows[0]?.head);
  }

  async status(): Promise<ConsumerStatus[]> {
    if (this.#closed) throw closedError("read status");
    const rs = await this.db.execute(
      "SELECT c.name AS name, c.seq AS seq, c.last_error AS last_error, " +
        "(SELECT COUNT(*) FROM change_events e WHERE e.seq > c.seq) AS lag " +
        "FROM change_cursors c ORDER BY c.name",
    );
    return rs.rows.map((row): ConsumerStatus => {
      const name = toText(row.name);
      const lastError = row.last_error;
      return {
        name,
        cursor: toNumber(row.seq),
        lag: toNumber(row.lag),
        active: this.#active.has(name),
        ...(lastError === null || lastError === undefined
          ? {}
          : { lastError: toText(lastError) }),
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(closedError("deliver changes"));
    const regs = [...this.#active.values()];
    for (const reg of regs) reg.clearTimer();
    await Promise.allSettled([...this.#work]);
    for (const reg of regs) await reg.settle();
    this.#active.clear();
    try {
      await this.purge();
    } catch (err) {
      this.options.onError(err);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens the durable change feed over a store holding `changesSchema`
 * (register it with the migrator). Repositories record their changes through
 * it (`ChangeRecorder`) inside their transactions; after each commit the
 * changes are published on `bus` (`data.changed.<table>` `{ op, keys, scope }`)
 * and the registered consumers are woken. At open, events a crash may have
 * left unpublished are published again (at least once), and events no cursor
 * needs are purged.
 *
 * @remarks
 * Delivery to a consumer is at least once: its cursor (`change_cursors`)
 * advances, in its own statement, only after `handle()` resolved; a batch
 * that failed (or was cut short by a crash) is handed again at the next
 * wake-up after a back-off (100 ms doubling up to 30 s), or at the next open.
 * Events at or below the lowest cursor are purged; with no cursor at all,
 * events are purged once published on the bus (every 64 commits and at
 * close). The bus only wakes consumers; the cursors are the durability.
 *
 * Permissions: those of the store.
 *
 * @param storage The store (a `Storage`).
 * @param options The bus, clock, error sink and batch defaults.
 * @returns The feed.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options; store errors
 * (`SQL_ERROR` when `changesSchema` is not applied).
 *
 * @example A durable consumer sees every committed change
 * ```ts
 * import { changesSchema, openChangeFeed, type ChangeEvent } from "./mod.ts";
 * import { createSchemaRegistry, openMigrator, registerSchema } from "../schema/mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   const notes = registerSchema("notes", "core", { priority: 5 }, [
 *     { version: 1, name: "init", up: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT)" },
 *   ]);
 *   await (await openMigrator(db, createSchemaRegistry([changesSchema, notes]))).migrate();
 *   await using feed = await openChangeFeed(db);
 *   const seen: ChangeEvent[] = [];
 *   const indexer = await feed.register({
 *     name: "indexer",
 *     async handle(batch) {
 *       seen.push(...batch);
 *     },
 *   });
 *   let txUsed;
 *   await db.transaction(async (tx) => {
 *     await tx.execute("INSERT INTO notes VALUES ('n1', 'tea')");
 *     await feed.record(tx, [{ table: "notes", op: "insert", keys: ["n1"] }]);
 *     txUsed = tx;
 *   });
 *   feed.committed(txUsed!);
 *   await indexer.catchUp();
 *   assert.deepEqual(seen.map((e) => [e.table, e.op, e.keys]), [["notes", "insert", ["n1"]]]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openChangeFeed(
  storage: ChangeFeedStorage,
  options: ChangeFeedOptions = {},
): Promise<ChangeFeed> {
  if (
    typeof storage?.execute !== "function" ||
    typeof storage?.batch !== "function"
  ) {
    throw invalid("open change feed", '"storage" must be a store');
  }
  const feed = new ChangeFeedImpl(storage, resolveChangeFeedOptions(options));
  await feed.replay();
  return feed;
}
