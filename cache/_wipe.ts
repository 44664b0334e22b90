// Internal: erases a closed cache's LMDB files. lmdb-js (3.5.6) encrypts
// pages (ChaCha8 with the cache key) and, like LMDB, leaves a freed page's
// bytes in the file until the page is reused: an invalidated entry's
// ciphertext stays readable to anyone holding the cache key. The cache is
// disposable, so erase empties it instead: the data file is overwritten
// with zeros in place, synced and removed, and the next open starts empty.
import { join } from "node:path";

const FILES = ["cache.mdb", "cache.mdb-lock"];
const CLEAN_FILE = "clean-close.json";
const OPEN_LOCK = "open.lock";
const ZEROS = new Uint8Array(1 << 20);

async function zeroAndRemove(path: string): Promise<void> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true, write: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  try {
    const size = (await f.stat()).size;
    for (let at = 0; at < size; at += ZEROS.length) {
      const part = ZEROS.subarray(0, Math.min(ZEROS.length, size - at));
      let written = 0;
      while (written < part.length) {
        written += await f.write(part.subarray(written));
      }
    }
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.remove(path);
}

/**
 * Zeroes and removes the LMDB files of a closed cache folder, unless a live
 * handle (in any process) still has the cache open.
 *
 * @param dir The cache folder.
 * @returns `true` when the files are gone, `false` when another handle
 * holds the cache (nothing is changed then).
 * @throws {Deno.errors.PermissionDenied} without `--allow-write` on `dir`.
 *
 * @example Erasing a closed cache
 * ```ts
 * import { openCache, wipeClosedCache } from "./mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const cache = await openCache({ path: dir, key: await importDataKey(generateDataKey()) });
 *   await cache.namespace("recent").set("c1/10", ["hello"]);
 *   assert.equal(await wipeClosedCache(dir), false); // still open here
 *   await cache.close();
 *   assert.equal(await wipeClosedCache(dir), true);
 *   await assert.rejects(Deno.stat(`${dir}/cache.mdb`), Deno.errors.NotFound);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function wipeClosedCache(dir: string): Promise<boolean> {
  let lock: Deno.FsFile;
  try {
    lock = await Deno.open(join(dir, OPEN_LOCK), { read: true, write: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  }
  try {
    if (!(await lock.tryLock(true))) return false;
    await Deno.remove(join(dir, CLEAN_FILE)).catch(() => {});
    for (const f of FILES) await zeroAndRemove(join(dir, f));
    return true;
  } finally {
    lock.close();
  }
}
