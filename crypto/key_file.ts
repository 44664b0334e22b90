/**
 * The key file: a data key (DEK) wrapped under a passphrase.
 *
 * @module
 */
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { requirePermission } from "../_internal/permissions.ts";
import {
  type AeadKey,
  importAesGcmKey,
  NONCE_LENGTH,
  openSealed,
  sealWithNonce,
} from "./_aead.ts";
import { fromBase64, randomBytes, toBase64 } from "./_bytes.ts";
import { type DataKey, generateDataKey, importDataKey } from "./data_key.ts";
import {
  type Argon2idParams,
  checkKdfParams,
  deriveKeyArgon2id,
  type KdfOptions,
  resolveKdfParams,
} from "./kdf.ts";

/** The `format` field of a key file. */
export const KEY_FILE_FORMAT = "aico-data-keyfile";
/** The version of the key file layout written by this module. */
export const KEY_FILE_VERSION = 1;

/** Options of {@linkcode createKeyFile} and {@linkcode changePassphrase}. */
export interface KeyFileOptions {
  /**
   * Argon2id settings for the new passphrase.
   *
   * @default {{}} (64 MiB, t=3, p=1, random 16-byte salt)
   */
  readonly kdf?: KdfOptions;
}

/** What a key file says about itself; nothing in it is secret. */
export interface KeyFileInfo {
  /** Layout version. */
  readonly version: number;
  /** The fingerprint of the current data key. */
  readonly keyId: string;
  /** The fingerprint of a data key being rotated to, if a rotation is under way. */
  readonly pendingKeyId: string | undefined;
  /** The Argon2id parameters of the passphrase. */
  readonly kdf: Argon2idParams;
}

/** The keys a key file holds, from {@linkcode unlockKeys}. */
export interface UnlockedKeys {
  /** The current data key. */
  readonly current: DataKey;
  /** The key a rotation is moving to, if one is under way. */
  readonly pending: DataKey | undefined;
}

/**
 * The part of a keyring backend the key file uses (see `crypto/keyring.ts`).
 */
export interface KeyringStore {
  /** Reads a secret, `undefined` when absent. */
  get(account: string): Promise<Uint8Array | undefined>;
  /** Writes a secret. */
  set(account: string, secret: Uint8Array): Promise<void>;
}

interface Slot {
  keyId: string;
  wrappedKey: string;
}

interface KeyFileJson {
  format: string;
  version: number;
  kdf: {
    algorithm: "argon2id";
    version: 19;
    memoryKiB: number;
    iterations: number;
    parallelism: number;
    salt: string;
  };
  current: Slot;
  pending?: Slot;
}

function corrupt(path: string, detail: string, cause?: unknown): AicoDataError {
  return new AicoDataError(
    "KEY_FILE_CORRUPT",
    `Cannot read key file "${path}": ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

function isSlot(v: unknown): v is Slot {
  const s = v as Slot;
  return typeof s === "object" && s !== null && typeof s.keyId === "string" &&
    /^[0-9a-f]{32}$/.test(s.keyId) && typeof s.wrappedKey === "string";
}

function parseKeyFile(
  path: string,
  text: string,
): { json: KeyFileJson; kdf: Argon2idParams } {
  let json: KeyFileJson;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw corrupt(path, "not valid JSON", cause);
  }
  if (
    typeof json !== "object" || json === null || json.format !== KEY_FILE_FORMAT
  ) {
    throw corrupt(path, "not an aico-data key file");
  }
  if (json.version !== KEY_FILE_VERSION) {
    throw corrupt(path, `unsupported version "${String(json.version)}"`);
  }
  if (
    !isSlot(json.current) ||
    (json.pending !== undefined && !isSlot(json.pending))
  ) {
    throw corrupt(path, "malformed key slot");
  }
  let kdf: Argon2idParams;
  try {
    const k = json.kdf;
    kdf = checkKdfParams({
      algorithm: k.algorithm,
      version: k.version,
      memoryKiB: k.memoryKiB,
      iterations: k.iterations,
      parallelism: k.parallelism,
      salt: fromBase64(k.salt),
    }, true);
  } catch (cause) {
    throw corrupt(path, "malformed KDF parameters", cause);
  }
  return { json, kdf };
}

/** The associated data that binds a wrapped key to its file's header. */
function wrapAad(
  kdf: Argon2idParams,
  slot: "current" | "pending",
  keyId: string,
): Uint8Array {
  return new TextEncoder().encode(
    [
      `${KEY_FILE_FORMAT}/v${KEY_FILE_VERSION}`,
      slot,
      keyId,
      kdf.algorithm,
      kdf.version,
      kdf.memoryKiB,
      kdf.iterations,
      kdf.parallelism,
      toBase64(kdf.salt),
    ].join("\n"),
  );
}

async function readText(path: string): Promise<string> {
  requirePermission(
    { name: "read", path },
    `--allow-read=${path}`,
    "read key file",
  );
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot read key file "${path}": not found`,
        {
          cause,
        },
      );
    }
    throw corrupt(path, "unreadable", cause);
  }
}

async function writeAtomically(
  path: string,
  text: string,
  createNew: boolean,
): Promise<void> {
  requirePermission(
    { name: "write", path },
    `--allow-write=${path}`,
    "write key file",
  );
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    const file = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: 0o600,
    });
    try {
      await file.write(new TextEncoder().encode(text));
      await file.sync();
    } finally {
      file.close();
    }
    if (createNew) {
      // link() fails when the target exists: no existing key file is replaced.
      await Deno.link(tmp, path);
      await Deno.remove(tmp);
    } else {
      await Deno.rename(tmp, path);
    }
  } catch (cause) {
    await Deno.remove(tmp).catch(() => {});
    if (cause instanceof Deno.errors.AlreadyExists) {
      throw new AicoDataError(
        "ALREADY_EXISTS",
        `Cannot create key file "${path}": a file exists there`,
        { cause },
      );
    }
    throw cause;
  }
}

async function kekFor(
  passphrase: string | Uint8Array,
  kdf: Argon2idParams,
): Promise<AeadKey> {
  const kek = await deriveKeyArgon2id(passphrase, kdf, {
    allowWeakParams: true,
  });
  try {
    return importAesGcmKey(kek);
  } finally {
    kek.fill(0);
  }
}

async function wrapSlot(
  kek: AeadKey,
  kdf: Argon2idParams,
  slot: "current" | "pending",
  dek: Uint8Array,
): Promise<Slot> {
  const keyId = (await importDataKey(dek)).keyId;
  const sealed = sealWithNonce(
    kek,
    randomBytes(NONCE_LENGTH),
    dek,
    wrapAad(kdf, slot, keyId),
  );
  return { keyId, wrappedKey: toBase64(sealed) };
}

async function unwrapSlot(
  path: string,
  kek: AeadKey,
  kdf: Argon2idParams,
  which: "current" | "pending",
  slot: Slot,
): Promise<Uint8Array> {
  let sealed: Uint8Array;
  try {
    sealed = fromBase64(slot.wrappedKey);
  } catch (cause) {
    throw corrupt(path, "malformed wrapped key", cause);
  }
  let dek: Uint8Array;
  try {
    dek = openSealed(kek, sealed, wrapAad(kdf, which, slot.keyId));
  } catch (cause) {
    if (isAicoDataError(cause, "AUTH_FAILED")) {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot unlock key file "${path}": wrong passphrase`,
        { cause },
      );
    }
    throw cause;
  }
  if ((await importDataKey(dek)).keyId !== slot.keyId) {
    dek.fill(0);
    throw corrupt(path, "the key does not match its fingerprint");
  }
  return dek;
}

function serialise(kdf: Argon2idParams, current: Slot, pending?: Slot): string {
  const json: KeyFileJson = {
    format: KEY_FILE_FORMAT,
    version: KEY_FILE_VERSION,
    kdf: {
      algorithm: kdf.algorithm,
      version: kdf.version,
      memoryKiB: kdf.memoryKiB,
      iterations: kdf.iterations,
      parallelism: kdf.parallelism,
      salt: toBase64(kdf.salt),
    },
    current,
    ...(pending === undefined ? {} : { pending }),
  };
  return JSON.stringify(json, null, 2) + "\n";
}

/** Reads and unwraps every slot; the raw DEKs are zeroed before returning. */
async function openFile(
  path: string,
  passphrase: string | Uint8Array,
): Promise<
  {
    kdf: Argon2idParams;
    json: KeyFileJson;
    current: Uint8Array;
    pending: Uint8Array | undefined;
  }
> {
  const { json, kdf } = parseKeyFile(path, await readText(path));
  const kek = await kekFor(passphrase, kdf);
  const current = await unwrapSlot(path, kek, kdf, "current", json.current);
  const pending = json.pending === undefined
    ? undefined
    : await unwrapSlot(path, kek, kdf, "pending", json.pending);
  return { kdf, json, current, pending };
}

/** Whether two keys are equal (no early exit). */
function sameKey(
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

async function toKeys(
  current: Uint8Array,
  pending: Uint8Array | undefined,
): Promise<UnlockedKeys> {
  try {
    return {
      current: await importDataKey(current),
      pending: pending === undefined ? undefined : await importDataKey(pending),
    };
  } finally {
    current.fill(0);
    pending?.fill(0);
  }
}

/**
 * Creates a key file holding a new random data key wrapped under a passphrase.
 *
 * Needs `--allow-write` (and `--allow-read`) on `path`.
 *
 * @remarks
 * The file is JSON: `{ format: "aico-data-keyfile", version: 1, kdf: { algorithm,
 * version, memoryKiB, iterations, parallelism, salt (base64) }, current: { keyId,
 * wrappedKey }, pending?: { keyId, wrappedKey } }`. `wrappedKey` is the DEK
 * sealed (AES-256-GCM, layout of {@linkcode Sealer}) under
 * KEK = Argon2id(passphrase, salt), with associated data binding it to the
 * header (format, slot, keyId, KDF parameters), so an edited header fails to
 * unlock. `keyId` is the DEK's public fingerprint and serves as the verifier
 * that tells a wrong key from a damaged store. Written with mode 0600, never
 * over an existing file.
 *
 * @param path Where to write the key file; it must not exist.
 * @param passphrase The passphrase.
 * @param options KDF settings.
 * @returns The new {@linkcode DataKey}.
 * @throws {AicoDataError} `ALREADY_EXISTS` when `path` exists,
 * `WEAK_KDF_PARAMS`, `INVALID_INPUT`, `PERMISSION_DENIED`.
 *
 * @example Creating and unlocking a key file
 * ```ts
 * import { createKeyFile, unlockKeyFile } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 };
 *   const key = await createKeyFile(`${dir}/key.json`, "correct horse", { kdf });
 *   const again = await unlockKeyFile(`${dir}/key.json`, "correct horse");
 *   assert.equal(again.keyId, key.keyId);
 *   await assert.rejects(unlockKeyFile(`${dir}/key.json`, "wrong"), { code: "WRONG_KEY" });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function createKeyFile(
  path: string,
  passphrase: string | Uint8Array,
  options: KeyFileOptions = {},
): Promise<DataKey> {
  const kdf = resolveKdfParams(options.kdf);
  const dek = generateDataKey();
  try {
    const kek = await kekFor(passphrase, kdf);
    await writeAtomically(
      path,
      serialise(kdf, await wrapSlot(kek, kdf, "current", dek)),
      true,
    );
    return await importDataKey(dek);
  } finally {
    dek.fill(0);
  }
}

/**
 * Unlocks a key file with its passphrase. The file is only read.
 *
 * Needs `--allow-read` on `path`.
 *
 * @param path The key file.
 * @param passphrase The passphrase.
 * @returns The current {@linkcode DataKey}.
 * @throws {AicoDataError} `WRONG_KEY` for a wrong passphrase, `NOT_FOUND`,
 * `KEY_FILE_CORRUPT`, `PERMISSION_DENIED`.
 *
 * @example See {@linkcode createKeyFile}.
 * ```ts
 * import { createKeyFile, unlockKeyFile } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const created = await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   assert.equal((await unlockKeyFile(`${dir}/k`, "pw")).keyId, created.keyId);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function unlockKeyFile(
  path: string,
  passphrase: string | Uint8Array,
): Promise<DataKey> {
  return (await unlockKeys(path, passphrase)).current;
}

/**
 * Unlocks a key file and returns both slots: the current key and, while a
 * rotation is under way, the pending one. Stores use it to finish or undo an
 * interrupted rotation.
 *
 * @param path The key file.
 * @param passphrase The passphrase.
 * @returns The keys.
 * @throws {AicoDataError} as {@linkcode unlockKeyFile}.
 *
 * @example No rotation under way
 * ```ts
 * import { createKeyFile, unlockKeys } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   assert.equal((await unlockKeys(`${dir}/k`, "pw")).pending, undefined);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function unlockKeys(
  path: string,
  passphrase: string | Uint8Array,
): Promise<UnlockedKeys> {
  const { current, pending } = await openFile(path, passphrase);
  return await toKeys(current, pending);
}

/**
 * Reads what a key file says about itself, without a passphrase.
 *
 * @param path The key file.
 * @returns Its {@linkcode KeyFileInfo}.
 * @throws {AicoDataError} `NOT_FOUND`, `KEY_FILE_CORRUPT`, `PERMISSION_DENIED`.
 *
 * @example Reading the fingerprint
 * ```ts
 * import { createKeyFile, readKeyFileInfo } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   const info = await readKeyFileInfo(`${dir}/k`);
 *   assert.equal(info.keyId, key.keyId);
 *   assert.equal(info.kdf.memoryKiB, 19456);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function readKeyFileInfo(path: string): Promise<KeyFileInfo> {
  const { json, kdf } = parseKeyFile(path, await readText(path));
  return Object.freeze({
    version: json.version,
    keyId: json.current.keyId,
    pendingKeyId: json.pending?.keyId,
    kdf,
  });
}

/**
 * Changes the passphrase: the data key is re-wrapped under a new salt and
 * KEK; nothing else changes, so every value sealed before still opens. The
 * file is replaced atomically.
 *
 * Needs `--allow-read` and `--allow-write` on `path` and its directory.
 *
 * @param path The key file.
 * @param oldPassphrase The current passphrase.
 * @param newPassphrase The new passphrase.
 * @param options KDF settings for the new passphrase.
 * @returns Nothing.
 * @throws {AicoDataError} `WRONG_KEY` when `oldPassphrase` is wrong (the file
 * is left as it was), and as {@linkcode createKeyFile}.
 *
 * @example Changing a passphrase
 * ```ts
 * import { changePassphrase, createKeyFile, unlockKeyFile } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 };
 *   const key = await createKeyFile(`${dir}/k`, "old", { kdf });
 *   await changePassphrase(`${dir}/k`, "old", "new", { kdf });
 *   assert.equal((await unlockKeyFile(`${dir}/k`, "new")).keyId, key.keyId);
 *   await assert.rejects(unlockKeyFile(`${dir}/k`, "old"), { code: "WRONG_KEY" });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function changePassphrase(
  path: string,
  oldPassphrase: string | Uint8Array,
  newPassphrase: string | Uint8Array,
  options: KeyFileOptions = {},
): Promise<void> {
  const kdf = resolveKdfParams(options.kdf);
  const { current, pending } = await openFile(path, oldPassphrase);
  try {
    const kek = await kekFor(newPassphrase, kdf);
    const text = serialise(
      kdf,
      await wrapSlot(kek, kdf, "current", current),
      pending === undefined
        ? undefined
        : await wrapSlot(kek, kdf, "pending", pending),
    );
    await writeAtomically(path, text, false);
  } finally {
    current.fill(0);
    pending?.fill(0);
  }
}

async function rewriteSlots(
  path: string,
  passphrase: string | Uint8Array,
  change: (
    current: Uint8Array,
    pending: Uint8Array | undefined,
  ) => { current: Uint8Array; pending: Uint8Array | undefined },
): Promise<UnlockedKeys> {
  const opened = await openFile(path, passphrase);
  const next = change(opened.current, opened.pending);
  try {
    const kek = await kekFor(passphrase, opened.kdf);
    // A slot whose key stays in place keeps its wrapped bytes: starting and
    // then abandoning a rotation gives back the very same file.
    const text = serialise(
      opened.kdf,
      sameKey(next.current, opened.current)
        ? opened.json.current
        : await wrapSlot(kek, opened.kdf, "current", next.current),
      next.pending === undefined
        ? undefined
        : sameKey(next.pending, opened.pending) && opened.json.pending
        ? opened.json.pending
        : await wrapSlot(kek, opened.kdf, "pending", next.pending),
    );
    await writeAtomically(path, text, false);
    return await toKeys(next.current.slice(), next.pending?.slice());
  } finally {
    for (
      const k of [opened.current, opened.pending, next.current, next.pending]
    ) k?.fill(0);
  }
}

/**
 * Starts rotating the data key: a new random key is written to the pending
 * slot beside the current one. Re-encrypt every store with `pending`, then
 * call {@linkcode completeKeyRotation}; after a crash both keys are still in
 * the file, so a store opens with whichever key it holds. A rotation already
 * under way is resumed (its pending key is kept).
 *
 * @param path The key file.
 * @param passphrase The passphrase.
 * @returns `current` (the old key) and `pending` (the new one).
 * @throws {AicoDataError} as {@linkcode changePassphrase}.
 *
 * @example Rotating
 * ```ts
 * import { beginKeyRotation, completeKeyRotation, createKeyFile } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const old = await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   const { pending } = await beginKeyRotation(`${dir}/k`, "pw");
 *   // ... re-encrypt stores with `pending` here ...
 *   const now = await completeKeyRotation(`${dir}/k`, "pw");
 *   assert.equal(now.keyId, pending?.keyId);
 *   assert.notEqual(now.keyId, old.keyId);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function beginKeyRotation(
  path: string,
  passphrase: string | Uint8Array,
): Promise<UnlockedKeys> {
  return await rewriteSlots(path, passphrase, (current, pending) => ({
    current: current.slice(),
    pending: (pending ?? generateDataKey()).slice(),
  }));
}

/**
 * Finishes a rotation: the pending key becomes the current one and the old
 * key is forgotten.
 *
 * @param path The key file.
 * @param passphrase The passphrase.
 * @returns The new current {@linkcode DataKey}.
 * @throws {AicoDataError} `INVALID_INPUT` when no rotation is under way, and
 * as {@linkcode changePassphrase}.
 *
 * @example See {@linkcode beginKeyRotation}.
 * ```ts
 * import { completeKeyRotation, createKeyFile } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   await assert.rejects(completeKeyRotation(`${dir}/k`, "pw"), { code: "INVALID_INPUT" });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function completeKeyRotation(
  path: string,
  passphrase: string | Uint8Array,
): Promise<DataKey> {
  const keys = await rewriteSlots(path, passphrase, (_current, pending) => {
    if (pending === undefined) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot complete key rotation of "${path}": no rotation is under way`,
      );
    }
    return { current: pending.slice(), pending: undefined };
  });
  return keys.current;
}

/**
 * Abandons a rotation that no store took up: the pending slot is dropped
 * and the key file keeps only its current key, byte for byte as before
 * {@linkcode beginKeyRotation}. Use it only when no store was re-encrypted
 * with the pending key (for example when `Storage.rekey()` refused with
 * `BUSY` before changing anything).
 *
 * @param path The key file.
 * @param passphrase The passphrase.
 * @param pendingKeyId The keyId of the pending key to drop; the file is
 * left alone when another key (or none) is pending.
 * @returns `true` when the pending slot was dropped.
 * @throws {AicoDataError} as {@linkcode changePassphrase}.
 *
 * @example A refused rotation leaves no pending key behind
 * ```ts
 * import { beginKeyRotation, cancelKeyRotation, createKeyFile, readKeyFileInfo } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   const { pending } = await beginKeyRotation(`${dir}/k`, "pw");
 *   assert.equal(await cancelKeyRotation(`${dir}/k`, "pw", pending!.keyId), true);
 *   assert.equal((await readKeyFileInfo(`${dir}/k`)).pendingKeyId, undefined);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function cancelKeyRotation(
  path: string,
  passphrase: string | Uint8Array,
  pendingKeyId: string,
): Promise<boolean> {
  if ((await readKeyFileInfo(path)).pendingKeyId !== pendingKeyId) {
    return false;
  }
  await rewriteSlots(path, passphrase, (current) => ({
    current: current.slice(),
    pending: undefined,
  }));
  return true;
}

/**
 * Stores the current data key in an OS keyring, so that
 * {@linkcode unlockWithKeyring} opens the key file without the passphrase.
 * The account name is `aico-data/<keyId>`.
 *
 * @param path The key file.
 * @param passphrase The passphrase (the key is unwrapped to be stored).
 * @param keyring The keyring backend.
 * @returns The current {@linkcode DataKey}.
 * @throws {AicoDataError} `KEYRING_UNAVAILABLE` from the backend, and as
 * {@linkcode unlockKeyFile}.
 *
 * @example With an in-memory store standing in for a keyring
 * ```ts
 * import { createKeyFile, rememberInKeyring, unlockWithKeyring } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const secrets = new Map<string, Uint8Array>();
 * const keyring = {
 *   get: (a: string) => Promise.resolve(secrets.get(a)),
 *   set: (a: string, s: Uint8Array) => Promise.resolve(void secrets.set(a, s.slice())),
 * };
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   await rememberInKeyring(`${dir}/k`, "pw", keyring);
 *   assert.equal((await unlockWithKeyring(`${dir}/k`, keyring)).keyId, key.keyId);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function rememberInKeyring(
  path: string,
  passphrase: string | Uint8Array,
  keyring: KeyringStore,
): Promise<DataKey> {
  const { current, pending } = await openFile(path, passphrase);
  try {
    const key = await importDataKey(current);
    await keyring.set(`aico-data/${key.keyId}`, current);
    return key;
  } finally {
    current.fill(0);
    pending?.fill(0);
  }
}

/**
 * Opens a key file's current data key from an OS keyring (stored there by
 * {@linkcode rememberInKeyring}). The key read back must match the file's
 * fingerprint.
 *
 * @param path The key file.
 * @param keyring The keyring backend.
 * @returns The current {@linkcode DataKey}.
 * @throws {AicoDataError} `NOT_FOUND` when the keyring holds no key for this
 * file, `WRONG_KEY` when it holds another key, `KEYRING_UNAVAILABLE` from the
 * backend.
 *
 * @example See {@linkcode rememberInKeyring}.
 * ```ts
 * import { createKeyFile, unlockWithKeyring } from "./key_file.ts";
 * import assert from "node:assert/strict";
 *
 * const empty = { get: () => Promise.resolve(undefined), set: () => Promise.resolve() };
 * const dir = await Deno.makeTempDir();
 * try {
 *   await createKeyFile(`${dir}/k`, "pw", { kdf: { memoryKiB: 19456, iterations: 2 } });
 *   await assert.rejects(unlockWithKeyring(`${dir}/k`, empty), { code: "NOT_FOUND" });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function unlockWithKeyring(
  path: string,
  keyring: Pick<KeyringStore, "get">,
): Promise<DataKey> {
  const info = await readKeyFileInfo(path);
  const secret = await keyring.get(`aico-data/${info.keyId}`);
  if (secret === undefined) {
    throw new AicoDataError(
      "NOT_FOUND",
      `Cannot unlock key file "${path}": the keyring holds no key for it`,
    );
  }
  try {
    const key = await importDataKey(secret).catch((cause) => {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot unlock key file "${path}": the keyring holds a malformed key`,
        { cause },
      );
    });
    if (key.keyId !== info.keyId) {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot unlock key file "${path}": the keyring holds another key`,
      );
    }
    return key;
  } finally {
    secret.fill(0);
  }
}
