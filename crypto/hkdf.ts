/**
 * HKDF-SHA256 (RFC 5869) through WebCrypto, and the purpose keys derived from
 * a data key.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import { buf } from "./_bytes.ts";

/**
 * What a key derived from the data key is for. Each purpose has its own key:
 * `libsql-page` (libSQL page encryption), `field-aead` (sealed columns),
 * `cache` (LMDB encryption), `vector-doc` (documents sent to a vector store),
 * `export` (analytics exports, backups), `sync` (device sync segments and
 * manifests).
 */
export type KeyPurpose =
  | "libsql-page"
  | "field-aead"
  | "cache"
  | "vector-doc"
  | "export"
  | "sync";

/** Every {@linkcode KeyPurpose}. */
export const KEY_PURPOSES: readonly KeyPurpose[] = Object.freeze([
  "libsql-page",
  "field-aead",
  "cache",
  "vector-doc",
  "export",
  "sync",
]);

/**
 * The HKDF `info` string of a purpose: `aico/<purpose>/v1`.
 *
 * @param purpose The purpose.
 * @returns The info string.
 * @throws {AicoDataError} `INVALID_INPUT` for an unknown purpose.
 *
 * @example Info strings
 * ```ts
 * import { purposeInfo } from "./hkdf.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(purposeInfo("field-aead"), "aico/field-aead/v1");
 * ```
 */
export function purposeInfo(purpose: KeyPurpose): string {
  if (!KEY_PURPOSES.includes(purpose)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot derive key: unknown purpose "${String(purpose)}"`,
    );
  }
  return `aico/${purpose}/v1`;
}

/**
 * HKDF-SHA256: derives `length` bytes from input keying material.
 *
 * @param ikm The input keying material.
 * @param salt The salt (may be empty: RFC 5869 then uses 32 zero bytes).
 * @param info The context string.
 * @param length Output length in bytes, 1 to 8160 (255 × 32).
 * @returns The output keying material.
 * @throws {RangeError} when `length` is out of range.
 *
 * @example RFC 5869 test case 3 (empty salt and info)
 * ```ts
 * import { hkdfSha256 } from "./hkdf.ts";
 * import assert from "node:assert/strict";
 *
 * const okm = await hkdfSha256(new Uint8Array(22).fill(0x0b), new Uint8Array(), new Uint8Array(), 42);
 * assert.equal(okm.length, 42);
 * assert.equal(okm[0], 0x8d);
 * ```
 */
export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) {
    throw new RangeError(
      `Cannot derive key: length must be in [1, 8160], got ${length}`,
    );
  }
  const key = await crypto.subtle.importKey("raw", buf(ikm), "HKDF", false, [
    "deriveBits",
  ]);
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: buf(salt), info: buf(info) },
      key,
      length * 8,
    ),
  );
}
