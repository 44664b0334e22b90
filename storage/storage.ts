/**
 * `openStorage()` and `openRemoteStorage()`: the encrypted libSQL connection
 * every user's data lives in.
 *
 * This file is the public surface; the machinery lives in private files:
 * `_storage_impl.ts` (statements, batches, transactions), `_queue.ts` (the
 * connection's FIFO queue), `_sealed_column.ts` (AAD and sealed columns),
 * `_local_storage.ts` (the local open sequence and local-only operations),
 * `_rotation.ts` (rekey and re-seal), `_backup.ts` (backup, verify,
 * restore), and the engines `_local.ts` (`npm:libsql`) and `_remote.ts`
 * (`@libsql/client`), each loaded lazily.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { DataKey } from "../crypto/mod.ts";
import {
  optionalBoolean,
  optionalInteger,
  optionalString,
  optionsObject,
} from "../_internal/options.ts";
import { restoreBackup } from "./_backup.ts";
import {
  checkDataKey,
  checkLocalPermissions,
  localPath,
  openLocalStorage,
} from "./_local_storage.ts";
import { StorageImpl } from "./_storage_impl.ts";
import type {
  InArgs,
  InStatement,
  ResultSet,
  SqlExecutor,
  Transaction,
  TransactionMode,
} from "./types.ts";

export { sealedColumnAad } from "./_sealed_column.ts";

/** Options of {@linkcode openStorage}. */
export interface StorageOptions {
  /**
   * The data key (required by {@linkcode openStorage}): its `libsql-page`
   * purpose key encrypts the pages and its `field-aead` key seals columns.
   *
   * @default {undefined}
   */
  readonly key?: DataKey;
  /**
   * How long a statement waits for a lock held by another connection before
   * failing with `BUSY`, in milliseconds.
   *
   * @default {5000}
   */
  readonly busyTimeoutMs?: number;
  /**
   * Whether a missing local database file may be created.
   *
   * @default {true}
   */
  readonly create?: boolean;
  /**
   * How many prepared statements the local connection keeps (least recently
   * used are dropped first).
   *
   * @default {256}
   */
  readonly statementCacheSize?: number;
  /**
   * Whether statements that return rows read TEXT through the UTF-8 guard (see
   * {@linkcode Storage}). Turning it off is faster but lets a TEXT cell that
   * holds invalid UTF-8 abort the process and cuts strings at a NUL.
   *
   * @default {true}
   */
  readonly safeText?: boolean;
  /**
   * The key the database was encrypted with before an interrupted
   * {@linkcode LocalStorage.rekey}; lets `openStorage()` finish the rotation.
   *
   * @default {undefined}
   */
  readonly previousKey?: DataKey;
}

/** {@linkcode StorageOptions} with every default applied. */
export interface ResolvedStorageOptions {
  /** See {@linkcode StorageOptions.key}. */
  readonly key: DataKey | undefined;
  /** See {@linkcode StorageOptions.busyTimeoutMs}. */
  readonly busyTimeoutMs: number;
  /** See {@linkcode StorageOptions.create}. */
  readonly create: boolean;
  /** See {@linkcode StorageOptions.statementCacheSize}. */
  readonly statementCacheSize: number;
  /** See {@linkcode StorageOptions.safeText}. */
  readonly safeText: boolean;
  /** See {@linkcode StorageOptions.previousKey}. */
  readonly previousKey: DataKey | undefined;
}

/** Options of {@linkcode openRemoteStorage}. */
export interface RemoteStorageOptions {
  /**
   * The data key. Sealed columns use its `field-aead` key; an embedded
   * replica (`syncUrl`) also encrypts its local file with the `libsql-page`
   * key and then needs it.
   *
   * @default {undefined}
   */
  readonly key?: DataKey;
  /**
   * The auth token of the remote database (`libsql://`, `http(s)://`,
   * `ws(s)://`) or of the `syncUrl` primary.
   *
   * @default {undefined}
   */
  readonly authToken?: string;
  /**
   * For an embedded replica: the URL of the primary the local file syncs
   * from. The first argument is then the local file.
   *
   * @default {undefined}
   */
  readonly syncUrl?: string;
}

/** {@linkcode RemoteStorageOptions} with every default applied. */
export interface ResolvedRemoteStorageOptions {
  /** See {@linkcode RemoteStorageOptions.key}. */
  readonly key: DataKey | undefined;
  /** See {@linkcode RemoteStorageOptions.authToken}. */
  readonly authToken: string | undefined;
  /** See {@linkcode RemoteStorageOptions.syncUrl}. */
  readonly syncUrl: string | undefined;
}

/** The key of a row a sealed value is bound to. */
export type RowKey = string | number | bigint;

/** Seals and opens the values of one column; see {@linkcode Storage.sealedColumn}. */
export interface SealedColumn {
  /** The table name bound into every value. */
  readonly table: string;
  /** The column name bound into every value. */
  readonly column: string;
  /**
   * Seals `value` for the row `rowKey`.
   *
   * @param rowKey The row's stable key (primary key or another unique id).
   * @param value The plaintext.
   * @returns The sealed bytes to store in a BLOB column.
   */
  seal(rowKey: RowKey, value: string | Uint8Array): Promise<Uint8Array>;
  /**
   * Opens a value sealed for the row `rowKey`.
   *
   * @param rowKey The row's stable key.
   * @param sealed The stored bytes.
   * @returns The plaintext bytes; `AUTH_FAILED` when the value was sealed for
   *   another row, column or table, or altered.
   */
  open(rowKey: RowKey, sealed: Uint8Array): Promise<Uint8Array>;
  /**
   * Like {@linkcode SealedColumn.open}, decoded as UTF-8.
   *
   * @param rowKey The row's stable key.
   * @param sealed The stored bytes.
   * @returns The plaintext string.
   */
  openText(rowKey: RowKey, sealed: Uint8Array): Promise<string>;
  /**
   * Seals many values, each for its own row, like
   * {@linkcode SealedColumn.seal} on each (every value gets its own random
   * nonce and its own AAD), with the table, column and version part of the
   * AAD built once and many AES-GCM operations in flight.
   *
   * @param items The row keys and plaintexts.
   * @returns The sealed bytes, in the order of `items`.
   * @throws {AicoDataError} `INVALID_INPUT` for a bad row key or value
   *   (nothing is sealed then), `NONCE_BUDGET_EXHAUSTED` past the key's budget.
   */
  sealBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly value: string | Uint8Array;
    }[],
  ): Promise<Uint8Array[]>;
  /**
   * Opens many values, each sealed for its own row, like
   * {@linkcode SealedColumn.open} on each.
   *
   * @param items The row keys and stored bytes.
   * @returns The plaintext bytes, in the order of `items`.
   * @throws {AicoDataError} `AUTH_FAILED` when any value was sealed for
   *   another row, column or table, or altered; `INVALID_INPUT` for a bad row
   *   key or a value that is not bytes.
   */
  openBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly sealed: Uint8Array;
    }[],
  ): Promise<Uint8Array[]>;
}

/** Options of {@linkcode Storage.sealedColumn}. */
export interface SealedColumnOptions {
  /**
   * The schema version bound into every value; a value sealed under another
   * version fails to open.
   *
   * @default {1}
   */
  readonly schemaVersion?: number;
}

/** A sealed column to re-seal during {@linkcode LocalStorage.rekey}. */
export interface SealedColumnSpec {
  /** The table. */
  readonly table: string;
  /** The BLOB column holding sealed values (NULL cells are skipped). */
  readonly column: string;
  /** The column holding the stable row key the values are bound to. */
  readonly rowKey: string;
  /**
   * The schema version the values were sealed under.
   *
   * @default {1}
   */
  readonly schemaVersion?: number;
}

/** Options of {@linkcode LocalStorage.rekey}. */
export interface RekeyOptions {
  /**
   * Sealed columns to re-seal with the new key.
   *
   * @default {[]}
   */
  readonly sealedColumns?: readonly SealedColumnSpec[];
  /**
   * Stops the rotation: while it waits for the connection, while the sealed
   * values are checked, and between pages of the re-seal. An aborted
   * rotation puts the store back as it was (old key, nothing re-sealed) and
   * rejects with `ABORTED`.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** Options of {@linkcode LocalStorage.backup}. */
export interface BackupOptions {
  /**
   * Stops the backup while it waits for the connection or before the copy
   * starts (`ABORTED`, no file written). The copy itself, one
   * `VACUUM INTO`, runs to its end.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** Options of {@linkcode LocalStorage.verify}. */
export interface VerifyOptions {
  /**
   * Stops the check while it waits for the connection (`ABORTED`).
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** What {@linkcode LocalStorage.verify} found. */
export interface VerifyReport {
  /** `true` when the integrity check is `ok` and the key matches the record. */
  readonly ok: boolean;
  /** The lines of `PRAGMA integrity_check` (`["ok"]` when sound). */
  readonly integrity: string[];
  /** Whether the key record (`<db>.aico`) names the key in use. */
  readonly keyMatches: boolean;
}

/**
 * An open encrypted libSQL database.
 *
 * @remarks
 * **Local files** use the synchronous `npm:libsql` driver with a prepared
 * statement cache. Pages are encrypted by libSQL (SQLite3MultipleCiphers
 * `aes256cbc`: confidentiality only, no MAC) with the data key's
 * `libsql-page` purpose key. The driver takes the key as a string of which
 * the cipher uses the first 32 bytes, so each of the 32 key bytes is reduced
 * to 7 bits and passed as one ASCII character (224 bits of key; hex would
 * keep only 128). A key record `<db>.aico` names the key's `keyId`, so a
 * wrong key (`WRONG_KEY`) is told apart from a damaged file
 * (`CORRUPT_STORE`) and a failed open leaves every file byte-identical.
 * The connection runs in WAL mode with `synchronous=FULL`, a busy timeout and
 * foreign keys on, each verified at open.
 *
 * **Values.** Integers come back as `number` when safe and as `bigint`
 * beyond 2^53; BLOBs as `Uint8Array`. A string that is not well-formed
 * UTF-16 is refused with `INVALID_INPUT` (the driver would store U+FFFD).
 * Every statement that returns rows reads TEXT through a guard
 * (`safeText`, on by default): a cell that is not plain ASCII comes back as
 * bytes and is decoded in JavaScript, so a TEXT cell with invalid UTF-8
 * gives `CORRUPT_VALUE` instead of aborting the process (`npm:libsql`
 * aborts on such TEXT), and a NUL inside a string survives. A query whose
 * results are plain column references is guarded in place (a rowid alias,
 * always an integer, costs nothing); other queries are wrapped as a
 * subquery; `INSERT`/`UPDATE`/`DELETE ... RETURNING` have their RETURNING
 * list guarded, and a row that cannot be decoded undoes the write; a
 * `PRAGMA` is read through its table-valued function. What cannot be
 * guarded is refused with `INVALID_INPUT`: `EXPLAIN` of a statement with a
 * blob literal, a PRAGMA that returns names but has no table-valued form,
 * and a statement whose RETURNING list cannot be rewritten.
 *
 * **Remaining hazard.** `safeText: false` and any use of the native driver
 * outside this module read TEXT unguarded: a cell holding invalid UTF-8
 * there aborts the process (uncatchable).
 *
 * **Rows** are plain objects keyed by column name: when two result columns
 * share a name the last one wins, so alias them (`SELECT a.id AS a_id, ...`).
 *
 * **Transactions.** One transaction at a time: while one runs, other calls
 * on the storage from other tasks (transactions, batches, statements) wait
 * in a first-come-first-served queue and each gets the connection in turn;
 * calling the storage (not `tx`) or `transaction()` from inside the callback
 * is `TRANSACTION_MISUSE`. `close()` waits for the running transaction (its
 * further calls fail with `STORE_CLOSED`); queued callers get `STORE_CLOSED`.
 *
 * **Permissions (local):** `--allow-read` and `--allow-write` on the
 * database folder, `--allow-ffi`, `--allow-sys`, `--allow-env=LIBSQL_JS_DEV`.
 * **Remote:** `--allow-net` for the host (and the local ones for an
 * embedded replica).
 */
export interface Storage extends SqlExecutor, AsyncDisposable {
  /**
   * `"local"` for a file on the native driver ({@linkcode LocalStorage}),
   * `"remote"` for `@libsql/client` (a server or an embedded replica).
   */
  readonly kind: "local" | "remote";
  /** Whether {@linkcode Storage.close} was called. */
  readonly closed: boolean;
  /**
   * Runs one statement.
   *
   * @param stmt The SQL text, or `{ sql, args }`.
   * @param args Positional (array) or named (object) arguments.
   * @returns `{ rows, columns, rowsAffected, lastInsertRowid }`.
   * @throws {AicoDataError} `INVALID_INPUT` (bad or missing arguments, lone
   *   surrogate, several statements), `SQL_ERROR`, `CONSTRAINT_VIOLATION`,
   *   `BUSY`, `CORRUPT_VALUE` (TEXT that is not UTF-8), `STORE_CLOSED`,
   *   `TRANSACTION_MISUSE` (called inside this storage's transaction).
   */
  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet>;
  /**
   * Runs statements in order in one transaction: all or nothing.
   *
   * @param stmts The statements.
   * @param mode The transaction mode.
   * @returns One result per statement.
   * @throws {BatchError} The first failing statement's error, carrying its
   *   `statementIndex` and the driver's `extendedCode`; nothing of the batch
   *   is kept.
   */
  batch(
    stmts: readonly (string | InStatement)[],
    mode?: TransactionMode,
  ): Promise<ResultSet[]>;
  /**
   * Runs SQL text holding several statements (no arguments, no rows), for
   * example a schema script.
   *
   * @param sql The statements.
   * @returns When all ran.
   * @throws {AicoDataError} `SQL_ERROR` and the like; statements before the
   *   failing one stay applied unless the script has its own BEGIN/COMMIT.
   */
  executeMultiple(sql: string): Promise<void>;
  /**
   * Runs `fn` in a transaction: commits when it returns, rolls back when it
   * throws (and rethrows).
   *
   * @param fn The work; use only `tx` inside it.
   * @param mode `write` (BEGIN IMMEDIATE, the default), `read` or `deferred`.
   * @returns What `fn` returned.
   * @throws What `fn` threw (after the rollback), `TRANSACTION_MISUSE` when
   *   nested, `BUSY` when the write lock is not obtained in time.
   */
  transaction<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    mode?: TransactionMode,
  ): Promise<T>;
  /**
   * A helper that seals values of one column with the `field-aead` key,
   * bound to table, column, row key and schema version.
   *
   * @param table The table name.
   * @param column The column name.
   * @param options The schema version.
   * @returns The {@linkcode SealedColumn}.
   * @throws {AicoDataError} `INVALID_INPUT` for an empty name; its methods
   *   throw `AUTH_FAILED` for a value sealed elsewhere.
   */
  sealedColumn(
    table: string,
    column: string,
    options?: SealedColumnOptions,
  ): SealedColumn;
  /** Closes the connection; safe to call twice. */
  close(): Promise<void>;
}

/**
 * A {@linkcode Storage} over a local file (from {@linkcode openStorage}),
 * with the operations only a local file has: backup, verify and rekey.
 *
 * @remarks
 * Stores opened with {@linkcode openRemoteStorage} are a plain
 * {@linkcode Storage}: the type system, not a runtime check, says that they
 * cannot be backed up or rekeyed from here.
 */
export interface LocalStorage extends Storage {
  /** Always `"local"`. */
  readonly kind: "local";
  /** The absolute path of the database file. */
  readonly path: string;
  /**
   * Writes an encrypted, compacted copy (`VACUUM INTO`, mode 0600) with its
   * key record.
   *
   * @param path Where to write; must not exist.
   * @param options An abort signal.
   * @returns When the copy and its key record are written.
   * @throws {AicoDataError} `ALREADY_EXISTS`, `INVALID_INPUT` (the database
   *   itself), `PERMISSION_DENIED`, `DISK_FULL`, `ABORTED`.
   */
  backup(path: string, options?: BackupOptions): Promise<void>;
  /**
   * Runs `PRAGMA integrity_check` and checks the key record.
   *
   * @param options An abort signal.
   * @returns The {@linkcode VerifyReport}.
   * @throws {AicoDataError} `STORE_CLOSED`, `ABORTED`.
   */
  verify(options?: VerifyOptions): Promise<VerifyReport>;
  /**
   * Rotates to a new data key: checkpoint, DELETE journal, `PRAGMA rekey`,
   * re-seal the given sealed columns, back to WAL.
   *
   * @remarks
   * Crash-safe: the key record marks the new key as pending before the page
   * rekey, and the columns to re-seal are recorded in the database; a
   * rotation cut short is finished by opening with the new key and
   * `previousKey` (or, if the pages were not rekeyed yet, the old key still
   * opens the store). It needs this to be the only connection to the file,
   * in every process; otherwise it fails with `BUSY` and changes nothing. A
   * storage closed with `close()` releases the file (even though
   * `npm:libsql` frees the native handle only later), so a process that
   * opened and closed the store does not block a rotation elsewhere.
   *
   * @param newKey The new data key.
   * @param options The sealed columns to re-seal, an abort signal.
   * @returns When the rotation is complete.
   * @throws {AicoDataError} `BUSY` when another connection is open,
   *   `INVALID_INPUT` for the current key, `AUTH_FAILED` when a listed sealed
   *   value does not open, `ABORTED` through the signal (nothing is changed
   *   in these cases).
   */
  rekey(newKey: DataKey, options?: RekeyOptions): Promise<void>;
}

/**
 * Normalises {@linkcode StorageOptions}: applies defaults and checks types.
 *
 * @param options The options as given.
 * @returns The frozen resolved options.
 * @throws {AicoDataError} `INVALID_INPUT` for a value of the wrong type or range.
 *
 * @example Defaults
 * ```ts
 * import { resolveStorageOptions } from "./storage.ts";
 * import assert from "node:assert/strict";
 *
 * const resolved = resolveStorageOptions({});
 * assert.equal(resolved.busyTimeoutMs, 5000);
 * assert.equal(resolved.safeText, true);
 * assert.equal(resolved.statementCacheSize, 256);
 * ```
 */
export function resolveStorageOptions(
  options: StorageOptions = {},
): ResolvedStorageOptions {
  const action = "open storage";
  const o = optionsObject(action, options);
  const key = (name: string, value: unknown): DataKey | undefined =>
    value === undefined ? undefined : checkDataKey(action, name, value);
  return Object.freeze({
    key: key("key", o.key),
    busyTimeoutMs: optionalInteger(
      action,
      "busyTimeoutMs",
      o.busyTimeoutMs,
      5000,
      0,
    ),
    create: optionalBoolean(action, "create", o.create, true),
    statementCacheSize: optionalInteger(
      action,
      "statementCacheSize",
      o.statementCacheSize,
      256,
      1,
    ),
    safeText: optionalBoolean(action, "safeText", o.safeText, true),
    previousKey: key("previousKey", o.previousKey),
  });
}

/**
 * Normalises {@linkcode RemoteStorageOptions}: applies defaults and checks
 * types.
 *
 * @param options The options as given.
 * @returns The frozen resolved options.
 * @throws {AicoDataError} `INVALID_INPUT` for a value of the wrong type.
 *
 * @example Defaults
 * ```ts
 * import { resolveRemoteStorageOptions } from "./storage.ts";
 * import assert from "node:assert/strict";
 *
 * const resolved = resolveRemoteStorageOptions({ authToken: "t" });
 * assert.equal(resolved.authToken, "t");
 * assert.equal(resolved.syncUrl, undefined);
 * ```
 */
export function resolveRemoteStorageOptions(
  options: RemoteStorageOptions = {},
): ResolvedRemoteStorageOptions {
  const action = "open storage";
  const o = optionsObject(action, options);
  return Object.freeze({
    key: o.key === undefined ? undefined : checkDataKey(action, "key", o.key),
    authToken: optionalString(action, "authToken", o.authToken),
    syncUrl: optionalString(action, "syncUrl", o.syncUrl),
  });
}

/**
 * Opens (or creates) an encrypted local libSQL database file.
 *
 * The file goes through the native `npm:libsql` driver (loaded on the first
 * call). For a server (`libsql://`, `http(s)://`, `ws(s)://`) or an embedded
 * replica use {@linkcode openRemoteStorage}. See {@linkcode Storage} for the
 * guarantees and the Deno permissions. A new file, its `-wal`, `-shm` and
 * `-journal` files and its key record are created with mode 0600.
 *
 * @param path A file path or `file:` URL.
 * @param options The key (required) and settings.
 * @returns The open {@linkcode LocalStorage}.
 * @throws {AicoDataError} `INVALID_INPUT` for bad options or a remote URL
 *   (naming `openRemoteStorage()`), `PERMISSION_DENIED` naming the missing
 *   flag, `WRONG_KEY` when the key does not open the file, `CORRUPT_STORE`
 *   when the file is damaged, `NOT_FOUND` when the file is missing and
 *   `create` is false, `DISK_FULL`.
 *
 * @example Round trip through an encrypted file
 * ```ts
 * import { openStorage } from "./storage.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = await importDataKey(generateDataKey());
 *   await using db = await openStorage(`${dir}/app.db`, { key });
 *   await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
 *   await db.transaction(async (tx) => {
 *     await tx.execute("INSERT INTO notes (body) VALUES (?)", ["hello 👋"]);
 *   });
 *   const { rows } = await db.execute({ sql: "SELECT body FROM notes WHERE id = ?", args: [1] });
 *   assert.deepEqual(rows, [{ body: "hello 👋" }]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openStorage(
  path: string,
  options: StorageOptions,
): Promise<LocalStorage> {
  if (typeof path !== "string" || path === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open storage: the path must be a non-empty string",
    );
  }
  if (REMOTE_URL.test(path)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open storage: a remote URL needs openRemoteStorage()",
    );
  }
  const given = options as Record<string, unknown> | null | undefined;
  if (
    given !== null && typeof given === "object" &&
    (given.syncUrl !== undefined || given.authToken !== undefined)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot open storage: "syncUrl" and "authToken" need openRemoteStorage()',
    );
  }
  const opts = resolveStorageOptions(options);
  return await openLocalStorage(localPath(path), opts);
}

const REMOTE_URL = /^(libsql|https?|wss?):\/\//i;

/**
 * Opens a remote libSQL database (`libsql://`, `http(s)://`, `ws(s)://`)
 * or, with `syncUrl`, an embedded replica of one in a local file, through
 * `@libsql/client` (loaded on the first call), with the same `execute` /
 * `batch` / `transaction` / `sealedColumn` interface as a local store.
 *
 * @remarks
 * The result is a plain {@linkcode Storage}: backup, verify and rekey are
 * operations of the server there, not of this toolkit.
 *
 * Permissions: `--allow-net` for the host; an embedded replica also needs
 * the local ones of {@linkcode openStorage}.
 *
 * @param url The server URL, or the local file of an embedded replica.
 * @param options The auth token, the key for sealed columns, `syncUrl`.
 * @returns The open {@linkcode Storage}.
 * @throws {AicoDataError} `INVALID_INPUT` for bad options or a URL that is
 *   neither remote nor a replica, `PERMISSION_DENIED` naming the missing
 *   flag, `CONNECTION_FAILED` when the server cannot be reached.
 *
 * @example Opening a server (needs one running)
 * ```ts ignore
 * import { openRemoteStorage } from "./storage.ts";
 *
 * await using db = await openRemoteStorage("http://127.0.0.1:8080", { authToken: "..." });
 * await db.execute("SELECT 1");
 * ```
 */
export async function openRemoteStorage(
  url: string,
  options: RemoteStorageOptions = {},
): Promise<Storage> {
  if (typeof url !== "string" || url === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open storage: the URL must be a non-empty string",
    );
  }
  const opts = resolveRemoteStorageOptions(options);
  if (!REMOTE_URL.test(url) && opts.syncUrl === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open storage: "${url}" is not a remote URL, open a local file with openStorage()`,
    );
  }
  const { openRemoteEngine } = await import("./_remote.ts");
  const engine = await openRemoteEngine(url, opts);
  return new StorageImpl(engine, opts.key);
}

/**
 * Restores a backup written by {@linkcode LocalStorage.backup} to `path`:
 * checks that `key` opens it and that it passes `integrity_check`, then
 * copies it (with its key record, both 0600) into place. The target must
 * not exist.
 *
 * @param backupPath The backup file.
 * @param path Where to restore the database.
 * @param options The key of the backup.
 * @returns Nothing; open the restored file with {@linkcode openStorage}.
 * @throws {AicoDataError} `WRONG_KEY` when the key does not open the backup,
 *   `CORRUPT_STORE` when it fails the integrity check, `ALREADY_EXISTS` when
 *   `path` exists.
 *
 * @example Backing up and restoring
 * ```ts
 * import { openStorage, restoreStorage } from "./storage.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = await importDataKey(generateDataKey());
 *   {
 *     await using db = await openStorage(`${dir}/a.db`, { key });
 *     await db.execute("CREATE TABLE t (x)");
 *     await db.execute("INSERT INTO t VALUES (42)");
 *     await db.backup(`${dir}/a.bak`);
 *   }
 *   await restoreStorage(`${dir}/a.bak`, `${dir}/b.db`, { key });
 *   await using restored = await openStorage(`${dir}/b.db`, { key });
 *   const { rows } = await restored.execute("SELECT x FROM t");
 *   assert.deepEqual(rows, [{ x: 42 }]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function restoreStorage(
  backupPath: string,
  path: string,
  options: StorageOptions,
): Promise<void> {
  await restoreBackup(
    backupPath,
    path,
    resolveStorageOptions(options),
    checkLocalPermissions,
  );
}
