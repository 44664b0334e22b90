// Internal AES-GCM core: the sealed-value layout and the one place AES-GCM is
// called. Sealer (seal.ts) adds random nonces and the budget.
//
// AES-GCM runs through node:crypto (native, synchronous) rather than WebCrypto:
// measured here on 256-byte values, WebCrypto costs 14-28 µs per value whether
// awaited one by one or 64-256 in flight, node:crypto 9-12 µs (bench/crypto_bench.ts).
// Keys are KeyObjects (native handles): raw key bytes are zeroed after import.
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
} from "node:crypto";
import { AicoDataError } from "../errors.ts";

/** Version byte of the sealed layout. */
export const SEALED_VERSION = 1;
/** AES-GCM nonce length in bytes (96 bits; the only size accepted). */
export const NONCE_LENGTH = 12;
/** AES-GCM tag length in bytes. */
export const TAG_LENGTH = 16;
/** Bytes a sealed value adds to its plaintext. */
export const SEALED_OVERHEAD = 1 + NONCE_LENGTH + TAG_LENGTH;

/** An imported AES-GCM key. */
export interface AeadKey {
  readonly algorithm: "aes-128-gcm" | "aes-256-gcm";
  readonly key: KeyObject;
}

/**
 * Imports raw AES key bytes (16 or 32). The caller may zero `raw` after.
 * 24-byte (AES-192) keys are refused: Deno's node:crypto has no aes-192-gcm,
 * and every key of this package is 32 bytes.
 */
export function importAesGcmKey(raw: Uint8Array): AeadKey {
  if (!(raw instanceof Uint8Array) || ![16, 32].includes(raw.length)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot import AES-GCM key: expected 16 or 32 bytes, got ${raw?.length}`,
    );
  }
  return Object.freeze({
    algorithm: `aes-${raw.length * 8}-gcm` as AeadKey["algorithm"],
    key: createSecretKey(raw),
  });
}

/**
 * Seals with a given nonce: `version ‖ nonce ‖ ciphertext ‖ tag`, written
 * into `into` when given (it must be `SEALED_OVERHEAD + plaintext.length`
 * bytes: batches write into one allocation).
 */
export function sealWithNonce(
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  into?: Uint8Array,
): Uint8Array {
  if (nonce.length !== NONCE_LENGTH) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot seal: nonce must be ${NONCE_LENGTH} bytes, got ${nonce.length}`,
    );
  }
  const cipher = createCipheriv(key.algorithm, key.key, nonce, {
    authTagLength: TAG_LENGTH,
  });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const last = cipher.final();
  const tag = cipher.getAuthTag();
  const out = into ?? new Uint8Array(SEALED_OVERHEAD + plaintext.length);
  out[0] = SEALED_VERSION;
  out.set(nonce, 1);
  out.set(body, 1 + NONCE_LENGTH);
  out.set(last, 1 + NONCE_LENGTH + body.length);
  out.set(tag, out.length - TAG_LENGTH);
  return out;
}

/** Opens a sealed value; any mismatch is `AUTH_FAILED` with no plaintext. */
export function openSealed(
  key: AeadKey,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  if (!(sealed instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open sealed value: expected a Uint8Array",
    );
  }
  if (sealed.length < SEALED_OVERHEAD) {
    throw new AicoDataError(
      "AUTH_FAILED",
      `Cannot open sealed value: too short (${sealed.length} bytes)`,
    );
  }
  if (sealed[0] !== SEALED_VERSION) {
    throw new AicoDataError(
      "AUTH_FAILED",
      `Cannot open sealed value: unknown version "${sealed[0]}"`,
    );
  }
  const end = sealed.length - TAG_LENGTH;
  const out = new Uint8Array(end - 1 - NONCE_LENGTH);
  try {
    const decipher = createDecipheriv(
      key.algorithm,
      key.key,
      sealed.subarray(1, 1 + NONCE_LENGTH),
      { authTagLength: TAG_LENGTH },
    );
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(end));
    // The plaintext is released only after final() verified the tag.
    const body = decipher.update(sealed.subarray(1 + NONCE_LENGTH, end));
    out.set(body);
    body.fill(0);
    decipher.final();
    return out;
  } catch (cause) {
    out.fill(0);
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open sealed value: authentication failed",
      { cause },
    );
  }
}
