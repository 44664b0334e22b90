/**
 * The SQL interfaces that `storage/` implements and the other modules
 * (`schema/`, repositories, analytics export) depend on. They keep the shapes
 * users of `@libsql/client` know.
 *
 * @module
 */

/** A value that may be bound to a statement parameter. */
export type InValue =
  | null
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | ArrayBuffer
  | Date;

/** Positional (`?`) or named (`:name`, `@name`, `$name`) statement arguments. */
export type InArgs = readonly InValue[] | Readonly<Record<string, InValue>>;

/** A value read back from the database. */
export type Value = null | string | number | bigint | Uint8Array;

/** One row as a plain object keyed by column name (no driver-internal keys). */
export type Row = Record<string, Value>;

/** A statement with its arguments. */
export interface InStatement {
  /** The SQL text. */
  readonly sql: string;
  /** The arguments, positional or named. */
  readonly args?: InArgs;
}

/** What `execute()` returns. */
export interface ResultSet {
  /** The rows, in order. */
  readonly rows: Row[];
  /** The column names of the result, in order. */
  readonly columns: string[];
  /** Rows changed by an INSERT, UPDATE or DELETE; 0 for a query. */
  readonly rowsAffected: number;
  /** The rowid of the last inserted row, when the statement inserted one. */
  readonly lastInsertRowid: bigint | undefined;
}

/**
 * How a transaction begins: `write` (BEGIN IMMEDIATE), `read` (BEGIN, read
 * only by intent) or `deferred` (BEGIN DEFERRED).
 */
export type TransactionMode = "write" | "read" | "deferred";

/** The narrow SQL surface the other modules call. */
export interface SqlExecutor {
  /** Runs one statement. */
  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet>;
  /** Runs statements in order inside one transaction; all or nothing. */
  batch(
    stmts: readonly (string | InStatement)[],
    mode?: TransactionMode,
  ): Promise<ResultSet[]>;
}

/** A transaction handed to `transaction(fn)`: valid only while `fn` runs. */
export interface Transaction extends SqlExecutor {
  /** Whether the transaction is finished (committed or rolled back). */
  readonly closed: boolean;
}
