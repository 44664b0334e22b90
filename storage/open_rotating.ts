/**
 * {@linkcode openRotatingStorage}: opens a local store with whichever of two
 * keys holds it while a key rotation may be unfinished.
 *
 * @module
 */
import { isAicoDataError } from "../errors.ts";
import type { DataKey } from "../crypto/mod.ts";
import { readSidecar } from "./_sidecar.ts";
import {
  type LocalStorage,
  openStorage,
  type StorageOptions,
} from "./storage.ts";

/** The keys of a key file: the current one and the pending one of a rotation. */
export interface RotatingKeys {
  /** The current key. */
  readonly current: DataKey;
  /** The key an unfinished rotation moves to, if any. */
  readonly pending: DataKey | undefined;
}

/** What {@linkcode openRotatingStorage} opened. */
export interface RotatingStorage {
  /** The open store. */
  readonly storage: LocalStorage;
  /** The key that holds it now (`pending` once its rotation finished). */
  readonly key: DataKey;
}

/**
 * Opens a local database with the key that holds it. Without a pending key
 * that is the current key. During an interrupted rotation it is the pending
 * key (the store then finishes re-sealing from the current one) or, when
 * the rotation stopped before `PRAGMA rekey`, the current key: the store's
 * key record (`<db>.aico`) tells which, so that no wrong attempt leaves a
 * native connection behind (which would block a later rekey).
 *
 * Permissions: those of {@linkcode openStorage} for a local file.
 *
 * @param path The database file.
 * @param keys The current and pending keys.
 * @param options Other storage options (`key` and `previousKey` are set here).
 * @returns The store and the key that holds it.
 * @throws {AicoDataError} as {@linkcode openStorage}.
 *
 * @example Without a rotation under way
 * ```ts
 * import { openRotatingStorage } from "./open_rotating.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const current = await importDataKey(generateDataKey());
 *   const { storage, key } = await openRotatingStorage(`${dir}/a.db`, { current, pending: undefined });
 *   await storage.close();
 *   assert.equal(key, current);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openRotatingStorage(
  path: string,
  keys: RotatingKeys,
  options: Omit<StorageOptions, "key" | "previousKey"> = {},
): Promise<RotatingStorage> {
  const withCurrent = async (): Promise<RotatingStorage> => ({
    storage: await openStorage(path, { ...options, key: keys.current }),
    key: keys.current,
  });
  const withPending = async (pending: DataKey): Promise<RotatingStorage> => ({
    storage: await openStorage(path, {
      ...options,
      key: pending,
      previousKey: keys.current,
    }),
    key: pending,
  });
  if (keys.pending === undefined) return await withCurrent();
  const record = await readSidecar(path);
  if (record?.keyId === keys.pending.keyId) {
    return await withPending(keys.pending);
  }
  if (record === undefined || record.pendingKeyId === undefined) {
    return await withCurrent();
  }
  // Stopped inside the store's own rotation: either key may hold the pages.
  try {
    return await withPending(keys.pending);
  } catch (err) {
    if (!isAicoDataError(err, "WRONG_KEY")) throw err;
    return await withCurrent();
  }
}

/**
 * Tells whether a local store's key record names a key, as its key or as
 * the key its rotation moves to: once it does, a rotation to that key must
 * be finished, never abandoned.
 *
 * @param path The database file.
 * @param keyId The key's `keyId`.
 * @returns `true` when the record names it.
 * @throws {AicoDataError} `CORRUPT_STORE` for an unreadable key record.
 *
 * @example A fresh store names only its own key
 * ```ts
 * import { storageNamesKey } from "./open_rotating.ts";
 * import { openStorage } from "./storage.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = await importDataKey(generateDataKey());
 *   await (await openStorage(`${dir}/a.db`, { key })).close();
 *   assert.equal(await storageNamesKey(`${dir}/a.db`, key.keyId), true);
 *   assert.equal(await storageNamesKey(`${dir}/a.db`, "other"), false);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function storageNamesKey(
  path: string,
  keyId: string,
): Promise<boolean> {
  const record = await readSidecar(path);
  return record?.keyId === keyId || record?.pendingKeyId === keyId;
}
