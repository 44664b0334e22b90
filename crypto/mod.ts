/**
 * Keys and sealing for `@aico/data`: Argon2id passphrase derivation, a key
 * file that wraps the data key (DEK), HKDF purpose keys, AES-256-GCM sealing
 * of values, OS keyring backends, and unlocking a data folder's key file
 * (passphrase, keyring, pending rotation).
 *
 * Key hierarchy: passphrase →Argon2id→ KEK →AES-256-GCM wrap→ DEK
 * →HKDF-SHA256("aico/<purpose>/v1")→ purpose keys (`libsql-page`,
 * `field-aead`, `cache`, `vector-doc`, `export`). Changing the passphrase
 * re-wraps the DEK only.
 *
 * Permissions: `--allow-read`/`--allow-write` on the key file; sealing and
 * derivation need none.
 *
 * @example Creating a key file and sealing a value
 * ```ts
 * import { createKeyFile, unlockKeyFile } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 }; // use the defaults in real code
 *   await createKeyFile(`${dir}/key.json`, "a long passphrase", { kdf });
 *   const key = await unlockKeyFile(`${dir}/key.json`, "a long passphrase");
 *   const sealer = await key.sealer("field-aead");
 *   const sealed = await sealer.seal("my secret memory", "messages|content|1");
 *   assert.equal(await sealer.openText(sealed, "messages|content|1"), "my secret memory");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export * from "./data_key.ts";
export * from "./hkdf.ts";
export * from "./kdf.ts";
export * from "./key_file.ts";
export * from "./keyring.ts";
export * from "./unlock.ts";
export {
  type AssociatedData,
  importSealingKey,
  MAX_SEALS_PER_KEY,
  type OpenItem,
  type Sealer,
  type SealerOptions,
  type SealItem,
} from "./seal.ts";
