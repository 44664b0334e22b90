/**
 * Internal: the LMDB implementation of {@linkcode Cache}. This file imports
 * lmdb-js statically and is itself imported only by `openCache()`.
 *
 * Entry format (the LMDB value of key `<namespace>:<key>` in the `entries`
 * database): `version(1) = 0x01 ‖ expiresAt (float64 LE, ms since the epoch,
 * +Infinity for none) ‖ msgpack(value)` (lmdb-js's msgpackr encoder).
 *
 * @module
 */

import { asBinary, open, type RootDatabase } from "npm:lmdb@3.5.6";
import { join } from "node:path";
import { utf8Length } from "../_internal/utf8.ts";
import {
  createPrivateDir,
  PRIVATE_FILE_MODE,
  restrictFilesIn,
} from "../_internal/fs.ts";
import { statfsSync } from "node:fs";
import { createHmac, timingSafeEqual } from "node:crypto";
import { AicoDataError } from "../errors.ts";
import type {
  Cache,
  CacheKeySource,
  CacheNamespace,
  CacheSession,
  CacheSessionOptions,
  CacheSetOptions,
  CacheStats,
  InvalidationOptions,
  InvalidationSource,
  ResolvedCacheOptions,
} from "./cache.ts";
import { cacheKeyBytes, keyCheck, lmdbKeyString } from "./_key.ts";

const FORMAT_VERSION = 1;
const HEADER = 9;
/** LMDB's default maximum key size (4 KiB pages). */
export const MAX_KEY_BYTES = 1978;
const DATA_FILE = "cache.mdb";
const KEY_CHECK_FILE = "key-check.json";
const CLEAN_FILE = "clean-close.json";
const OPEN_LOCK = "open.lock";
const CLEAN_INFO = "aico/cache/clean-close/v1";
/** Free bytes kept on the cache's file system: writes beyond it are refused. */
export const DISK_RESERVE_BYTES = 512 * 1024;
/** Free bytes a deletion needs (LMDB copies the pages it changes). */
const DELETE_RESERVE_BYTES = 64 * 1024;
const NAMESPACE_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const DEFAULT_NAMESPACE = "default";
const SESSION_NAMESPACE = "session";

interface Codec {
  /** Encodes with HEADER bytes reserved at the start of the result. */
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array, range: { start: number; end: number }): unknown;
}

interface Meta {
  expiresAt: number;
  bytes: number;
  /** Read since it was last passed by the eviction clock hand. */
  used: boolean;
}

interface Flight {
  invalidated: boolean;
  promise: Promise<unknown>;
}

function invalid(message: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", message);
}

function backendError(action: string, cause: unknown): AicoDataError {
  return new AicoDataError("CACHE_ERROR", `Cannot ${action}: LMDB failed`, {
    cause,
  });
}

function checkNamespace(name: unknown): string {
  if (typeof name !== "string" || !NAMESPACE_RE.test(name)) {
    throw invalid(
      "Cannot use namespace: expected 1 to 64 characters of [A-Za-z0-9_.-]",
    );
  }
  return name;
}

/** Checks a key and returns `<prefix><key>`. */
function fullKey(prefix: string, key: unknown): string {
  if (typeof key !== "string" || key.length === 0) {
    throw invalid("Cannot use cache key: expected a non-empty string");
  }
  if (key.includes("\0") || !key.isWellFormed()) {
    throw invalid(
      "Cannot use cache key: NUL characters and lone surrogates are not allowed",
    );
  }
  const full = prefix + key;
  if (full.length * 3 > MAX_KEY_BYTES) {
    const bytes = utf8Length(full);
    if (bytes > MAX_KEY_BYTES) {
      throw invalid(
        `Cannot use cache key: "${bytes}" bytes with its namespace, the limit is "${MAX_KEY_BYTES}"`,
      );
    }
  }
  return full;
}

function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || prefix.includes("\0")) {
    throw invalid("Cannot invalidate: the prefix must be a string without NUL");
  }
  return prefix;
}

function checkTtl(ttl: unknown): number {
  if (typeof ttl !== "number" || Number.isNaN(ttl) || ttl <= 0) {
    throw invalid("Cannot set cache entry: ttlMs must be a positive number");
  }
  return ttl;
}

/** Rejects what msgpack cannot store faithfully. */
function checkStorable(value: unknown, ancestors: unknown[]): void {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw invalid(
          "Cannot serialise cache value: a string has a lone surrogate",
        );
      }
      return;
    case "number":
    case "boolean":
    case "undefined":
      return;
    case "object":
      break;
    default:
      throw invalid(
        `Cannot serialise cache value: "${typeof value}" is not supported`,
      );
  }
  if (value === null || value instanceof Uint8Array) return;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw invalid("Cannot serialise cache value: invalid Date");
    }
    return;
  }
  if (ancestors.includes(value)) {
    throw invalid("Cannot serialise cache value: it contains a cycle");
  }
  ancestors.push(value);
  if (Array.isArray(value)) {
    for (const item of value) checkStorable(item, ancestors);
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw invalid(
        "Cannot serialise cache value: only plain objects, arrays, Date and Uint8Array are supported",
      );
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw invalid(
        "Cannot serialise cache value: symbol keys are not supported",
      );
    }
    for (const key in value) {
      checkStorable((value as Record<string, unknown>)[key], ancestors);
    }
  }
  ancestors.pop();
}

/** msgpackr's option to reserve `n` (< 256) bytes at the start of a result. */
const RESERVE_START_SPACE = 2048;

/**
 * Encodes `value` with msgpackr, leaving HEADER bytes free at the start: one
 * buffer and no copy per record. Checked once per encoder; falls back to a
 * copy if the option is not honoured.
 */
function encodeWithHeader(
  encoder: { encode(value: unknown, options?: number): Uint8Array },
  value: unknown,
): Uint8Array {
  if (reserveWorks === undefined) {
    const probe = encoder.encode(null, RESERVE_START_SPACE | HEADER);
    reserveWorks = probe.length === HEADER + 1 && probe[HEADER] === 0xc0;
  }
  if (reserveWorks) return encoder.encode(value, RESERVE_START_SPACE | HEADER);
  const body = encoder.encode(value);
  const record = new Uint8Array(HEADER + body.length);
  record.set(body, HEADER);
  return record;
}
let reserveWorks: boolean | undefined;

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function wipeData(dir: string): Promise<void> {
  await removeIfExists(join(dir, CLEAN_FILE));
  await removeIfExists(join(dir, DATA_FILE));
  await removeIfExists(join(dir, `${DATA_FILE}-lock`));
}

/** LMDB errors that mean a damaged data file. */
const DAMAGE_RE =
  /MDB_(INVALID|CORRUPTED|PAGE_NOTFOUND|VERSION_MISMATCH|PANIC|BAD_TXN)|Located page|index points to/;

const META_MAGIC = 0xbeefc0de;
const META_MAGIC_OFFSET = 24;
const PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];

/**
 * Tells whether the data file is missing, empty or starts with LMDB's two meta
 * pages. LMDB trusts its file: a foreign or overwritten file can crash the
 * process in native code, so such a file is emptied before LMDB sees it.
 * (Damage deeper inside a file with valid meta pages is not detected here.)
 */
async function looksLikeLmdb(file: string): Promise<boolean> {
  let data: Uint8Array;
  try {
    using f = await Deno.open(file, { read: true });
    const size = (await f.stat()).size;
    if (size === 0) return true;
    data = new Uint8Array(Math.min(size, 65536 + 64));
    let read = 0;
    while (read < data.length) {
      const n = await f.read(data.subarray(read));
      if (n === null) break;
      read += n;
    }
    data = data.subarray(0, read);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magicAt = (offset: number): boolean =>
    offset + 4 <= data.length &&
    view.getUint32(offset, true) === META_MAGIC;
  return magicAt(META_MAGIC_OFFSET) &&
    PAGE_SIZES.some((p) => magicAt(p + META_MAGIC_OFFSET));
}

/** Empties the directory's LMDB files unless they were written with `check`. */
async function ensureKeyCheck(dir: string, check: string): Promise<void> {
  const file = join(dir, KEY_CHECK_FILE);
  let stored: unknown;
  try {
    stored = (JSON.parse(await Deno.readTextFile(file)) as { check?: unknown })
      ?.check;
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotFound) &&
      !(error instanceof SyntaxError)
    ) {
      throw error;
    }
  }
  if (stored === check) {
    if (!(await looksLikeLmdb(join(dir, DATA_FILE)))) await wipeData(dir);
    return;
  }
  await wipeData(dir);
  const tmp = `${file}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify({ version: 1, check }) + "\n", {
    mode: PRIVATE_FILE_MODE,
  });
  await Deno.rename(tmp, file);
}

/** The key that authenticates the clean-close record, from the cache key. */
function cleanCloseKey(cacheKey: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHmac("sha256", cacheKey).update(CLEAN_INFO).digest(),
  );
}

/** `HMAC-SHA256(macKey, file ‖ size as uint64 LE)`, or `undefined` when missing. */
async function fileMac(
  file: string,
  macKey: Uint8Array,
): Promise<Uint8Array | undefined> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(file, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    const hmac = createHmac("sha256", macKey);
    const buf = new Uint8Array(1 << 20);
    let size = 0;
    for (;;) {
      const n = await f.read(buf);
      if (n === null) break;
      hmac.update(buf.subarray(0, n));
      size += n;
    }
    const tail = new Uint8Array(8);
    new DataView(tail.buffer).setBigUint64(0, BigInt(size), true);
    hmac.update(tail);
    return new Uint8Array(hmac.digest());
  } finally {
    f.close();
  }
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Keeps the data file only when it is byte for byte what a clean close left
 * (its HMAC matches the record written by `close()`), else empties the
 * directory; then removes the record, since an open cache is not known clean.
 * LMDB trusts its file: a truncated file, a flipped byte or a crash in the
 * middle of a write can crash the process in native code or return a wrong
 * value, so such a file never reaches LMDB. A crashed process leaves no
 * record: its cache starts empty.
 */
async function checkCleanClose(dir: string, macKey: Uint8Array): Promise<void> {
  const record = join(dir, CLEAN_FILE);
  let stored: string | undefined;
  try {
    const parsed = JSON.parse(await Deno.readTextFile(record)) as {
      mac?: unknown;
    } | null;
    if (typeof parsed?.mac === "string") stored = parsed.mac;
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotFound) &&
      !(error instanceof SyntaxError)
    ) {
      throw error;
    }
  }
  const actual = stored === undefined
    ? undefined
    : await fileMac(join(dir, DATA_FILE), macKey);
  const expected = new TextEncoder().encode(stored ?? "");
  const got = new TextEncoder().encode(
    actual === undefined ? "" : toHex(actual),
  );
  const clean = actual !== undefined && expected.length === got.length &&
    timingSafeEqual(expected, got);
  if (clean) await removeIfExists(record);
  else await wipeData(dir);
}

/**
 * Writes the clean-close record of a closed data file (after flushing it).
 * Best effort: without a record the next open starts empty.
 */
async function writeCleanClose(dir: string, macKey: Uint8Array): Promise<void> {
  const file = join(dir, DATA_FILE);
  try {
    {
      using f = await Deno.open(file, { read: true });
      await f.sync();
    }
    const mac = await fileMac(file, macKey);
    if (mac === undefined) return;
    const tmp = join(dir, `${CLEAN_FILE}.tmp`);
    await Deno.writeTextFile(
      tmp,
      JSON.stringify({ version: 1, mac: toHex(mac) }) + "\n",
      { mode: 0o600 },
    );
    await Deno.rename(tmp, join(dir, CLEAN_FILE));
  } catch {
    // The next open empties the cache, which loses nothing that matters.
  }
}

/**
 * Takes a shared lock on `open.lock`, held while the handle is open. Only an
 * opener that can take it exclusively (no other handle, in any process, has
 * the cache open) checks the clean-close record: a file another live handle
 * keeps is LMDB's live state, not a file left behind.
 */
async function enterCache(
  dir: string,
  macKey: Uint8Array,
): Promise<Deno.FsFile> {
  const lock = await Deno.open(join(dir, OPEN_LOCK), {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  try {
    if (await lock.tryLock(true)) await checkCleanClose(dir, macKey);
    // Converts the exclusive lock, or waits for another opener's check.
    await lock.lock(false);
    return lock;
  } catch (error) {
    lock.close();
    throw error;
  }
}

/** Whether free space may be measured: `--allow-sys=statfs`, asked without a prompt. */
function statfsGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "sys", kind: "statfs" })
      .state === "granted";
  } catch {
    return false;
  }
}

/** Free bytes for unprivileged writers on the file system of `dir`, if known. */
function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

function diskFull(action: string, free: number): AicoDataError {
  return new AicoDataError(
    "CACHE_ERROR",
    `Cannot ${action}: the disk is full, "${free}" bytes free`,
  );
}

type Db = RootDatabase<unknown, string>;

interface Opened {
  root: Db;
  meta: Map<string, Meta>;
  stale: string[];
  corrupt: string[];
}

/** Opens LMDB and scans it; throws on any LMDB failure (the caller may wipe). */
function openAndScan(
  dir: string,
  encryptionKey: string,
  now: number,
): Opened {
  // The root database keeps lmdb-js's msgpack encoder (used by hand); records
  // are written with asBinary() and read with getBinaryFast().
  const root = open<unknown, string>({
    path: join(dir, DATA_FILE),
    encryptionKey,
    noSync: true,
    eventTurnBatching: false,
  });
  try {
    const live: [string, Meta][] = [];
    const stale: string[] = [];
    const corrupt: string[] = [];
    for (const key of root.getKeys({})) {
      if (typeof key !== "string") continue;
      const bytes = root.getBinary(key);
      if (bytes === undefined) continue;
      if (bytes.length < HEADER || bytes[0] !== FORMAT_VERSION) {
        corrupt.push(key);
        continue;
      }
      const expiresAt = new DataView(
        bytes.buffer,
        bytes.byteOffset,
        bytes.byteLength,
      ).getFloat64(1, true);
      if (Number.isNaN(expiresAt)) corrupt.push(key);
      else if (expiresAt <= now) stale.push(key);
      else {
        live.push([key, {
          expiresAt,
          bytes: utf8Length(key) + bytes.length,
          used: false,
        }]);
      }
    }
    // Recency is not persisted: after reopening, the soonest to expire are
    // the first evicted.
    live.sort((a, b) => a[1].expiresAt - b[1].expiresAt);
    return { root, meta: new Map(live), stale, corrupt };
  } catch (error) {
    try {
      root.close();
    } catch {
      // Already failing; the first error is the one that matters.
    }
    throw error;
  }
}

/** Opens the cache implementation. */
export async function openLmdbCache(
  options: ResolvedCacheOptions,
  key: CacheKeySource | Uint8Array,
): Promise<Cache> {
  const bytes = await cacheKeyBytes(key);
  let encryptionKey: string;
  let check: string;
  let macKey: Uint8Array;
  try {
    encryptionKey = lmdbKeyString(bytes);
    check = await keyCheck(bytes);
    macKey = cleanCloseKey(bytes);
  } finally {
    bytes.fill(0);
  }
  const dir = options.path;
  let opened: Opened;
  let lock: Deno.FsFile;
  try {
    await createPrivateDir(dir);
    await ensureKeyCheck(dir, check);
    lock = await enterCache(dir, macKey);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied
    ) {
      throw new AicoDataError(
        "PERMISSION_DENIED",
        `Cannot open cache: missing permission, run again with "--allow-write=${dir}"`,
        { cause: error },
      );
    }
    throw new AicoDataError("CACHE_ERROR", "Cannot open cache directory", {
      cause: error,
    });
  }
  try {
    opened = openAndScan(dir, encryptionKey, options.now());
  } catch (first) {
    lock.close();
    // LMDB found the file damaged: the cache is disposable, so start empty.
    // Any other failure (permissions, locks) is reported as it is.
    if (!DAMAGE_RE.test(String((first as Error)?.message))) {
      throw new AicoDataError("CACHE_ERROR", "Cannot open cache: LMDB failed", {
        cause: first,
      });
    }
    try {
      await wipeData(dir);
      lock = await enterCache(dir, macKey);
      opened = openAndScan(dir, encryptionKey, options.now());
    } catch (error) {
      throw new AicoDataError("CACHE_ERROR", "Cannot open cache: LMDB failed", {
        cause: error,
      });
    }
  }
  // LMDB creates its files with the default mode: make them private.
  try {
    await restrictFilesIn(dir);
  } catch (error) {
    await opened.root.close().catch(() => {});
    lock.close();
    throw new AicoDataError(
      "CACHE_ERROR",
      "Cannot open cache: cannot make its files private",
      { cause: error },
    );
  }
  const cache = new LmdbCache(options, opened, macKey, lock);
  try {
    await cache.removeAtOpen(opened.stale, opened.corrupt);
  } catch (error) {
    await cache.close().catch(() => {});
    throw error;
  }
  return cache;
}

class LmdbCache implements Cache {
  readonly path: string;
  #options: ResolvedCacheOptions;
  #db: Db;
  #codec: Codec;
  #now: () => number;
  #meta: Map<string, Meta>;
  #bytes = 0;
  #tombstones = new Map<string, number>();
  #inflight = new Map<string, Flight>();
  #subscriptions = new Set<() => void>();
  #pending = new Set<Promise<unknown>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expirations = 0;
  #corrupt = 0;
  #default: Namespace;
  #ancestors: unknown[] = [];
  #fast: Uint8Array | undefined;
  #fastPlain: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  #fastView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  #range = { start: HEADER, end: 0 };
  #macKey: Uint8Array;
  /** Shared lock on `open.lock` while open. */
  #lock: Deno.FsFile;
  /** A commit failed: the file is not known clean at close. */
  #failed = false;
  /** Keys whose deletion failed: unreadable until written again. */
  #doomed = new Set<string>();
  /** Bytes that may still be written before free space is measured again. */
  #spaceBudget = 0;
  #spaceAt = -Infinity;
  #statfs: boolean | undefined;

  constructor(
    options: ResolvedCacheOptions,
    opened: Opened,
    macKey: Uint8Array,
    lock: Deno.FsFile,
  ) {
    this.path = options.path;
    this.#macKey = macKey;
    this.#lock = lock;
    this.#options = options;
    this.#db = opened.root;
    const encoder = (opened.root as unknown as {
      encoder: { encode(value: unknown, options?: number): Uint8Array };
    }).encoder;
    const decoder = (opened.root as unknown as { decoder: Codec }).decoder;
    this.#codec = {
      encode: (v) => encodeWithHeader(encoder, v),
      decode: (b, r) => decoder.decode(b, r),
    };
    this.#now = options.now;
    this.#meta = opened.meta;
    for (const m of this.#meta.values()) this.#bytes += m.bytes;
    this.#default = new Namespace(this, DEFAULT_NAMESPACE);
    if (options.sweepIntervalMs > 0) {
      const timer = setInterval(() => {
        this.sweep().catch(() => {
          // A failed sweep is retried at the next tick.
        });
      }, options.sweepIntervalMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Deletes entries found expired or undecodable by the open scan. */
  async removeAtOpen(stale: string[], corrupt: string[]): Promise<void> {
    this.#expirations += stale.length;
    this.#corrupt += corrupt.length;
    const doomed = [...stale, ...corrupt];
    const removed = doomed.length === 0
      ? Promise.resolve()
      : this.#commit(() => {
        for (const k of doomed) this.#db.removeSync(k);
      });
    const evicted = this.#enforceLimits(undefined);
    try {
      await Promise.all([removed, evicted]);
    } catch (error) {
      throw backendError("open cache", error);
    }
  }

  #guard(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: the cache is closed`,
      );
    }
  }

  /**
   * Queues writes as an asynchronous LMDB transaction. Every write of the
   * cache goes through here, so writes commit in call order (lmdb-js runs
   * transaction callbacks in order, but after queued single operations).
   */
  #commit(fn: () => void): Promise<void> {
    let queued: Promise<unknown>;
    try {
      queued = this.#db.transaction(fn);
    } catch (error) {
      return Promise.reject(error);
    }
    return queued.then(() => undefined, (error) => {
      // lmdb-js also rejects a promise of its own with the cause (a full
      // disk, an I/O error); left unhandled, it would end the process.
      (error as { commitError?: Promise<unknown> })?.commitError?.catch?.(
        () => {},
      );
      this.#failed = true;
      throw error;
    });
  }

  /**
   * Refuses a write of about `bytes` when the file system would keep less
   * than `reserve` bytes free, before LMDB sees it: LMDB failing on a full
   * disk leaves lmdb-js in a state that has crashed the process. Free space
   * is measured again after 100 ms or a quarter of the spare bytes.
   */
  #reserveSpace(action: string, bytes: number, reserve: number): void {
    const needed = bytes * 2 + 16384; // copied pages and the meta page
    const now = performance.now();
    if (needed <= this.#spaceBudget && now - this.#spaceAt < 100) {
      this.#spaceBudget -= needed;
      return;
    }
    this.#statfs ??= statfsGranted();
    // Without the permission LMDB's own failure is the (typed) error.
    const free = this.#statfs ? freeBytes(this.path) : undefined;
    if (free === undefined) return;
    this.#spaceAt = now;
    const spare = free - reserve - needed;
    if (spare < 0) {
      this.#spaceBudget = 0;
      throw diskFull(action, free);
    }
    this.#spaceBudget = spare / 4;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    const done = (): void => {
      this.#pending.delete(promise);
    };
    promise.then(done, done);
    return promise;
  }

  // ---- reads ------------------------------------------------------------

  /**
   * Reads the raw record; returns its value bytes' decoded value, or
   * `undefined` on a miss (counting it). `decode` false only checks liveness.
   */
  read(full: string, decode: boolean): unknown {
    this.#guard("read from cache");
    if (
      (this.#tombstones.size !== 0 && this.#tombstones.has(full)) ||
      (this.#doomed.size !== 0 && this.#doomed.has(full))
    ) {
      this.#misses++;
      return undefined;
    }
    let buf: Uint8Array | undefined;
    try {
      buf = this.#db.getBinaryFast(full);
    } catch (error) {
      throw backendError("read from cache", error);
    }
    if (buf === undefined) {
      this.#misses++;
      return undefined;
    }
    const length = buf.length;
    if (length < HEADER || buf[0] !== FORMAT_VERSION) {
      return this.#dropCorrupt(full);
    }
    if (buf !== this.#fast) {
      // lmdb-js reuses one buffer for reads: keep a plain Uint8Array and a
      // DataView over it (binary values then decode as Uint8Array, not
      // Node's Buffer, and msgpackr reuses its cached DataView).
      this.#fast = buf;
      this.#fastPlain = new Uint8Array(
        buf.buffer,
        buf.byteOffset,
        buf.byteLength,
      );
      this.#fastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const expiresAt = this.#fastView.getFloat64(1, true);
    if (!(expiresAt > this.#now())) {
      if (Number.isNaN(expiresAt)) return this.#dropCorrupt(full);
      this.#misses++;
      this.#expirations++;
      this.#removeInBackground(full);
      return undefined;
    }
    let value: unknown = true;
    if (decode) {
      this.#range.end = length;
      try {
        value = this.#codec.decode(this.#fastPlain, this.#range);
      } catch {
        return this.#dropCorrupt(full);
      }
      if (value === undefined) return this.#dropCorrupt(full);
    }
    if (
      this.#meta.size * 2 >= this.#options.maxEntries ||
      this.#bytes * 2 >= this.#options.maxBytes
    ) {
      // Recency matters only near the limits: it is tracked once the cache
      // is half full (a map lookup per hit costs as much as a third of it).
      const meta = this.#meta.get(full);
      if (meta !== undefined) {
        meta.used = true;
      } else {
        // Written by another process: adopt it.
        const bytes = utf8Length(full) + length;
        this.#meta.set(full, { expiresAt, bytes, used: true });
        this.#bytes += bytes;
      }
    }
    this.#hits++;
    return value;
  }

  #dropCorrupt(full: string): undefined {
    this.#misses++;
    this.#corrupt++;
    this.#removeInBackground(full);
    return undefined;
  }

  #removeInBackground(full: string): void {
    this.#track(this.#remove([full])).catch(() => {
      // Still unreadable (expired or corrupt); retried at the next read.
    });
  }

  /** Live entries whose key starts with `fullPrefix`, decoded. */
  scan(fullPrefix: string): [string, unknown][] {
    this.#guard("read from cache");
    const out: [string, unknown][] = [];
    let keys: string[];
    try {
      keys = this.#prefixKeys(fullPrefix);
    } catch (error) {
      throw backendError("read from cache", error);
    }
    for (const k of keys) {
      const value = this.read(k, true);
      if (value !== undefined) out.push([k.slice(fullPrefix.length), value]);
    }
    return out;
  }

  #prefixKeys(fullPrefix: string): string[] {
    const keys = new Set<string>();
    for (const k of this.#meta.keys()) {
      if (k.startsWith(fullPrefix)) keys.add(k);
    }
    for (const k of this.#db.getKeys({ start: fullPrefix })) {
      if (typeof k !== "string" || !k.startsWith(fullPrefix)) break;
      keys.add(k);
    }
    return [...keys].sort();
  }

  // ---- writes -----------------------------------------------------------

  #encode(value: unknown, header: Uint8Array): Uint8Array {
    if (value === undefined) {
      throw invalid("Cannot set cache entry: the value is undefined");
    }
    try {
      this.#ancestors.length = 0;
      checkStorable(value, this.#ancestors);
    } catch (error) {
      if (error instanceof RangeError) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot serialise cache value: nested too deeply",
          { cause: error },
        );
      }
      throw error;
    }
    let record: Uint8Array;
    try {
      record = this.#codec.encode(value);
    } catch (error) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot serialise cache value",
        { cause: error },
      );
    }
    record.set(header, 0);
    return record;
  }

  #sizeOf(full: string, record: Uint8Array): number {
    const bytes = utf8Length(full) + record.length;
    if (bytes > this.#options.maxBytes) {
      throw invalid(
        `Cannot set cache entry: "${bytes}" bytes exceed maxBytes "${this.#options.maxBytes}"`,
      );
    }
    return bytes;
  }

  #account(full: string, expiresAt: number, bytes: number): void {
    const old = this.#meta.get(full);
    if (old === undefined) {
      this.#meta.set(full, { expiresAt, bytes, used: false });
      this.#bytes += bytes;
    } else {
      // An overwrite keeps its place in the clock and counts as a use.
      this.#bytes += bytes - old.bytes;
      old.expiresAt = expiresAt;
      old.bytes = bytes;
      old.used = true;
    }
  }

  async write(
    items: readonly (readonly [string, unknown])[],
    ttlMs: number | undefined,
  ): Promise<void> {
    this.#guard("write to cache");
    // Check and encode everything before touching the store.
    const ttl = ttlMs === undefined
      ? this.#options.defaultTtlMs
      : checkTtl(ttlMs);
    const expiresAt = this.#now() + ttl;
    const header = new Uint8Array(HEADER);
    header[0] = FORMAT_VERSION;
    new DataView(header.buffer).setFloat64(1, expiresAt, true);
    const n = items.length;
    const keys = new Array<string>(n);
    const records = new Array<Uint8Array>(n);
    const sizes = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const [full, value] = items[i]!;
      const record = this.#encode(value, header);
      keys[i] = full;
      records[i] = record;
      sizes[i] = this.#sizeOf(full, record);
    }
    if (n === 0) return;
    let total = 0;
    for (let i = 0; i < n; i++) total += sizes[i]!;
    this.#reserveSpace("write to cache", total, DISK_RESERVE_BYTES);
    for (let i = 0; i < n; i++) this.#account(keys[i]!, expiresAt, sizes[i]!);
    const put = this.#commit(() => {
      for (let i = 0; i < n; i++) {
        this.#db.putSync(keys[i]!, asBinary(records[i]!));
      }
    });
    const evicted = this.#enforceLimits(keys);
    try {
      await this.#track(Promise.all([put, evicted]));
    } catch (error) {
      throw backendError("write to cache", error);
    }
    if (this.#doomed.size !== 0) {
      for (const k of keys) {
        this.#doomed.delete(k);
      }
    }
  }

  /**
   * Evicts entries beyond the limits, least recently used first, by the
   * CLOCK (second chance) approximation: the map is in write order; an entry
   * read since the hand last passed is moved to the end instead of evicted.
   */
  #enforceLimits(written: readonly string[] | undefined): Promise<void> {
    const { maxBytes, maxEntries } = this.#options;
    let entries = this.#meta.size;
    let bytes = this.#bytes;
    if (entries <= maxEntries && bytes <= maxBytes) return Promise.resolve();
    const keep = written === undefined ? undefined : new Set(written);
    const victims: string[] = [];
    for (const [k, m] of this.#meta) {
      if (entries <= maxEntries && bytes <= maxBytes) break;
      if (keep?.has(k)) continue;
      if (m.used) {
        m.used = false;
        this.#meta.delete(k);
        this.#meta.set(k, m);
        continue;
      }
      victims.push(k);
      entries--;
      bytes -= m.bytes;
    }
    this.#evictions += victims.length;
    return this.#remove(victims);
  }

  /**
   * Removes keys: they are unreadable at once (tombstones) and deleted in
   * LMDB's write order, after any earlier queued write.
   */
  #remove(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    for (const k of keys) {
      const meta = this.#meta.get(k);
      if (meta !== undefined) {
        this.#meta.delete(k);
        this.#bytes -= meta.bytes;
      }
      this.#tombstones.set(k, (this.#tombstones.get(k) ?? 0) + 1);
    }
    let removed: Promise<void>;
    try {
      this.#reserveSpace("delete from cache", 0, DELETE_RESERVE_BYTES);
      removed = this.#commit(() => {
        for (const k of keys) this.#db.removeSync(k);
      });
    } catch (error) {
      removed = Promise.reject(error);
    }
    const release = (): void => {
      for (const k of keys) {
        const n = (this.#tombstones.get(k) ?? 1) - 1;
        if (n <= 0) this.#tombstones.delete(k);
        else this.#tombstones.set(k, n);
      }
    };
    return removed.then(() => {
      release();
      if (this.#doomed.size !== 0) {
        for (const k of keys) this.#doomed.delete(k);
      }
    }, (error) => {
      // Still in the file: keep them unreadable (an invalidated value must
      // not come back); close() retries the deletion.
      for (const k of keys) this.#doomed.add(k);
      release();
      throw error;
    });
  }

  #markInflight(match: (full: string) => boolean): void {
    for (const [k, flight] of this.#inflight) {
      if (match(k)) {
        flight.invalidated = true;
        this.#inflight.delete(k);
      }
    }
  }

  /** Synchronous part of a key deletion; returns the commit promise. */
  deleteNow(full: string): { existed: boolean; done: Promise<void> } {
    this.#guard("delete from cache");
    this.#markInflight((k) => k === full);
    let existed = this.#meta.has(full);
    if (!existed) {
      try {
        existed = this.#db.doesExist(full);
      } catch (error) {
        throw backendError("delete from cache", error);
      }
    }
    const done = existed
      ? this.#track(this.#remove([full]))
      : Promise.resolve();
    return { existed, done };
  }

  async deleteFull(full: string): Promise<boolean> {
    const { existed, done } = this.deleteNow(full);
    try {
      await done;
    } catch (error) {
      throw backendError("delete from cache", error);
    }
    return existed;
  }

  /** Synchronous part of a prefix invalidation; returns the commit promise. */
  invalidateNow(fullPrefix: string): { count: number; done: Promise<void> } {
    this.#guard("invalidate cache entries");
    this.#markInflight((k) => k.startsWith(fullPrefix));
    let keys: string[];
    try {
      keys = this.#prefixKeys(fullPrefix);
    } catch (error) {
      throw backendError("invalidate cache entries", error);
    }
    return { count: keys.length, done: this.#track(this.#remove(keys)) };
  }

  async invalidateFull(fullPrefix: string): Promise<number> {
    const { count, done } = this.invalidateNow(fullPrefix);
    try {
      await done;
    } catch (error) {
      throw backendError("invalidate cache entries", error);
    }
    return count;
  }

  getOrSetFull<T>(
    full: string,
    compute: () => T | Promise<T>,
    ttlMs: number | undefined,
  ): Promise<T> {
    if (typeof compute !== "function") {
      return Promise.reject(invalid("Cannot compute: expected a function"));
    }
    if (ttlMs !== undefined) checkTtl(ttlMs);
    const hit = this.read(full, true);
    if (hit !== undefined) return Promise.resolve(hit as T);
    const existing = this.#inflight.get(full);
    if (existing !== undefined) return existing.promise as Promise<T>;
    const flight: Flight = { invalidated: false, promise: Promise.resolve() };
    flight.promise = (async () => {
      try {
        const value = await compute();
        if (value === undefined) {
          throw invalid("Cannot cache computed value: it is undefined");
        }
        if (!flight.invalidated) await this.write([[full, value]], ttlMs);
        return value;
      } finally {
        if (this.#inflight.get(full) === flight) this.#inflight.delete(full);
      }
    })();
    this.#inflight.set(full, flight);
    return flight.promise as Promise<T>;
  }

  // ---- Cache ------------------------------------------------------------

  get<T = unknown>(key: string): T | undefined {
    return this.#default.get<T>(key);
  }

  has(key: string): boolean {
    return this.#default.has(key);
  }

  set(key: string, value: unknown, options?: CacheSetOptions): Promise<void> {
    return this.#default.set(key, value, options);
  }

  setMany(
    entries: Iterable<readonly [string, unknown]>,
    options?: CacheSetOptions,
  ): Promise<void> {
    return this.#default.setMany(entries, options);
  }

  delete(key: string): Promise<boolean> {
    return this.#default.delete(key);
  }

  getOrSet<T>(
    key: string,
    compute: () => T | Promise<T>,
    options?: CacheSetOptions,
  ): Promise<T> {
    return this.#default.getOrSet(key, compute, options);
  }

  invalidate(prefix?: string): Promise<number> {
    return this.#default.invalidate(prefix);
  }

  namespace(name: string): CacheNamespace {
    this.#guard("use namespace");
    return new Namespace(this, checkNamespace(name));
  }

  session(
    conversationId: string,
    options?: CacheSessionOptions,
  ): CacheSession {
    this.#guard("use session");
    if (
      typeof conversationId !== "string" || conversationId.length === 0 ||
      conversationId.includes("/") || conversationId.includes("\0")
    ) {
      throw invalid(
        "Cannot use session: the conversation id must be non-empty, without / or NUL",
      );
    }
    const ttlMs = options?.ttlMs === undefined
      ? undefined
      : checkTtl(options.ttlMs);
    return new Session(
      this,
      new Namespace(this, SESSION_NAMESPACE),
      conversationId,
      ttlMs,
    );
  }

  subscribeInvalidation(
    source: InvalidationSource,
    options?: InvalidationOptions,
  ): () => void {
    this.#guard("subscribe to invalidations");
    if (typeof source?.subscribe !== "function") {
      throw invalid("Cannot subscribe: the source has no subscribe function");
    }
    const topicPrefix = options?.topicPrefix ?? "data.changed.";
    if (
      typeof topicPrefix !== "string" || topicPrefix.length < 2 ||
      !topicPrefix.endsWith(".")
    ) {
      throw invalid(
        'Cannot subscribe: topicPrefix must be a string ending with "."',
      );
    }
    const map = options?.namespaces ?? {};
    const pattern = `${topicPrefix}*` as `${string}.*`;
    const unsubscribe = source.subscribe(pattern, (payload, info) => {
      const topic = info?.topic;
      if (this.#closed || typeof topic !== "string") return;
      if (!topic.startsWith(topicPrefix)) return;
      const table = topic.slice(topicPrefix.length);
      const ns = Object.hasOwn(map, table) ? map[table] : table;
      if (typeof ns !== "string" || !NAMESPACE_RE.test(ns)) return;
      const prefix = `${ns}:`;
      const data = payload as
        | { keys?: unknown; prefixes?: unknown; op?: unknown }
        | null
        | undefined;
      // A brand-new row cannot be cached yet: inserts cost nothing here.
      if (data?.op === "insert") return;
      const done: Promise<void>[] = [];
      const keys = data?.keys;
      const prefixes = data?.prefixes;
      const validList = (list: unknown): list is string[] =>
        Array.isArray(list) && list.every((k) => typeof k === "string");
      if (validList(keys) || validList(prefixes)) {
        for (const k of validList(keys) ? keys : []) {
          let full: string;
          try {
            full = fullKey(prefix, k);
          } catch {
            continue; // A key the cache refuses cannot be cached.
          }
          done.push(this.deleteNow(full).done);
        }
        for (const p of validList(prefixes) ? prefixes : []) {
          if (p.includes("\0")) continue;
          done.push(this.invalidateNow(prefix + p).done);
        }
      } else {
        done.push(this.invalidateNow(prefix).done);
      }
      Promise.all(done).catch(() => {
        // The entries are already unreadable; a failed delete is retried by
        // the reads that meet them.
      });
    });
    let active = true;
    const off = (): void => {
      if (!active) return;
      active = false;
      this.#subscriptions.delete(off);
      unsubscribe();
    };
    this.#subscriptions.add(off);
    return off;
  }

  async sweep(): Promise<number> {
    this.#guard("sweep cache");
    const now = this.#now();
    const expired: string[] = [];
    for (const [k, m] of this.#meta) if (m.expiresAt <= now) expired.push(k);
    this.#expirations += expired.length;
    try {
      await this.#track(this.#remove(expired));
    } catch (error) {
      throw backendError("sweep cache", error);
    }
    return expired.length;
  }

  clear(): Promise<number> {
    return this.invalidateFull("");
  }

  stats(): CacheStats {
    this.#guard("read cache stats");
    return Object.freeze({
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      expirations: this.#expirations,
      corruptEntries: this.#corrupt,
      entries: this.#meta.size,
      bytes: this.#bytes,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const off of [...this.#subscriptions]) {
      try {
        off();
      } catch {
        // A source failing to unsubscribe must not keep LMDB open.
      }
    }
    await Promise.allSettled([...this.#pending]);
    if (this.#doomed.size !== 0) {
      await this.#remove([...this.#doomed]).catch(() => {});
    }
    try {
      await this.#db.close();
    } catch (error) {
      this.#lock.close();
      throw backendError("close cache", error);
    }
    try {
      // The last handle to close (an exclusive lock is free) vouches for
      // the file; the others leave that to it.
      const last = await this.#lock.tryLock(true).catch(() => false);
      if (last && !this.#failed && this.#doomed.size === 0) {
        await writeCleanClose(this.path, this.#macKey);
      }
    } finally {
      this.#lock.close();
      this.#macKey.fill(0);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class Namespace implements CacheNamespace {
  readonly name: string;
  #cache: LmdbCache;
  #prefix: string;

  constructor(cache: LmdbCache, name: string) {
    this.name = name;
    this.#cache = cache;
    this.#prefix = `${name}:`;
  }

  get<T = unknown>(key: string): T | undefined {
    return this.#cache.read(fullKey(this.#prefix, key), true) as T | undefined;
  }

  has(key: string): boolean {
    return this.#cache.read(fullKey(this.#prefix, key), false) !== undefined;
  }

  set(key: string, value: unknown, options?: CacheSetOptions): Promise<void> {
    try {
      return this.#cache.write(
        [[fullKey(this.#prefix, key), value]],
        options?.ttlMs,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  setMany(
    entries: Iterable<readonly [string, unknown]>,
    options?: CacheSetOptions,
  ): Promise<void> {
    try {
      const items: [string, unknown][] = [];
      for (const entry of entries) {
        if (!Array.isArray(entry)) {
          throw invalid(
            "Cannot set cache entries: expected [key, value] pairs",
          );
        }
        items.push([fullKey(this.#prefix, entry[0]), entry[1]]);
      }
      return this.#cache.write(items, options?.ttlMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  delete(key: string): Promise<boolean> {
    try {
      return this.#cache.deleteFull(fullKey(this.#prefix, key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  getOrSet<T>(
    key: string,
    compute: () => T | Promise<T>,
    options?: CacheSetOptions,
  ): Promise<T> {
    try {
      return this.#cache.getOrSetFull(
        fullKey(this.#prefix, key),
        compute,
        options?.ttlMs,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  invalidate(prefix: string = ""): Promise<number> {
    try {
      return this.#cache.invalidateFull(this.#prefix + checkPrefix(prefix));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

class Session implements CacheSession {
  readonly conversationId: string;
  #cache: LmdbCache;
  #ns: Namespace;
  #prefix: string;
  #ttlMs: number | undefined;

  constructor(
    cache: LmdbCache,
    ns: Namespace,
    conversationId: string,
    ttlMs: number | undefined,
  ) {
    this.conversationId = conversationId;
    this.#cache = cache;
    this.#ns = ns;
    this.#prefix = `${conversationId}/`;
    this.#ttlMs = ttlMs;
  }

  get<T = unknown>(field: string): T | undefined {
    return this.#ns.get<T>(this.#field(field));
  }

  set(field: string, value: unknown): Promise<void> {
    try {
      return this.#ns.set(
        this.#field(field),
        value,
        this.#ttlMs === undefined ? {} : { ttlMs: this.#ttlMs },
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  delete(field: string): Promise<boolean> {
    try {
      return this.#ns.delete(this.#field(field));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  entries(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (
      const [k, v] of this.#cache.scan(`${SESSION_NAMESPACE}:${this.#prefix}`)
    ) {
      out[k] = v;
    }
    return out;
  }

  clear(): Promise<number> {
    return this.#ns.invalidate(this.#prefix);
  }

  #field(field: string): string {
    if (typeof field !== "string" || field.length === 0) {
      throw invalid("Cannot use session field: expected a non-empty string");
    }
    return this.#prefix + field;
  }
}
