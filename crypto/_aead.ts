// Internal AES-GCM core: the sealed-value layout and the one place WebCrypto
// AES-GCM is called. Sealer (seal.ts) adds random nonces and the budget.
import { AicoDataError } from "../errors.ts";
import { buf } from "./_bytes.ts";

/** Version byte of the sealed layout. */
export const SEALED_VERSION = 1;
/** AES-GCM nonce length in bytes (96 bits; the only size accepted). */
export const NONCE_LENGTH = 12;
/** AES-GCM tag length in bytes. */
export const TAG_LENGTH = 16;
/** Bytes a sealed value adds to its plaintext. */
export const SEALED_OVERHEAD = 1 + NONCE_LENGTH + TAG_LENGTH;

/** Imports raw AES key bytes (16, 24 or 32) as a non-extractable AES-GCM key. */
export async function importAesGcmKey(raw: Uint8Array): Promise<CryptoKey> {
  if (![16, 24, 32].includes(raw.length)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot import AES-GCM key: expected 16, 24 or 32 bytes, got ${raw.length}`,
    );
  }
  return await crypto.subtle.importKey("raw", buf(raw), "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

/** Seals with a given nonce: `version ‖ nonce ‖ ciphertext ‖ tag`. */
export async function sealWithNonce(
  key: CryptoKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  if (nonce.length !== NONCE_LENGTH) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot seal: nonce must be ${NONCE_LENGTH} bytes, got ${nonce.length}`,
    );
  }
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad) },
      key,
      buf(plaintext),
    ),
  );
  const out = new Uint8Array(1 + NONCE_LENGTH + ct.length);
  out[0] = SEALED_VERSION;
  out.set(nonce, 1);
  out.set(ct, 1 + NONCE_LENGTH);
  return out;
}

/** Opens a sealed value; any mismatch is `AUTH_FAILED` with no plaintext. */
export async function openSealed(
  key: CryptoKey,
  sealed: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
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
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: buf(sealed.subarray(1, 1 + NONCE_LENGTH)),
          additionalData: buf(aad),
        },
        key,
        buf(sealed.subarray(1 + NONCE_LENGTH)),
      ),
    );
  } catch (cause) {
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open sealed value: authentication failed",
      { cause },
    );
  }
}
