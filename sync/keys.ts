/**
 * The sync keys: derived from the data key through the `sync` purpose key
 * (`HKDF-SHA256(DEK, info = "aico/sync/v1")`), one for sealing segments and
 * manifests and one for naming them.
 *
 * @module
 */
import type { DataKey } from "../crypto/mod.ts";
import { hkdfSha256 } from "../crypto/hkdf.ts";
import { AicoDataError } from "../errors.ts";
import { attachMaterial, secretKey } from "./_keys.ts";

/** The keys of every device of one data key. Only `keyId` is readable. */
export interface SyncKeys {
  /** The fingerprint of the data key they come from. */
  readonly keyId: string;
}

const encoder = new TextEncoder();

/**
 * Derives the sync keys of a data key: every device unlocked with the same
 * key file derives the same keys.
 *
 * @remarks
 * `sync = HKDF(DEK, info = "aico/sync/v1")`; the sealing key is
 * `HKDF(sync, info = "aico/sync/v1/seal")` (AES-256-GCM) and the naming key
 * `HKDF(sync, info = "aico/sync/v1/names")` (HMAC-SHA256). Raw bytes are
 * zeroed after import into native key objects.
 *
 * @param key The data key.
 * @returns The keys.
 * @throws {AicoDataError} `INVALID_INPUT` when `key` is not a data key.
 *
 * @example Two devices with one data key derive the same keys
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importDataKey(generateDataKey());
 * const keys = await deriveSyncKeys(key);
 * assert.equal(keys.keyId, key.keyId);
 * ```
 */
export async function deriveSyncKeys(key: DataKey): Promise<SyncKeys> {
  if (typeof key?.purposeKeyBytes !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot derive sync keys: expected a DataKey",
    );
  }
  const root = await key.purposeKeyBytes("sync");
  const seal = await hkdfSha256(
    root,
    new Uint8Array(),
    encoder.encode("aico/sync/v1/seal"),
    32,
  );
  const names = await hkdfSha256(
    root,
    new Uint8Array(),
    encoder.encode("aico/sync/v1/names"),
    32,
  );
  try {
    const keys: SyncKeys = Object.freeze({ keyId: key.keyId });
    attachMaterial(keys, { seal: secretKey(seal), names: secretKey(names) });
    return keys;
  } finally {
    root.fill(0);
    seal.fill(0);
    names.fill(0);
  }
}
