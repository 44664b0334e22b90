// Internal: the local engine on the synchronous `npm:libsql` driver, the only
// file that imports it (lazily, inside openLocalEngine(), so that importing
// the package does not load the native driver). Not exported from the
// package.
import type Database from "npm:libsql@0.5.29";
import { AicoDataError } from "../errors.ts";
import { decodeText } from "../_internal/utf8.ts";
import { translateError } from "./_errors.ts";
import {
  type BindArgs,
  fromDriverValue,
  scanSql,
  type SqlInfo,
  toBindArgs,
} from "./_sql.ts";
import {
  type Guarded,
  guardInline,
  type GuardKind,
  guardReturning,
  kindOfDeclaredType,
  MASK_BITS,
  pragmaAsQuery,
  pragmaName,
  TEXT_PRAGMAS,
  wrapQuery,
} from "./_text_guard.ts";
import type {
  InArgs,
  ResultSet,
  Row,
  TransactionMode,
  Value,
} from "./types.ts";

type NativeDatabase = InstanceType<typeof Database>;
type NativeStatement = ReturnType<NativeDatabase["prepare"]>;

interface Prepared {
  readonly info: SqlInfo;
  readonly stmt: NativeStatement;
  readonly reader: boolean;
  /** Output column names as the statement names them. */
  readonly columns: string[];
  /** Number of trailing mask columns added by the UTF-8 guard (0: none). */
  readonly masks: number;
  /** A reader that is not a query (RETURNING): rowsAffected via changes(). */
  readonly writesRows: boolean;
  /** The program returns at most one row: read it with one native call. */
  readonly single: boolean;
}

/** Opcodes of a straight-line program (no loop), by whether p2 is a jump. */
const STRAIGHT_JUMPS = new Set([
  "Init",
  "Goto",
  "If",
  "IfNot",
  "IsNull",
  "NotNull",
  "Eq",
  "Ne",
  "Lt",
  "Le",
  "Gt",
  "Ge",
  "SeekRowid",
  "NotExists",
  "MustBeInt",
  "HaltIfNull",
]);
const STRAIGHT_OTHERS = new Set([
  "OpenRead",
  "Variable",
  "Rowid",
  "Column",
  "Function",
  "PureFunc",
  "Cast",
  "Integer",
  "Int64",
  "Real",
  "String8",
  "String",
  "Null",
  "Blob",
  "ZeroOrNull",
  "ShiftLeft",
  "ShiftRight",
  "BitOr",
  "BitAnd",
  "BitNot",
  "Copy",
  "SCopy",
  "Move",
  "Affinity",
  "RealAffinity",
  "Transaction",
  "TableLock",
  "Add",
  "Subtract",
  "Multiply",
  "Divide",
  "Remainder",
  "Concat",
  "Not",
  "And",
  "Or",
  "ResultRow",
  "Halt",
  "AggStep",
  "AggFinal",
  "Noop",
  "ColumnsUsed",
  "CollSeq",
]);

const QUERY_KEYWORDS = new Set(["SELECT", "WITH", "VALUES"]);
const DDL_KEYWORDS = new Set(["CREATE", "DROP", "ALTER"]);

/** A statement rewritten by the UTF-8 guard. */
interface GuardedStatement {
  readonly stmt: NativeStatement;
  readonly masks: number;
  readonly sql: string;
  /** A guarded RETURNING (the statement writes rows). */
  readonly returning: boolean;
}

/** What the driver tells of a result column. */
interface ColumnMeta {
  readonly name: string;
  readonly column: string | null;
  readonly table: string | null;
  readonly database: string | null;
  readonly type: string | null;
}

/** 1 when the column is its table's rowid alias (see `#isRowidAlias`). */
const ROWID_ALIAS_SQL = `SELECT
  (SELECT count(*) FROM pragma_table_info(?1, ?2) WHERE pk > 0) = 1
  AND EXISTS (SELECT 1 FROM pragma_table_info(?1, ?2)
    WHERE pk = 1 AND name = ?3 AND upper(type) = 'INTEGER')
  AND (SELECT wr FROM pragma_table_list(?1) WHERE schema = ?2) = 0
  AND (SELECT instr(upper(CAST(sql AS BLOB)), 'DESC') FROM sqlite_schema
    WHERE type = 'table' AND name = ?1) = 0`;

/** Options of the local engine, already resolved. */
export interface LocalEngineOptions {
  readonly busyTimeoutMs: number;
  readonly statementCacheSize: number;
  readonly safeText: boolean;
}

/** The local engine: one native connection with a prepared-statement cache. */
export class LocalEngine {
  #db: NativeDatabase;
  #cache = new Map<string, Prepared>();
  /** The most recent statement: repeated calls skip the LRU update. */
  #lastSql: string | undefined;
  #last: Prepared | undefined;
  #options: LocalEngineOptions;
  #open = true;
  /** Rowid-alias answers by `database\0table\0column` (see `#isRowidAlias`). */
  #rowidAliases = new Map<string, boolean>();

  constructor(db: NativeDatabase, options: LocalEngineOptions) {
    this.#db = db;
    this.#options = options;
  }

  /** Whether the connection is inside a transaction. */
  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }

  /** Runs one statement. */
  run(sql: string, args: InArgs | undefined): ResultSet {
    const prepared = this.#prepare(sql);
    const bind = toBindArgs(prepared.info, args);
    try {
      if (prepared.reader) return this.#query(prepared, bind);
      const info = prepared.stmt.run(bind) as {
        changes: number | bigint;
        lastInsertRowid: number | bigint;
      };
      // A schema change may change what the guard decided per column.
      if (DDL_KEYWORDS.has(prepared.info.keyword)) this.#forgetSchema();
      return {
        rows: [],
        columns: [],
        rowsAffected: Number(info.changes),
        lastInsertRowid: BigInt(info.lastInsertRowid),
      };
    } catch (err) {
      throw translateError(err, "run statement");
    }
  }

  #query(prepared: Prepared, bind: BindArgs): ResultSet {
    if (prepared.writesRows && prepared.masks > 0) {
      // A guarded RETURNING: a row that cannot be decoded undoes the write,
      // so a CORRUPT_VALUE leaves nothing stored changed.
      this.#db.exec("SAVEPOINT aico_returning");
      let result: ResultSet;
      try {
        result = this.#readRows(prepared, bind);
      } catch (err) {
        this.#db.exec("ROLLBACK TO aico_returning");
        this.#db.exec("RELEASE aico_returning");
        throw err;
      }
      this.#db.exec("RELEASE aico_returning");
      return result;
    }
    return this.#readRows(prepared, bind);
  }

  #readRows(prepared: Prepared, bind: BindArgs): ResultSet {
    let raw: unknown[][];
    if (prepared.single) {
      const one = prepared.stmt.get(bind) as unknown[] | undefined;
      raw = one === undefined ? [] : [one];
    } else {
      raw = prepared.stmt.all(bind) as unknown[][];
    }
    const columns = prepared.columns;
    const width = columns.length;
    const rows: Row[] = new Array(raw.length);
    for (let r = 0; r < raw.length; r++) {
      const cells = raw[r]!;
      const row: Row = {};
      if (prepared.masks === 0) {
        for (let c = 0; c < width; c++) {
          row[columns[c]!] = fromDriverValue(cells[c]);
        }
      } else {
        let mask = 0;
        for (let c = 0; c < width; c++) {
          if (c % MASK_BITS === 0) mask = Number(cells[width + c / MASK_BITS]);
          const cell = cells[c];
          let value: Value;
          if (
            cell !== null && typeof cell === "object" &&
            ((mask >> (c % MASK_BITS)) & 1) === 0
          ) {
            // Bytes that were not a BLOB: a guarded TEXT cell.
            const bytes = cell instanceof Uint8Array
              ? cell
              : new Uint8Array(cell as ArrayBuffer);
            value = decodeText(bytes, `read column "${columns[c]!}"`);
          } else {
            value = fromDriverValue(cell);
          }
          row[columns[c]!] = value;
        }
      }
      rows[r] = row;
    }
    let rowsAffected = 0;
    let lastInsertRowid: bigint | undefined;
    if (prepared.writesRows) {
      const info = this.#changes();
      rowsAffected = info.changes;
      lastInsertRowid = info.lastInsertRowid;
    }
    return { rows, columns: columns.slice(), rowsAffected, lastInsertRowid };
  }

  #changes(): { changes: number; lastInsertRowid: bigint } {
    const cells = this.#db.prepare("SELECT changes(), last_insert_rowid()")
      .safeIntegers(true)
      .raw(true).get() as [bigint, bigint];
    return { changes: Number(cells[0]), lastInsertRowid: cells[1] };
  }

  #prepare(sql: string): Prepared {
    if (sql === this.#lastSql) return this.#last!;
    const cache = this.#cache;
    const hit = cache.get(sql);
    if (hit !== undefined) {
      cache.delete(sql);
      cache.set(sql, hit);
      this.#lastSql = sql;
      this.#last = hit;
      return hit;
    }
    const info = scanSql(sql);
    let stmt: NativeStatement;
    try {
      stmt = this.#db.prepare(info.sql);
    } catch (err) {
      throw translateError(err, "prepare statement");
    }
    const reader = stmt.reader as boolean;
    let prepared: Prepared;
    if (!reader) {
      stmt.safeIntegers(true);
      prepared = {
        info,
        stmt,
        reader,
        columns: [],
        masks: 0,
        writesRows: false,
        single: false,
      };
    } else {
      const meta = stmt.columns() as ColumnMeta[];
      const columns = meta.map((c) => c.name);
      const isQuery = QUERY_KEYWORDS.has(info.keyword);
      let guarded: NativeStatement | undefined;
      let masks = 0;
      let guardSql: string | undefined;
      let returning = false;
      if (this.#options.safeText && columns.length > 0) {
        const built = this.#guard(info, meta);
        if (built !== undefined) {
          [guarded, masks, guardSql] = [built.stmt, built.masks, built.sql];
          returning = built.returning;
        }
      }
      const chosen = guarded ?? stmt;
      chosen.safeIntegers(true).raw(true);
      // EXPLAIN shows a blob literal's bytes as TEXT, which may not be
      // UTF-8: such statements skip the single-row check.
      const single = isQuery && !info.blobLiteral &&
        this.#atMostOneRow(guardSql ?? info.sql);
      prepared = {
        info,
        stmt: chosen,
        reader,
        columns,
        masks,
        writesRows: !isQuery || returning,
        single: single && !returning,
      };
    }
    cache.set(sql, prepared);
    this.#lastSql = sql;
    this.#last = prepared;
    if (cache.size > this.#options.statementCacheSize) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    return prepared;
  }

  /**
   * Tells from the compiled program (`EXPLAIN`) whether a query returns at
   * most one row: one ResultRow, only straight-line opcodes, and every jump
   * forward (but the preamble's Goto after Halt). A point select by rowid
   * qualifies; IN lists, OR, joins, subqueries, sorts and compounds loop and
   * do not. Such a query is read with `get()`, one native call instead of
   * two.
   */
  #atMostOneRow(sql: string): boolean {
    let program: unknown[][];
    try {
      const explain = this.#db.prepare(`EXPLAIN ${sql}`).raw(true);
      program = explain.all([]) as unknown[][];
      // An EXPLAIN run to its end stays counted as an active reader (which
      // blocks checkpoints) until reset; get() leaves it reset.
      explain.get([]);
    } catch {
      return false;
    }
    let results = 0;
    let haltAt = Infinity;
    for (const op of program) {
      const [addr, opcode] = [Number(op[0]), String(op[1])];
      if (opcode === "Halt" && haltAt === Infinity) haltAt = addr;
      if (opcode === "ResultRow") results++;
    }
    if (results !== 1) return false;
    for (const op of program) {
      const [addr, opcode, p2] = [Number(op[0]), String(op[1]), Number(op[3])];
      if (STRAIGHT_JUMPS.has(opcode)) {
        const forward = p2 > addr || (opcode === "MustBeInt" && p2 === 0);
        if (!forward && !(opcode === "Goto" && addr > haltAt)) return false;
      } else if (!STRAIGHT_OTHERS.has(opcode)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Builds the UTF-8 guard of a statement that returns rows (see
   * `_text_guard.ts`): a TEXT cell that may not be plain ASCII comes back as
   * bytes, decoded here with a fatal decoder, so the driver never
   * materialises invalid UTF-8 as TEXT (which aborts the process).
   *
   * - Queries: written in place when the results are plain column
   *   references (rowid aliases, always integers, stay unguarded: a query
   *   of only such columns runs as written), else wrapped as a subquery.
   * - INSERT/UPDATE/DELETE ... RETURNING: the RETURNING list is guarded in
   *   place.
   * - PRAGMA: read through its table-valued function and wrapped; a PRAGMA
   *   that has none returns only numbers and keywords and runs as written,
   *   unless it is one of the PRAGMAs that return names (refused then).
   * - EXPLAIN: runs as written, but not with a blob literal (its bytes are
   *   shown as TEXT): refused.
   *
   * Returns `undefined` to run the statement as written; throws
   * `INVALID_INPUT` for a statement whose rows cannot be read safely.
   */
  #guard(
    info: SqlInfo,
    meta: readonly ColumnMeta[],
  ): GuardedStatement | undefined {
    const names = meta.map((c) => c.name);
    const width = names.length;
    const tryPrepare = (
      g: Guarded | undefined,
      returning = false,
    ): GuardedStatement | undefined => {
      if (g === undefined) return undefined;
      try {
        const stmt = this.#db.prepare(g.sql);
        if ((stmt.columns() as unknown[]).length !== width + g.masks) {
          return undefined;
        }
        return { stmt, masks: g.masks, sql: g.sql, returning };
      } catch {
        return undefined;
      }
    };
    const wrapped = (sql: string, kinds?: readonly GuardKind[]) => {
      try {
        const probe = this.#db.prepare(`SELECT * FROM (${sql}\n)`);
        const inner = (probe.columns() as ColumnMeta[]).map((c) => c.name);
        if (inner.length !== width) return undefined;
        return tryPrepare(wrapQuery(sql, inner, kinds));
      } catch {
        return undefined;
      }
    };
    const refuse = (): never => {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot run statement: its rows cannot be read safely (TEXT that is not UTF-8 would abort the process), rewrite it as a plain SELECT`,
      );
    };
    const keyword = info.keyword;
    if (QUERY_KEYWORDS.has(keyword)) {
      const kinds = meta.map((c): GuardKind =>
        this.#isRowidAlias(c) ? "skip" : kindOfDeclaredType(c.type)
      );
      const inline = guardInline(info.sql, kinds);
      if (inline !== undefined && inline.masks === 0) return undefined;
      return tryPrepare(inline) ?? wrapped(info.sql, kinds) ??
        tryPrepare(guardReturning(info.sql, names), true) ?? refuse();
    }
    if (keyword === "PRAGMA") {
      const query = pragmaAsQuery(info.sql);
      const guarded = query === undefined ? undefined : wrapped(query);
      if (guarded !== undefined) return guarded;
      return TEXT_PRAGMAS.has(pragmaName(info.sql)) ? refuse() : undefined;
    }
    if (keyword === "EXPLAIN") {
      return info.blobLiteral ? refuse() : undefined;
    }
    return tryPrepare(guardReturning(info.sql, names), true) ?? refuse();
  }

  /**
   * Whether a result column is the rowid alias of its table (`INTEGER
   * PRIMARY KEY`, not DESC, table with rowid): its value is the b-tree key,
   * always an integer, so it needs no guard.
   */
  #isRowidAlias(c: ColumnMeta): boolean {
    if (
      c.table === null || c.column === null || c.database === null ||
      c.type === null || c.type.toUpperCase() !== "INTEGER"
    ) {
      return false;
    }
    const id = `${c.database}\u0000${c.table}\u0000${c.column}`;
    const known = this.#rowidAliases.get(id);
    if (known !== undefined) return known;
    let alias = false;
    try {
      const row = this.#db.prepare(ROWID_ALIAS_SQL).raw(true).get([
        c.table,
        c.database,
        c.column,
      ]) as unknown[] | undefined;
      alias = Number(row?.[0]) === 1;
    } catch {
      alias = false;
    }
    this.#rowidAliases.set(id, alias);
    return alias;
  }

  /** Runs SQL text that may hold several statements (no arguments, no rows). */
  exec(sql: string): void {
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw translateError(err, "run statements");
    } finally {
      this.#forgetSchema();
    }
  }

  /** Drops what was learnt from the schema (rowid aliases, guarded statements). */
  #forgetSchema(): void {
    if (this.#rowidAliases.size === 0) return;
    this.#rowidAliases.clear();
    this.clearCache();
  }

  /** Reads one PRAGMA value (first column of the first row). */
  pragma(text: string): unknown {
    try {
      const stmt = this.#db.prepare(`PRAGMA ${text}`);
      if (!stmt.reader) {
        stmt.run([]);
        return undefined;
      }
      const row = stmt.raw(true).get([]) as unknown[] | undefined;
      return row?.[0];
    } catch (err) {
      throw translateError(err, `run PRAGMA ${text.split("=")[0]!.trim()}`);
    }
  }

  /** Reads all rows of an internal statement as arrays (no guard). */
  rawRows(sql: string, args: unknown[] = []): unknown[][] {
    try {
      return this.#db.prepare(sql).raw(true).safeIntegers(true).all(
        args,
      ) as unknown[][];
    } catch (err) {
      throw translateError(err, "run statement");
    }
  }

  /** Starts a transaction. */
  begin(mode: TransactionMode): void {
    this.exec(mode === "write" ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
    if (mode === "read") {
      try {
        this.exec("PRAGMA query_only = ON");
      } catch (err) {
        this.exec("ROLLBACK");
        throw err;
      }
    }
  }

  /** Ends a transaction. */
  end(mode: TransactionMode, commit: boolean): void {
    try {
      if (commit) {
        this.exec("COMMIT");
      } else if (this.#db.inTransaction) {
        this.exec("ROLLBACK");
      }
    } finally {
      if (mode === "read") this.exec("PRAGMA query_only = OFF");
    }
  }

  /** Applies and verifies the connection settings (WAL, synchronous=FULL, busy timeout, foreign keys). */
  configure(busyTimeoutMs: number): void {
    this.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    let mode: string;
    let wantMode = "wal";
    try {
      mode = String(this.pragma("journal_mode = WAL")).toLowerCase();
    } catch (err) {
      // A read-only file or folder (a closed store leaves the file out of
      // WAL mode, and switching back is a write): open it for reading in
      // the mode it has; every write then fails with a typed error.
      if (!/readonly|read-only|read only/i.test(String(err))) throw err;
      mode = String(this.pragma("journal_mode")).toLowerCase();
      wantMode = mode;
    }
    this.pragma("synchronous = FULL");
    this.pragma("foreign_keys = ON");
    const checks: [string, unknown, unknown][] = [
      ["journal_mode", mode, wantMode],
      ["synchronous", Number(this.pragma("synchronous")), 2],
      ["foreign_keys", Number(this.pragma("foreign_keys")), 1],
      [
        "busy_timeout",
        Number(this.pragma("busy_timeout")),
        Math.trunc(busyTimeoutMs),
      ],
    ];
    for (const [name, got, want] of checks) {
      if (got !== want) {
        throw new AicoDataError(
          "SQL_ERROR",
          `Cannot open database: PRAGMA ${name} is "${
            String(got)
          }", expected "${String(want)}"`,
        );
      }
    }
  }

  /** Drops every cached statement (before rekey, close). */
  clearCache(): void {
    this.#cache.clear();
    this.#lastSql = undefined;
    this.#last = undefined;
  }

  /** Closes the connection; safe to call twice. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.clearCache();
    this.#db.close();
  }
}

/**
 * Opens the native connection with the page key and applies the connection
 * settings, verified: WAL, `synchronous=FULL`, busy timeout, foreign keys.
 * A key that does not open the file gives SQLITE_NOTADB translated with
 * `notadb`.
 */
export async function openLocalEngine(
  path: string,
  pageKey: string,
  options: LocalEngineOptions,
  notadb: "WRONG_KEY" | "CORRUPT_STORE",
): Promise<LocalEngine> {
  const { default: Database } = await import("npm:libsql@0.5.29");
  let db: NativeDatabase;
  try {
    db = new Database(
      path,
      { encryptionKey: pageKey, timeout: options.busyTimeoutMs } as never,
    );
  } catch (err) {
    throw translateError(err, "open database", notadb);
  }
  const engine = new LocalEngine(db, options);
  try {
    try {
      db.prepare("SELECT count(*) FROM sqlite_schema").raw(true).get();
    } catch (err) {
      throw translateError(err, "open database", notadb);
    }
    engine.configure(options.busyTimeoutMs);
  } catch (err) {
    engine.close();
    throw err;
  }
  return engine;
}
