/**
 * The data key (DEK) and the purpose keys derived from it.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import { importAesGcmKey } from "./_aead.ts";
import { buf, randomBytes, toHex } from "./_bytes.ts";
import { type KeyPurpose, purposeInfo } from "./hkdf.ts";
import { createSealer, type Sealer, type SealerOptions } from "./seal.ts";

/** Length of a data key in bytes. */
export const DATA_KEY_LENGTH = 32;

/** The purposes a {@linkcode DataKey.sealer} can be made for. */
export type SealingPurpose = "field-aead" | "vector-doc" | "export";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * A data key (DEK) held in memory as a non-extractable WebCrypto HKDF key.
 *
 * @remarks
 * Purpose keys are `HKDF-SHA256(DEK, salt = empty, info = "aico/<purpose>/v1")`.
 * Raw purpose key bytes exist only for the components that need them
 * (libSQL page encryption, LMDB); sealing keys never leave WebCrypto.
 */
export interface DataKey {
  /**
   * A non-secret fingerprint of the key (32 hex digits):
   * `HKDF-SHA256(DEK, info = "aico/key-id/v1")`, 16 bytes.
   */
  readonly keyId: string;
  /**
   * Derives the 32 raw bytes of a purpose key.
   *
   * @param purpose The purpose.
   * @returns 32 bytes; the caller should zero them when done.
   * @throws {AicoDataError} `INVALID_INPUT` for an unknown purpose.
   */
  purposeKeyBytes(purpose: KeyPurpose): Promise<Uint8Array>;
  /**
   * The sealer of a purpose. One sealer (and so one seal counter) exists per
   * purpose and data key: later calls return the same one, and `options`
   * apply only to the first call.
   *
   * @param purpose `field-aead`, `vector-doc` or `export`.
   * @param options Seal budget settings.
   * @returns The purpose's {@linkcode Sealer}.
   * @throws {AicoDataError} `INVALID_INPUT` for another purpose.
   */
  sealer(purpose: SealingPurpose, options?: SealerOptions): Promise<Sealer>;
}

class DataKeyImpl implements DataKey {
  readonly keyId: string;
  #hkdf: CryptoKey;
  #sealers = new Map<SealingPurpose, Promise<Sealer>>();

  constructor(hkdf: CryptoKey, keyId: string) {
    this.#hkdf = hkdf;
    this.keyId = keyId;
  }

  async purposeKeyBytes(purpose: KeyPurpose): Promise<Uint8Array> {
    return await deriveBytes(this.#hkdf, purposeInfo(purpose), 32);
  }

  sealer(
    purpose: SealingPurpose,
    options: SealerOptions = {},
  ): Promise<Sealer> {
    if (!["field-aead", "vector-doc", "export"].includes(purpose)) {
      return Promise.reject(
        new AicoDataError(
          "INVALID_INPUT",
          `Cannot create sealer: purpose "${
            String(purpose)
          }" is not a sealing purpose`,
        ),
      );
    }
    let sealer = this.#sealers.get(purpose);
    if (sealer === undefined) {
      sealer = (async () => {
        const raw = await this.purposeKeyBytes(purpose);
        try {
          return createSealer(importAesGcmKey(raw), options);
        } finally {
          raw.fill(0);
        }
      })();
      this.#sealers.set(purpose, sealer);
    }
    return sealer;
  }

  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }
}

async function deriveBytes(
  hkdf: CryptoKey,
  info: string,
  length: number,
): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: EMPTY,
        info: encoder.encode(info),
      },
      hkdf,
      length * 8,
    ),
  );
}

/**
 * Generates a new random data key.
 *
 * @returns 32 random bytes from the platform CSPRNG.
 *
 * @example A fresh key
 * ```ts
 * import { generateDataKey } from "./data_key.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(generateDataKey().length, 32);
 * ```
 */
export function generateDataKey(): Uint8Array {
  return randomBytes(DATA_KEY_LENGTH);
}

/**
 * Imports data key bytes. The bytes are copied into a non-extractable
 * WebCrypto key; the caller may zero its copy afterwards.
 *
 * @param dek 32 bytes.
 * @returns The {@linkcode DataKey}.
 * @throws {AicoDataError} `INVALID_INPUT` when `dek` is not 32 bytes.
 *
 * @example Deriving purpose keys
 * ```ts
 * import { generateDataKey, importDataKey } from "./data_key.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importDataKey(generateDataKey());
 * const page = await key.purposeKeyBytes("libsql-page");
 * const cache = await key.purposeKeyBytes("cache");
 * assert.equal(page.length, 32);
 * assert.notDeepEqual(page, cache);
 * assert.match(key.keyId, /^[0-9a-f]{32}$/);
 * ```
 */
export async function importDataKey(dek: Uint8Array): Promise<DataKey> {
  if (!(dek instanceof Uint8Array) || dek.length !== DATA_KEY_LENGTH) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot import data key: expected ${DATA_KEY_LENGTH} bytes, got ${dek?.length}`,
    );
  }
  const hkdf = await crypto.subtle.importKey(
    "raw",
    buf(dek.slice()),
    "HKDF",
    false,
    [
      "deriveBits",
    ],
  );
  const keyId = toHex(await deriveBytes(hkdf, "aico/key-id/v1", 16));
  return new DataKeyImpl(hkdf, keyId);
}
