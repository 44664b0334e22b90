/**
 * `openStorage()`: the encrypted libSQL connection every user's data lives in.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { dirname, resolve } from "node:path";
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { requirePermission } from "../_permissions.ts";
import type { DataKey, Sealer } from "../crypto/mod.ts";
import type { Engine, EngineTx } from "./_engine.ts";
import {
  readSidecar,
  type Sidecar,
  sidecarPath,
  writeSidecar,
} from "./_sidecar.ts";
import { quoteIdent, statementParts } from "./_sql.ts";
import type {
  InArgs,
  InStatement,
  ResultSet,
  SqlExecutor,
  Transaction,
  TransactionMode,
} from "./types.ts";
import type { LocalEngine } from "./_local.ts";

/** Options of {@linkcode openStorage}. */
export interface StorageOptions {
  /**
   * The data key. Required for a local file: its `libsql-page` purpose key
   * encrypts the pages and its `field-aead` key seals columns. For a remote
   * database only sealed columns use it.
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
   * Whether queries read TEXT through the UTF-8 guard (see
   * {@linkcode Storage}). Turning it off is faster but lets a TEXT cell that
   * holds invalid UTF-8 abort the process and cuts strings at a NUL.
   *
   * @default {true}
   */
  readonly safeText?: boolean;
  /**
   * The auth token of a remote database (`libsql://`, `http(s)://`,
   * `ws(s)://`) or of the `syncUrl` primary.
   *
   * @default {undefined}
   */
  readonly authToken?: string;
  /**
   * For an embedded replica: the URL of the primary the local file syncs
   * from. The path is then a local file handled by `@libsql/client`.
   *
   * @default {undefined}
   */
  readonly syncUrl?: string;
  /**
   * The key the database was encrypted with before an interrupted
   * {@linkcode Storage.rekey}; lets `openStorage()` finish the rotation.
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
  /** See {@linkcode StorageOptions.authToken}. */
  readonly authToken: string | undefined;
  /** See {@linkcode StorageOptions.syncUrl}. */
  readonly syncUrl: string | undefined;
  /** See {@linkcode StorageOptions.previousKey}. */
  readonly previousKey: DataKey | undefined;
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

/** A sealed column to re-seal during {@linkcode Storage.rekey}. */
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

/** Options of {@linkcode Storage.rekey}. */
export interface RekeyOptions {
  /**
   * Sealed columns to re-seal with the new key.
   *
   * @default {[]}
   */
  readonly sealedColumns?: readonly SealedColumnSpec[];
}

/** What {@linkcode Storage.verify} found. */
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
 * Queries (`SELECT`, `WITH`, `VALUES`) read TEXT through a guard: a cell
 * that is not plain ASCII comes back as bytes and is decoded in JavaScript,
 * so a TEXT cell with invalid UTF-8 gives `CORRUPT_VALUE` instead of
 * aborting the process, and a NUL inside a string survives.
 *
 * **Remaining hazard.** Statements that are not queries but return rows
 * (`INSERT ... RETURNING`, `PRAGMA`, `EXPLAIN`), queries that cannot be
 * wrapped as a subquery, and any use of the native driver outside this
 * module read TEXT unguarded: a cell holding invalid UTF-8 there aborts the
 * process (uncatchable) and a NUL cuts the string. Do not read untrusted
 * TEXT through them.
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
  /** `"local"` for the native path, `"remote"` for `@libsql/client`. */
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
   * @throws {AicoDataError} The first failing statement's error (its index
   *   in the message); nothing of the batch is kept.
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
  /**
   * Writes an encrypted, compacted copy (`VACUUM INTO`) with its key
   * record. Local only.
   *
   * @param path Where to write; must not exist.
   * @returns When the copy and its key record are written.
   * @throws {AicoDataError} `ALREADY_EXISTS`, `INVALID_INPUT` (remote store
   *   or the database itself), `PERMISSION_DENIED`.
   */
  backup(path: string): Promise<void>;
  /**
   * Runs `PRAGMA integrity_check` and checks the key record.
   *
   * @returns The {@linkcode VerifyReport}.
   * @throws {AicoDataError} `INVALID_INPUT` for a remote store.
   */
  verify(): Promise<VerifyReport>;
  /**
   * Rotates to a new data key: checkpoint, DELETE journal, `PRAGMA rekey`,
   * re-seal the given sealed columns, back to WAL. Local only.
   *
   * @remarks
   * Crash-safe: the key record marks the new key as pending before the page
   * rekey, and the columns to re-seal are recorded in the database; a
   * rotation cut short is finished by opening with the new key and
   * `previousKey` (or, if the pages were not rekeyed yet, the old key still
   * opens the store). It needs this to be the only connection to the file,
   * in every process: `npm:libsql` releases a closed connection only once
   * its statements are garbage-collected, so rotate in a fresh process (the
   * CLI's `rotate-key` does). Otherwise it fails with `BUSY` and changes
   * nothing.
   *
   * @param newKey The new data key.
   * @param options The sealed columns to re-seal.
   * @returns When the rotation is complete.
   * @throws {AicoDataError} `BUSY` when another connection is open,
   *   `INVALID_INPUT` for the current key or a remote store, `AUTH_FAILED`
   *   when a listed sealed value does not open (nothing is changed then).
   */
  rekey(newKey: DataKey, options?: RekeyOptions): Promise<void>;
  /** Closes the connection; safe to call twice. */
  close(): Promise<void>;
}

const REMOTE_URL = /^(libsql|https?|wss?):\/\//i;

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
  if (options === null || typeof options !== "object") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open storage: options must be an object",
    );
  }
  const int = (
    name: string,
    value: unknown,
    fallback: number,
    min: number,
  ): number => {
    if (value === undefined) return fallback;
    if (
      typeof value !== "number" || !Number.isSafeInteger(value) || value < min
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot open storage: "${name}" must be an integer >= ${min}`,
      );
    }
    return value;
  };
  const bool = (name: string, value: unknown, fallback: boolean): boolean => {
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot open storage: "${name}" must be a boolean`,
      );
    }
    return value;
  };
  const str = (name: string, value: unknown): string | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot open storage: "${name}" must be a non-empty string`,
      );
    }
    return value;
  };
  const key = (name: string, value: unknown): DataKey | undefined => {
    if (value === undefined) return undefined;
    const k = value as Partial<DataKey> | null;
    if (
      k === null || typeof k !== "object" || typeof k.keyId !== "string" ||
      typeof k.purposeKeyBytes !== "function" || typeof k.sealer !== "function"
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot open storage: "${name}" is not a DataKey`,
      );
    }
    return value as DataKey;
  };
  return Object.freeze({
    key: key("key", options.key),
    busyTimeoutMs: int("busyTimeoutMs", options.busyTimeoutMs, 5000, 0),
    create: bool("create", options.create, true),
    statementCacheSize: int(
      "statementCacheSize",
      options.statementCacheSize,
      256,
      1,
    ),
    safeText: bool("safeText", options.safeText, true),
    authToken: str("authToken", options.authToken),
    syncUrl: str("syncUrl", options.syncUrl),
    previousKey: key("previousKey", options.previousKey),
  });
}

/** Encodes the page key as the driver's key string: 32 ASCII characters. */
async function pageKeyOf(key: DataKey): Promise<string> {
  const bytes = await key.purposeKeyBytes("libsql-page");
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b & 0x7f);
  bytes.fill(0);
  return out;
}

function hexOf(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    out += text.charCodeAt(i).toString(16).padStart(2, "0");
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Checks the Deno permissions the local path needs, before the driver loads. */
function checkLocalPermissions(path: string): void {
  const dir = dirname(path);
  requirePermission(
    { name: "read", path: dir },
    `--allow-read=${dir}`,
    "open storage",
  );
  requirePermission(
    { name: "write", path: dir },
    `--allow-write=${dir}`,
    "open storage",
  );
  requirePermission({ name: "ffi" }, "--allow-ffi", "open storage");
  requirePermission({ name: "sys" }, "--allow-sys", "open storage");
  requirePermission(
    { name: "env", variable: "LIBSQL_JS_DEV" },
    "--allow-env=LIBSQL_JS_DEV",
    "open storage",
  );
}

const SUFFIXES = ["-wal", "-shm", "-journal"];

/** Removes `-wal`/`-shm`/`-journal` files that a failed open created. */
async function removeNewCompanions(
  path: string,
  before: Set<string>,
): Promise<void> {
  for (const suffix of SUFFIXES) {
    const p = path + suffix;
    if (!before.has(p) && await exists(p)) await Deno.remove(p).catch(() => {});
  }
}

async function companionsPresent(path: string): Promise<Set<string>> {
  const present = new Set<string>();
  for (const suffix of SUFFIXES) {
    if (await exists(path + suffix)) present.add(path + suffix);
  }
  return present;
}

/**
 * Opens (or creates) an encrypted libSQL database.
 *
 * A local path (or `file:` URL) goes through the native `npm:libsql`
 * driver; `libsql://`, `http(s)://` and `ws(s)://` URLs and embedded replicas
 * (`syncUrl`) go through `@libsql/client`. See {@linkcode Storage} for the
 * guarantees and the Deno permissions.
 *
 * @param pathOrUrl A file path, `file:` URL or remote URL.
 * @param options The key and settings; `key` is required for a local file.
 * @returns The open {@linkcode Storage}.
 * @throws {AicoDataError} `INVALID_INPUT` for bad options, `PERMISSION_DENIED`
 *   naming the missing flag, `WRONG_KEY` when the key does not open the file,
 *   `CORRUPT_STORE` when the file is damaged, `NOT_FOUND` when the file is
 *   missing and `create` is false, `CONNECTION_FAILED` when a server cannot
 *   be reached.
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
  pathOrUrl: string,
  options: StorageOptions,
): Promise<Storage> {
  if (typeof pathOrUrl !== "string" || pathOrUrl === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open storage: the path must be a non-empty string",
    );
  }
  const opts = resolveStorageOptions(options);
  if (REMOTE_URL.test(pathOrUrl) || opts.syncUrl !== undefined) {
    const { openRemoteEngine } = await import("./_remote.ts");
    const engine = await openRemoteEngine(pathOrUrl, opts);
    return new StorageImpl(engine, opts.key, undefined);
  }
  const path = resolve(
    pathOrUrl.startsWith("file:") ? new URL(pathOrUrl).pathname : pathOrUrl,
  );
  const key = opts.key;
  if (key === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot open storage: a local file needs "key"',
    );
  }
  checkLocalPermissions(path);
  const { openLocalEngine } = await import("./_local.ts");
  const size = await fileSize(path);
  const sidecar = await readSidecar(path);
  const engineOptions = {
    busyTimeoutMs: opts.busyTimeoutMs,
    statementCacheSize: opts.statementCacheSize,
    safeText: opts.safeText,
  };
  if (size === undefined || size === 0) {
    if (size === undefined && !opts.create) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open storage: "${path}" does not exist`,
      );
    }
    if (sidecar !== undefined && sidecar.keyId !== key.keyId) {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot open storage: "${path}" belongs to another key`,
      );
    }
    if (!(await exists(dirname(path)))) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open storage: the folder "${dirname(path)}" does not exist`,
      );
    }
    // New database: write the key record first so the file never exists
    // without it.
    await writeSidecar(path, key.keyId);
    const engine = openLocalEngine(
      path,
      await pageKeyOf(key),
      engineOptions,
      "CORRUPT_STORE",
    );
    return new StorageImpl(engine, key, { path, engineOptions });
  }
  if (sidecar === undefined) {
    throw new AicoDataError(
      "CORRUPT_STORE",
      `Cannot open storage: the key record "${sidecarPath(path)}" is missing`,
    );
  }
  if (key.keyId !== sidecar.keyId && key.keyId !== sidecar.pendingKeyId) {
    throw new AicoDataError(
      "WRONG_KEY",
      `Cannot open storage: the key does not open "${path}"`,
    );
  }
  const before = await companionsPresent(path);
  let engine: LocalEngine;
  try {
    engine = openLocalEngine(
      path,
      await pageKeyOf(key),
      engineOptions,
      "CORRUPT_STORE",
    );
  } catch (err) {
    await removeNewCompanions(path, before);
    if (
      isAicoDataError(err, "CORRUPT_STORE") &&
      sidecar.pendingKeyId !== undefined
    ) {
      // A rotation was started: the file is under the other key of the two.
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot open storage: a key rotation of "${path}" is in progress and this key does not open it, use the other key`,
        { cause: err },
      );
    }
    throw err;
  }
  const storage = new StorageImpl(engine, key, { path, engineOptions });
  try {
    await storage.finishRotation(sidecar, opts.previousKey);
  } catch (err) {
    await storage.close();
    throw err;
  }
  return storage;
}

interface LocalContext {
  readonly path: string;
  readonly engineOptions: {
    readonly busyTimeoutMs: number;
    readonly statementCacheSize: number;
    readonly safeText: boolean;
  };
}

const META_TABLE = "_aico_storage_meta";
const SEALED_AAD_VERSION = 1;
const encoder = new TextEncoder();

/**
 * Builds the associated data a sealed cell is bound to.
 *
 * @remarks
 * Layout: `format(1)=0x01 ‖ schemaVersion(u32 BE) ‖ keyType(1) ‖
 * len(u32 BE) ‖ table ‖ len ‖ column ‖ len ‖ rowKey`, strings in UTF-8;
 * `keyType` is `s` for a string row key and `i` for an integer (written in
 * decimal, so `5` and `5n` are the same key). The sealed value itself is the
 * crypto module's `version(1) ‖ nonce(12) ‖ ciphertext ‖ tag(16)`.
 *
 * @param table The table name.
 * @param column The column name.
 * @param rowKey The row's stable key: a string, safe integer or bigint.
 * @param schemaVersion The schema version (0 to 2^32-1).
 * @returns The AAD bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for a row key of another type.
 *
 * @example Fields are length-prefixed
 * ```ts
 * import { sealedColumnAad } from "./storage.ts";
 * import assert from "node:assert/strict";
 *
 * assert.notDeepEqual(sealedColumnAad("ab", "c", 1, 1), sealedColumnAad("a", "bc", 1, 1));
 * assert.deepEqual(sealedColumnAad("t", "c", 5, 1), sealedColumnAad("t", "c", 5n, 1));
 * ```
 */
export function sealedColumnAad(
  table: string,
  column: string,
  rowKey: RowKey,
  schemaVersion: number,
): Uint8Array {
  return new AadBuilder(table, column, schemaVersion).build([rowKey])[0]!;
}

const KEY_STRING = 0x73; // "s"
const KEY_INTEGER = 0x69; // "i"

/**
 * Builds the AADs of one table, column and schema version: the fixed part
 * (format, version, table, column) is encoded once, each value adds only its
 * row key. See {@linkcode sealedColumnAad} for the layout.
 */
class AadBuilder {
  /** `format ‖ schemaVersion ‖ keyType(placeholder) ‖ len ‖ table ‖ len ‖ column`. */
  #prefix: Uint8Array;

  constructor(table: string, column: string, schemaVersion: number) {
    const t = encoder.encode(table);
    const c = encoder.encode(column);
    const prefix = new Uint8Array(1 + 4 + 1 + 4 + t.length + 4 + c.length);
    const view = new DataView(prefix.buffer);
    prefix[0] = SEALED_AAD_VERSION;
    view.setUint32(1, schemaVersion);
    view.setUint32(6, t.length);
    prefix.set(t, 10);
    view.setUint32(10 + t.length, c.length);
    prefix.set(c, 14 + t.length);
    this.#prefix = prefix;
  }

  /**
   * The AAD of each row key, as views into one buffer. Throws
   * `INVALID_INPUT` (before anything is built) for a key of another type or
   * a string key that is not well-formed UTF-16.
   */
  build(rowKeys: readonly RowKey[]): Uint8Array[] {
    const n = rowKeys.length;
    const prefix = this.#prefix;
    const types = new Uint8Array(n);
    const texts = new Array<string | Uint8Array>(n);
    let size = n * (prefix.length + 4);
    for (let i = 0; i < n; i++) {
      const rowKey = rowKeys[i];
      if (typeof rowKey === "number" && Number.isSafeInteger(rowKey)) {
        // String() of a safe integer is its decimal form (as BigInt's).
        const text = String(rowKey);
        types[i] = KEY_INTEGER;
        texts[i] = text;
        size += text.length;
      } else if (typeof rowKey === "string") {
        if (!rowKey.isWellFormed()) {
          throw new AicoDataError(
            "INVALID_INPUT",
            "Cannot seal: the row key is not well-formed UTF-16",
          );
        }
        const bytes = encoder.encode(rowKey);
        types[i] = KEY_STRING;
        texts[i] = bytes;
        size += bytes.length;
      } else if (typeof rowKey === "bigint") {
        const text = rowKey.toString();
        types[i] = KEY_INTEGER;
        texts[i] = text;
        size += text.length;
      } else {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot seal: the row key must be a string, a safe integer or a bigint",
        );
      }
    }
    const buffer = new Uint8Array(size);
    const out = new Array<Uint8Array>(n);
    let o = 0;
    for (let i = 0; i < n; i++) {
      const start = o;
      buffer.set(prefix, o);
      buffer[o + 5] = types[i]!;
      o += prefix.length;
      const key = texts[i]!;
      const len = key.length;
      buffer[o] = len >>> 24;
      buffer[o + 1] = (len >>> 16) & 0xff;
      buffer[o + 2] = (len >>> 8) & 0xff;
      buffer[o + 3] = len & 0xff;
      o += 4;
      if (typeof key === "string") {
        // Decimal digits and "-": ASCII, one byte each.
        for (let j = 0; j < len; j++) buffer[o + j] = key.charCodeAt(j);
      } else {
        buffer.set(key, o);
      }
      o += len;
      out[i] = buffer.subarray(start, o);
    }
    return out;
  }
}

function checkName(what: string, name: unknown): string {
  if (typeof name !== "string" || name === "" || !name.isWellFormed()) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot use sealed column: the ${what} name is invalid`,
    );
  }
  return name;
}

function checkSchemaVersion(value: unknown): number {
  if (value === undefined) return 1;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 0 ||
    value > 0xffffffff
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot use sealed column: "schemaVersion" must be an integer from 0 to 2^32-1',
    );
  }
  return value;
}

function checkSealValue(value: unknown): void {
  if (typeof value === "string") {
    if (!value.isWellFormed()) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot seal: the string is not well-formed UTF-16",
      );
    }
  } else if (!(value instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot seal: the value must be a string or bytes",
    );
  }
}

function checkSealed(sealed: unknown): void {
  if (!(sealed instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open sealed value: expected bytes",
    );
  }
}

function checkItems(items: unknown, action: string): void {
  if (!Array.isArray(items)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: expected an array of items`,
    );
  }
}

class SealedColumnImpl implements SealedColumn {
  readonly table: string;
  readonly column: string;
  #aad: AadBuilder;
  #sealer: () => Promise<Sealer>;

  constructor(
    table: string,
    column: string,
    version: number,
    sealer: () => Promise<Sealer>,
  ) {
    this.table = table;
    this.column = column;
    this.#aad = new AadBuilder(table, column, version);
    this.#sealer = sealer;
  }

  async seal(rowKey: RowKey, value: string | Uint8Array): Promise<Uint8Array> {
    checkSealValue(value);
    const aad = this.#aad.build([rowKey])[0]!;
    return await (await this.#sealer()).seal(value, aad);
  }

  async open(rowKey: RowKey, sealed: Uint8Array): Promise<Uint8Array> {
    checkSealed(sealed);
    const aad = this.#aad.build([rowKey])[0]!;
    return await (await this.#sealer()).open(sealed, aad);
  }

  async openText(rowKey: RowKey, sealed: Uint8Array): Promise<string> {
    checkSealed(sealed);
    const aad = this.#aad.build([rowKey])[0]!;
    return await (await this.#sealer()).openText(sealed, aad);
  }

  async sealBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly value: string | Uint8Array;
    }[],
  ): Promise<Uint8Array[]> {
    checkItems(items, "seal batch");
    const n = items.length;
    const keys = new Array<RowKey>(n);
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      checkSealValue(it?.value);
      keys[i] = it.rowKey;
    }
    const aads = this.#aad.build(keys);
    const sealer = await this.#sealer();
    const input = new Array<
      { plaintext: string | Uint8Array; aad: Uint8Array }
    >(
      n,
    );
    for (let i = 0; i < n; i++) {
      input[i] = { plaintext: items[i]!.value, aad: aads[i]! };
    }
    return await sealer.sealBatch(input);
  }

  async openBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly sealed: Uint8Array;
    }[],
  ): Promise<Uint8Array[]> {
    checkItems(items, "open batch");
    const n = items.length;
    const keys = new Array<RowKey>(n);
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      checkSealed(it?.sealed);
      keys[i] = it.rowKey;
    }
    const aads = this.#aad.build(keys);
    const sealer = await this.#sealer();
    const input = new Array<{ sealed: Uint8Array; aad: Uint8Array }>(n);
    for (let i = 0; i < n; i++) {
      input[i] = { sealed: items[i]!.sealed, aad: aads[i]! };
    }
    return await sealer.openBatch(input);
  }
}

class TxImpl implements Transaction {
  #storage: StorageImpl;
  #etx: EngineTx;
  #finished = false;
  #savepoint = 0;

  constructor(storage: StorageImpl, etx: EngineTx) {
    this.#storage = storage;
    this.#etx = etx;
  }

  get closed(): boolean {
    return this.#finished;
  }

  finish(): void {
    this.#finished = true;
  }

  #check(action: string): void {
    if (this.#finished) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        `Cannot ${action}: the transaction is finished`,
      );
    }
    this.#storage.checkOpen(action);
  }

  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet> {
    // Not async: the local engine answers synchronously, and this hot path
    // (one call per row in bulk inserts) skips an async frame.
    try {
      this.#check("execute");
      const [sql, a] = statementParts(stmt, args);
      return Promise.resolve(this.#etx.run(sql, a));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async batch(
    stmts: readonly (string | InStatement)[],
    _mode?: TransactionMode,
  ): Promise<ResultSet[]> {
    this.#check("run batch");
    if (!Array.isArray(stmts)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run batch: expected an array of statements",
      );
    }
    const name = `aico_batch_${++this.#savepoint}`;
    await this.#etx.run(`SAVEPOINT ${name}`, undefined);
    try {
      const out = await runAll(stmts, (sql, a) => this.#etx.run(sql, a));
      await this.#etx.run(`RELEASE ${name}`, undefined);
      return out;
    } catch (err) {
      await this.#etx.run(`ROLLBACK TO ${name}`, undefined);
      await this.#etx.run(`RELEASE ${name}`, undefined);
      throw err;
    }
  }
}

async function runAll(
  stmts: readonly (string | InStatement)[],
  run: (
    sql: string,
    args: InArgs | undefined,
  ) => ResultSet | Promise<ResultSet>,
): Promise<ResultSet[]> {
  const out: ResultSet[] = [];
  for (let i = 0; i < stmts.length; i++) {
    const [sql, args] = statementParts(stmts[i]!, undefined);
    try {
      out.push(await run(sql, args));
    } catch (err) {
      if (isAicoDataError(err)) {
        throw new AicoDataError(
          err.code,
          `Cannot run batch: statement ${i} failed: ${err.message}`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
  }
  return out;
}

const MODES: readonly TransactionMode[] = ["write", "read", "deferred"];

/** One turn on the connection: a transaction or an exclusive task. */
interface Slot {
  tx: TxImpl | undefined;
  /** Settles when the turn ends. */
  readonly done: Promise<void>;
  /** Ends the turn and hands the connection to the next waiter. */
  release(): void;
}

class StorageImpl implements Storage {
  #engine: Engine | LocalEngineAdapter;
  #key: DataKey | undefined;
  #local: LocalContext | undefined;
  #closed = false;
  /** The holder of the connection (a transaction or an exclusive task). */
  #active: Slot | undefined;
  /** Callers waiting for the connection, first come first served. */
  #waiters: (() => void)[] = [];
  #als = new AsyncLocalStorage<StorageImpl>();

  constructor(
    engine: Engine | LocalEngine,
    key: DataKey | undefined,
    local: LocalContext | undefined,
  ) {
    this.#engine = "kind" in engine ? engine : new LocalEngineAdapter(engine);
    this.#key = key;
    this.#local = local;
  }

  get kind(): "local" | "remote" {
    return this.#engine.kind;
  }

  get closed(): boolean {
    return this.#closed;
  }

  checkOpen(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: the storage is closed`,
      );
    }
  }

  /**
   * Takes the connection for one transaction or exclusive task: at once when
   * it is free, otherwise in arrival order. The holder's release hands the
   * connection to the next waiter synchronously, so two waiters never both
   * see it free. Refuses a call from inside this storage's transaction
   * (it would wait for itself) with `TRANSACTION_MISUSE`, and a waiter woken
   * after close() with `STORE_CLOSED` (passing the turn on).
   */
  #acquire(action: string): Slot | Promise<Slot> {
    if (this.#active === undefined) return this.#claim();
    if (this.#als.getStore() === this) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        `Cannot ${action}: a transaction is open in this task, use its "tx"`,
      );
    }
    return new Promise<Slot>((resolve) => {
      this.#waiters.push(() => resolve(this.#claim()));
    }).then((slot) => {
      if (this.#closed) {
        slot.release();
        this.checkOpen(action);
      }
      return slot;
    });
  }

  #claim(): Slot {
    let resolveDone!: () => void;
    const slot: Slot = {
      tx: undefined,
      done: new Promise<void>((r) => (resolveDone = r)),
      release: () => {
        if (this.#active !== slot) return;
        this.#active = undefined;
        resolveDone();
        this.#waiters.shift()?.();
      },
    };
    this.#active = slot;
    return slot;
  }

  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet> {
    if (this.#active !== undefined) return this.#executeLater(stmt, args);
    try {
      this.checkOpen("execute");
      const [sql, a] = statementParts(stmt, args);
      return Promise.resolve(this.#engine.run(sql, a));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #executeLater(
    stmt: string | InStatement,
    args?: InArgs,
  ): Promise<ResultSet> {
    this.checkOpen("execute");
    const slot = await this.#acquire("execute");
    try {
      const [sql, a] = statementParts(stmt, args);
      return await this.#engine.run(sql, a);
    } finally {
      slot.release();
    }
  }

  async executeMultiple(sql: string): Promise<void> {
    this.checkOpen("execute");
    if (typeof sql !== "string") {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot execute: the SQL is not a string",
      );
    }
    if (!sql.isWellFormed()) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot execute: the SQL is not well-formed UTF-16",
      );
    }
    if (this.#active === undefined) return await this.#engine.exec(sql);
    const slot = await this.#acquire("execute");
    try {
      await this.#engine.exec(sql);
    } finally {
      slot.release();
    }
  }

  async batch(
    stmts: readonly (string | InStatement)[],
    mode: TransactionMode = "write",
  ): Promise<ResultSet[]> {
    if (!Array.isArray(stmts)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run batch: expected an array of statements",
      );
    }
    return await this.transaction(
      (tx) => runAll(stmts, (sql, a) => tx.execute(sql, a)),
      mode,
    );
  }

  async transaction<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    mode: TransactionMode = "write",
  ): Promise<T> {
    this.checkOpen("start transaction");
    if (typeof fn !== "function") {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot start transaction: expected a function",
      );
    }
    if (!MODES.includes(mode)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot start transaction: unknown mode "${mode}"`,
      );
    }
    const turn = this.#acquire("start transaction");
    const slot = turn instanceof Promise ? await turn : turn;
    try {
      const etx = await this.#engine.begin(mode);
      const tx = new TxImpl(this, etx);
      slot.tx = tx;
      let result: T;
      try {
        result = await this.#als.run(this, () => fn(tx));
      } catch (err) {
        tx.finish();
        try {
          await etx.rollback();
        } catch {
          // The original error matters more.
        }
        throw err;
      }
      tx.finish();
      try {
        await etx.commit();
      } catch (err) {
        try {
          await etx.rollback();
        } catch {
          // Keep the commit error.
        }
        throw err;
      }
      return result;
    } finally {
      slot.release();
    }
  }

  sealedColumn(
    table: string,
    column: string,
    options: SealedColumnOptions = {},
  ): SealedColumn {
    this.checkOpen("use sealed column");
    const version = checkSchemaVersion(options?.schemaVersion);
    return new SealedColumnImpl(
      checkName("table", table),
      checkName("column", column),
      version,
      () => {
        this.checkOpen("use sealed column");
        if (this.#key === undefined) {
          throw new AicoDataError(
            "INVALID_INPUT",
            "Cannot use sealed column: the storage has no key",
          );
        }
        return this.#key.sealer("field-aead");
      },
    );
  }

  #localOnly(
    action: string,
  ): { local: LocalContext; engine: LocalEngine; key: DataKey } {
    this.checkOpen(action);
    if (
      !(this.#engine instanceof LocalEngineAdapter) ||
      this.#local === undefined || this.#key === undefined
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot ${action}: only a local database supports it`,
      );
    }
    return { local: this.#local, engine: this.#engine.engine, key: this.#key };
  }

  /** Runs `fn` as the only user of the connection (no transaction open). */
  async #exclusive<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return await this.transactionLess(action, fn);
  }

  async transactionLess<T>(action: string, fn: () => Promise<T>): Promise<T> {
    const turn = this.#acquire(action);
    const slot = turn instanceof Promise ? await turn : turn;
    try {
      return await this.#als.run(this, fn);
    } finally {
      slot.release();
    }
  }

  async backup(path: string): Promise<void> {
    const { local, engine, key } = this.#localOnly("back up");
    if (typeof path !== "string" || path === "") {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot back up: the path must be a non-empty string",
      );
    }
    const target = resolve(path);
    if (target === local.path) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot back up: the target is the database itself",
      );
    }
    requirePermission(
      { name: "write", path: dirname(target) },
      `--allow-write=${dirname(target)}`,
      "back up",
    );
    if (await exists(target)) {
      throw new AicoDataError(
        "ALREADY_EXISTS",
        `Cannot back up: "${target}" exists`,
      );
    }
    await this.#exclusive("back up", async () => {
      engine.exec(`VACUUM INTO '${target.replaceAll("'", "''")}'`);
      await writeSidecar(target, key.keyId);
    });
  }

  async verify(): Promise<VerifyReport> {
    const { local, engine, key } = this.#localOnly("verify");
    return await this.#exclusive("verify", async () => {
      const integrity = engine.rawRows("PRAGMA integrity_check").map((r) =>
        String(r[0])
      );
      const sidecar = await readSidecar(local.path);
      const keyMatches = sidecar !== undefined && sidecar.keyId === key.keyId &&
        sidecar.pendingKeyId === undefined;
      return {
        ok: keyMatches && integrity.length === 1 && integrity[0] === "ok",
        integrity,
        keyMatches,
      };
    });
  }

  async rekey(newKey: DataKey, options: RekeyOptions = {}): Promise<void> {
    await this.rekeySteps(newKey, options, undefined);
  }

  /**
   * The rotation, step by step. `stopAfter` (tests only) simulates a crash
   * after a step by closing the connection there.
   */
  async rekeySteps(
    newKey: DataKey,
    options: RekeyOptions,
    stopAfter: "pending" | "rekey" | "reseal" | undefined,
  ): Promise<void> {
    const { local, engine, key } = this.#localOnly("rekey");
    const resolved = resolveStorageOptions({ key: newKey });
    const next = resolved.key!;
    const specs = checkSpecs(options?.sealedColumns ?? []);
    if (next.keyId === key.keyId) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot rekey: the new key is the current key",
      );
    }
    await this.#exclusive("rekey", async () => {
      const oldSealer = specs.length > 0
        ? await key.sealer("field-aead")
        : undefined;
      const newSealer = specs.length > 0
        ? await next.sealer("field-aead")
        : undefined;
      const newPage = await pageKeyOf(next);
      let mode: string;
      try {
        engine.pragma("wal_checkpoint(TRUNCATE)");
        mode = String(engine.pragma("journal_mode = DELETE")).toLowerCase();
      } catch (err) {
        throw new AicoDataError(
          "BUSY",
          "Cannot rekey: another connection has the database open",
          { cause: err },
        );
      }
      if (mode !== "delete") {
        throw new AicoDataError(
          "BUSY",
          "Cannot rekey: another connection has the database open",
        );
      }
      // Every listed value must open before anything changes.
      try {
        await resealAll(engine, specs, oldSealer, undefined, key.keyId);
      } catch (err) {
        const { configure } = await import("./_local.ts");
        configure(engine, local.engineOptions.busyTimeoutMs);
        throw err;
      }
      // The columns to re-seal are recorded first so that an interrupted
      // rotation can be finished at the next open.
      engine.begin("write");
      try {
        engine.exec(
          `CREATE TABLE IF NOT EXISTS ${META_TABLE} (k TEXT PRIMARY KEY, v TEXT) STRICT`,
        );
        engine.run(
          `INSERT OR REPLACE INTO ${META_TABLE} (k, v) VALUES ('reseal_specs', ?)`,
          [
            JSON.stringify(specs),
          ],
        );
        engine.end("write", true);
      } catch (err) {
        engine.end("write", false);
        throw err;
      }
      await writeSidecar(local.path, key.keyId, next.keyId);
      if (stopAfter === "pending") return this.#crash();
      engine.clearCache();
      engine.exec(`PRAGMA hexrekey = '${hexOf(newPage)}'`);
      if (stopAfter === "rekey") return this.#crash();
      await resealAll(engine, specs, oldSealer, newSealer, next.keyId);
      if (stopAfter === "reseal") return this.#crash();
      await writeSidecar(local.path, next.keyId);
      this.#key = next;
      const { configure } = await import("./_local.ts");
      configure(engine, local.engineOptions.busyTimeoutMs);
    });
  }

  #crash(): void {
    this.#closed = true;
    this.#engine.close();
  }

  /** At open: completes or clears a rotation the key record says is pending. */
  async finishRotation(
    sidecar: Sidecar,
    previousKey: DataKey | undefined,
  ): Promise<void> {
    const { local, engine, key } = this.#localOnly("open storage");
    if (sidecar.pendingKeyId === undefined) {
      const sealedId = readMeta(engine, "sealed_key_id");
      if (sealedId !== undefined && sealedId !== key.keyId) {
        throw new AicoDataError(
          "CORRUPT_STORE",
          "Cannot open storage: sealed values are under another key than the pages",
        );
      }
      return;
    }
    if (key.keyId === sidecar.keyId) {
      // The page key never changed: the rotation stopped before rekey.
      await writeSidecar(local.path, key.keyId);
      return;
    }
    // The pages are under the new key; sealed values may still be old.
    const sealedId = readMeta(engine, "sealed_key_id");
    if (sealedId === undefined || sealedId !== key.keyId) {
      const specs = readMeta(engine, "reseal_specs");
      if (previousKey === undefined || previousKey.keyId !== sidecar.keyId) {
        throw new AicoDataError(
          "WRONG_KEY",
          'Cannot open storage: a key rotation is unfinished, pass the previous key as "previousKey"',
        );
      }
      const list = specs === undefined ? [] : checkSpecs(JSON.parse(specs));
      await resealAll(
        engine,
        list,
        await previousKey.sealer("field-aead"),
        await key.sealer("field-aead"),
        key.keyId,
      );
    }
    await writeSidecar(local.path, key.keyId);
    const { configure } = await import("./_local.ts");
    configure(engine, local.engineOptions.busyTimeoutMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#active !== undefined && this.#als.getStore() === this) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        "Cannot close: called inside a transaction of this storage",
      );
    }
    this.#closed = true;
    // A running transaction finishes first (its further calls fail).
    if (this.#active !== undefined) await this.#active.done.catch(() => {});
    if (this.#engine instanceof LocalEngineAdapter) {
      try {
        this.#engine.engine.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        // Best effort: the WAL is replayed at the next open.
      }
    }
    await this.#engine.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function checkSpecs(specs: readonly SealedColumnSpec[]): SealedColumnSpec[] {
  if (!Array.isArray(specs)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot rekey: "sealedColumns" must be an array',
    );
  }
  return specs.map((s) => ({
    table: checkName("table", s?.table),
    column: checkName("column", s?.column),
    rowKey: checkName("row key column", s?.rowKey),
    schemaVersion: checkSchemaVersion(s?.schemaVersion),
  }));
}

function readMeta(engine: LocalEngine, key: string): string | undefined {
  const exists = engine.rawRows(
    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
    [META_TABLE],
  );
  if (exists.length === 0) return undefined;
  const rows = engine.rawRows(
    `SELECT CAST(v AS BLOB) FROM ${META_TABLE} WHERE k = ?`,
    [key],
  );
  const cell = rows[0]?.[0];
  if (cell === undefined || cell === null) return undefined;
  return new TextDecoder().decode(cell as Uint8Array);
}

/**
 * Re-seals every listed column from `oldSealer` to `newSealer` and records
 * the sealed key in one transaction.
 */
async function resealAll(
  engine: LocalEngine,
  specs: readonly SealedColumnSpec[],
  oldSealer: Sealer | undefined,
  newSealer: Sealer | undefined,
  newKeyId: string,
): Promise<void> {
  engine.begin("write");
  try {
    engine.exec(
      `CREATE TABLE IF NOT EXISTS ${META_TABLE} (k TEXT PRIMARY KEY, v TEXT) STRICT`,
    );
    engine.run(
      `INSERT OR REPLACE INTO ${META_TABLE} (k, v) VALUES ('reseal_specs', ?)`,
      [
        JSON.stringify(specs),
      ],
    );
    for (const spec of specs) {
      const t = quoteIdent(spec.table);
      const c = quoteIdent(spec.column);
      const k = quoteIdent(spec.rowKey);
      const version = spec.schemaVersion ?? 1;
      const rows = engine.run(
        `SELECT ${k} AS k, ${c} AS v FROM ${t} WHERE ${c} IS NOT NULL`,
        undefined,
      ).rows;
      for (const row of rows) {
        const rowKey = row.k as RowKey;
        const aad = sealedColumnAad(spec.table, spec.column, rowKey, version);
        const plain = await oldSealer!.open(row.v as Uint8Array, aad);
        if (newSealer === undefined) {
          plain.fill(0);
          continue;
        }
        const sealed = await newSealer.seal(plain, aad);
        plain.fill(0);
        engine.run(`UPDATE ${t} SET ${c} = ? WHERE ${k} = ?`, [sealed, rowKey]);
      }
    }
    if (newSealer === undefined) {
      // Dry run: only check that every value opens.
      engine.end("write", false);
      return;
    }
    engine.run(
      `INSERT OR REPLACE INTO ${META_TABLE} (k, v) VALUES ('sealed_key_id', ?)`,
      [
        newKeyId,
      ],
    );
    engine.end("write", true);
  } catch (err) {
    engine.end("write", false);
    throw err;
  }
}

/** Adapts the synchronous local engine to the {@linkcode Engine} shape. */
class LocalEngineAdapter implements Engine {
  readonly kind = "local" as const;
  readonly engine: LocalEngine;

  constructor(engine: LocalEngine) {
    this.engine = engine;
  }

  run(sql: string, args: InArgs | undefined): ResultSet {
    return this.engine.run(sql, args);
  }

  exec(sql: string): void {
    this.engine.exec(sql);
  }

  begin(mode: TransactionMode): EngineTx {
    const engine = this.engine;
    if (engine.inTransaction) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        "Cannot start transaction: a transaction was opened with SQL, end it first",
      );
    }
    engine.begin(mode);
    return {
      run: (sql, args) => engine.run(sql, args),
      commit: () => engine.end(mode, true),
      rollback: () => engine.end(mode, false),
    };
  }

  close(): void {
    this.engine.close();
  }
}

/**
 * Restores a backup written by {@linkcode Storage.backup} to `path`: checks
 * that `key` opens it and that it passes `integrity_check`, then copies it
 * (with its key record) into place. The target must not exist.
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
  const opts = resolveStorageOptions(options);
  if (opts.key === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot restore: "key" is required',
    );
  }
  if (
    typeof backupPath !== "string" || typeof path !== "string" || path === ""
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot restore: the paths must be strings",
    );
  }
  const source = resolve(backupPath);
  const target = resolve(path);
  if (await exists(target)) {
    throw new AicoDataError(
      "ALREADY_EXISTS",
      `Cannot restore: "${target}" exists`,
    );
  }
  checkLocalPermissions(target);
  checkLocalPermissions(source);
  if ((await fileSize(source)) === undefined) {
    throw new AicoDataError(
      "NOT_FOUND",
      `Cannot restore: "${source}" does not exist`,
    );
  }
  // Check the backup on a private copy so the backup file stays untouched.
  const staging = `${target}.restoring`;
  await Deno.copyFile(source, staging);
  const sidecar = await readSidecar(source);
  if (sidecar !== undefined && sidecar.keyId !== opts.key.keyId) {
    await Deno.remove(staging).catch(() => {});
    throw new AicoDataError(
      "WRONG_KEY",
      "Cannot restore: the backup belongs to another key",
    );
  }
  const { openLocalEngine } = await import("./_local.ts");
  try {
    const engine = openLocalEngine(staging, await pageKeyOf(opts.key), {
      busyTimeoutMs: opts.busyTimeoutMs,
      statementCacheSize: 8,
      safeText: true,
    }, sidecar === undefined ? "WRONG_KEY" : "CORRUPT_STORE");
    try {
      const integrity = engine.rawRows("PRAGMA integrity_check").map((r) =>
        String(r[0])
      );
      if (integrity.length !== 1 || integrity[0] !== "ok") {
        throw new AicoDataError(
          "CORRUPT_STORE",
          "Cannot restore: the backup fails the integrity check",
        );
      }
      engine.pragma("wal_checkpoint(TRUNCATE)");
    } finally {
      engine.close();
    }
    await writeSidecar(target, opts.key.keyId);
    await Deno.rename(staging, target);
  } catch (err) {
    for (const p of [staging, ...SUFFIXES.map((s) => staging + s)]) {
      await Deno.remove(p).catch(() => {});
    }
    throw err;
  } finally {
    for (const s of SUFFIXES) await Deno.remove(staging + s).catch(() => {});
  }
}
