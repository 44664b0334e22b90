/**
 * Segments: sealed, immutable batches of row versions, numbered per device
 * and chained, and the object names that reveal nothing about them.
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
  sealObject,
  sha256Hex,
  unpackBody,
} from "./_keys.ts";
import type { SyncKeys } from "./keys.ts";
import { checkSyncChange } from "./merge.ts";
import type { SyncChange } from "./types.ts";

/** The segment format version bound into every segment. */
export const SEGMENT_VERSION = 1;
/** The chain value before a device's first segment (64 zero hex digits). */
export const GENESIS_CHAIN: string = "0".repeat(64);
/** The largest plaintext a segment may hold before compression. */
export const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Sealed segments are at least this long (small ones look alike). */
const MIN_PADDED = 512;

const encoder = new TextEncoder();

/** A sealed segment, ready to write to a target. */
export interface SealedSegment {
  /** Its object name (`s` ‖ 64 hex digits). */
  readonly name: string;
  /** The sealed bytes (padded). */
  readonly bytes: Uint8Array;
  /** SHA-256 (hex) of `bytes`. */
  readonly digest: string;
  /** The device's chain value after this segment. */
  readonly chain: string;
}

/** What {@linkcode sealSegment} seals. */
export interface SegmentInput {
  /** The writing device's id (`[a-z0-9_-]{1,64}`). */
  readonly deviceId: string;
  /** The segment number: 1 for a device's first, then one more each time. */
  readonly number: number;
  /**
   * The chain value after segment `number - 1`.
   *
   * @default {GENESIS_CHAIN}
   */
  readonly prevChain?: string;
  /** The row versions (at least one). */
  readonly changes: readonly SyncChange[];
}

/** What {@linkcode openSegment} needs besides the bytes. */
export interface SegmentRef {
  /** The writing device's id. */
  readonly deviceId: string;
  /** The segment number expected. */
  readonly number: number;
  /**
   * The chain value after segment `number - 1`, as the reader knows it.
   *
   * @default {GENESIS_CHAIN}
   */
  readonly prevChain?: string;
}

/** An opened, verified segment. */
export interface OpenedSegment {
  /** The row versions, checked. */
  readonly changes: readonly SyncChange[];
  /** SHA-256 (hex) of the sealed bytes. */
  readonly digest: string;
  /** The device's chain value after this segment. */
  readonly chain: string;
}

function checkRef(ref: SegmentRef, action: string): string {
  if (typeof ref?.deviceId !== "string" || !DEVICE_FORM.test(ref.deviceId)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: malformed device id`,
    );
  }
  if (!Number.isSafeInteger(ref.number) || ref.number < 1) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: segment number must be a positive integer, got "${ref.number}"`,
    );
  }
  const prev = ref.prevChain ?? GENESIS_CHAIN;
  if (typeof prev !== "string" || !CHAIN_FORM.test(prev)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: malformed chain value`,
    );
  }
  return prev;
}

/**
 * The next chain value: `SHA-256("aico-sync-chain/v1" ‖ prev ‖ digest)`.
 *
 * @param prevChain The chain value before the segment (hex).
 * @param digest The segment's digest (hex).
 * @returns The chain value after it (hex).
 *
 * @example A chain depends on order
 * ```ts
 * import { chainNext, GENESIS_CHAIN } from "./segment.ts";
 * import assert from "node:assert/strict";
 *
 * const a = "a".repeat(64), b = "b".repeat(64);
 * assert.notEqual(
 *   chainNext(chainNext(GENESIS_CHAIN, a), b),
 *   chainNext(chainNext(GENESIS_CHAIN, b), a),
 * );
 * ```
 */
export function chainNext(prevChain: string, digest: string): string {
  return sha256Hex("aico-sync-chain/v1\n", prevChain, "\n", digest);
}

function segmentAad(deviceId: string, n: number, prev: string): string {
  return `aico-sync/segment/v${SEGMENT_VERSION}\n${deviceId}\n${n}\n${prev}`;
}

/**
 * The object name of a device's segment: `s ‖ hex(HMAC(names key, "segment"
 * ‖ device ‖ number))`. Only holders of the key can tell which device and
 * number a name belongs to.
 *
 * @param keys The sync keys.
 * @param deviceId The device id.
 * @param number The segment number.
 * @returns The name.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed arguments.
 *
 * @example Names are opaque and distinct
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { segmentName } from "./segment.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.match(segmentName(keys, "dev1", 1), /^s[0-9a-f]{64}$/);
 * assert.notEqual(segmentName(keys, "dev1", 1), segmentName(keys, "dev1", 2));
 * ```
 */
export function segmentName(
  keys: SyncKeys,
  deviceId: string,
  number: number,
): string {
  checkRef({ deviceId, number }, "name segment");
  return keyedName(materialOf(keys), "s", `segment\n${deviceId}\n${number}`);
}

/**
 * Seals a segment.
 *
 * @remarks
 * Layout: `0x01 ‖ nonce(12) ‖ AES-256-GCM(P) ‖ tag(16)` under the sync
 * sealing key, with associated data `"aico-sync/segment/v1" ‖ deviceId ‖
 * number ‖ prevChain`: a segment opens only as the segment of that device,
 * number and chain position. `P = length(4, big-endian) ‖ deflate-raw(JSON
 * {v, device, number, changes}) ‖ zero padding`, padded with Padmé (at most
 * 12% more, at least 512 bytes) so sizes reveal little about content.
 *
 * @param keys The sync keys.
 * @param input Device, number, previous chain value and changes.
 * @returns The sealed segment with its name, digest and chain value.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed input or more than
 * {@linkcode MAX_SEGMENT_BYTES}.
 *
 * @example Sealing and opening
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openSegment, sealSegment } from "./segment.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * const changes = [{ op: "put", table: "config", key: "ui/theme", hlc: "0000000003e80000.dev1", value: { v: "dark" } }] as const;
 * const seg = sealSegment(keys, { deviceId: "dev1", number: 1, changes });
 * const opened = openSegment(keys, seg.bytes, { deviceId: "dev1", number: 1 });
 * assert.deepEqual(opened.changes, changes);
 * assert.equal(opened.chain, seg.chain);
 * assert.throws(() => openSegment(keys, seg.bytes, { deviceId: "dev1", number: 2 }), { code: "AUTH_FAILED" });
 * ```
 */
export function sealSegment(
  keys: SyncKeys,
  input: SegmentInput,
): SealedSegment {
  const prev = checkRef(input, "seal segment");
  const m = materialOf(keys);
  if (!Array.isArray(input.changes) || input.changes.length === 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot seal segment: expected at least one change",
    );
  }
  const changes = input.changes.map((c) => checkSyncChange(c));
  const json = encoder.encode(JSON.stringify({
    v: SEGMENT_VERSION,
    device: input.deviceId,
    number: input.number,
    changes,
  }));
  if (json.length > MAX_SEGMENT_BYTES) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot seal segment: ${json.length} bytes exceed the limit of ${MAX_SEGMENT_BYTES}`,
    );
  }
  const plain = packBody(json, MIN_PADDED);
  const bytes = sealObject(
    m,
    plain,
    segmentAad(input.deviceId, input.number, prev),
  );
  const digest = sha256Hex(bytes);
  return Object.freeze({
    name: keyedName(m, "s", `segment\n${input.deviceId}\n${input.number}`),
    bytes,
    digest,
    chain: chainNext(prev, digest),
  });
}

/**
 * Opens and verifies a segment.
 *
 * @param keys The sync keys.
 * @param bytes The sealed bytes as read from the target.
 * @param ref The device, number and previous chain value expected.
 * @returns The changes, digest and chain value.
 * @throws {AicoDataError} `AUTH_FAILED` for a tampered, truncated, moved or
 * reordered segment or a wrong key (no change is returned), `CORRUPT_VALUE`
 * for an authentic segment that does not decode, `INVALID_INPUT`.
 *
 * @example See {@linkcode sealSegment}.
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { deriveSyncKeys } from "./keys.ts";
 * import { openSegment } from "./segment.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 * assert.throws(() => openSegment(keys, new Uint8Array(600), { deviceId: "d", number: 1 }), {
 *   code: "AUTH_FAILED",
 * });
 * ```
 */
export function openSegment(
  keys: SyncKeys,
  bytes: Uint8Array,
  ref: SegmentRef,
): OpenedSegment {
  const prev = checkRef(ref, "open segment");
  const plain = openObject(
    materialOf(keys),
    bytes,
    segmentAad(ref.deviceId, ref.number, prev),
    "segment",
  );
  const parsed = unpackBody(plain, "segment") as {
    v?: unknown;
    device?: unknown;
    number?: unknown;
    changes?: unknown;
  };
  if (
    parsed?.v !== SEGMENT_VERSION || parsed.device !== ref.deviceId ||
    parsed.number !== ref.number || !Array.isArray(parsed.changes)
  ) {
    throw new AicoDataError(
      "AUTH_FAILED",
      "Cannot open segment: its header does not match",
    );
  }
  let changes: SyncChange[];
  try {
    changes = parsed.changes.map((c) => checkSyncChange(c));
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      "Cannot open segment: it holds a malformed change",
      { cause },
    );
  }
  const digest = sha256Hex(bytes);
  return Object.freeze({ changes, digest, chain: chainNext(prev, digest) });
}
