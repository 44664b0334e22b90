/**
 * Internal: turning the `cache` purpose key into what lmdb-js accepts, and the
 * non-secret key check written beside the LMDB file.
 *
 * @module
 */

import { AicoDataError } from "../errors.ts";
import type { CacheKeySource } from "./cache.ts";

const KEY_CHECK_INFO = new TextEncoder().encode("aico/cache/key-check/v1");

/**
 * Reads the 32 raw bytes of the cache key from a data key (its
 * `cache` purpose key) or from raw bytes (copied).
 */
export async function cacheKeyBytes(
  key: CacheKeySource | Uint8Array,
): Promise<Uint8Array> {
  if (key instanceof Uint8Array) {
    if (key.length !== 32) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot open cache: the raw key must be 32 bytes, got ${key.length}`,
      );
    }
    return key.slice();
  }
  const bytes = await key.purposeKeyBytes("cache");
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open cache: the data key did not give a 32-byte cache key",
    );
  }
  return bytes;
}

/**
 * The `encryptionKey` string handed to lmdb-js.
 *
 * lmdb-js 3.5 reads `encryptionKey` only as a string whose UTF-8 form is
 * exactly 32 bytes (a Buffer aborts the process with a N-API fatal error), so
 * every byte is mapped to one ASCII character holding its low 7 bits: the
 * ChaCha8 key has 224 bits of entropy. NUL characters are kept by lmdb-js.
 */
export function lmdbKeyString(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    out += String.fromCharCode((bytes[i] ?? 0) & 0x7f);
  }
  return out;
}

/**
 * A non-secret check of the cache key: lowercase hex of
 * `HMAC-SHA256(cacheKey, "aico/cache/key-check/v1")`. Stored beside the LMDB
 * file so that a cache written with another key is recognised before LMDB reads
 * any page of it (LMDB's encryption has no MAC: a wrong key decrypts pages to
 * garbage, which can crash the process).
 */
export async function keyCheck(bytes: Uint8Array): Promise<string> {
  const hmacKey = await crypto.subtle.importKey(
    "raw",
    bytes as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", hmacKey, KEY_CHECK_INFO),
  );
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}
