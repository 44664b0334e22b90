/**
 * `UserService`: users with a sealed JSON profile, and PIN or password
 * credentials hashed with Argon2id, with a persisted lockout.
 *
 * @module
 */
import { argon2id } from "npm:hash-wasm@4.13.0";
import { AicoDataError } from "../errors.ts";
import type { Row, Transaction } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import { bytes, num, optNum, str } from "./_rows.ts";
import { type ColumnSealer, declaredSealer } from "./_sealing.ts";
import {
  checkId,
  checkInt,
  checkObject,
  checkString,
  decodeText,
  invalid,
  type JsonObject,
  toJsonObject,
} from "./_validate.ts";
import { writeTx } from "./_changes.ts";
import {
  type RepositoryOptions,
  resolveRepositoryOptions,
} from "./repository_options.ts";
import type {
  ChangeInput,
  ChangeOp,
  ChangeRecorder,
} from "../changes/types.ts";

/** Largest profile accepted, as JSON, in UTF-8 bytes (64 KiB). */
export const MAX_PROFILE_BYTES = 65_536;
/** Longest password accepted, in UTF-16 code units. */
export const MAX_PASSWORD_LENGTH = 1024;
/** Shortest password accepted. */
export const MIN_PASSWORD_LENGTH = 8;

/** A credential kind: a PIN (4 to 12 digits) or a password (8 to 1024 characters). */
export type CredentialKind = "pin" | "password";

/** A user. */
export interface User {
  /** The id. */
  readonly id: string;
  /** The profile (stored sealed). */
  readonly profile: JsonObject;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** Last update, ms since the epoch. */
  readonly updatedAt: number;
}

/** Input of {@linkcode UserService.createUser}. */
export interface NewUser {
  /** The id, 1 to 128 characters of `[A-Za-z0-9_-]`; a random UUID when absent. */
  readonly id?: string;
  /** The profile, a plain JSON object of at most 64 KiB. Default `{}`. */
  readonly profile?: JsonObject;
}

/** Lockout state of one credential. */
export interface CredentialStatus {
  /** Failed attempts since the last success or lockout. */
  readonly failedAttempts: number;
  /** Lockouts in a row (drives the backoff). */
  readonly lockouts: number;
  /** When the current lockout ends, ms since the epoch; `undefined` when not locked. */
  readonly lockedUntil: number | undefined;
}

/** Argon2id cost parameters. */
export interface Argon2Params {
  /**
   * Memory in KiB.
   *
   * @default {65536}
   */
  readonly memoryKiB?: number;
  /**
   * Passes.
   *
   * @default {3}
   */
  readonly iterations?: number;
  /**
   * Lanes.
   *
   * @default {1}
   */
  readonly parallelism?: number;
}

/** Options of {@linkcode createUserService}. */
/**
 * Options of {@linkcode createUserService}: profile writes record `users`
 * changes (key: the user id); deleting a user also records the deletion of
 * its conversations (scope: the user id) and their messages (scope: the
 * conversation id).
 */
export interface UserServiceOptions extends RepositoryOptions {
  /**
   * Argon2id parameters for new hashes. Values below OWASP's minimum
   * (19 MiB, 2 passes) are refused with `WEAK_KDF_PARAMS` unless
   * `allowWeakArgon2` is set (tests only).
   *
   * @default {{ memoryKiB: 65536, iterations: 3, parallelism: 1 }}
   */
  readonly argon2?: Argon2Params;
  /**
   * Accept Argon2id parameters below the OWASP minimum. For tests only.
   *
   * @default {false}
   */
  readonly allowWeakArgon2?: boolean;
  /**
   * Failed attempts before a lockout.
   *
   * @default {5}
   */
  readonly maxAttempts?: number;
  /**
   * First lockout duration, ms; each further lockout in a row doubles it.
   *
   * @default {30_000}
   */
  readonly lockoutMs?: number;
  /**
   * Longest lockout, ms.
   *
   * @default {3_600_000}
   */
  readonly maxLockoutMs?: number;
}

/** The resolved form of {@linkcode UserServiceOptions}. */
export interface ResolvedUserServiceOptions {
  /** See {@linkcode UserServiceOptions.argon2}. */
  readonly argon2: Readonly<Required<Argon2Params>>;
  /** See {@linkcode UserServiceOptions.maxAttempts}. */
  readonly maxAttempts: number;
  /** See {@linkcode UserServiceOptions.lockoutMs}. */
  readonly lockoutMs: number;
  /** See {@linkcode UserServiceOptions.maxLockoutMs}. */
  readonly maxLockoutMs: number;
  /** See {@linkcode RepositoryOptions.changes}. */
  readonly changes: ChangeRecorder | undefined;
  /** See {@linkcode RepositoryOptions.now}. */
  readonly now: () => number;
}

/**
 * Users and their credentials.
 *
 * @remarks
 * Credentials: Argon2id (hash-wasm), 16-byte random salt, 32-byte hash; the
 * parameters are stored beside the hash (JSON), so changing the defaults
 * keeps old hashes verifiable. `salt ‖ hash` is sealed with the store's
 * sealed-column helper bound to the row key `"<userId>/<kind>"`, so a stolen
 * database file does not allow offline PIN guessing without the data key.
 * Comparison is constant-time.
 *
 * Lockout: every verification first reserves an attempt in the database
 * (so parallel guesses cannot exceed `maxAttempts`); after `maxAttempts`
 * failures the credential is locked for `lockoutMs · 2^(lockouts-1)` (at
 * most `maxLockoutMs`). During a lockout `verifyCredential` throws
 * `LOCKED_OUT` without hashing. A success resets the counters. The state is
 * in the database: it survives a restart. An attempt interrupted by a crash
 * counts as failed.
 */
export interface UserService {
  /**
   * Creates a user.
   *
   * @param user The id and profile.
   * @returns The user.
   * @throws {AicoDataError} `INVALID_INPUT`, `ALREADY_EXISTS`.
   */
  createUser(user?: NewUser): Promise<User>;
  /**
   * Reads a user.
   *
   * @param id The id.
   * @returns The user.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`, `AUTH_FAILED` for a tampered profile.
   */
  getUser(id: string): Promise<User>;
  /**
   * Replaces a user's profile.
   *
   * @param id The id.
   * @param profile The new profile.
   * @returns The updated user.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`.
   */
  updateProfile(id: string, profile: JsonObject): Promise<User>;
  /**
   * Deletes a user with its credentials and conversations (and their messages).
   *
   * @param id The id.
   * @returns `true` when the user existed.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  deleteUser(id: string): Promise<boolean>;
  /**
   * Sets (or replaces) a PIN or password; resets its lockout.
   *
   * @param userId The user.
   * @param kind `"pin"` (4 to 12 digits) or `"password"` (8 to 1024 characters).
   * @param secret The PIN or password.
   * @returns When stored.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`.
   */
  setCredential(
    userId: string,
    kind: CredentialKind,
    secret: string,
  ): Promise<void>;
  /**
   * Verifies a PIN or password.
   *
   * @param userId The user.
   * @param kind The credential kind.
   * @param secret The attempt.
   * @returns `true` when it matches.
   * @throws {AicoDataError} `LOCKED_OUT` during a lockout (no hashing done),
   * `NOT_FOUND` when no such credential, `INVALID_INPUT` for a malformed attempt.
   */
  verifyCredential(
    userId: string,
    kind: CredentialKind,
    secret: string,
  ): Promise<boolean>;
  /**
   * Reads the lockout state of a credential.
   *
   * @param userId The user.
   * @param kind The credential kind.
   * @returns The state.
   * @throws {AicoDataError} `NOT_FOUND`, `INVALID_INPUT`.
   */
  credentialStatus(
    userId: string,
    kind: CredentialKind,
  ): Promise<CredentialStatus>;
  /**
   * Removes a credential.
   *
   * @param userId The user.
   * @param kind The credential kind.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  removeCredential(userId: string, kind: CredentialKind): Promise<boolean>;
}

/** OWASP minimum for Argon2id: 19 MiB, 2 passes, 1 lane. */
const OWASP_MIN = { memoryKiB: 19_456, iterations: 2 };

/**
 * Normalises {@linkcode UserServiceOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option,
 * `WEAK_KDF_PARAMS` for Argon2id parameters below the OWASP minimum.
 *
 * @example Defaults and the weak-parameter guard
 * ```ts
 * import { resolveUserServiceOptions } from "./user_service.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveUserServiceOptions();
 * assert.deepEqual(o.argon2, { memoryKiB: 65536, iterations: 3, parallelism: 1 });
 * assert.equal(o.maxAttempts, 5);
 * assert.throws(
 *   () => resolveUserServiceOptions({ argon2: { memoryKiB: 1024 } }),
 *   (e) => isAicoDataError(e, "WEAK_KDF_PARAMS"),
 * );
 * ```
 */
export function resolveUserServiceOptions(
  options: UserServiceOptions = {},
): ResolvedUserServiceOptions {
  const what = "create user service";
  const o = checkObject(options, "options", what);
  const a = checkObject(o.argon2, "argon2", what);
  const argon2 = Object.freeze({
    memoryKiB: a.memoryKiB === undefined
      ? 65_536
      : checkInt(a.memoryKiB, "argon2.memoryKiB", what, 8, 4_194_304),
    iterations: a.iterations === undefined
      ? 3
      : checkInt(a.iterations, "argon2.iterations", what, 1, 64),
    parallelism: a.parallelism === undefined
      ? 1
      : checkInt(a.parallelism, "argon2.parallelism", what, 1, 16),
  });
  if (argon2.memoryKiB < 8 * argon2.parallelism) {
    throw invalid(what, '"argon2.memoryKiB" must be at least 8 per lane');
  }
  if (
    o.allowWeakArgon2 !== true &&
    (argon2.memoryKiB < OWASP_MIN.memoryKiB ||
      argon2.iterations < OWASP_MIN.iterations)
  ) {
    throw new AicoDataError(
      "WEAK_KDF_PARAMS",
      `Cannot create user service: Argon2id parameters below the minimum (${OWASP_MIN.memoryKiB} KiB, ${OWASP_MIN.iterations} passes)`,
    );
  }
  const now = o.now ?? Date.now;
  if (typeof now !== "function") {
    throw invalid(what, '"now" must be a function');
  }
  const maxAttempts = o.maxAttempts === undefined
    ? 5
    : checkInt(o.maxAttempts, "maxAttempts", what, 1, 1000);
  const lockoutMs = o.lockoutMs === undefined
    ? 30_000
    : checkInt(o.lockoutMs, "lockoutMs", what, 1, Number.MAX_SAFE_INTEGER);
  const maxLockoutMs = o.maxLockoutMs === undefined ? 3_600_000 : checkInt(
    o.maxLockoutMs,
    "maxLockoutMs",
    what,
    lockoutMs,
    Number.MAX_SAFE_INTEGER,
  );
  return Object.freeze({
    argon2,
    maxAttempts,
    lockoutMs,
    maxLockoutMs: Math.max(maxLockoutMs, lockoutMs),
    ...resolveRepositoryOptions(o as RepositoryOptions, what),
  });
}

const SALT_LENGTH = 16;
const HASH_LENGTH = 32;
const PIN_RE = /^[0-9]{4,12}$/;

interface StoredParams {
  readonly alg: "argon2id";
  readonly v: 19;
  readonly m: number;
  readonly t: number;
  readonly p: number;
  readonly saltLength: number;
  readonly hashLength: number;
}

function checkKind(kind: unknown, what: string): CredentialKind {
  if (kind !== "pin" && kind !== "password") {
    throw invalid(what, '"kind" must be "pin" or "password"');
  }
  return kind;
}

function checkSecret(
  kind: CredentialKind,
  secret: unknown,
  what: string,
): string {
  if (kind === "pin") {
    if (typeof secret !== "string" || !PIN_RE.test(secret)) {
      throw invalid(what, "a PIN must be 4 to 12 digits");
    }
    return secret;
  }
  return checkString(
    secret,
    "password",
    what,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
  );
}

function parseParams(text: string): StoredParams {
  let p: StoredParams;
  try {
    p = JSON.parse(text) as StoredParams;
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      "Cannot verify credential: stored parameters are not JSON",
      { cause },
    );
  }
  if (
    p.alg !== "argon2id" || p.v !== 19 || !Number.isInteger(p.m) ||
    !Number.isInteger(p.t) ||
    !Number.isInteger(p.p) || p.saltLength !== SALT_LENGTH ||
    p.hashLength !== HASH_LENGTH
  ) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      "Cannot verify credential: unknown stored parameters",
    );
  }
  return p;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

class UserServiceImpl implements UserService {
  #db: RepositoryStorage;
  #o: ResolvedUserServiceOptions;
  #profiles: ColumnSealer;
  #hashes: ColumnSealer;

  constructor(db: RepositoryStorage, options: ResolvedUserServiceOptions) {
    this.#db = db;
    this.#o = options;
    this.#profiles = declaredSealer(db, "users", "profile");
    this.#hashes = declaredSealer(db, "user_credentials", "hash");
  }

  async #toUser(row: Row): Promise<User> {
    const id = str(row.id);
    const text = decodeText(
      await this.#profiles.open(id, bytes(row.profile)),
      "read user",
    );
    return {
      id,
      profile: JSON.parse(text) as JsonObject,
      createdAt: num(row.created_at),
      updatedAt: num(row.updated_at),
    };
  }

  async #changed(tx: Transaction, op: ChangeOp, id: string): Promise<void> {
    await this.#o.changes?.record(tx, [{ table: "users", op, keys: [id] }]);
  }

  async createUser(user: NewUser = {}): Promise<User> {
    const what = "create user";
    const u = checkObject(user, "user", what);
    const id = u.id === undefined
      ? crypto.randomUUID()
      : checkId(u.id, "id", what);
    const profile = u.profile === undefined
      ? "{}"
      : toJsonObject(u.profile, "profile", what, MAX_PROFILE_BYTES);
    const sealed = await this.#profiles.seal(id, profile);
    const now = this.#o.now();
    await writeTx(this.#db, this.#o, async (tx) => {
      const rs = await tx.execute({
        sql:
          "INSERT INTO users (id, profile, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        args: [id, sealed, now, now],
      });
      if (rs.rowsAffected === 0) {
        throw new AicoDataError(
          "ALREADY_EXISTS",
          `Cannot create user "${id}": it exists already`,
        );
      }
      await this.#changed(tx, "insert", id);
    });
    return {
      id,
      profile: JSON.parse(profile) as JsonObject,
      createdAt: now,
      updatedAt: now,
    };
  }

  async getUser(id: string): Promise<User> {
    checkId(id, "id", "get user");
    const rs = await this.#db.execute({
      sql: "SELECT id, profile, created_at, updated_at FROM users WHERE id = ?",
      args: [id],
    });
    const row = rs.rows[0];
    if (row === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot get user "${id}": not found`,
      );
    }
    return await this.#toUser(row);
  }

  async updateProfile(id: string, profile: JsonObject): Promise<User> {
    const what = "update user";
    checkId(id, "id", what);
    const text = toJsonObject(profile, "profile", what, MAX_PROFILE_BYTES);
    const sealed = await this.#profiles.seal(id, text);
    const now = this.#o.now();
    const createdAt = await writeTx(this.#db, this.#o, async (tx) => {
      const rs = await tx.execute({
        sql:
          "UPDATE users SET profile = ?, updated_at = ? WHERE id = ? RETURNING created_at",
        args: [sealed, now, id],
      });
      const row = rs.rows[0];
      if (row === undefined) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot update user "${id}": not found`,
        );
      }
      await this.#changed(tx, "update", id);
      return num(row.created_at);
    });
    return {
      id,
      profile: JSON.parse(text) as JsonObject,
      createdAt,
      updatedAt: now,
    };
  }

  async deleteUser(id: string): Promise<boolean> {
    checkId(id, "id", "delete user");
    const n = await writeTx(this.#db, this.#o, async (tx) => {
      const changes: ChangeInput[] = [];
      if (this.#o.changes !== undefined) {
        // What the cascade removes is announced too: consumers (a message
        // index) must forget every removed message.
        const rows = (await tx.execute({
          sql:
            "SELECT c.id AS conversation_id, m.id AS message_id FROM conversations c " +
            "LEFT JOIN messages m ON m.conversation_id = c.id WHERE c.user_id = ? ORDER BY c.id, m.id",
          args: [id],
        })).rows;
        const byConversation = new Map<string, string[]>();
        for (const row of rows) {
          const c = str(row.conversation_id);
          let list = byConversation.get(c);
          if (list === undefined) byConversation.set(c, list = []);
          if (row.message_id !== null) list.push(String(row.message_id));
        }
        for (const [c, keys] of byConversation) {
          if (keys.length > 0) {
            changes.push({ table: "messages", op: "delete", keys, scope: c });
          }
        }
        if (byConversation.size > 0) {
          changes.push({
            table: "conversations",
            op: "delete",
            keys: [...byConversation.keys()],
            scope: id,
          });
        }
      }
      await tx.execute({
        sql:
          "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id = ?)",
        args: [id],
      });
      await tx.execute({
        sql:
          "DELETE FROM message_gaps WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id = ?)",
        args: [id],
      });
      await tx.execute({
        sql: "DELETE FROM conversations WHERE user_id = ?",
        args: [id],
      });
      await tx.execute({
        sql: "DELETE FROM user_credentials WHERE user_id = ?",
        args: [id],
      });
      const rs = await tx.execute({
        sql: "DELETE FROM users WHERE id = ?",
        args: [id],
      });
      if (rs.rowsAffected > 0) {
        changes.push({ table: "users", op: "delete", keys: [id] });
      }
      if (changes.length > 0) await this.#o.changes?.record(tx, changes);
      return rs.rowsAffected;
    });
    return n > 0;
  }

  async #hash(
    secret: string,
    salt: Uint8Array,
    p: { m: number; t: number; p: number },
  ): Promise<Uint8Array> {
    return await argon2id({
      password: secret,
      salt,
      iterations: p.t,
      parallelism: p.p,
      memorySize: p.m,
      hashLength: HASH_LENGTH,
      outputType: "binary",
    });
  }

  async setCredential(
    userId: string,
    kind: CredentialKind,
    secret: string,
  ): Promise<void> {
    const what = "set credential";
    checkId(userId, "userId", what);
    checkKind(kind, what);
    checkSecret(kind, secret, what);
    const exists = await this.#db.execute({
      sql: "SELECT 1 AS x FROM users WHERE id = ?",
      args: [userId],
    });
    if (exists.rows.length === 0) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot set credential of user "${userId}": not found`,
      );
    }
    const a = this.#o.argon2;
    const params: StoredParams = {
      alg: "argon2id",
      v: 19,
      m: a.memoryKiB,
      t: a.iterations,
      p: a.parallelism,
      saltLength: SALT_LENGTH,
      hashLength: HASH_LENGTH,
    };
    const salt = crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
    const hash = await this.#hash(secret, salt, params);
    const blob = new Uint8Array(SALT_LENGTH + HASH_LENGTH);
    blob.set(salt);
    blob.set(hash, SALT_LENGTH);
    const sealed = await this.#hashes.seal(`${userId}/${kind}`, blob);
    await this.#db.transaction(async (tx) => {
      // Foreign key independent: the user may have been deleted meanwhile.
      const rs = await tx.execute({
        sql:
          "INSERT INTO user_credentials (row_key, user_id, kind, hash, params, failed_attempts, lockouts, locked_until, updated_at) " +
          "SELECT ?, ?, ?, ?, ?, 0, 0, NULL, ? WHERE EXISTS (SELECT 1 FROM users WHERE id = ?) " +
          "ON CONFLICT (user_id, kind) DO UPDATE SET hash = excluded.hash, params = excluded.params, " +
          "failed_attempts = 0, lockouts = 0, locked_until = NULL, updated_at = excluded.updated_at",
        args: [
          `${userId}/${kind}`,
          userId,
          kind,
          sealed,
          JSON.stringify(params),
          this.#o.now(),
          userId,
        ],
      });
      if (rs.rowsAffected === 0) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot set credential of user "${userId}": not found`,
        );
      }
    }, "write");
  }

  async verifyCredential(
    userId: string,
    kind: CredentialKind,
    secret: string,
  ): Promise<boolean> {
    const what = "verify credential";
    checkId(userId, "userId", what);
    checkKind(kind, what);
    if (typeof secret !== "string" || secret.length > MAX_PASSWORD_LENGTH) {
      throw invalid(
        what,
        "the attempt must be a string of at most 1024 characters",
      );
    }
    // 1. Reserve an attempt (or refuse during a lockout) before any hashing.
    const reserved = await this.#db.transaction(async (tx) => {
      const rs = await tx.execute({
        sql:
          "SELECT hash, params, failed_attempts, locked_until FROM user_credentials WHERE user_id = ? AND kind = ?",
        args: [userId, kind],
      });
      const row = rs.rows[0];
      if (row === undefined) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot verify credential "${kind}" of user "${userId}": not set`,
        );
      }
      const now = this.#o.now();
      const lockedUntil = optNum(row.locked_until);
      if (lockedUntil !== undefined && lockedUntil > now) {
        throw new AicoDataError(
          "LOCKED_OUT",
          `Cannot verify credential "${kind}" of user "${userId}": locked for ${
            Math.ceil((lockedUntil - now) / 1000)
          } s`,
        );
      }
      if (num(row.failed_attempts) >= this.#o.maxAttempts) {
        throw new AicoDataError(
          "LOCKED_OUT",
          `Cannot verify credential "${kind}" of user "${userId}": too many attempts in progress`,
        );
      }
      await tx.execute({
        sql:
          "UPDATE user_credentials SET failed_attempts = failed_attempts + 1 WHERE user_id = ? AND kind = ?",
        args: [userId, kind],
      });
      return { hash: bytes(row.hash), params: str(row.params) };
    }, "write");
    // 2. Hash outside the transaction.
    const params = parseParams(reserved.params);
    const blob = await this.#hashes.open(`${userId}/${kind}`, reserved.hash);
    if (blob.length !== SALT_LENGTH + HASH_LENGTH) {
      throw new AicoDataError(
        "CORRUPT_VALUE",
        "Cannot verify credential: stored hash has a wrong length",
      );
    }
    // An empty attempt cannot match (hash-wasm refuses it): a failure.
    const candidate = secret === ""
      ? new Uint8Array(HASH_LENGTH)
      : await this.#hash(
        secret,
        blob.subarray(0, SALT_LENGTH),
        params,
      );
    const ok = secret !== "" &&
      constantTimeEqual(candidate, blob.subarray(SALT_LENGTH));
    // 3. Settle the attempt.
    await this.#db.transaction(async (tx) => {
      if (ok) {
        await tx.execute({
          sql:
            "UPDATE user_credentials SET failed_attempts = 0, lockouts = 0, locked_until = NULL WHERE user_id = ? AND kind = ?",
          args: [userId, kind],
        });
        return;
      }
      const rs = await tx.execute({
        sql:
          "SELECT failed_attempts, lockouts FROM user_credentials WHERE user_id = ? AND kind = ?",
        args: [userId, kind],
      });
      const row = rs.rows[0];
      if (row === undefined || num(row.failed_attempts) < this.#o.maxAttempts) {
        return;
      }
      const lockouts = num(row.lockouts) + 1;
      const duration = Math.min(
        this.#o.maxLockoutMs,
        this.#o.lockoutMs * 2 ** Math.min(lockouts - 1, 40),
      );
      await tx.execute({
        sql:
          "UPDATE user_credentials SET failed_attempts = 0, lockouts = ?, locked_until = ? WHERE user_id = ? AND kind = ?",
        args: [lockouts, this.#o.now() + duration, userId, kind],
      });
    }, "write");
    return ok;
  }

  async credentialStatus(
    userId: string,
    kind: CredentialKind,
  ): Promise<CredentialStatus> {
    const what = "get credential status";
    checkId(userId, "userId", what);
    checkKind(kind, what);
    const rs = await this.#db.execute({
      sql:
        "SELECT failed_attempts, lockouts, locked_until FROM user_credentials WHERE user_id = ? AND kind = ?",
      args: [userId, kind],
    });
    const row = rs.rows[0];
    if (row === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot get credential "${kind}" of user "${userId}": not set`,
      );
    }
    const lockedUntil = optNum(row.locked_until);
    return {
      failedAttempts: num(row.failed_attempts),
      lockouts: num(row.lockouts),
      lockedUntil: lockedUntil !== undefined && lockedUntil > this.#o.now()
        ? lockedUntil
        : undefined,
    };
  }

  async removeCredential(
    userId: string,
    kind: CredentialKind,
  ): Promise<boolean> {
    const what = "remove credential";
    checkId(userId, "userId", what);
    checkKind(kind, what);
    const rs = await this.#db.execute({
      sql: "DELETE FROM user_credentials WHERE user_id = ? AND kind = ?",
      args: [userId, kind],
    });
    return rs.rowsAffected > 0;
  }
}

/**
 * Creates a {@linkcode UserService} over a store holding the core schema.
 *
 * Permissions: those of the store.
 *
 * @param storage The store.
 * @param options See {@linkcode UserServiceOptions}.
 * @returns The service.
 * @throws {AicoDataError} `INVALID_INPUT`, `WEAK_KDF_PARAMS`.
 *
 * @example A PIN with lockout
 * ```ts
 * import { createUserService } from "./user_service.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const users = createUserService(store.storage, {
 *   argon2: { memoryKiB: 1024, iterations: 1 }, // tests only: keep the defaults
 *   allowWeakArgon2: true,
 * });
 * const user = await users.createUser({ profile: { name: "Ada" } });
 * await users.setCredential(user.id, "pin", "4711");
 * assert.equal(await users.verifyCredential(user.id, "pin", "4711"), true);
 * assert.equal(await users.verifyCredential(user.id, "pin", "0000"), false);
 * assert.deepEqual((await users.getUser(user.id)).profile, { name: "Ada" });
 * ```
 */
export function createUserService(
  storage: RepositoryStorage,
  options: UserServiceOptions = {},
): UserService {
  return new UserServiceImpl(storage, resolveUserServiceOptions(options));
}
