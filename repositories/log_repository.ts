/**
 * `LogRepository`: structured log records in the core `logs` table.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { InValue, Row } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import {
  checkId,
  checkInt,
  checkLimit,
  checkName,
  checkObject,
  checkText,
  checkTimestamp,
  decodeCursor,
  encodeCursor,
  invalid,
  type JsonValue,
  toJson,
} from "./_validate.ts";
import { num, optNum, optStr, str } from "./_rows.ts";

/** Log levels, from least to most severe. */
export const LOG_LEVELS = [
  "trace",
  "debug",
  "info",
  "warn",
  "error",
  "fatal",
] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Largest log message accepted, in UTF-8 bytes (64 KiB). */
export const MAX_LOG_MESSAGE_BYTES = 65_536;
/** Largest log context accepted, as JSON, in UTF-8 bytes (64 KiB). */
export const MAX_LOG_CONTEXT_BYTES = 65_536;
/** Longest module name accepted. */
export const MAX_LOG_MODULE_LENGTH = 256;
/** Most records one `queryLogs` page returns. */
export const MAX_LOG_PAGE = 10_000;

/** A log record to insert. */
export interface LogInput {
  /** The severity. */
  readonly level: LogLevel;
  /** The emitting module, 1 to 256 characters of `[A-Za-z0-9_.:@/-]`. */
  readonly module: string;
  /** The message, at most 64 KiB as UTF-8. */
  readonly message: string;
  /** When it happened, ms since the epoch; defaults to the repository clock. */
  readonly ts?: number;
  /** Structured context, plain JSON, at most 64 KiB serialised. */
  readonly context?: JsonValue;
  /** A correlation id, 1 to 128 characters of `[A-Za-z0-9_-]`. */
  readonly traceId?: string;
}

/** A stored log record. */
export interface LogRecord {
  /** The row id (increasing with insertion). */
  readonly id: number;
  /** When it happened, ms since the epoch. */
  readonly ts: number;
  /** The severity. */
  readonly level: LogLevel;
  /** The emitting module. */
  readonly module: string;
  /** The message. */
  readonly message: string;
  /** The structured context, when given. */
  readonly context: JsonValue | undefined;
  /** The correlation id, when given. */
  readonly traceId: string | undefined;
}

/** Filters and paging of {@linkcode LogRepository.queryLogs}. */
export interface LogQuery {
  /** Only these levels. */
  readonly level?: LogLevel | readonly LogLevel[];
  /** Only this level and more severe ones. */
  readonly minLevel?: LogLevel;
  /** Only this module (exact). */
  readonly module?: string;
  /** Only records with `ts >= from`. */
  readonly from?: number;
  /** Only records with `ts < to`. */
  readonly to?: number;
  /** Page size, 1 to 10 000; default 100. */
  readonly limit?: number;
  /** The `nextCursor` of the previous page (same filters and order). */
  readonly cursor?: string;
  /** `asc` (oldest first, default) or `desc`. */
  readonly order?: "asc" | "desc";
}

/** One page of log records. */
export interface LogPage {
  /** The records, in the asked order. */
  readonly records: LogRecord[];
  /** Pass it as `cursor` for the next page; `undefined` on the last page. */
  readonly nextCursor: string | undefined;
}

/** Counts returned by {@linkcode LogRepository.stats}. */
export interface LogStats {
  /** Records in range. */
  readonly total: number;
  /** Records per level (every level present, 0 when none). */
  readonly byLevel: Readonly<Record<LogLevel, number>>;
  /** Records per module. */
  readonly byModule: Readonly<Record<string, number>>;
  /** Oldest `ts` in range. */
  readonly oldest: number | undefined;
  /** Newest `ts` in range. */
  readonly newest: number | undefined;
}

/** What {@linkcode LogRepository.purge} deletes (at least one field). */
export interface LogPurge {
  /** Delete records with `ts < before`. */
  readonly before?: number;
  /** Keep only the newest `keepLast` records. */
  readonly keepLast?: number;
}

/** Options of {@linkcode createLogRepository}. */
export interface LogRepositoryOptions {
  /**
   * The clock, ms since the epoch, for records without `ts` and for retention.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
  /**
   * How long records are kept by {@linkcode LogRepository.purgeExpired}, ms.
   *
   * @default {2_592_000_000} (30 days)
   */
  readonly retentionMs?: number;
}

/** The resolved form of {@linkcode LogRepositoryOptions}. */
export interface ResolvedLogRepositoryOptions {
  /** See {@linkcode LogRepositoryOptions.now}. */
  readonly now: () => number;
  /** See {@linkcode LogRepositoryOptions.retentionMs}. */
  readonly retentionMs: number;
}

/**
 * Structured logs: insert one or a batch, query by level, module and time
 * range with keyset pagination, purge by age or count, stats.
 *
 * @remarks
 * Log rows are protected by the store's page encryption but are not sealed
 * per field: do not log secrets. Every value is a bound parameter.
 */
export interface LogRepository {
  /**
   * Inserts one record.
   *
   * @param entry The record.
   * @returns The new row id.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed record (nothing stored).
   */
  insertLog(entry: LogInput): Promise<number>;
  /**
   * Inserts records in one transaction: all or nothing.
   *
   * @param entries The records (any number; written in chunks of one statement each).
   * @returns How many were inserted.
   * @throws {AicoDataError} `INVALID_INPUT` when any record is malformed (nothing stored).
   */
  insertLogs(entries: readonly LogInput[]): Promise<number>;
  /**
   * Queries one page of records.
   *
   * @param query Filters and paging.
   * @returns The page and the cursor of the next one.
   * @throws {AicoDataError} `INVALID_INPUT` for malformed filters or cursor.
   */
  queryLogs(query?: LogQuery): Promise<LogPage>;
  /**
   * Deletes old records.
   *
   * @param purge `before` a timestamp and/or keep the newest `keepLast`.
   * @returns How many were deleted.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed request.
   */
  purge(purge: LogPurge): Promise<number>;
  /**
   * Deletes records older than `retentionMs` before the clock's now.
   *
   * @returns How many were deleted.
   */
  purgeExpired(): Promise<number>;
  /**
   * Counts records, optionally within `[from, to)`.
   *
   * @param range The time range.
   * @returns The counts.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed range.
   */
  stats(
    range?: { readonly from?: number; readonly to?: number },
  ): Promise<LogStats>;
  /**
   * Checks a record as `insertLog` would, without storing it.
   *
   * @param entry The record.
   * @throws {AicoDataError} `INVALID_INPUT` when malformed.
   */
  validate(entry: LogInput): void;
}

/**
 * Normalises {@linkcode LogRepositoryOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveLogRepositoryOptions } from "./log_repository.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveLogRepositoryOptions().retentionMs, 30 * 24 * 3600 * 1000);
 * ```
 */
export function resolveLogRepositoryOptions(
  options: LogRepositoryOptions = {},
): ResolvedLogRepositoryOptions {
  const o = checkObject(options, "options", "create log repository");
  const now = o.now ?? Date.now;
  if (typeof now !== "function") {
    throw invalid("create log repository", '"now" must be a function');
  }
  const retentionMs = o.retentionMs === undefined
    ? 30 * 24 * 3600 * 1000
    : checkInt(
      o.retentionMs,
      "retentionMs",
      "create log repository",
      1,
      Number.MAX_SAFE_INTEGER,
    );
  return Object.freeze({ now: now as () => number, retentionMs });
}

const LEVEL_SET: ReadonlySet<string> = new Set(LOG_LEVELS);
const COLUMNS = "id, ts, level, module, message, context, trace_id";
const INSERT_HEAD =
  "INSERT INTO logs (ts, level, module, message, context, trace_id) VALUES ";
/** Rows per multi-row INSERT statement. */
const CHUNK = 128;

function checkLevel(value: unknown, what: string): LogLevel {
  if (typeof value !== "string" || !LEVEL_SET.has(value)) {
    throw invalid(
      what,
      `"level" must be one of ${LOG_LEVELS.join(", ")}, got "${
        String(value).slice(0, 40)
      }"`,
    );
  }
  return value as LogLevel;
}

function multiInsert(rows: number): string {
  return INSERT_HEAD +
    Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?)").join(", ");
}

class LogRepositoryImpl implements LogRepository {
  #db: RepositoryStorage;
  #options: ResolvedLogRepositoryOptions;
  #chunkSql = multiInsert(CHUNK);

  constructor(db: RepositoryStorage, options: ResolvedLogRepositoryOptions) {
    this.#db = db;
    this.#options = options;
  }

  /** Validates and appends the 6 bound values of one record to `out`. */
  #bind(entry: unknown, out: InValue[], what: string): void {
    if (typeof entry !== "object" || entry === null) {
      throw invalid(what, "a log record must be an object");
    }
    const e = entry as Record<string, unknown>;
    const level = checkLevel(e.level, what);
    const module = checkName(e.module, "module", what);
    const message = checkText(
      e.message,
      "message",
      what,
      MAX_LOG_MESSAGE_BYTES,
      0,
    );
    const ts = e.ts === undefined
      ? this.#options.now()
      : checkTimestamp(e.ts, "ts", what);
    const context = e.context === undefined
      ? null
      : toJson(e.context, "context", what, MAX_LOG_CONTEXT_BYTES);
    const traceId = e.traceId === undefined
      ? null
      : checkId(e.traceId, "traceId", what);
    out.push(ts, level, module, message, context, traceId);
  }

  validate(entry: LogInput): void {
    this.#bind(entry, [], "validate log");
  }

  async insertLog(entry: LogInput): Promise<number> {
    const args: InValue[] = [];
    this.#bind(entry, args, "insert log");
    const rs = await this.#db.execute({ sql: multiInsert(1), args });
    return Number(rs.lastInsertRowid);
  }

  async insertLogs(entries: readonly LogInput[]): Promise<number> {
    const what = "insert logs";
    if (!Array.isArray(entries)) {
      throw invalid(what, "expected an array of log records");
    }
    const n = entries.length;
    if (n === 0) return 0;
    // Validate everything first: nothing is written when one record is bad.
    const args: InValue[] = [];
    for (let i = 0; i < n; i++) {
      this.#bind(entries[i], args, `${what} (record ${i})`);
    }
    const full = Math.floor(n / CHUNK);
    const rest = n % CHUNK;
    const sql = this.#chunkSql;
    const per = 6 * CHUNK;
    await this.#db.transaction(async (tx) => {
      for (let c = 0; c < full; c++) {
        await tx.execute({ sql, args: args.slice(c * per, (c + 1) * per) });
      }
      if (rest > 0) {
        await tx.execute({
          sql: multiInsert(rest),
          args: args.slice(full * per),
        });
      }
    }, "write");
    return n;
  }

  async queryLogs(query: LogQuery = {}): Promise<LogPage> {
    const what = "query logs";
    const q = checkObject(query, "query", what);
    const where: string[] = [];
    const args: InValue[] = [];
    if (q.level !== undefined) {
      const levels = Array.isArray(q.level) ? q.level : [q.level];
      if (levels.length === 0) throw invalid(what, '"level" must not be empty');
      for (const l of levels) checkLevel(l, what);
      where.push(`level IN (${levels.map(() => "?").join(", ")})`);
      args.push(...(levels as string[]));
    }
    if (q.minLevel !== undefined) {
      const idx = LOG_LEVELS.indexOf(checkLevel(q.minLevel, what));
      const levels = LOG_LEVELS.slice(idx);
      where.push(`level IN (${levels.map(() => "?").join(", ")})`);
      args.push(...levels);
    }
    if (q.module !== undefined) {
      where.push("module = ?");
      args.push(checkName(q.module, "module", what));
    }
    if (q.from !== undefined) {
      where.push("ts >= ?");
      args.push(checkTimestamp(q.from, "from", what));
    }
    if (q.to !== undefined) {
      where.push("ts < ?");
      args.push(checkTimestamp(q.to, "to", what));
    }
    const order = q.order ?? "asc";
    if (order !== "asc" && order !== "desc") {
      throw invalid(what, '"order" must be "asc" or "desc"');
    }
    if (q.cursor !== undefined) {
      const [ts, id] = decodeCursor(q.cursor, ["number", "number"], what);
      where.push(order === "asc" ? "(ts, id) > (?, ?)" : "(ts, id) < (?, ?)");
      args.push(ts!, id!);
    }
    const limit = checkLimit(q.limit, what, MAX_LOG_PAGE, 100);
    const dir = order === "asc" ? "ASC" : "DESC";
    const sql =
      `SELECT ${COLUMNS} FROM logs${
        where.length ? ` WHERE ${where.join(" AND ")}` : ""
      } ` +
      `ORDER BY ts ${dir}, id ${dir} LIMIT ?`;
    args.push(limit + 1);
    const rs = await this.#db.execute({ sql, args });
    const rows = rs.rows.slice(0, limit);
    const records = rows.map(toRecord);
    const last = records[records.length - 1];
    return {
      records,
      nextCursor: rs.rows.length > limit && last !== undefined
        ? encodeCursor([last.ts, last.id])
        : undefined,
    };
  }

  async purge(purge: LogPurge): Promise<number> {
    const what = "purge logs";
    const p = checkObject(purge, "purge", what);
    if (p.before === undefined && p.keepLast === undefined) {
      throw invalid(what, 'give "before" and/or "keepLast"');
    }
    const before = p.before === undefined
      ? undefined
      : checkTimestamp(p.before, "before", what);
    const keepLast = p.keepLast === undefined
      ? undefined
      : checkInt(p.keepLast, "keepLast", what, 0, Number.MAX_SAFE_INTEGER);
    return await this.#db.transaction(async (tx) => {
      let deleted = 0;
      if (before !== undefined) {
        deleted += (await tx.execute({
          sql: "DELETE FROM logs WHERE ts < ?",
          args: [before],
        })).rowsAffected;
      }
      if (keepLast !== undefined) {
        const rs = await tx.execute({
          sql:
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY ts DESC, id DESC LIMIT -1 OFFSET ?)",
          args: [keepLast],
        });
        deleted += rs.rowsAffected;
      }
      return deleted;
    }, "write");
  }

  purgeExpired(): Promise<number> {
    return this.purge({
      before: Math.max(0, this.#options.now() - this.#options.retentionMs),
    });
  }

  async stats(
    range: { readonly from?: number; readonly to?: number } = {},
  ): Promise<LogStats> {
    const what = "get log stats";
    const r = checkObject(range, "range", what);
    const where: string[] = [];
    const args: InValue[] = [];
    if (r.from !== undefined) {
      where.push("ts >= ?");
      args.push(checkTimestamp(r.from, "from", what));
    }
    if (r.to !== undefined) {
      where.push("ts < ?");
      args.push(checkTimestamp(r.to, "to", what));
    }
    const w = where.length ? ` WHERE ${where.join(" AND ")}` : "";
    const [levels, modules, span] = await this.#db.transaction(async (tx) => [
      await tx.execute({
        sql: `SELECT level, COUNT(*) AS n FROM logs${w} GROUP BY level`,
        args,
      }),
      await tx.execute({
        sql: `SELECT module, COUNT(*) AS n FROM logs${w} GROUP BY module`,
        args,
      }),
      await tx.execute({
        sql:
          `SELECT MIN(ts) AS oldest, MAX(ts) AS newest, COUNT(*) AS total FROM logs${w}`,
        args,
      }),
    ], "read");
    const byLevel = Object.fromEntries(LOG_LEVELS.map((l) => [l, 0])) as Record<
      LogLevel,
      number
    >;
    for (const row of levels!.rows) {
      byLevel[str(row.level) as LogLevel] = num(row.n);
    }
    const byModule: Record<string, number> = {};
    for (const row of modules!.rows) byModule[str(row.module)] = num(row.n);
    const s = span!.rows[0]!;
    return {
      total: num(s.total),
      byLevel,
      byModule,
      oldest: optNum(s.oldest),
      newest: optNum(s.newest),
    };
  }
}

function toRecord(row: Row): LogRecord {
  const context = optStr(row.context);
  let parsed: JsonValue | undefined;
  if (context !== undefined) {
    try {
      parsed = JSON.parse(context) as JsonValue;
    } catch (cause) {
      throw new AicoDataError(
        "CORRUPT_VALUE",
        `Cannot read log "${num(row.id)}": context is not JSON`,
        {
          cause,
        },
      );
    }
  }
  return {
    id: num(row.id),
    ts: num(row.ts),
    level: str(row.level) as LogLevel,
    module: str(row.module),
    message: str(row.message),
    context: parsed,
    traceId: optStr(row.trace_id),
  };
}

/**
 * Creates a {@linkcode LogRepository} over a store holding the core schema.
 *
 * Permissions: those of the store (`--allow-read --allow-write` on its
 * directory, `--allow-ffi --allow-sys --allow-env=LIBSQL_JS_DEV` for libSQL).
 *
 * @param storage The store (`openStorage()`), with the core schema applied.
 * @param options See {@linkcode LogRepositoryOptions}.
 * @returns The repository.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options.
 *
 * @example Inserting and querying logs
 * ```ts
 * import { createLogRepository } from "./log_repository.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const logs = createLogRepository(store.storage);
 * await logs.insertLogs([
 *   { level: "info", module: "app", message: "started", ts: 1000 },
 *   { level: "error", module: "db", message: "'; DROP TABLE logs; --", ts: 2000 },
 * ]);
 * const page = await logs.queryLogs({ minLevel: "warn" });
 * assert.equal(page.records.length, 1);
 * assert.equal(page.records[0]!.message, "'; DROP TABLE logs; --");
 * assert.equal((await logs.stats()).total, 2);
 * ```
 */
export function createLogRepository(
  storage: RepositoryStorage,
  options: LogRepositoryOptions = {},
): LogRepository {
  return new LogRepositoryImpl(storage, resolveLogRepositoryOptions(options));
}
