/**
 * The public API of the LMDB session cache: {@linkcode openCache}, its options
 * and the interfaces it returns.
 *
 * @module
 */

import { AicoDataError, isAicoDataError } from "../errors.ts";
import { checkCachePermissions } from "./_permissions.ts";

/**
 * What {@linkcode openCache} needs of a data key: the crypto module's
 * `DataKey` (from `importDataKey` or `unlockKeyFile`) satisfies it.
 */
export interface CacheKeySource {
  /**
   * Derives the 32 raw bytes of a purpose key; the cache asks for `cache`.
   *
   * @param purpose The purpose, `cache`.
   * @returns 32 bytes.
   */
  purposeKeyBytes(purpose: "cache"): Promise<Uint8Array>;
}

/** Options of {@linkcode openCache}. */
export interface CacheOptions {
  /**
   * The cache directory (created when missing). It holds `cache.mdb`,
   * `cache.mdb-lock`, `key-check.json`, `open.lock` and, while closed,
   * `clean-close.json`;
   * deleting it loses nothing that matters.
   */
  readonly path: string;
  /**
   * The key: a data key (`DataKey` of the crypto module; its `cache` purpose
   * key is used) or the 32 raw bytes of a cache key.
   */
  readonly key: CacheKeySource | Uint8Array;
  /**
   * Time to live of an entry set without `ttlMs`, in milliseconds.
   * `Infinity` means entries never expire.
   *
   * @default {300000}
   */
  readonly defaultTtlMs?: number;
  /**
   * Size limit: the sum of entry sizes (UTF-8 key bytes plus stored value
   * bytes). Least recently used entries (CLOCK approximation) are evicted
   * beyond it.
   *
   * @default {67108864}
   */
  readonly maxBytes?: number;
  /**
   * Entry-count limit. Least recently used entries (CLOCK approximation) are
   * evicted beyond it.
   *
   * @default {100000}
   */
  readonly maxEntries?: number;
  /**
   * Interval of the background sweeper that deletes expired entries, in
   * milliseconds; `0` turns it off (expired entries are still never served,
   * and are deleted when read or by {@linkcode Cache.sweep}).
   *
   * @default {60000}
   */
  readonly sweepIntervalMs?: number;
  /**
   * The clock, in milliseconds since the epoch (inject one to control time in
   * tests).
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/** {@linkcode CacheOptions} with defaults applied and checked (without the key). */
export interface ResolvedCacheOptions {
  /** See {@linkcode CacheOptions.path}. */
  readonly path: string;
  /** See {@linkcode CacheOptions.defaultTtlMs}. */
  readonly defaultTtlMs: number;
  /** See {@linkcode CacheOptions.maxBytes}. */
  readonly maxBytes: number;
  /** See {@linkcode CacheOptions.maxEntries}. */
  readonly maxEntries: number;
  /** See {@linkcode CacheOptions.sweepIntervalMs}. */
  readonly sweepIntervalMs: number;
  /** See {@linkcode CacheOptions.now}. */
  readonly now: () => number;
}

/** Options of a write. */
export interface CacheSetOptions {
  /**
   * Time to live of this entry in milliseconds (`Infinity`: no expiry).
   *
   * @default {the cache's `defaultTtlMs`}
   */
  readonly ttlMs?: number;
}

/** Counters of a cache handle, since it was opened. */
export interface CacheStats {
  /** Reads that returned a value. */
  readonly hits: number;
  /** Reads that found nothing, an expired entry or an undecodable one. */
  readonly misses: number;
  /** Entries removed to keep within `maxBytes` / `maxEntries`. */
  readonly evictions: number;
  /** Expired entries deleted (on read, by the sweeper or at open). */
  readonly expirations: number;
  /** Entries that failed to decode and were deleted. */
  readonly corruptEntries: number;
  /** Live entries known to this handle. */
  readonly entries: number;
  /** Sum of entry sizes (UTF-8 key bytes plus stored value bytes). */
  readonly bytes: number;
}

/**
 * The operations on one namespace of the cache. Keys are non-empty strings
 * without NUL characters or lone surrogates; with the namespace they must fit
 * LMDB's key limit (`<namespace>:<key>` at most 1978 UTF-8 bytes). Values are
 * structured: `null`, booleans, numbers, strings, `Date`, `Uint8Array`, arrays
 * and plain objects of them (no functions, symbols, BigInt, `Map`, `Set`,
 * class instances or cycles).
 */
export interface CacheStore {
  /**
   * Reads a value (synchronously: LMDB reads are memory-mapped).
   *
   * @param key The key.
   * @returns The value, or `undefined` when missing, expired or undecodable.
   * @throws {AicoDataError} `INVALID_INPUT` for a bad key, `STORE_CLOSED`
   * after close, `CACHE_ERROR` when LMDB fails.
   */
  get<T = unknown>(key: string): T | undefined;
  /**
   * Tells whether a live entry exists (without decoding the value).
   *
   * @param key The key.
   * @returns `true` when a value would be returned by `get`.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`, `CACHE_ERROR`.
   */
  has(key: string): boolean;
  /**
   * Writes a value; resolves once it is committed.
   *
   * @param key The key.
   * @param value A structured value (not `undefined`).
   * @param options The time to live.
   * @returns Nothing.
   * @throws {AicoDataError} `INVALID_INPUT` for a bad key, a value that cannot
   * be serialised or is larger than `maxBytes` (nothing is changed),
   * `STORE_CLOSED`, `CACHE_ERROR`.
   */
  set(key: string, value: unknown, options?: CacheSetOptions): Promise<void>;
  /**
   * Writes several values in one LMDB transaction. All are checked first: one
   * bad key or value rejects the call and nothing is written.
   *
   * @param entries `[key, value]` pairs.
   * @param options The time to live of every entry.
   * @returns Nothing.
   * @throws {AicoDataError} As {@linkcode CacheStore.set}.
   */
  setMany(
    entries: Iterable<readonly [string, unknown]>,
    options?: CacheSetOptions,
  ): Promise<void>;
  /**
   * Deletes an entry.
   *
   * @param key The key.
   * @returns `true` when an entry existed.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`, `CACHE_ERROR`.
   */
  delete(key: string): Promise<boolean>;
  /**
   * Returns the cached value, or computes, stores and returns it. Concurrent
   * callers of the same key share one computation. When the key is
   * invalidated while computing, the result is returned but not stored.
   *
   * @param key The key.
   * @param compute Makes the value (not `undefined`).
   * @param options The time to live of a computed value.
   * @returns The cached or computed value.
   * @throws {AicoDataError} `INVALID_INPUT` for a bad key or computed value,
   * `STORE_CLOSED`, `CACHE_ERROR`; an error of `compute` is passed on and
   * nothing is stored.
   */
  getOrSet<T>(
    key: string,
    compute: () => T | Promise<T>,
    options?: CacheSetOptions,
  ): Promise<T>;
  /**
   * Deletes every entry whose key starts with `prefix` (all entries of the
   * namespace when `prefix` is empty). Entries are unreadable as soon as this
   * is called, before the deletion commits.
   *
   * @param prefix The key prefix.
   * @returns The number of entries deleted.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`, `CACHE_ERROR`.
   */
  invalidate(prefix?: string): Promise<number>;
}

/** A namespace of the cache: its keys do not meet other namespaces' keys. */
export interface CacheNamespace extends CacheStore {
  /** The namespace name. */
  readonly name: string;
}

/** Options of {@linkcode Cache.session}. */
export interface CacheSessionOptions {
  /**
   * Time to live of the session's fields, in milliseconds.
   *
   * @default {the cache's `defaultTtlMs`}
   */
  readonly ttlMs?: number;
}

/**
 * Session state of one conversation: fields stored in the `session`
 * namespace under `<conversationId>/<field>`.
 */
export interface CacheSession {
  /** The conversation id. */
  readonly conversationId: string;
  /**
   * Reads a field.
   *
   * @param field The field name.
   * @returns Its value or `undefined`.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`, `CACHE_ERROR`.
   */
  get<T = unknown>(field: string): T | undefined;
  /**
   * Writes a field.
   *
   * @param field The field name.
   * @param value A structured value.
   * @returns Nothing.
   * @throws {AicoDataError} As {@linkcode CacheStore.set}.
   */
  set(field: string, value: unknown): Promise<void>;
  /**
   * Deletes a field.
   *
   * @param field The field name.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`, `CACHE_ERROR`.
   */
  delete(field: string): Promise<boolean>;
  /**
   * Reads every live field.
   *
   * @returns The fields as a plain object.
   * @throws {AicoDataError} `STORE_CLOSED`, `CACHE_ERROR`.
   */
  entries(): Record<string, unknown>;
  /**
   * Deletes every field of the session.
   *
   * @returns The number of fields deleted.
   * @throws {AicoDataError} `STORE_CLOSED`, `CACHE_ERROR`.
   */
  clear(): Promise<number>;
}

/** What a change-event handler learns besides the payload. */
export interface InvalidationInfo {
  /** The topic, for example `data.changed.users`. */
  readonly topic: string;
}

/**
 * Where change events come from. The `MessageBus` of `bus/` satisfies it:
 * the cache subscribes to the pattern `<topicPrefix>*` (for example
 * `data.changed.*`) and is called for every matching event.
 */
export interface InvalidationSource {
  /**
   * Subscribes to the topics matching a `<prefix>.*` pattern.
   *
   * @param pattern The pattern, for example `data.changed.*`.
   * @param handler Called for each event with its payload and topic.
   * @returns A function that unsubscribes.
   */
  subscribe(
    pattern: `${string}.*`,
    handler: (payload: unknown, info: InvalidationInfo) => void,
  ): () => void;
}

/** Options of {@linkcode Cache.subscribeInvalidation}. */
export interface InvalidationOptions {
  /**
   * The topic prefix, ending with `.`; the rest of the topic is the table
   * name. The cache subscribes to `<topicPrefix>*`.
   *
   * @default {"data.changed."}
   */
  readonly topicPrefix?: string;
  /**
   * Maps a table name to the namespace that caches its rows; a table not
   * listed maps to the namespace of the same name.
   *
   * @default {{}}
   */
  readonly namespaces?: Readonly<Record<string, string>>;
}

/**
 * An open cache. Its own {@linkcode CacheStore} methods use the `default`
 * namespace.
 */
export interface Cache extends CacheStore, AsyncDisposable {
  /** The cache directory. */
  readonly path: string;
  /** `true` once {@linkcode Cache.close} was called. */
  readonly closed: boolean;
  /**
   * A namespace view (cheap; views share the store and its limits).
   *
   * @param name 1 to 64 characters of `[A-Za-z0-9_.-]`.
   * @returns The view.
   * @throws {AicoDataError} `INVALID_INPUT` for a bad name, `STORE_CLOSED`.
   */
  namespace(name: string): CacheNamespace;
  /**
   * Session state of one conversation.
   *
   * @param conversationId A non-empty id without `/` or NUL.
   * @param options The fields' time to live.
   * @returns The session view.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`.
   */
  session(conversationId: string, options?: CacheSessionOptions): CacheSession;
  /**
   * Invalidates entries from change events (the change feed publishes
   * `data.changed.<table>` with `{ op, keys, scope }` after each commit): for an event
   * `<topicPrefix><table>` the namespace is `namespaces[table] ?? table`; a
   * payload `{ keys: string[] }` deletes those keys, `{ prefixes: string[] }`
   * invalidates those prefixes, any other payload invalidates the whole
   * namespace. Affected entries are unreadable when the handler returns.
   * A payload with `op: "insert"` (the change feed's brand-new rows, which
   * cannot be cached yet) is skipped without any work.
   *
   * @param source The event source (the message bus).
   * @param options Topic prefix and table-to-namespace map.
   * @returns A function that unsubscribes (also done by `close()`).
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`.
   */
  subscribeInvalidation(
    source: InvalidationSource,
    options?: InvalidationOptions,
  ): () => void;
  /**
   * Deletes every expired entry now (the sweeper calls this).
   *
   * @returns The number of entries deleted.
   * @throws {AicoDataError} `STORE_CLOSED`, `CACHE_ERROR`.
   */
  sweep(): Promise<number>;
  /**
   * Deletes every entry of every namespace.
   *
   * @returns The number of entries deleted.
   * @throws {AicoDataError} `STORE_CLOSED`, `CACHE_ERROR`.
   */
  clear(): Promise<number>;
  /**
   * The counters of this handle.
   *
   * @returns A snapshot of the counters.
   * @throws {AicoDataError} `STORE_CLOSED`.
   */
  stats(): CacheStats;
  /**
   * Stops the sweeper and subscriptions, waits for pending writes and closes
   * LMDB. Safe to call twice.
   *
   * @returns Nothing.
   */
  close(): Promise<void>;
}

const DEFAULTS = {
  defaultTtlMs: 300_000,
  maxBytes: 64 * 1024 * 1024,
  maxEntries: 100_000,
  sweepIntervalMs: 60_000,
} as const;

function invalid(message: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", message);
}

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  allowInfinity: boolean,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || Number.isNaN(value) || value <= 0 ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw invalid(`Cannot open cache: "${name}" must be a positive number`);
  }
  return value;
}

/**
 * Applies defaults to {@linkcode CacheOptions} and checks them (pure; the key
 * is only checked for its form and is not part of the result).
 *
 * @param options The options.
 * @returns Frozen resolved options.
 * @throws {AicoDataError} `INVALID_INPUT` for an empty path, a key that is
 * neither a data key nor 32 bytes, or a limit, TTL or interval that is not a
 * positive number (`sweepIntervalMs` may be `0`).
 *
 * @example Defaults
 * ```ts
 * import { resolveCacheOptions } from "./cache.ts";
 * import assert from "node:assert/strict";
 *
 * const options = resolveCacheOptions({ path: "/tmp/c", key: new Uint8Array(32) });
 * assert.equal(options.defaultTtlMs, 300_000);
 * assert.equal(options.maxEntries, 100_000);
 * assert.ok(Object.isFrozen(options));
 * ```
 */
export function resolveCacheOptions(
  options: CacheOptions,
): ResolvedCacheOptions {
  if (typeof options !== "object" || options === null) {
    throw invalid("Cannot open cache: options must be an object");
  }
  const { path, key } = options;
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw invalid("Cannot open cache: the path must be a non-empty string");
  }
  const isDataKey = typeof key === "object" && key !== null &&
    !(key instanceof Uint8Array) &&
    typeof (key as Partial<CacheKeySource>).purposeKeyBytes === "function";
  if (!isDataKey && !(key instanceof Uint8Array && key.length === 32)) {
    throw invalid(
      "Cannot open cache: the key must be a data key or 32 raw bytes",
    );
  }
  const sweep = options.sweepIntervalMs;
  if (
    sweep !== undefined &&
    (typeof sweep !== "number" || !Number.isFinite(sweep) || sweep < 0)
  ) {
    throw invalid(
      'Cannot open cache: "sweepIntervalMs" must be 0 or a positive number',
    );
  }
  const now = options.now ?? Date.now;
  if (typeof now !== "function") {
    throw invalid('Cannot open cache: "now" must be a function');
  }
  return Object.freeze({
    path,
    defaultTtlMs: positive(
      "defaultTtlMs",
      options.defaultTtlMs,
      DEFAULTS.defaultTtlMs,
      true,
    ),
    maxBytes: positive("maxBytes", options.maxBytes, DEFAULTS.maxBytes, true),
    maxEntries: positive(
      "maxEntries",
      options.maxEntries,
      DEFAULTS.maxEntries,
      true,
    ),
    sweepIntervalMs: sweep ?? DEFAULTS.sweepIntervalMs,
    now,
  });
}

/**
 * Opens (or creates) an encrypted LMDB cache in a directory.
 *
 * Values are encrypted on disk by lmdb-js's page encryption (ChaCha8) with the
 * `cache` purpose key. That encryption is **unauthenticated**: it hides the
 * data but does not detect tampering. An entry that fails to decode is
 * treated as a miss and deleted, never a crash; a cache directory written
 * with another key (recognised by `key-check.json`) is emptied at open, since
 * the cache is disposable. So is a data file that is not byte for byte what a
 * clean `close()` left (an HMAC under the cache key in `clean-close.json`):
 * a truncated or changed file never reaches LMDB, and after a crash the cache
 * starts empty. On a full disk writes fail with `CACHE_ERROR`; reads,
 * `close()` and later writes keep working. With `--allow-sys=statfs` writes
 * are refused before LMDB sees them once less than 512 KiB is free.
 *
 * Needs `--allow-read` (the directory and `node_modules`), `--allow-write` (the
 * directory), `--allow-ffi`, `--allow-env=PREBUILDS_ONLY,ELECTRON_RUN_AS_NODE,
 * npm_config_arch,npm_config_platform,LIBC,ARM_VERSION,
 * MSGPACKR_NATIVE_ACCELERATION_DISABLED,LMDB_RESTORE` and
 * `--allow-sys=cpus,networkInterfaces,hostname`. lmdb-js is loaded only when
 * this is called.
 *
 * @param options Directory, key, TTL, limits, sweeper and clock.
 * @returns The open cache.
 * @throws {AicoDataError} `INVALID_INPUT` for bad options,
 * `PERMISSION_DENIED` naming the missing flag, `CACHE_ERROR` when LMDB cannot
 * open the directory.
 *
 * @example Caching a profile read
 * ```ts
 * import { openCache } from "./cache.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using cache = await openCache({
 *     path: dir,
 *     key: await importDataKey(generateDataKey()),
 *   });
 *   const profiles = cache.namespace("profile");
 *   const profile = await profiles.getOrSet("42", () => ({ name: "Ada" }), { ttlMs: 60_000 });
 *   assert.deepEqual(profile, { name: "Ada" });
 *   assert.deepEqual(profiles.get("42"), { name: "Ada" });
 *   assert.equal(cache.stats().entries, 1);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openCache(options: CacheOptions): Promise<Cache> {
  const resolved = resolveCacheOptions(options);
  checkCachePermissions(resolved.path);
  let impl: typeof import("./_lmdb_cache.ts");
  try {
    impl = await import("./_lmdb_cache.ts");
  } catch (error) {
    if (isAicoDataError(error)) throw error;
    if (
      error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied
    ) {
      throw new AicoDataError(
        "PERMISSION_DENIED",
        'Cannot load lmdb: missing permission, run again with "--allow-read" covering node_modules',
        { cause: error },
      );
    }
    throw new AicoDataError("CACHE_ERROR", "Cannot load lmdb", {
      cause: error,
    });
  }
  return await impl.openLmdbCache(resolved, options.key);
}
