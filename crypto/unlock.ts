/**
 * {@linkcode unlockDataKeys}: opening (or creating) the key file of a data
 * folder with a keyring or a passphrase, including a rotation left pending.
 *
 * @module
 */
import { exists } from "../_internal/fs.ts";
import { AicoDataError } from "../errors.ts";
import type { KdfOptions } from "./kdf.ts";
import {
  createKeyFile,
  readKeyFileInfo,
  type UnlockedKeys,
  unlockKeys,
  unlockWithKeyring,
} from "./key_file.ts";
import type { KeyringBackend } from "./keyring.ts";

/** What {@linkcode unlockDataKeys} unlocked, and how. */
export interface UnlockResult extends UnlockedKeys {
  /** `created`: a new key file; `keyring`: the OS keyring; `passphrase`. */
  readonly method: "created" | "keyring" | "passphrase";
}

/** Options of {@linkcode unlockDataKeys}. */
export interface UnlockOptions {
  /**
   * The passphrase; needed to create the key file, and to open it unless
   * `keyring` holds the key (or a rotation is pending).
   *
   * @default {undefined}
   */
  readonly passphrase?: string;
  /**
   * An OS keyring holding the data key; tried first when no rotation is
   * pending (or when no passphrase is given).
   *
   * @default {undefined}
   */
  readonly keyring?: KeyringBackend;
  /**
   * Create the key file when it does not exist.
   *
   * @default {false}
   */
  readonly create?: boolean;
  /**
   * Argon2id settings of a new key file.
   *
   * @default {{}}
   */
  readonly kdf?: KdfOptions;
  /**
   * Files sealed under the key (a database): when one exists and the key
   * file does not, no new key is made (`NOT_FOUND`), since data under a lost
   * key must never get a new key beside it.
   *
   * @default {[]}
   */
  readonly guardedPaths?: readonly string[];
}

/**
 * Unlocks the data keys of a key file: with the keyring when it holds the
 * key and no rotation is pending, else with the passphrase (which also
 * unwraps a pending key). Creates the key file when asked and absent.
 *
 * Permissions: `--allow-read` (and `--allow-write` to create) on the key
 * file; those of the keyring backend.
 *
 * @param keyPath The key file.
 * @param options Passphrase, keyring, creation.
 * @returns The current key and the pending one of an unfinished rotation.
 * @throws {AicoDataError} `NOT_FOUND` (no key file and not `create`, or a
 * guarded file without its key file), `INVALID_INPUT` (a passphrase is
 * needed), `WRONG_KEY`, `KEYRING_UNAVAILABLE`, `KEY_FILE_CORRUPT`.
 *
 * @example Create, then unlock again
 * ```ts
 * import { unlockDataKeys } from "./unlock.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 }; // the defaults are stronger
 *   const made = await unlockDataKeys(`${dir}/key.json`, { passphrase: "pw", create: true, kdf });
 *   const again = await unlockDataKeys(`${dir}/key.json`, { passphrase: "pw" });
 *   assert.equal(again.current.keyId, made.current.keyId);
 *   assert.equal(again.pending, undefined);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function unlockDataKeys(
  keyPath: string,
  options: UnlockOptions = {},
): Promise<UnlockResult> {
  if (!(await exists(keyPath))) {
    for (const guarded of options.guardedPaths ?? []) {
      if (await exists(guarded)) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot unlock: "${guarded}" exists but its key file "${keyPath}" is missing (restore it from a backup)`,
        );
      }
    }
    if (!options.create) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot unlock: no key file at "${keyPath}" (pass create: true to make one)`,
      );
    }
    if (options.passphrase === undefined) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot create key file: a passphrase is needed",
      );
    }
    const kdf = options.kdf === undefined ? {} : { kdf: options.kdf };
    return {
      current: await createKeyFile(keyPath, options.passphrase, kdf),
      pending: undefined,
      method: "created",
    };
  }
  if (options.keyring !== undefined) {
    const info = await readKeyFileInfo(keyPath);
    if (info.pendingKeyId === undefined || options.passphrase === undefined) {
      try {
        return {
          current: await unlockWithKeyring(keyPath, options.keyring),
          pending: undefined,
          method: "keyring",
        };
      } catch (err) {
        if (options.passphrase === undefined) throw err;
      }
    }
  }
  if (options.passphrase === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot unlock: a passphrase is needed",
    );
  }
  return {
    ...(await unlockKeys(keyPath, options.passphrase)),
    method: "passphrase",
  };
}
