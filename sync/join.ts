/**
 * Joining a device: the passphrase-wrapped key file is kept on the target,
 * so a new device needs only the target and the passphrase. The target
 * never sees the passphrase or the data key.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { DataKey } from "../crypto/mod.ts";
import { readKeyFileInfo, unlockKeyFile } from "../crypto/key_file.ts";
import { AicoDataError } from "../errors.ts";
import type { SyncTarget } from "./types.ts";

/** The object name of the key file on a target. */
export const KEY_FILE_OBJECT = "keyfile";

/**
 * Puts this store's key file on the target (once: an existing one is left).
 *
 * Needs `--allow-read` on `keyFilePath`.
 *
 * @remarks
 * The object is the key file as it is on disk (see `createKeyFile`): the
 * data key wrapped by AES-256-GCM under Argon2id(passphrase). Its strength
 * against whoever reads the target is the passphrase's.
 *
 * @param target The target.
 * @param keyFilePath The local key file.
 * @returns `true` when written, `false` when the same key's file was there.
 * @throws {AicoDataError} `ALREADY_EXISTS` when the target holds the key file
 * of another data key, `KEY_FILE_CORRUPT`, `NOT_FOUND`, target errors.
 *
 * @example See {@linkcode fetchKeyFile}.
 * ```ts
 * import { createKeyFile } from "../crypto/mod.ts";
 * import { openFolderTarget, publishKeyFile } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await createKeyFile(`${dir}/key.json`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   await using target = await openFolderTarget(`${dir}/t`);
 *   assert.equal(await publishKeyFile(target, `${dir}/key.json`), true);
 *   assert.equal(await publishKeyFile(target, `${dir}/key.json`), false);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function publishKeyFile(
  target: SyncTarget,
  keyFilePath: string,
): Promise<boolean> {
  const info = await readKeyFileInfo(keyFilePath);
  const bytes = await Deno.readFile(keyFilePath);
  if (await target.writeIfAbsent(KEY_FILE_OBJECT, bytes)) return true;
  const there = await inspect(await target.read(KEY_FILE_OBJECT));
  if (there !== info.keyId) {
    throw new AicoDataError(
      "ALREADY_EXISTS",
      "Cannot publish key file: the target holds the key file of another data key",
    );
  }
  return false;
}

async function inspect(bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "aico_keyfile_" });
  try {
    await Deno.writeFile(`${dir}/k`, bytes, { mode: 0o600 });
    return (await readKeyFileInfo(`${dir}/k`)).keyId;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Fetches the key file from the target to a new device, unlocks it with the
 * passphrase, and only then writes it to `keyFilePath` (mode 0600, never
 * over an existing file).
 *
 * Needs `--allow-read` and `--allow-write` on `keyFilePath`'s folder.
 *
 * @param target The target.
 * @param keyFilePath Where to write the key file; it must not exist.
 * @param passphrase The passphrase.
 * @returns The data key.
 * @throws {AicoDataError} `WRONG_KEY` for a wrong passphrase (nothing is
 * written), `NOT_FOUND` when the target has no key file, `ALREADY_EXISTS`
 * when `keyFilePath` exists, `KEY_FILE_CORRUPT`.
 *
 * @example Joining with the passphrase
 * ```ts
 * import { createKeyFile } from "../crypto/mod.ts";
 * import { fetchKeyFile, openFolderTarget, publishKeyFile } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 };
 *   const key = await createKeyFile(`${dir}/key.json`, "pw", { kdf });
 *   await using target = await openFolderTarget(`${dir}/t`);
 *   await publishKeyFile(target, `${dir}/key.json`);
 *   await assert.rejects(fetchKeyFile(target, `${dir}/new.json`, "nope"), { code: "WRONG_KEY" });
 *   const joined = await fetchKeyFile(target, `${dir}/new.json`, "pw");
 *   assert.equal(joined.keyId, key.keyId);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function fetchKeyFile(
  target: SyncTarget,
  keyFilePath: string,
  passphrase: string | Uint8Array,
): Promise<DataKey> {
  if (typeof keyFilePath !== "string" || keyFilePath === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot fetch key file: expected a path",
    );
  }
  const path = resolve(keyFilePath);
  const bytes = await target.read(KEY_FILE_OBJECT);
  const tmp = `${dirname(path)}/.${crypto.randomUUID()}.keyfile-tmp`;
  try {
    await Deno.writeFile(tmp, bytes, { mode: 0o600, createNew: true });
    const key = await unlockKeyFile(tmp, passphrase);
    try {
      await Deno.link(tmp, path);
    } catch (cause) {
      if (cause instanceof Deno.errors.AlreadyExists) {
        throw new AicoDataError(
          "ALREADY_EXISTS",
          `Cannot fetch key file to "${path}": a file exists there`,
          { cause },
        );
      }
      throw cause;
    }
    return key;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}
