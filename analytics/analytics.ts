/**
 * `openAnalytics()`: an in-memory DuckDB copy of the store's analysable
 * rows, kept current as a durable change-feed consumer, with canned
 * analyses, SQL, sealed exports and an HTML report.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
} from "../changes/types.ts";
import {
  type AnalyticsEngine,
  type EngineChoice,
  type EngineKind,
  openAnalyticsEngine,
  type QueryParam,
  type QueryResult,
  resolveEngineKind,
} from "./engine.ts";
import { DUCK_TABLES, type SqlReader } from "./_tables.ts";
import { STOP_WORDS } from "./_stop_words.ts";
import { Refresher } from "./_refresher.ts";
import { guardSql } from "./_sql_guard.ts";
import * as A from "./analyses.ts";
import {
  type ExportFormat,
  type ExportKey,
  resultToCsv,
  sealExport,
} from "./export.ts";
import { buildReport, type Report } from "./report.ts";

/** The SQL surface analytics reads through (a store or its transaction). */
export type AnalyticsSql = SqlReader;

/**
 * The part of a libSQL store analytics uses (a `Storage` from `storage/` is
 * one): reads, read transactions, and the `messages.content` sealed column.
 */
export interface AnalyticsStore extends AnalyticsSql {
  /**
   * Runs `fn` in a transaction.
   *
   * @param fn The work.
   * @param mode Always `read` here.
   * @returns What `fn` returns.
   */
  transaction<T>(
    fn: (tx: AnalyticsSql) => Promise<T>,
    mode: "read",
  ): Promise<T>;
  /**
   * A sealed column's helper (only `openBatch` is used).
   *
   * @param table The table.
   * @param column The column.
   * @returns The helper.
   */
  sealedColumn(table: string, column: string): {
    openBatch(
      items: readonly {
        readonly rowKey: number;
        readonly sealed: Uint8Array;
      }[],
    ): Promise<Uint8Array[]>;
  };
}

/** The part of the durable change feed analytics uses (a `ChangeFeed` is one). */
export interface AnalyticsFeed {
  /**
   * Registers a consumer.
   *
   * @param consumer The consumer.
   * @returns Its registration.
   */
  register(consumer: ChangeConsumer): Promise<{
    catchUp(options?: { readonly signal?: AbortSignal }): Promise<void>;
    stop(): Promise<void>;
  }>;
}

/** Options of {@linkcode openAnalytics}. */
export interface AnalyticsOptions {
  /**
   * The DuckDB build: `wasm`, `native` (needs `--allow-ffi`) or `auto`
   * (`native` when `--allow-ffi` is granted).
   *
   * @default {"wasm"}
   */
  readonly engine?: EngineChoice;
  /**
   * Threads of the native engine.
   *
   * @default {1}
   */
  readonly threads?: number;
  /**
   * The data key: seals exports and reports (`export` purpose). Without it
   * only plaintext exports are possible.
   *
   * @default {undefined}
   */
  readonly key?: ExportKey;
  /**
   * The durable change feed: the refresher registers as consumer
   * {@linkcode ANALYTICS_CONSUMER} on it and `refresh()` catches up with it.
   * Without a feed, `refresh()` reloads everything.
   *
   * @default {undefined}
   */
  readonly feed?: AnalyticsFeed;
  /**
   * The silence, in minutes, that ends a session in `sessions()`.
   *
   * @default {30}
   */
  readonly sessionGapMinutes?: number;
}

/** The resolved form of {@linkcode AnalyticsOptions}. */
export interface ResolvedAnalyticsOptions {
  /** See {@linkcode AnalyticsOptions.engine} (resolved to a kind). */
  readonly engine: EngineKind;
  /** See {@linkcode AnalyticsOptions.threads}. */
  readonly threads: number;
  /** See {@linkcode AnalyticsOptions.key}. */
  readonly key: ExportKey | undefined;
  /** See {@linkcode AnalyticsOptions.feed}. */
  readonly feed: AnalyticsFeed | undefined;
  /** See {@linkcode AnalyticsOptions.sessionGapMinutes}. */
  readonly sessionGapMinutes: number;
}

/** The name of the refresher's durable consumer. */
export const ANALYTICS_CONSUMER = "analytics.refresher";

/** Options of {@linkcode Analytics.refresh}. */
export interface RefreshOptions {
  /** Stops the refresh between pages (the copy stays consistent). */
  readonly signal?: AbortSignal;
  /**
   * Also copy message text (opened from its sealed form) for text
   * analyses; once on, it stays on.
   *
   * @default {false}
   */
  readonly text?: boolean;
  /**
   * Reload everything even when a feed is attached.
   *
   * @default {false}
   */
  readonly full?: boolean;
}

/** What a refresh did. */
export interface RefreshStats {
  /** `full` (every row reloaded) or `incremental` (changes since the cursor). */
  readonly mode: "full" | "incremental";
  /** Rows in the analytics tables afterwards, by table. */
  readonly rows: Readonly<
    Record<"messages" | "conversations" | "logs" | "users", number>
  >;
}

/** Options of {@linkcode Analytics.export}. */
export interface ExportOptions {
  /** `csv`, `arrow` (IPC stream) or `parquet` (native engine only). */
  readonly format: ExportFormat;
  /**
   * Return the plain bytes instead of a sealed export file.
   *
   * @default {false}
   */
  readonly plaintext?: boolean;
  /** Query parameters. */
  readonly params?: readonly QueryParam[];
}

/** Options of {@linkcode Analytics.report}. */
export interface ReportOptions {
  /** The report's title. @default {"Conversation analytics"} */
  readonly title?: string;
  /** Terms in the top-terms table; 0 leaves text out (no text is opened). @default {0} */
  readonly terms?: number;
}

/**
 * The analytics of one store.
 *
 * @remarks
 * **State and cursor.** DuckDB runs in memory: nothing of it is persisted.
 * At the first analytics call the engine starts and every analysable row is
 * copied from libSQL (one read transaction). Afterwards the durable consumer
 * {@linkcode Analytics.consumer} (registered on `feed` when given) applies
 * changes: for each event it re-reads the named rows by key (a missing row
 * is a deletion), so handling is idempotent and at-least-once delivery is
 * safe. Its durable cursor only says which events the feed must still
 * deliver; since the copy is rebuilt at every open, a refresher killed at
 * any point (even `kill -9` mid-refresh) loses nothing: the next open loads
 * the committed state and the events after its cursor are re-applied
 * harmlessly. Events that arrive before the first analytics call are
 * skipped (the coming full load reads them anyway).
 *
 * **What is copied.** `messages` (id, conversation, seq, role, model when
 * the v2 column exists, time), `conversations` (id, user, count, times),
 * `logs` (all columns but `context`), `users` (id and times only). Never:
 * user profiles, credentials, config, conversation titles or metadata.
 * Message text (`message_text`) only after `refresh({ text: true })` or a
 * `topTerms()` call; it lives in memory only. The refresher also keeps
 * `messages.conv_key`, a dense integer per conversation id (the mapping is
 * in `conversation_keys`; numbers are reassigned at every full load, so
 * join on them only within one copy): the analyses partition and group by
 * it instead of the text id, which is much cheaper for DuckDB.
 *
 * **SQL.** `query()` sees those tables (timestamps UTC `TIMESTAMP`). DuckDB
 * runs with external access disabled and its configuration locked: no file,
 * URL, extension or other database can be reached; `INSTALL`, `LOAD`,
 * `ATTACH` and `DETACH` are refused before they reach DuckDB.
 */
export interface Analytics extends AsyncDisposable {
  /** The engine kind (known before it starts). */
  readonly engine: EngineKind;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /** The durable consumer to register on a change feed (done when `feed` is given). */
  readonly consumer: ChangeConsumer;
  /**
   * Brings the copy up to date: catches up with the feed (incremental) or,
   * without a feed, reloads everything.
   *
   * @param options Signal, text, full.
   * @returns What was done.
   * @throws {AicoDataError} `STORE_CLOSED`; storage errors; `AbortError` from the signal.
   */
  refresh(options?: RefreshOptions): Promise<RefreshStats>;
  /**
   * Runs SQL over the analytics tables.
   *
   * @param sql One query.
   * @param params Values of its `?` parameters (`Date` bound as ISO text, cast in SQL).
   * @returns Plain JS rows (see {@linkcode PlainValue} for the value rules).
   * @throws {AicoDataError} `SQL_ERROR` carrying DuckDB's message; `INVALID_INPUT`; `STORE_CLOSED`.
   */
  query(sql: string, params?: readonly QueryParam[]): Promise<QueryResult>;
  /** Messages per day, week or month. @param period The period. @returns Rows by period. @throws {RangeError} For another period. */
  activity(period?: A.Period): Promise<A.ActivityRow[]>;
  /** Hour × weekday message counts. @returns The non-empty cells. */
  heatmap(): Promise<A.HeatmapCell[]>;
  /** Quantiles of messages per conversation. @returns The quantiles. */
  conversationLengths(): Promise<A.Quantiles>;
  /** Quantiles of user → assistant response latency in seconds. @returns The quantiles. */
  responseLatency(): Promise<A.Quantiles>;
  /** Message counts by role and model. @returns The rows, largest first. */
  messagesByRoleAndModel(): Promise<A.RoleModelRow[]>;
  /**
   * The most frequent terms (opens message text on first use).
   *
   * @param limit How many, 1 to 1000. @default {20}
   * @returns The terms, most frequent first.
   * @throws {RangeError} For a bad limit.
   */
  topTerms(limit?: number): Promise<A.TermRow[]>;
  /** Activity streaks. @returns The streaks. */
  streaks(): Promise<A.StreakStats>;
  /**
   * Gap-based sessions.
   *
   * @param gapMinutes The gap that ends a session. @default {sessionGapMinutes}
   * @returns Duration and size quantiles.
   */
  sessions(gapMinutes?: number): Promise<A.SessionStats>;
  /** Log counts per period, module and level. @param period The period. @returns The rows. */
  errorRates(period?: A.Period): Promise<A.ErrorRateRow[]>;
  /**
   * Exports a query's result, sealed with the `export` key unless
   * `plaintext` (see `export.ts` for the sealed file format).
   *
   * @param sql The query.
   * @param options Format, plaintext, params.
   * @returns The file's bytes.
   * @throws {AicoDataError} `INVALID_INPUT` (no key for a sealed export, Parquet on WASM); `SQL_ERROR`.
   */
  export(sql: string, options: ExportOptions): Promise<Uint8Array>;
  /**
   * Builds the HTML report (self-contained: inline SVG and CSS, no script,
   * no external resource) and a terminal summary.
   *
   * @param options Title, terms.
   * @returns `html` and `summary`.
   */
  report(options?: ReportOptions): Promise<Report>;
  /** Closes the engine and stops the consumer; safe twice. @returns When closed. */
  close(): Promise<void>;
}

/**
 * Normalises {@linkcode AnalyticsOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveAnalyticsOptions } from "./analytics.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveAnalyticsOptions();
 * assert.equal(o.engine, "wasm");
 * assert.equal(o.sessionGapMinutes, 30);
 * ```
 */
export function resolveAnalyticsOptions(
  options: AnalyticsOptions = {},
): ResolvedAnalyticsOptions {
  if (typeof options !== "object" || options === null) {
    throw invalid('"options" must be an object');
  }
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw invalid('"threads" must be an integer from 1 to 256');
  }
  const gap = options.sessionGapMinutes ?? 30;
  if (typeof gap !== "number" || !(gap > 0) || !Number.isFinite(gap)) {
    throw invalid('"sessionGapMinutes" must be a positive number');
  }
  return Object.freeze({
    engine: resolveEngineKind(options.engine ?? "wasm"),
    threads,
    key: options.key,
    feed: options.feed,
    sessionGapMinutes: gap,
  });
}

function invalid(detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot open analytics: ${detail}`);
}

/** A one-at-a-time queue for engine work. */
class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => {});
    return next;
  }
}

class AnalyticsImpl implements Analytics {
  #o: ResolvedAnalyticsOptions;
  #engine: AnalyticsEngine | undefined;
  #ready: Promise<void> | undefined;
  #mutex = new Mutex();
  #closed = false;
  #refresher: Refresher;
  #registration:
    | Awaited<ReturnType<AnalyticsFeed["register"]>>
    | undefined;
  readonly consumer: ChangeConsumer;

  constructor(storage: AnalyticsStore, options: ResolvedAnalyticsOptions) {
    this.#o = options;
    this.#refresher = new Refresher(storage);
    this.consumer = Object.freeze({
      name: ANALYTICS_CONSUMER,
      tables: Object.freeze(["messages", "conversations", "logs", "users"]),
      batchSize: 2000,
      backfill: (_ctx: ChangeBatchContext): Promise<void> => this.#backfill(),
      handle: (
        batch: readonly ChangeEvent[],
        ctx: ChangeBatchContext,
      ): Promise<void> => this.#handle(batch, ctx.signal),
    });
  }

  get engine(): EngineKind {
    return this.#o.engine;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async attach(): Promise<void> {
    if (this.#o.feed) {
      this.#registration = await this.#o.feed.register(this.consumer);
    }
  }

  #check(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: analytics is closed`,
      );
    }
  }

  /** Starts the engine and loads everything, once. */
  #start(): Promise<void> {
    if (this.#ready === undefined) {
      this.#ready = this.#mutex.run(async () => {
        const engine = await openAnalyticsEngine(this.#o.engine, {
          threads: this.#o.threads,
        });
        try {
          await engine.exec(DUCK_TABLES.join(";\n"));
          await engine.load("_stop", {
            length: STOP_WORDS.length,
            columns: [{ name: "word", type: "varchar", values: STOP_WORDS }],
          });
          await engine.exec(
            "INSERT INTO stop_words SELECT word FROM _stop; DROP TABLE _stop",
          );
          this.#engine = engine;
          await this.#refresher.fullLoad(engine);
        } catch (e) {
          this.#engine = undefined;
          await engine.close();
          throw e;
        }
      }).catch((e) => {
        this.#ready = undefined;
        throw e;
      });
    }
    return this.#ready;
  }

  async #e(action: string): Promise<AnalyticsEngine> {
    this.#check(action);
    await this.#start();
    this.#check(action);
    return this.#engine!;
  }

  #backfill(): Promise<void> {
    // Not started yet: the coming first load reads everything anyway.
    if (this.#ready === undefined || this.#closed) return Promise.resolve();
    return this.#ready.then(() =>
      this.#mutex.run(() => this.#refresher.fullLoad(this.#engine!))
    );
  }

  #handle(batch: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    if (this.#ready === undefined || this.#closed) return Promise.resolve();
    return this.#ready.then(() =>
      this.#mutex.run(() => this.#refresher.apply(this.#engine!, batch, signal))
    );
  }

  async #counts(engine: AnalyticsEngine): Promise<RefreshStats["rows"]> {
    const r = await engine.query(
      "SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM conversations) AS conversations, (SELECT count(*) FROM logs) AS logs, (SELECT count(*) FROM users) AS users",
    );
    const row = r.rows[0]!;
    return {
      messages: Number(row.messages),
      conversations: Number(row.conversations),
      logs: Number(row.logs),
      users: Number(row.users),
    };
  }

  async refresh(options: RefreshOptions = {}): Promise<RefreshStats> {
    const fresh = this.#ready === undefined;
    const engine = await this.#e("refresh analytics");
    const signal = options.signal;
    let mode: RefreshStats["mode"] = "full";
    if (this.#registration && options.full !== true) {
      await this.#registration.catchUp(signal ? { signal } : {});
      mode = "incremental";
    } else if (!fresh || options.full === true) {
      await this.#mutex.run(() => this.#refresher.fullLoad(engine, signal));
    }
    if (options.text === true) {
      await this.#mutex.run(() => this.#refresher.enableText(engine));
    }
    return { mode, rows: await this.#mutex.run(() => this.#counts(engine)) };
  }

  async query(
    sql: string,
    params: readonly QueryParam[] = [],
  ): Promise<QueryResult> {
    guardSql(sql);
    if (!Array.isArray(params)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot query analytics: params must be an array",
      );
    }
    const engine = await this.#e("query analytics");
    return await this.#mutex.run(() => engine.query(sql, params));
  }

  #run = async (
    sql: string,
    params?: readonly QueryParam[],
  ): Promise<QueryResult> => {
    const engine = await this.#e("run analysis");
    return await this.#mutex.run(() => engine.query(sql, params));
  };

  activity(period: A.Period = "day"): Promise<A.ActivityRow[]> {
    return A.activity(this.#run, A.checkPeriod(period, "compute activity"));
  }
  heatmap(): Promise<A.HeatmapCell[]> {
    return A.heatmap(this.#run);
  }
  conversationLengths(): Promise<A.Quantiles> {
    return A.conversationLengths(this.#run);
  }
  responseLatency(): Promise<A.Quantiles> {
    return A.responseLatency(this.#run);
  }
  messagesByRoleAndModel(): Promise<A.RoleModelRow[]> {
    return A.messagesByRoleAndModel(this.#run);
  }
  async topTerms(limit = 20): Promise<A.TermRow[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new RangeError(
        `Cannot compute top terms: limit must be an integer from 1 to 1000, got "${limit}"`,
      );
    }
    const engine = await this.#e("compute top terms");
    await this.#mutex.run(() => this.#refresher.enableText(engine));
    return await A.topTerms(this.#run, limit);
  }
  streaks(): Promise<A.StreakStats> {
    return A.streaks(this.#run);
  }
  sessions(
    gapMinutes: number = this.#o.sessionGapMinutes,
  ): Promise<A.SessionStats> {
    if (typeof gapMinutes !== "number" || !(gapMinutes > 0)) {
      return Promise.reject(
        new RangeError(
          `Cannot compute sessions: gapMinutes must be positive, got "${gapMinutes}"`,
        ),
      );
    }
    return A.sessions(this.#run, gapMinutes);
  }
  errorRates(period: A.Period = "day"): Promise<A.ErrorRateRow[]> {
    return A.errorRates(
      this.#run,
      A.checkPeriod(period, "compute error rates"),
    );
  }

  async export(sql: string, options: ExportOptions): Promise<Uint8Array> {
    const format = options?.format;
    if (format !== "csv" && format !== "arrow" && format !== "parquet") {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot export: format must be csv, arrow or parquet, got "${
          String(format)
        }"`,
      );
    }
    const key = this.#o.key;
    if (options.plaintext !== true && key === undefined) {
      throw new AicoDataError(
        "INVALID_INPUT",
        'Cannot export: a sealed export needs the data key (pass "key" to openAnalytics or ask for plaintext)',
      );
    }
    guardSql(sql);
    let bytes: Uint8Array;
    if (format === "parquet") {
      if (options.params && options.params.length > 0) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot export Parquet: parameters are not supported, inline the values",
        );
      }
      const engine = await this.#e("export");
      bytes = await this.#mutex.run(() => engine.parquet(sql));
    } else {
      const result = await this.query(sql, options.params ?? []);
      bytes = format === "csv"
        ? new TextEncoder().encode(resultToCsv(result))
        : (await import("./_arrow.ts")).rowsToIpc(result.columns, result.rows);
    }
    if (options.plaintext === true) return bytes;
    return await sealExport(key!, format, bytes);
  }

  async #countRows(action: string): Promise<RefreshStats["rows"]> {
    const engine = await this.#e(action);
    return await this.#mutex.run(() => this.#counts(engine));
  }

  async report(options: ReportOptions = {}): Promise<Report> {
    const terms = options.terms ?? 0;
    const data = {
      title: options.title ?? "Conversation analytics",
      generatedAt: new Date(),
      counts: await this.#countRows("build report"),
      daily: await this.activity("day"),
      monthly: await this.activity("month"),
      heatmap: await this.heatmap(),
      lengths: await this.conversationLengths(),
      latency: await this.responseLatency(),
      roles: await this.messagesByRoleAndModel(),
      streaks: await this.streaks(),
      sessions: await this.sessions(),
      errors: await this.errorRates("day"),
      terms: terms > 0 ? await this.topTerms(terms) : [],
    };
    return buildReport(data);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#registration?.stop().catch(() => {});
    await this.#ready?.catch(() => {});
    await this.#mutex.run(async () => {
      await this.#engine?.close();
      this.#engine = undefined;
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens the analytics of a store. Cheap: the engine starts and the rows are
 * copied at the first analytics call. With `feed`, registers the refresher
 * consumer on it.
 *
 * Permissions: those of the store, plus `--allow-read` and
 * `--allow-sys=cpus` (WASM engine) or `--allow-ffi` (native engine).
 *
 * @param storage The store (opened with its key when text analytics are used).
 * @param options Engine, key, feed, session gap.
 * @returns The analytics.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Messages by role
 * ```ts
 * import { openAnalytics } from "./analytics.ts";
 * import { openTestStore } from "../repositories/_doc_helpers.ts";
 * import { createConversationRepository } from "../repositories/mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const repo = createConversationRepository(store.storage);
 * const c = await repo.createConversation();
 * await repo.appendMessages(c.id, [
 *   { role: "user", content: "Hello there" },
 *   { role: "assistant", content: "Hi!" },
 * ]);
 * await using analytics = await openAnalytics(store.storage);
 * const rows = await analytics.messagesByRoleAndModel();
 * assert.equal(rows.length, 2);
 * const r = await analytics.query("SELECT count(*) AS n FROM messages");
 * assert.equal(r.rows[0]!.n, 2);
 * ```
 */
export async function openAnalytics(
  storage: AnalyticsStore,
  options: AnalyticsOptions = {},
): Promise<Analytics> {
  const o = resolveAnalyticsOptions(options);
  const a = new AnalyticsImpl(storage, o);
  await a.attach();
  return a;
}
