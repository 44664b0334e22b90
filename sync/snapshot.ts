/**
 * Snapshots: the sealed state of every synced row as one device held it
 * (live rows with their clock readings and the tombstones convergence
 * needs), written as immutable parts plus a sealed snapshot manifest that
 * states which segments of which devices it covers; and removal records,
 * the sealed statement that a device no longer takes part.
 *
 * @module
 */
import { CHAIN_FORM, DEVICE_FORM } from "./_forms.ts";
import { AicoDataError } from "../errors.ts";
import {
  keyedName,
  materialOf,
  openObject,
  packBody,
  padJson,
  parsePaddedJson,
  sealObject,
  sha256Hex,
  unpackBody,
} from "./_keys.ts";
import type { SyncKeys } from "./keys.ts";
import { checkSyncChange } from "./merge.ts";
import { chainNext, GENESIS_CHAIN } from "./segment.ts";
import type { SyncChange } from "./types.ts";

/** The snapshot format version. */
export const SNAPSHOT_VERSION = 1;
const ID_FORM = /^[0-9a-f]{32}$/;
const encoder = new TextEncoder();

/** A device position a snapshot covers: its segments 1 to `head`. */
export interface CoveredPosition {
  /** The newest segment number covered. */
  readonly head: number;
  /** The device's chain value after segment `head`. */
  readonly chain: string;
}

/** What a snapshot manifest states. */
export interface SnapshotManifest {
  /** The device that wrote the snapshot. */
  readonly deviceId: string;
  /** The snapshot id (32 hex digits, random). */
  readonly id: string;
  /** How many parts it has (parts 0 to `parts - 1`). */
  readonly parts: number;
  /** The chain value over the parts, in order. */
  readonly chain: string;
  /** Per device: the segments whose changes the snapshot holds. */
  readonly covers: Readonly<Record<string, CoveredPosition>>;
  /** Devices removed when it was written (their manifests are refused). */
  readonly removed: readonly string[];
}

function bad(action: string, what: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot ${action}: ${what}`);
}

function checkIds(deviceId: string, id: string, action: string): void {
  if (typeof deviceId !== "string" || !DEVICE_FORM.test(deviceId)) {
    throw bad(action, "malformed device id");
  }
  if (typeof id !== "string" || !ID_FORM.test(id)) {
    throw bad(action, "malformed snapshot id");
  }
}

function checkManifest(m: SnapshotManifest, action: string): void {
  checkIds(m?.deviceId, m?.id, action);
  if (!Number.isSafeInteger(m.parts) || m.parts < 1) {
    throw bad(action, "parts must be a positive integer");
  }
  if (typeof m.chain !== "string" || !CHAIN_FORM.test(m.chain)) {
    throw bad(action, "malformed chain value");
  }
  if (typeof m.covers !== "object" || m.covers === null) {
    throw bad(action, "malformed covers");
  }
  for (const [d, p] of Object.entries(m.covers)) {
    if (
      !DEVICE_FORM.test(d) || !Number.isSafeInteger(p?.head) || p.head < 0 ||
      typeof p.chain !== "string" || !CHAIN_FORM.test(p.chain)
    ) throw bad(action, "malformed covered position");
  }
  if (
    !Array.isArray(m.removed) ||
    m.removed.some((d) => typeof d !== "string" || !DEVICE_FORM.test(d))
  ) throw bad(action, "malformed removed list");
}

/**
 * The object name of a snapshot manifest: `q ‖ hex(HMAC(names key,
 * "snapshot" ‖ device ‖ id))`.
 *
 * @param keys The sync keys.
 * @param deviceId The writing device.
 * @param id The snapshot id.
 * @returns The name.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed arguments.
 *
 * @example Names are opaque
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { snapshotName } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.match(snapshotName(keys, "dev1", "ab".repeat(16)), /^q[0-9a-f]{64}$/);
 * ```
 */
export function snapshotName(
  keys: SyncKeys,
  deviceId: string,
  id: string,
): string {
  checkIds(deviceId, id, "name snapshot");
  return keyedName(materialOf(keys), "q", `snapshot\n${deviceId}\n${id}`);
}

/**
 * The object name of part `part` of a snapshot (`p ‖ 64 hex digits`).
 *
 * @param keys The sync keys.
 * @param deviceId The writing device.
 * @param id The snapshot id.
 * @param part The part number (from 0).
 * @returns The name.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed arguments.
 *
 * @example Parts have distinct names
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { snapshotPartName } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * const id = "ab".repeat(16);
 * assert.notEqual(snapshotPartName(keys, "d", id, 0), snapshotPartName(keys, "d", id, 1));
 * ```
 */
export function snapshotPartName(
  keys: SyncKeys,
  deviceId: string,
  id: string,
  part: number,
): string {
  checkIds(deviceId, id, "name snapshot part");
  if (!Number.isSafeInteger(part) || part < 0) {
    throw bad("name snapshot part", "part must be a non-negative integer");
  }
  return keyedName(
    materialOf(keys),
    "p",
    `snapshot-part\n${deviceId}\n${id}\n${part}`,
  );
}

function partAad(deviceId: string, id: string, part: number, prev: string) {
  return `aico-sync/snapshot-part/v${SNAPSHOT_VERSION}\n${deviceId}\n${id}\n${part}\n${prev}`;
}

/** A sealed snapshot part. */
export interface SealedPart {
  /** Its object name. */
  readonly name: string;
  /** The sealed bytes. */
  readonly bytes: Uint8Array;
  /** The chain value after it. */
  readonly chain: string;
}

/**
 * Seals one part of a snapshot: like a segment, `deflate-raw(JSON)` padded
 * with Padmé under AES-256-GCM, its associated data binding device,
 * snapshot id, part number and the chain value before it.
 *
 * @param keys The sync keys.
 * @param input Device, snapshot id, part number, previous chain, changes.
 * @returns The sealed part.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed input.
 *
 * @example Sealing and opening a part
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openSnapshotPart, sealSnapshotPart } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * const id = "ab".repeat(16);
 * const changes = [{ op: "delete", table: "config", key: "ui/x", hlc: "0000000003e80000.d" }] as const;
 * const p = sealSnapshotPart(keys, { deviceId: "d", id, part: 0, changes });
 * const opened = openSnapshotPart(keys, p.bytes, { deviceId: "d", id, part: 0 });
 * assert.deepEqual(opened.changes, changes);
 * assert.throws(() => openSnapshotPart(keys, p.bytes, { deviceId: "d", id, part: 1 }), { code: "AUTH_FAILED" });
 * ```
 */
export function sealSnapshotPart(
  keys: SyncKeys,
  input: {
    readonly deviceId: string;
    readonly id: string;
    readonly part: number;
    readonly prevChain?: string;
    readonly changes: readonly SyncChange[];
  },
): SealedPart {
  const name = snapshotPartName(keys, input.deviceId, input.id, input.part);
  const prev = input.prevChain ?? GENESIS_CHAIN;
  if (!Array.isArray(input.changes)) {
    throw bad("seal snapshot part", "expected an array of changes");
  }
  const changes = input.changes.map((c) => checkSyncChange(c));
  const plain = packBody(
    encoder.encode(JSON.stringify({
      v: SNAPSHOT_VERSION,
      device: input.deviceId,
      id: input.id,
      part: input.part,
      changes,
    })),
    512,
  );
  const bytes = sealObject(
    materialOf(keys),
    plain,
    partAad(input.deviceId, input.id, input.part, prev),
  );
  return Object.freeze({
    name,
    bytes,
    chain: chainNext(prev, sha256Hex(bytes)),
  });
}

/**
 * Opens one part of a snapshot.
 *
 * @param keys The sync keys.
 * @param bytes The sealed bytes.
 * @param ref Device, snapshot id, part number, chain value before it.
 * @returns The changes and the chain value after the part.
 * @throws {AicoDataError} `AUTH_FAILED` for a tampered, truncated,
 * reordered or foreign part; `CORRUPT_VALUE` for content that does not decode.
 *
 * @example See {@linkcode sealSnapshotPart}.
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openSnapshotPart } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.throws(() => openSnapshotPart(keys, new Uint8Array(600), { deviceId: "d", id: "ab".repeat(16), part: 0 }), { code: "AUTH_FAILED" });
 * ```
 */
export function openSnapshotPart(
  keys: SyncKeys,
  bytes: Uint8Array,
  ref: {
    readonly deviceId: string;
    readonly id: string;
    readonly part: number;
    readonly prevChain?: string;
  },
): { readonly changes: readonly SyncChange[]; readonly chain: string } {
  checkIds(ref.deviceId, ref.id, "open snapshot part");
  const prev = ref.prevChain ?? GENESIS_CHAIN;
  const plain = openObject(
    materialOf(keys),
    bytes,
    partAad(ref.deviceId, ref.id, ref.part, prev),
    "snapshot part",
  );
  const parsed = unpackBody(plain, "snapshot part") as {
    v?: unknown;
    device?: unknown;
    id?: unknown;
    part?: unknown;
    changes?: unknown[];
  };
  if (
    parsed?.v !== SNAPSHOT_VERSION || parsed.device !== ref.deviceId ||
    parsed.id !== ref.id || parsed.part !== ref.part ||
    !Array.isArray(parsed.changes)
  ) {
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open snapshot part: its header does not match",
    );
  }
  let changes: SyncChange[];
  try {
    changes = parsed.changes.map((c) => checkSyncChange(c));
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      "Cannot open snapshot part: it holds a malformed change",
      { cause },
    );
  }
  return { changes, chain: chainNext(prev, sha256Hex(bytes)) };
}

/**
 * Seals a snapshot manifest (written after every part).
 *
 * @param keys The sync keys.
 * @param m What to state.
 * @returns The name and bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed manifest.
 *
 * @example Sealing and opening
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openSnapshotManifest, sealSnapshotManifest } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * const m = { deviceId: "d", id: "ab".repeat(16), parts: 1, chain: "cd".repeat(32), covers: { e: { head: 3, chain: "ef".repeat(32) } }, removed: [] };
 * const s = sealSnapshotManifest(keys, m);
 * assert.deepEqual(openSnapshotManifest(keys, s.name, s.bytes), m);
 * ```
 */
export function sealSnapshotManifest(
  keys: SyncKeys,
  m: SnapshotManifest,
): { readonly name: string; readonly bytes: Uint8Array } {
  checkManifest(m, "seal snapshot manifest");
  const name = snapshotName(keys, m.deviceId, m.id);
  const plain = padJson({
    format: "aico-sync-snapshot",
    v: SNAPSHOT_VERSION,
    device: m.deviceId,
    id: m.id,
    parts: m.parts,
    chain: m.chain,
    covers: m.covers,
    removed: m.removed,
  }, 256);
  return Object.freeze({
    name,
    bytes: sealObject(
      materialOf(keys),
      plain,
      `aico-sync/snapshot/v${SNAPSHOT_VERSION}\n${name}`,
    ),
  });
}

/**
 * Opens a snapshot manifest read under `name`.
 *
 * @param keys The sync keys.
 * @param name The object name it was read from.
 * @param bytes The sealed bytes.
 * @returns The manifest.
 * @throws {AicoDataError} `AUTH_FAILED` for a tampered manifest or one
 * under another name; `CORRUPT_VALUE` for malformed content.
 *
 * @example A foreign manifest is refused
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openSnapshotManifest } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.throws(() => openSnapshotManifest(keys, "q" + "0".repeat(64), new Uint8Array(300)), { code: "AUTH_FAILED" });
 * ```
 */
export function openSnapshotManifest(
  keys: SyncKeys,
  name: string,
  bytes: Uint8Array,
): SnapshotManifest {
  const plain = openObject(
    materialOf(keys),
    bytes,
    `aico-sync/snapshot/v${SNAPSHOT_VERSION}\n${name}`,
    "snapshot manifest",
  );
  const p = parsePaddedJson(plain, "snapshot manifest") as Record<
    string,
    unknown
  >;
  const m = {
    deviceId: p?.device,
    id: p?.id,
    parts: p?.parts,
    chain: p?.chain,
    covers: p?.covers,
    removed: p?.removed,
  } as SnapshotManifest;
  try {
    if (p.format !== "aico-sync-snapshot" || p.v !== SNAPSHOT_VERSION) {
      throw new TypeError("unknown format");
    }
    checkManifest(m, "open snapshot manifest");
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      "Cannot open snapshot manifest: malformed content",
      { cause },
    );
  }
  if (snapshotName(keys, m.deviceId, m.id) !== name) {
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open snapshot manifest: it does not belong under this name",
    );
  }
  return Object.freeze(m);
}

/**
 * The object name of the removal record of a device (`r ‖ 64 hex digits`).
 *
 * @param keys The sync keys.
 * @param deviceId The removed device.
 * @returns The name.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed device id.
 *
 * @example
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { removalName } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.match(removalName(keys, "dev1"), /^r[0-9a-f]{64}$/);
 * ```
 */
export function removalName(keys: SyncKeys, deviceId: string): string {
  if (typeof deviceId !== "string" || !DEVICE_FORM.test(deviceId)) {
    throw bad("name removal", "malformed device id");
  }
  return keyedName(materialOf(keys), "r", `removed\n${deviceId}`);
}

/**
 * Seals the removal record of a device.
 *
 * @param keys The sync keys.
 * @param deviceId The removed device.
 * @param by The device removing it.
 * @returns The name and bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed ids.
 *
 * @example Sealing and opening
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openRemoval, sealRemoval } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * const r = sealRemoval(keys, "old", "me");
 * assert.equal(openRemoval(keys, r.name, r.bytes), "old");
 * ```
 */
export function sealRemoval(
  keys: SyncKeys,
  deviceId: string,
  by: string,
): { readonly name: string; readonly bytes: Uint8Array } {
  const name = removalName(keys, deviceId);
  if (typeof by !== "string" || !DEVICE_FORM.test(by)) {
    throw bad("seal removal", "malformed device id");
  }
  const plain = padJson({
    format: "aico-sync-removal",
    v: SNAPSHOT_VERSION,
    device: deviceId,
    by,
  }, 256);
  return Object.freeze({
    name,
    bytes: sealObject(
      materialOf(keys),
      plain,
      `aico-sync/removal/v${SNAPSHOT_VERSION}\n${name}`,
    ),
  });
}

/**
 * Opens a removal record read under `name`.
 *
 * @param keys The sync keys.
 * @param name The object name.
 * @param bytes The sealed bytes.
 * @returns The removed device id.
 * @throws {AicoDataError} `AUTH_FAILED` for a tampered or foreign record.
 *
 * @example See {@linkcode sealRemoval}.
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openRemoval } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.throws(() => openRemoval(keys, "r" + "0".repeat(64), new Uint8Array(300)), { code: "AUTH_FAILED" });
 * ```
 */
export function openRemoval(
  keys: SyncKeys,
  name: string,
  bytes: Uint8Array,
): string {
  const plain = openObject(
    materialOf(keys),
    bytes,
    `aico-sync/removal/v${SNAPSHOT_VERSION}\n${name}`,
    "removal record",
  );
  const p = parsePaddedJson(plain, "removal record") as {
    format?: unknown;
    device?: unknown;
  };
  if (
    p?.format !== "aico-sync-removal" || typeof p.device !== "string" ||
    !DEVICE_FORM.test(p.device) || removalName(keys, p.device) !== name
  ) {
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open removal record: it does not belong under this name",
    );
  }
  return p.device;
}
