/**
 * The error type shared by every module of `@aico/data`.
 *
 * Every failure the toolkit reports on purpose is an {@linkcode AicoDataError}
 * with a stable string {@linkcode AicoDataError.code}: match on the code, never
 * on the message text. Errors from libSQL, LMDB, DuckDB and Chroma are
 * translated at the adapter boundary and kept as `cause`.
 *
 * Messages never contain key material, passphrases or the plaintext of sealed
 * data.
 *
 * @example Matching on the code
 * ```ts
 * import { AicoDataError, isAicoDataError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new AicoDataError("INVALID_INPUT", "Cannot store value: not a string");
 * assert.ok(isAicoDataError(err, "INVALID_INPUT"));
 * assert.equal(err.code, "INVALID_INPUT");
 * ```
 *
 * @module
 */

/**
 * The stable codes of {@linkcode AicoDataError}.
 *
 * - `INVALID_INPUT`: an argument has the wrong type, size or form.
 * - `WRONG_KEY`: a passphrase or key does not match the store.
 * - `AUTH_FAILED`: a sealed value failed authentication (tampered, moved, wrong key).
 * - `WEAK_KDF_PARAMS`: key-derivation parameters below the allowed minimum.
 * - `NONCE_BUDGET_EXHAUSTED`: a key sealed as many values as random nonces allow.
 * - `KEY_FILE_CORRUPT`: a key file cannot be parsed or is of an unknown version.
 * - `KEYRING_UNAVAILABLE`: the OS keyring is locked, missing or refused the request.
 * - `PERMISSION_DENIED`: a Deno permission is missing (the message names the flag).
 * - `STORE_CLOSED`: a resource was used after `close()`.
 * - `CORRUPT_VALUE`: a stored value cannot be decoded (for example invalid UTF-8).
 * - `CORRUPT_STORE`: a store's file is damaged.
 * - `CONNECTION_FAILED`: a remote server could not be reached.
 * - `TRANSACTION_MISUSE`: a nested, concurrent or finished transaction was used.
 * - `SQL_ERROR`: the database rejected a statement.
 * - `CONSTRAINT_VIOLATION`: the database refused a write for a constraint.
 * - `BUSY`: the store is locked by another connection for too long.
 * - `NOT_FOUND`: the requested record does not exist.
 * - `ALREADY_EXISTS`: the record to create exists already.
 * - `MIGRATION_FAILED`: a migration statement failed; the version was rolled back.
 * - `MIGRATION_CHECKSUM`: an applied migration's definition changed.
 * - `MIGRATION_IRREVERSIBLE`: a down migration was asked of an irreversible version.
 * - `MIGRATION_LOCKED`: another process holds the migration lock.
 * - `SCHEMA_INVALID`: a schema registration is malformed (gap, duplicate, ...).
 * - `PLUGIN_ISOLATION`: a plugin migration touches objects outside its namespace.
 * - `LOCKED_OUT`: too many failed credential attempts.
 * - `QUEUE_FULL`: a bounded queue refused more work.
 * - `CACHE_ERROR`: the cache backend failed.
 * - `DISK_FULL`: the disk (or the quota) is full; nothing of the failed write is kept.
 * - `ABORTED`: an operation was stopped through its `AbortSignal`.
 * - `EMBEDDING_FAILED`: an embedding model or server failed or answered malformed vectors.
 * - `IMPORT_INVALID`: an import file is malformed (names the file, conversation and field).
 * - `EMBEDDER_MISMATCH`: a vector collection was built by another embedder
 *   (id, dimensions or metric).
 * - `SYNC_REPLAY`: a sync target holds an older manifest or segment than one already seen.
 * - `DEVICE_REMOVED`: this sync device was removed from the target by another device.
 */
export type AicoDataErrorCode =
  | "INVALID_INPUT"
  | "WRONG_KEY"
  | "AUTH_FAILED"
  | "WEAK_KDF_PARAMS"
  | "NONCE_BUDGET_EXHAUSTED"
  | "KEY_FILE_CORRUPT"
  | "KEYRING_UNAVAILABLE"
  | "PERMISSION_DENIED"
  | "STORE_CLOSED"
  | "CORRUPT_VALUE"
  | "CORRUPT_STORE"
  | "CONNECTION_FAILED"
  | "TRANSACTION_MISUSE"
  | "SQL_ERROR"
  | "CONSTRAINT_VIOLATION"
  | "BUSY"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "MIGRATION_FAILED"
  | "MIGRATION_CHECKSUM"
  | "MIGRATION_IRREVERSIBLE"
  | "MIGRATION_LOCKED"
  | "SCHEMA_INVALID"
  | "PLUGIN_ISOLATION"
  | "LOCKED_OUT"
  | "QUEUE_FULL"
  | "CACHE_ERROR"
  | "DISK_FULL"
  | "ABORTED"
  | "EMBEDDING_FAILED"
  | "IMPORT_INVALID"
  | "EMBEDDER_MISMATCH"
  | "SYNC_REPLAY"
  | "DEVICE_REMOVED";

/**
 * The base error of `@aico/data`: a message for people and a stable
 * {@linkcode AicoDataErrorCode} for programs.
 *
 * @example Creating and inspecting an error
 * ```ts
 * import { AicoDataError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new AicoDataError("STORE_CLOSED", "Cannot execute: the store is closed");
 * assert.ok(err instanceof Error);
 * assert.equal(err.name, "AicoDataError");
 * assert.equal(err.code, "STORE_CLOSED");
 * ```
 */
export class AicoDataError extends Error {
  /** The stable code to match on. */
  readonly code: AicoDataErrorCode;

  /**
   * Creates an error.
   *
   * @param code The stable code.
   * @param message A sentence-case message without a final period.
   * @param options `cause`: the underlying error, kept for debugging.
   */
  constructor(
    code: AicoDataErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * Tells whether a value is an {@linkcode AicoDataError}, optionally of one code.
 *
 * @param value Anything caught.
 * @param code When given, the code the error must have.
 * @returns `true` when `value` is such an error.
 *
 * @example Narrowing a caught value
 * ```ts
 * import { AicoDataError, isAicoDataError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const caught: unknown = new AicoDataError("WRONG_KEY", "Cannot unlock: wrong passphrase");
 * assert.ok(isAicoDataError(caught, "WRONG_KEY"));
 * assert.ok(!isAicoDataError(caught, "AUTH_FAILED"));
 * assert.ok(!isAicoDataError(new Error("x")));
 * ```
 */
export function isAicoDataError(
  value: unknown,
  code?: AicoDataErrorCode,
): value is AicoDataError {
  return value instanceof AicoDataError &&
    (code === undefined || value.code === code);
}

/**
 * A failure of one statement of a batch (`Storage.batch()`): nothing of the
 * batch is kept. The code is the failing statement's (`SQL_ERROR`,
 * `CONSTRAINT_VIOLATION`, `BUSY`, ...).
 *
 * @example Finding the failing statement
 * ```ts
 * import { AicoDataError, BatchError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new BatchError("CONSTRAINT_VIOLATION", "Cannot run batch: statement 1 failed", {
 *   statementIndex: 1,
 *   extendedCode: "SQLITE_CONSTRAINT_PRIMARYKEY",
 * });
 * assert.ok(err instanceof AicoDataError);
 * assert.equal(err.name, "BatchError");
 * assert.equal(err.statementIndex, 1);
 * assert.equal(err.extendedCode, "SQLITE_CONSTRAINT_PRIMARYKEY");
 * ```
 */
export class BatchError extends AicoDataError {
  /** The index of the failing statement in the batch, from 0. */
  readonly statementIndex: number;
  /**
   * The driver's extended result code of the failure (for example
   * `SQLITE_CONSTRAINT_UNIQUE`), or `undefined` when the failure did not
   * come from the database (a bad argument).
   */
  readonly extendedCode: string | undefined;

  /**
   * Creates the error.
   *
   * @param code The failing statement's code.
   * @param message A sentence-case message without a final period.
   * @param options The statement index, the driver's extended code and the
   *   `cause`.
   */
  constructor(
    code: AicoDataErrorCode,
    message: string,
    options: {
      readonly statementIndex: number;
      readonly extendedCode?: string | undefined;
      readonly cause?: unknown;
    },
  ) {
    super(
      code,
      message,
      "cause" in options ? { cause: options.cause } : undefined,
    );
    this.statementIndex = options.statementIndex;
    this.extendedCode = options.extendedCode;
  }
}
