/**
 * Encrypted libSQL storage: the primary store of every user's data.
 *
 * {@linkcode openStorage} opens a local file encrypted with libSQL's page
 * encryption under the data key's `libsql-page` purpose key (fast path on
 * the synchronous `npm:libsql` driver with a prepared-statement cache) and
 * returns a {@linkcode LocalStorage}, which can also back up, verify and
 * rekey the file. {@linkcode openRemoteStorage} opens a remote or replicated
 * database through `@libsql/client` as a plain {@linkcode Storage} with the
 * same `execute` / `batch` / `transaction` interface. Sensitive columns are
 * sealed with AES-256-GCM bound to table, column and row
 * ({@linkcode Storage.sealedColumn}).
 *
 * Permissions for a local file: `--allow-read` and `--allow-write` on the
 * database folder, `--allow-ffi`, `--allow-sys`, `--allow-env=LIBSQL_JS_DEV`.
 *
 * @example Storing a sealed message
 * ```ts
 * import { openStorage } from "./mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = await importDataKey(generateDataKey());
 *   await using db = await openStorage(`${dir}/user.db`, { key });
 *   await db.execute("CREATE TABLE messages (id TEXT PRIMARY KEY, body BLOB)");
 *   const body = db.sealedColumn("messages", "body");
 *   await db.execute("INSERT INTO messages VALUES (?, ?)", ["m1", await body.seal("m1", "secret")]);
 *   const { rows } = await db.execute("SELECT body FROM messages WHERE id = 'm1'");
 *   assert.equal(await body.openText("m1", rows[0]!.body as Uint8Array), "secret");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export {
  type BackupOptions,
  type LocalStorage,
  openRemoteStorage,
  openStorage,
  type RekeyOptions,
  type RemoteStorageOptions,
  type ResolvedRemoteStorageOptions,
  type ResolvedStorageOptions,
  resolveRemoteStorageOptions,
  resolveStorageOptions,
  restoreStorage,
  type RowKey,
  type SealedColumn,
  sealedColumnAad,
  type SealedColumnOptions,
  type SealedColumnSpec,
  type Storage,
  type StorageOptions,
  type VerifyOptions,
  type VerifyReport,
} from "./storage.ts";
export {
  openRotatingStorage,
  type RotatingKeys,
  type RotatingStorage,
  storageNamesKey,
} from "./open_rotating.ts";
export type {
  InArgs,
  InStatement,
  InValue,
  ResultSet,
  Row,
  SqlExecutor,
  Transaction,
  TransactionMode,
  Value,
} from "./types.ts";
