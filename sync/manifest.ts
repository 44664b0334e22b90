/**
 * Manifests: the sealed statement of a device of how far its segments go
 * (`head`) and the chain value over all of them, so that a reader detects a
 * missing, reordered, replaced or replayed segment, and an old manifest put
 * back in place of a newer one.
 *
 * @module
 */
import { CHAIN_FORM, DEVICE_FORM } from "./_forms.ts";
import { AicoDataError } from "../errors.ts";
import {
  keyedName,
  materialOf,
  openObject,
  padJson,
  parsePaddedJson,
  sealObject,
} from "./_keys.ts";
import type { SyncKeys } from "./keys.ts";

/** The manifest format version. */
export const MANIFEST_VERSION = 1;
const NAME_FORM = /^m[0-9a-f]{64}$/;

/** What a manifest states. */
export interface Manifest {
  /** The device whose segments it lists. */
  readonly deviceId: string;
  /** The number of its newest segment (segments 1 to `head` exist). */
  readonly head: number;
  /** The chain value after segment `head`. */
  readonly chain: string;
}

/** A sealed manifest, ready to write. */
export interface SealedManifest {
  /** Its object name (`m` ‖ 64 hex digits). */
  readonly name: string;
  /** The sealed bytes. */
  readonly bytes: Uint8Array;
}

function check(m: Manifest, action: string): void {
  if (
    typeof m?.deviceId !== "string" || !DEVICE_FORM.test(m.deviceId) ||
    !Number.isSafeInteger(m.head) || m.head < 1 ||
    typeof m.chain !== "string" || !CHAIN_FORM.test(m.chain)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: malformed manifest`,
    );
  }
}

/**
 * The object name of a device's manifest at a head:
 * `m ‖ hex(HMAC(names key, "manifest" ‖ device ‖ head))`.
 *
 * @param keys The sync keys.
 * @param deviceId The device.
 * @param head The head it states.
 * @returns The name.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed arguments.
 *
 * @example Names are opaque
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { manifestName } from "./manifest.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.match(manifestName(keys, "dev1", 3), /^m[0-9a-f]{64}$/);
 * ```
 */
export function manifestName(
  keys: SyncKeys,
  deviceId: string,
  head: number,
): string {
  check({ deviceId, head, chain: "0".repeat(64) }, "name manifest");
  return keyedName(materialOf(keys), "m", `manifest\n${deviceId}\n${head}`);
}

/**
 * Seals a manifest.
 *
 * @remarks
 * `0x01 ‖ nonce ‖ AES-256-GCM(JSON {format, v, device, head, chain} padded
 * to 256 bytes) ‖ tag` with associated data `"aico-sync/manifest/v1" ‖
 * name`; the name is keyed by device and head, so {@linkcode openManifest}
 * refuses a manifest under any other name.
 *
 * @param keys The sync keys.
 * @param manifest What to state.
 * @returns The name and bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed manifest.
 *
 * @example Sealing and opening
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openManifest, sealManifest } from "./manifest.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * const m = { deviceId: "dev1", head: 2, chain: "ab".repeat(32) };
 * const sealed = sealManifest(keys, m);
 * assert.deepEqual(openManifest(keys, sealed.name, sealed.bytes), m);
 * const other = sealManifest(keys, { ...m, head: 1 });
 * assert.throws(() => openManifest(keys, sealed.name, other.bytes), { code: "AUTH_FAILED" });
 * ```
 */
export function sealManifest(
  keys: SyncKeys,
  manifest: Manifest,
): SealedManifest {
  check(manifest, "seal manifest");
  const mat = materialOf(keys);
  const name = keyedName(
    mat,
    "m",
    `manifest\n${manifest.deviceId}\n${manifest.head}`,
  );
  const plain = padJson({
    format: "aico-sync-manifest",
    v: MANIFEST_VERSION,
    device: manifest.deviceId,
    head: manifest.head,
    chain: manifest.chain,
  }, 256);
  return Object.freeze({
    name,
    bytes: sealObject(
      mat,
      plain,
      `aico-sync/manifest/v${MANIFEST_VERSION}\n${name}`,
    ),
  });
}

/**
 * Opens a manifest read under `name`.
 *
 * @param keys The sync keys.
 * @param name The object name it was read from.
 * @param bytes The sealed bytes.
 * @returns The manifest.
 * @throws {AicoDataError} `AUTH_FAILED` for a tampered manifest, one under
 * another name, or a wrong key; `INVALID_INPUT` for a malformed name.
 *
 * @example See {@linkcode sealManifest}.
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openManifest } from "./manifest.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.throws(() => openManifest(keys, "m" + "0".repeat(64), new Uint8Array(300)), { code: "AUTH_FAILED" });
 * ```
 */
export function openManifest(
  keys: SyncKeys,
  name: string,
  bytes: Uint8Array,
): Manifest {
  if (typeof name !== "string" || !NAME_FORM.test(name)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open manifest: malformed name",
    );
  }
  const mat = materialOf(keys);
  const plain = openObject(
    mat,
    bytes,
    `aico-sync/manifest/v${MANIFEST_VERSION}\n${name}`,
    "manifest",
  );
  const p = parsePaddedJson(plain, "manifest") as {
    format?: unknown;
    v?: unknown;
    device?: unknown;
    head?: unknown;
    chain?: unknown;
  };
  const m = { deviceId: p?.device, head: p?.head, chain: p?.chain } as Manifest;
  try {
    if (p.format !== "aico-sync-manifest" || p.v !== MANIFEST_VERSION) {
      throw new TypeError("unknown format");
    }
    check(m, "open manifest");
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      "Cannot open manifest: malformed content",
      { cause },
    );
  }
  if (keyedName(mat, "m", `manifest\n${m.deviceId}\n${m.head}`) !== name) {
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open manifest: it does not belong under this name",
    );
  }
  return Object.freeze({ deviceId: m.deviceId, head: m.head, chain: m.chain });
}
