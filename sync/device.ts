/**
 * A sync device: the local journal of one device (its id, clock, sealed
 * outbox and how far it has read every other device) with `stage`, `push`
 * and `pull`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { requirePermission } from "../_internal/permissions.ts";
import { DEVICE_FORM } from "./_forms.ts";
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { sha256Hex } from "./_keys.ts";
import { createHlc, type HlcOptions, type HybridLogicalClock } from "./hlc.ts";
import type { SyncKeys } from "./keys.ts";
import {
  type Manifest,
  manifestName,
  openManifest,
  sealManifest,
} from "./manifest.ts";
import { checkSyncChange } from "./merge.ts";
import {
  GENESIS_CHAIN,
  openSegment,
  sealSegment,
  segmentName,
} from "./segment.ts";
import {
  openRemoval,
  openSnapshotManifest,
  openSnapshotPart,
  removalName,
  sealRemoval,
  sealSnapshotManifest,
  sealSnapshotPart,
  type SnapshotManifest,
  snapshotName,
  snapshotPartName,
} from "./snapshot.ts";
import type { SyncChange, SyncTarget } from "./types.ts";

const JOURNAL_FORMAT = "aico-sync-journal";
const JOURNAL_VERSION = 1;
/** Manifests of a device left on the target: the newest and older ones. */
const KEPT_MANIFESTS = 3;
/** A snapshot part is closed at about this many bytes of changes. */
const SNAPSHOT_PART_BYTES = 4 * 1024 * 1024;

/** Options of {@linkcode openSyncDevice}. */
export interface SyncDeviceOptions {
  /**
   * The id of a new device (`[a-z0-9_-]{1,64}`); an existing journal keeps
   * its id and refuses another.
   *
   * @default {undefined} (32 random hex digits)
   */
  readonly deviceId?: string;
  /**
   * A segment is closed when its changes reach about this many bytes of JSON.
   *
   * @default {1_048_576}
   */
  readonly maxSegmentBytes?: number;
  /**
   * Options of the device's hybrid logical clock (its last reading is
   * restored from the journal).
   *
   * @default {{}}
   */
  readonly clock?: Omit<HlcOptions, "last">;
}

/** Options after {@linkcode resolveSyncDeviceOptions}. */
export interface ResolvedSyncDeviceOptions {
  /** The id for a new device, if given. */
  readonly deviceId: string | undefined;
  /** The segment size bound. */
  readonly maxSegmentBytes: number;
  /** The clock options. */
  readonly clock: Omit<HlcOptions, "last">;
}

/**
 * Normalises {@linkcode SyncDeviceOptions} (pure).
 *
 * @param options The options.
 * @returns The resolved options.
 * @throws {AicoDataError} `INVALID_INPUT` for a bad option.
 *
 * @example Defaults
 * ```ts
 * import { resolveSyncDeviceOptions } from "./device.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveSyncDeviceOptions({}).maxSegmentBytes, 1_048_576);
 * assert.throws(() => resolveSyncDeviceOptions({ deviceId: "No!" }), { code: "INVALID_INPUT" });
 * ```
 */
export function resolveSyncDeviceOptions(
  options: SyncDeviceOptions = {},
): ResolvedSyncDeviceOptions {
  if (
    options.deviceId !== undefined &&
    (typeof options.deviceId !== "string" ||
      !DEVICE_FORM.test(options.deviceId))
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open sync device: malformed device id",
    );
  }
  const max = options.maxSegmentBytes ?? 1_048_576;
  if (!Number.isSafeInteger(max) || max < 1 || max > 32 * 1024 * 1024) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open sync device: maxSegmentBytes must be in [1, 33554432], got "${max}"`,
    );
  }
  return Object.freeze({
    deviceId: options.deviceId,
    maxSegmentBytes: max,
    clock: options.clock ?? {},
  });
}

/** What {@linkcode SyncDevice.push} did. */
export interface PushReport {
  /** Segments written to the target by this call. */
  readonly segments: number;
  /** Bytes written to the target by this call. */
  readonly bytes: number;
  /** The head the device's manifest on the target states. */
  readonly head: number;
}

/** What a pull read of one other device. */
export interface PulledRange {
  /** The other device. */
  readonly deviceId: string;
  /** The first segment number applied. */
  readonly from: number;
  /** The last segment number applied. */
  readonly to: number;
  /** How many changes were handed to `apply`. */
  readonly changes: number;
}

/** What {@linkcode SyncDevice.pull} did. */
export interface PullReport {
  /** The devices whose new segments were applied. */
  readonly applied: readonly PulledRange[];
  /**
   * Devices whose manifest names a segment not yet on the target (a folder
   * still syncing, or a deleted segment): nothing of them was applied.
   */
  readonly incomplete: readonly string[];
  /** Bytes read from the target. */
  readonly bytes: number;
  /** The snapshot applied before the segments, if one was. */
  readonly snapshot?: {
    readonly deviceId: string;
    readonly id: string;
    readonly changes: number;
  };
  /**
   * Segments on the target that no snapshot covers (what a new device
   * would replay): `compact` when it grows.
   */
  readonly uncovered: number;
}

/** What {@linkcode SyncDevice.compact} did. */
export interface CompactReport {
  /** The new snapshot's id. */
  readonly snapshotId: string;
  /** Its parts. */
  readonly parts: number;
  /** The row versions it holds. */
  readonly changes: number;
  /** Bytes written (parts and manifest). */
  readonly bytes: number;
  /** Per device: the newest segment it covers. */
  readonly covers: Readonly<Record<string, number>>;
  /** Segments deleted from the target. */
  readonly deletedSegments: number;
  /** Older snapshots deleted from the target. */
  readonly deletedSnapshots: number;
  /** Manifests of removed devices deleted from the target. */
  readonly deletedManifests: number;
}

/** Applies verified changes of one device; must be idempotent. */
export type ApplyChanges = (
  changes: readonly SyncChange[],
  range: {
    readonly deviceId: string;
    readonly from: number;
    readonly to: number;
  },
) => Promise<void> | void;

/** What {@linkcode SyncDevice.verify} found. */
export interface SyncVerifyReport {
  /** `true` when every manifest and new segment verifies. */
  readonly ok: boolean;
  /** What a pull would apply now. */
  readonly pending: readonly PulledRange[];
  /** Devices with a segment missing from the target. */
  readonly incomplete: readonly string[];
  /** The first problem: `AUTH_FAILED`, `SYNC_REPLAY` or `CORRUPT_VALUE`. */
  readonly problem:
    | { readonly code: string; readonly message: string }
    | undefined;
}

/** The journal state as {@linkcode SyncDevice.status} reports it. */
export interface SyncDeviceStatus {
  /** This device. */
  readonly deviceId: string;
  /** The newest segment sealed into the outbox. */
  readonly sealed: number;
  /** The newest segment written to the target. */
  readonly uploaded: number;
  /** The head of this device's manifest on the target. */
  readonly published: number;
  /** Per other device: the newest segment applied. */
  readonly applied: Readonly<Record<string, number>>;
  /** Devices known to be removed (their manifests are refused). */
  readonly removed: readonly string[];
}

/** One device's side of sync. */
export interface SyncDevice extends AsyncDisposable {
  /** This device's id. */
  readonly deviceId: string;
  /** This device's clock: stamp local changes with `clock.now()`. */
  readonly clock: HybridLogicalClock;
  /**
   * Seals changes into segments in the local outbox (durable when it
   * resolves; nothing is sent yet).
   *
   * @param changes Row versions, checked.
   * @returns The numbers of the new segments.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`.
   */
  stage(changes: readonly SyncChange[]): Promise<number[]>;
  /**
   * Writes the outbox to the target, then the manifest. Safe to rerun after
   * a crash at any point: the same bytes are written again, never different
   * ones under a name.
   *
   * @param target The target (always the same one for a journal).
   * @returns What was written.
   * @throws {AicoDataError} `ALREADY_EXISTS` when a name of this device
   * holds other bytes (another device uses this id), target errors.
   */
  push(target: SyncTarget): Promise<PushReport>;
  /**
   * Reads every other device's new segments, verifies all of them against
   * their manifests, then hands them to `apply` device by device and records
   * how far each was applied. A crash between `apply` and the record repeats
   * `apply` on the next pull (merging is idempotent).
   *
   * @param target The target.
   * @param apply Applies one device's changes, in order.
   * @returns What was applied.
   * @throws {AicoDataError} `AUTH_FAILED` for a tampered, truncated,
   * reordered or foreign object and `SYNC_REPLAY` for a manifest older than
   * one seen before; then nothing is applied.
   */
  pull(target: SyncTarget, apply: ApplyChanges): Promise<PullReport>;
  /**
   * Checks the target as `pull` would, applying nothing (for `doctor`).
   *
   * @param target The target.
   * @returns Whether everything verifies, what a pull would apply, and the
   * first problem found.
   * @throws {AicoDataError} target errors (`CONNECTION_FAILED`, ...).
   */
  verify(target: SyncTarget): Promise<SyncVerifyReport>;
  /**
   * Pushes, then writes a snapshot of the store's state (`source`: every
   * synced row with its version, the tombstones and message positions,
   * e.g. `StoreSync.compaction()`) as sealed parts and a snapshot manifest
   * covering every segment this device has applied and its own, then
   * deletes from the target the segments it covers, the snapshots it
   * supersedes and the manifests of removed devices. A device behind the
   * deleted segments falls back to the snapshot on its next pull.
   *
   * @param target The target.
   * @param source The state, in batches.
   * @returns What was written and deleted.
   * @throws {AicoDataError} `DEVICE_REMOVED` when this device was removed,
   * target errors. A crash leaves unreferenced parts that the next
   * compaction deletes; readers never see a snapshot before its manifest.
   */
  compact(
    target: SyncTarget,
    source:
      | AsyncIterable<readonly SyncChange[]>
      | Iterable<
        readonly SyncChange[]
      >,
  ): Promise<CompactReport>;
  /**
   * Records on the target (sealed) that a device no longer takes part: from
   * then on honest devices refuse its manifests, snapshots and segments;
   * compact afterwards to delete its segments.
   *
   * @param target The target.
   * @param deviceId The device to remove (not this one).
   * @returns `true` when the record was written now.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed id or this
   * device's own id; target errors.
   */
  removeDevice(target: SyncTarget, deviceId: string): Promise<boolean>;
  /**
   * The journal's positions.
   *
   * @returns The status.
   */
  status(): SyncDeviceStatus;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /**
   * Closes the device; safe twice.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
}

interface Collected {
  ready: { m: Manifest; from: number; changes: SyncChange[] }[];
  incomplete: string[];
  bytes: number;
  snapshot?: { s: SnapshotManifest; changes: SyncChange[] };
  positions: Record<string, Position>;
  uncovered: number;
  removed: Set<string>;
}

interface Position {
  head: number;
  chain: string;
  /** Set from a snapshot: a manifest stating less is not a replay. */
  snap?: boolean;
}

interface JournalState {
  format: string;
  version: number;
  deviceId: string;
  keyId: string;
  targetId?: string;
  hlc?: string;
  out: {
    sealed: number;
    chain: string;
    uploaded: number;
    published: number;
    stale: number[];
  };
  in: Record<string, Position>;
  removed?: string[];
  snap?: { pending?: string; deleted?: Record<string, number> };
}

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    const f = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: 0o600,
    });
    try {
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

class Device implements SyncDevice {
  readonly deviceId: string;
  readonly clock: HybridLogicalClock;
  #dir: string;
  #keys: SyncKeys;
  #state: JournalState;
  #opts: ResolvedSyncDeviceOptions;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  #manifests = new Map<string, Manifest>();
  #snapshots = new Map<string, SnapshotManifest>();
  #removals = new Map<string, string>();
  #lock: Deno.FsFile;

  constructor(
    dir: string,
    keys: SyncKeys,
    state: JournalState,
    opts: ResolvedSyncDeviceOptions,
    lock: Deno.FsFile,
  ) {
    this.#lock = lock;
    this.#dir = dir;
    this.#keys = keys;
    this.#state = state;
    this.#opts = opts;
    this.deviceId = state.deviceId;
    this.clock = createHlc(state.deviceId, {
      ...opts.clock,
      ...(state.hlc === undefined ? {} : { last: state.hlc }),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #run<T>(action: string, work: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new AicoDataError(
          "STORE_CLOSED",
          `Cannot ${action}: the sync device is closed`,
        ),
      );
    }
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #save(): Promise<void> {
    const last = this.clock.last();
    if (last !== undefined) this.#state.hlc = last;
    await writeAtomic(
      join(this.#dir, "state.json"),
      new TextEncoder().encode(JSON.stringify(this.#state)),
    );
  }

  #outboxPath(n: number): string {
    return join(this.#dir, "outbox", `${n}.seg`);
  }

  async #bind(target: SyncTarget): Promise<void> {
    if (this.#state.targetId === undefined) {
      this.#state.targetId = target.id;
      await this.#save();
    } else if (this.#state.targetId !== target.id) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot sync: this journal belongs to target "${this.#state.targetId}"`,
      );
    }
  }

  stage(changes: readonly SyncChange[]): Promise<number[]> {
    return this.#run("stage changes", async () => {
      if (!Array.isArray(changes)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot stage changes: expected an array",
        );
      }
      const checked = changes.map((c) => checkSyncChange(c));
      const groups: SyncChange[][] = [];
      let group: SyncChange[] = [];
      let size = 0;
      for (const c of checked) {
        const n = JSON.stringify(c).length;
        if (group.length > 0 && size + n > this.#opts.maxSegmentBytes) {
          groups.push(group);
          group = [];
          size = 0;
        }
        group.push(c);
        size += n;
      }
      if (group.length > 0) groups.push(group);
      const numbers: number[] = [];
      for (const g of groups) {
        const number = this.#state.out.sealed + 1;
        const seg = sealSegment(this.#keys, {
          deviceId: this.deviceId,
          number,
          prevChain: this.#state.out.chain,
          changes: g,
        });
        // Outbox file first, then the journal: a crash between leaves an
        // orphan file above `sealed` that the next stage overwrites.
        await writeAtomic(this.#outboxPath(number), seg.bytes);
        const out = this.#state.out;
        const before = { sealed: out.sealed, chain: out.chain };
        out.sealed = number;
        out.chain = seg.chain;
        for (const c of g) this.clock.receive(c.hlc);
        try {
          await this.#save();
        } catch (e) {
          // Not durable: this process must not push what a restart forgets.
          out.sealed = before.sealed;
          out.chain = before.chain;
          throw e;
        }
        numbers.push(number);
      }
      return numbers;
    });
  }

  push(target: SyncTarget): Promise<PushReport> {
    return this.#run("push", async () => {
      await this.#bind(target);
      return await this.#pushNow(target);
    });
  }

  async #pushNow(target: SyncTarget): Promise<PushReport> {
    {
      const out = this.#state.out;
      let segments = 0, bytes = 0;
      for (let n = out.uploaded + 1; n <= out.sealed; n++) {
        const data = await Deno.readFile(this.#outboxPath(n));
        const name = segmentName(this.#keys, this.deviceId, n);
        if (await target.writeIfAbsent(name, data)) {
          segments++;
          bytes += data.length;
        } else {
          const there = await target.read(name);
          if (sha256Hex(there) !== sha256Hex(data)) {
            throw new AicoDataError(
              "ALREADY_EXISTS",
              `Cannot push segment "${n}": the target holds other bytes under its name (is this device id used twice?)`,
            );
          }
        }
        out.uploaded = n;
        await this.#save();
      }
      if (out.sealed > out.published) {
        const m = {
          deviceId: this.deviceId,
          head: out.sealed,
          chain: out.chain,
        };
        const sealed = sealManifest(this.#keys, m);
        if (await target.writeIfAbsent(sealed.name, sealed.bytes)) {
          bytes += sealed.bytes.length;
        } else {
          const there = openManifest(
            this.#keys,
            sealed.name,
            await target.read(sealed.name),
          );
          if (there.chain !== m.chain) {
            throw new AicoDataError(
              "ALREADY_EXISTS",
              "Cannot push manifest: the target holds another manifest under its name",
            );
          }
        }
        if (out.published > 0) out.stale.push(out.published);
        out.published = out.sealed;
        await this.#save();
      }
      // Keep the newest KEPT_MANIFESTS - 1 older manifests: a folder-sync
      // tool that delivers a deletion before a newer file must not leave a
      // reader with only manifests older than what it applied (SYNC_REPLAY).
      if (out.stale.length >= KEPT_MANIFESTS) {
        const drop = out.stale.slice(
          0,
          out.stale.length - (KEPT_MANIFESTS - 1),
        );
        for (const h of drop) {
          await target.delete(manifestName(this.#keys, this.deviceId, h));
        }
        out.stale = out.stale.slice(drop.length);
        await this.#save();
      }
      for await (const e of Deno.readDir(join(this.#dir, "outbox"))) {
        const n = Number.parseInt(e.name, 10);
        if (e.name === `${n}.seg` && n <= out.uploaded) {
          await Deno.remove(join(this.#dir, "outbox", e.name)).catch(() => {});
        }
      }
      return { segments, bytes, head: out.published };
    }
  }

  async #loadRemovals(
    target: SyncTarget,
  ): Promise<{ removed: Set<string>; bytes: number }> {
    let bytes = 0;
    const removed = new Set(this.#state.removed ?? []);
    for (const name of await target.list("r")) {
      let id = this.#removals.get(name);
      if (id === undefined) {
        const data = await readIfPresent(target, name);
        if (data === undefined) continue;
        bytes += data.length;
        id = openRemoval(this.#keys, name, data);
        this.#removals.set(name, id);
      }
      removed.add(id);
    }
    if (removed.has(this.deviceId)) {
      throw new AicoDataError(
        "DEVICE_REMOVED",
        `Cannot sync: this device ("${this.deviceId}") was removed from the target; the other devices refuse its changes (join again as a new device with \`aico-data init --from-sync\`)`,
      );
    }
    return { removed, bytes };
  }

  async #loadSnapshots(
    target: SyncTarget,
    removed: Set<string>,
  ): Promise<{ list: SnapshotManifest[]; bytes: number }> {
    let bytes = 0;
    const list: SnapshotManifest[] = [];
    for (const name of await target.list("q")) {
      let s = this.#snapshots.get(name);
      if (s === undefined) {
        const data = await readIfPresent(target, name);
        if (data === undefined) continue;
        bytes += data.length;
        s = openSnapshotManifest(this.#keys, name, data);
        this.#snapshots.set(name, s);
      }
      if (!removed.has(s.deviceId)) list.push(s);
    }
    return { list, bytes };
  }

  async #collect(target: SyncTarget): Promise<Collected> {
    const loaded = await this.#loadRemovals(target);
    const removed = loaded.removed;
    let bytes = loaded.bytes;
    const newest = new Map<string, Manifest>();
    for (const name of await target.list("m")) {
      let m = this.#manifests.get(name);
      if (m === undefined) {
        const data = await readIfPresent(target, name);
        if (data === undefined) continue; // deleted meanwhile
        bytes += data.length;
        m = openManifest(this.#keys, name, data);
        this.#manifests.set(name, m);
      }
      if (removed.has(m.deviceId)) continue; // refused: removed device
      const best = newest.get(m.deviceId);
      if (best === undefined || m.head > best.head) newest.set(m.deviceId, m);
    }
    for (const [id, known] of Object.entries(this.#state.in)) {
      const m = newest.get(id);
      if (m === undefined) continue;
      if (m.head < known.head) {
        if (known.snap === true) continue; // not arrived yet, not a replay
        throw new AicoDataError(
          "SYNC_REPLAY",
          `Cannot pull: the target states an older head for a device than already applied ("${m.head}" < "${known.head}")`,
        );
      }
      if (m.head === known.head && m.chain !== known.chain) {
        throw new AicoDataError(
          "AUTH_FAILED",
          "Cannot pull: a manifest does not match the segments already applied",
        );
      }
    }
    const snaps = await this.#loadSnapshots(target, removed);
    bytes += snaps.bytes;
    const base = this.#state.in;
    const gain = (s: SnapshotManifest): number => {
      let n = 0;
      for (const [d, p] of Object.entries(s.covers)) {
        if (d === this.deviceId || removed.has(d)) continue;
        n += Math.max(0, p.head - (base[d]?.head ?? 0));
      }
      return n;
    };
    const best = (list: SnapshotManifest[]) => {
      let out: SnapshotManifest | undefined;
      for (const s of list) {
        const g = gain(s);
        if (g > 0 && (out === undefined || g > gain(out))) out = s;
      }
      return out;
    };
    const devices = [...newest.values()]
      .filter((m) => m.deviceId !== this.deviceId)
      .sort((a, b) => a.deviceId < b.deviceId ? -1 : 1);
    let uncovered = 0;
    for (const m of newest.values()) {
      let covered = 0;
      for (const s of snaps.list) {
        covered = Math.max(covered, s.covers[m.deviceId]?.head ?? 0);
      }
      uncovered += Math.max(0, m.head - covered);
    }
    const readSegments = async (pos: Record<string, Position>) => {
      const ready: Collected["ready"] = [];
      const incomplete: string[] = [];
      const missing = new Map<string, number>();
      for (const m of devices) {
        const known = pos[m.deviceId] ?? { head: 0, chain: GENESIS_CHAIN };
        if (m.head <= known.head) continue;
        let chain = known.chain;
        const changes: SyncChange[] = [];
        let complete = true;
        for (let n = known.head + 1; n <= m.head; n++) {
          const data = await readIfPresent(
            target,
            segmentName(this.#keys, m.deviceId, n),
          );
          if (data === undefined) {
            complete = false;
            missing.set(m.deviceId, n);
            break;
          }
          bytes += data.length;
          const seg = openSegment(this.#keys, data, {
            deviceId: m.deviceId,
            number: n,
            prevChain: chain,
          });
          chain = seg.chain;
          for (const c of seg.changes) changes.push(c);
        }
        if (!complete) {
          incomplete.push(m.deviceId);
          continue;
        }
        if (chain !== m.chain) {
          throw new AicoDataError(
            "AUTH_FAILED",
            "Cannot pull: the segments of a device do not match its manifest",
          );
        }
        ready.push({ m, from: known.head + 1, changes });
      }
      return { ready, incomplete, missing };
    };
    const readSnapshot = async (s: SnapshotManifest) => {
      let chain = GENESIS_CHAIN;
      const changes: SyncChange[] = [];
      for (let i = 0; i < s.parts; i++) {
        const data = await readIfPresent(
          target,
          snapshotPartName(this.#keys, s.deviceId, s.id, i),
        );
        if (data === undefined) return undefined; // superseded
        bytes += data.length;
        const part = openSnapshotPart(this.#keys, data, {
          deviceId: s.deviceId,
          id: s.id,
          part: i,
          prevChain: chain,
        });
        chain = part.chain;
        for (const c of part.changes) changes.push(c);
      }
      if (chain !== s.chain) {
        throw new AicoDataError(
          "AUTH_FAILED",
          "Cannot pull: the parts of a snapshot do not match its manifest",
        );
      }
      return changes;
    };
    const withSnapshot = (s: SnapshotManifest) => {
      const pos: Record<string, Position> = { ...base };
      for (const [d, p] of Object.entries(s.covers)) {
        if (d === this.deviceId) continue;
        if ((pos[d]?.head ?? 0) < p.head) {
          pos[d] = { head: p.head, chain: p.chain, snap: true };
        }
      }
      return pos;
    };
    // A new device starts from the snapshot that saves the most segments;
    // a device missing a deleted segment falls back to one covering it.
    let chosen = Object.keys(base).length === 0 ? best(snaps.list) : undefined;
    let result = chosen === undefined ? await readSegments(base) : undefined;
    if (result !== undefined && result.missing.size > 0) {
      chosen = best(
        snaps.list.filter((s) =>
          [...result!.missing].some(([d, n]) => (s.covers[d]?.head ?? 0) >= n)
        ),
      );
      if (chosen === undefined) chosen = undefined;
      else result = undefined;
    }
    if (chosen !== undefined) {
      const changes = await readSnapshot(chosen);
      if (changes !== undefined) {
        const positions = withSnapshot(chosen);
        const r = await readSegments(positions);
        return {
          ready: r.ready,
          incomplete: r.incomplete,
          bytes,
          snapshot: { s: chosen, changes },
          positions,
          uncovered,
          removed,
        };
      }
      result ??= await readSegments(base);
    }
    result ??= await readSegments(base);
    return {
      ready: result.ready,
      incomplete: result.incomplete,
      bytes,
      positions: base,
      uncovered,
      removed,
    };
  }

  async #saveRemoved(removed: Set<string>): Promise<void> {
    const known = new Set(this.#state.removed ?? []);
    if ([...removed].every((d) => known.has(d))) return;
    this.#state.removed = [...removed].sort();
    await this.#save();
  }

  verify(target: SyncTarget): Promise<SyncVerifyReport> {
    return this.#run("verify", async () => {
      await this.#bind(target);
      try {
        const { ready, incomplete, snapshot } = await this.#collect(target);
        return {
          ok: true,
          pending: [
            ...(snapshot === undefined ? [] : [{
              deviceId: snapshot.s.deviceId,
              from: 0,
              to: 0,
              changes: snapshot.changes.length,
            }]),
            ...ready.map((r) => ({
              deviceId: r.m.deviceId,
              from: r.from,
              to: r.m.head,
              changes: r.changes.length,
            })),
          ],
          incomplete,
          problem: undefined,
        };
      } catch (e) {
        if (
          isAicoDataError(e, "AUTH_FAILED") ||
          isAicoDataError(e, "SYNC_REPLAY") ||
          isAicoDataError(e, "CORRUPT_VALUE") ||
          isAicoDataError(e, "DEVICE_REMOVED")
        ) {
          return {
            ok: false,
            pending: [],
            incomplete: [],
            problem: { code: e.code, message: e.message },
          };
        }
        throw e;
      }
    });
  }

  pull(target: SyncTarget, apply: ApplyChanges): Promise<PullReport> {
    return this.#run("pull", async () => {
      if (typeof apply !== "function") {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot pull: apply must be a function",
        );
      }
      await this.#bind(target);
      const collected = await this.#collect(target);
      const { ready, incomplete, bytes, snapshot } = collected;
      await this.#saveRemoved(collected.removed);
      const applied: PulledRange[] = [];
      if (snapshot !== undefined) {
        // One apply (one transaction, recorded under the snapshot's own
        // name), then the positions it covers.
        await apply(snapshot.changes, {
          deviceId: `snapshot.${snapshot.s.deviceId}.${snapshot.s.id}`,
          from: 1,
          to: 1,
        });
        for (const c of snapshot.changes) this.clock.receive(c.hlc);
        const before = this.#state.in;
        this.#state.in = { ...collected.positions };
        try {
          await this.#save();
        } catch (e) {
          this.#state.in = before;
          throw e;
        }
      }
      for (const r of ready) {
        const range = { deviceId: r.m.deviceId, from: r.from, to: r.m.head };
        await apply(r.changes, range);
        for (const c of r.changes) this.clock.receive(c.hlc);
        const before = this.#state.in[r.m.deviceId];
        this.#state.in[r.m.deviceId] = { head: r.m.head, chain: r.m.chain };
        try {
          await this.#save();
        } catch (e) {
          if (before === undefined) delete this.#state.in[r.m.deviceId];
          else this.#state.in[r.m.deviceId] = before;
          throw e;
        }
        applied.push({ ...range, changes: r.changes.length });
      }
      return {
        applied,
        incomplete,
        bytes,
        uncovered: collected.uncovered,
        ...(snapshot === undefined ? {} : {
          snapshot: {
            deviceId: snapshot.s.deviceId,
            id: snapshot.s.id,
            changes: snapshot.changes.length,
          },
        }),
      };
    });
  }

  async #dropSnapshot(
    target: SyncTarget,
    deviceId: string,
    id: string,
    parts: number | undefined,
  ): Promise<void> {
    // The manifest first: a reader never finds a manifest without parts
    // (it would fall back anyway).
    await target.delete(snapshotName(this.#keys, deviceId, id));
    for (let i = 0; parts === undefined || i < parts; i++) {
      const gone = await target.delete(
        snapshotPartName(this.#keys, deviceId, id, i),
      );
      if (!gone && parts === undefined) break;
    }
  }

  compact(
    target: SyncTarget,
    source:
      | AsyncIterable<readonly SyncChange[]>
      | Iterable<
        readonly SyncChange[]
      >,
  ): Promise<CompactReport> {
    return this.#run("compact", async () => {
      await this.#bind(target);
      const { removed } = await this.#loadRemovals(target);
      await this.#pushNow(target);
      const snap = this.#state.snap ??= {};
      if (snap.pending !== undefined) {
        // A compaction that crashed: its parts are not referenced.
        await this.#dropSnapshot(
          target,
          this.deviceId,
          snap.pending,
          undefined,
        );
        delete snap.pending;
        await this.#save();
      }
      const id = sha256Hex(crypto.getRandomValues(new Uint8Array(32))).slice(
        0,
        32,
      );
      snap.pending = id;
      await this.#save();
      const out = this.#state.out;
      const covers: Record<string, { head: number; chain: string }> = {};
      if (out.published > 0 && out.published === out.sealed) {
        covers[this.deviceId] = { head: out.published, chain: out.chain };
      }
      for (const [d, p] of Object.entries(this.#state.in)) {
        covers[d] = { head: p.head, chain: p.chain };
      }
      let part = 0, chain = GENESIS_CHAIN, size = 0, count = 0, bytes = 0;
      let group: SyncChange[] = [];
      const flush = async () => {
        const sealed = sealSnapshotPart(this.#keys, {
          deviceId: this.deviceId,
          id,
          part,
          prevChain: chain,
          changes: group,
        });
        if (!(await target.writeIfAbsent(sealed.name, sealed.bytes))) {
          throw new AicoDataError(
            "ALREADY_EXISTS",
            "Cannot compact: the target holds another object under a new snapshot's name",
          );
        }
        bytes += sealed.bytes.length;
        chain = sealed.chain;
        part++;
        group = [];
        size = 0;
      };
      for await (const batch of source) {
        for (const c of batch) {
          const n = JSON.stringify(c).length;
          if (group.length > 0 && size + n > SNAPSHOT_PART_BYTES) await flush();
          group.push(c);
          size += n;
          count++;
        }
      }
      if (group.length > 0 || part === 0) await flush();
      const manifest: SnapshotManifest = {
        deviceId: this.deviceId,
        id,
        parts: part,
        chain,
        covers,
        removed: [...removed].sort(),
      };
      const sealed = sealSnapshotManifest(this.#keys, manifest);
      await target.writeIfAbsent(sealed.name, sealed.bytes);
      bytes += sealed.bytes.length;
      this.#snapshots.set(sealed.name, manifest);
      delete snap.pending;
      this.#state.removed = [...removed].sort();
      await this.#save();
      // The new snapshot is on the target: what it covers can go. Another
      // device's snapshot only when this one covers strictly more (two
      // equal snapshots written at once never delete each other).
      let deletedSnapshots = 0;
      const { list } = await this.#loadSnapshots(target, new Set());
      for (const t of list) {
        if (t.id === id) continue;
        let dominated = true, more = false;
        for (const [d, p] of Object.entries(t.covers)) {
          const mine = covers[d]?.head ?? -1;
          if (mine < p.head) dominated = false;
          if (mine > p.head) more = true;
        }
        for (const [d, p] of Object.entries(covers)) {
          if (t.covers[d] === undefined && p.head > 0) more = true;
        }
        if (
          removed.has(t.deviceId) ||
          (dominated && (t.deviceId === this.deviceId || more))
        ) {
          await this.#dropSnapshot(target, t.deviceId, t.id, t.parts);
          this.#snapshots.delete(snapshotName(this.#keys, t.deviceId, t.id));
          deletedSnapshots++;
        }
      }
      let deletedSegments = 0, deletedManifests = 0;
      const deleted = snap.deleted ??= {};
      const heads = new Map<string, number>();
      for (const name of await target.list("m")) {
        const m = this.#manifests.get(name);
        if (m === undefined || !removed.has(m.deviceId)) continue;
        heads.set(m.deviceId, Math.max(heads.get(m.deviceId) ?? 0, m.head));
        if (await target.delete(name)) deletedManifests++;
        this.#manifests.delete(name);
      }
      for (const [d, p] of Object.entries(covers)) {
        // A removed device's later segments are refused: they go too.
        const upTo = Math.max(p.head, heads.get(d) ?? 0);
        for (let n = (deleted[d] ?? 0) + 1; n <= upTo; n++) {
          if (await target.delete(segmentName(this.#keys, d, n))) {
            deletedSegments++;
          }
        }
        deleted[d] = Math.max(deleted[d] ?? 0, upTo);
      }
      await this.#save();
      return {
        snapshotId: id,
        parts: part,
        changes: count,
        bytes,
        covers: Object.fromEntries(
          Object.entries(covers).map(([d, p]) => [d, p.head]),
        ),
        deletedSegments,
        deletedSnapshots,
        deletedManifests,
      };
    });
  }

  removeDevice(target: SyncTarget, deviceId: string): Promise<boolean> {
    return this.#run("remove device", async () => {
      if (typeof deviceId !== "string" || !DEVICE_FORM.test(deviceId)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot remove device: malformed device id",
        );
      }
      if (deviceId === this.deviceId) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot remove device: it is this device (remove it from another one)",
        );
      }
      await this.#bind(target);
      const r = sealRemoval(this.#keys, deviceId, this.deviceId);
      const written = await target.writeIfAbsent(r.name, r.bytes);
      if (!written) {
        // Present already: check it is a real record for that device.
        openRemoval(this.#keys, r.name, await target.read(r.name));
      }
      this.#removals.set(removalName(this.#keys, deviceId), deviceId);
      const removed = new Set(this.#state.removed ?? []);
      if (!removed.has(deviceId)) {
        removed.add(deviceId);
        this.#state.removed = [...removed].sort();
        await this.#save();
      }
      return written;
    });
  }

  status(): SyncDeviceStatus {
    const s = this.#state;
    return {
      deviceId: s.deviceId,
      sealed: s.out.sealed,
      uploaded: s.out.uploaded,
      published: s.out.published,
      applied: Object.fromEntries(
        Object.entries(s.in).map(([k, v]) => [k, v.head]),
      ),
      removed: [...(s.removed ?? [])],
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    this.#lock.close();
    OPEN_JOURNALS.delete(this.#dir);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function corruptJournal(path: string, cause?: unknown): AicoDataError {
  return new AicoDataError(
    "CORRUPT_STORE",
    `Cannot open sync journal "${path}": malformed state`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Opens (or creates) the sync journal of this device in a local folder.
 * One process at a time holds a journal (an advisory lock on `lock`: another
 * process waits for it; a second open in this process is `BUSY`); one
 * journal serves one target.
 *
 * Needs `--allow-read` and `--allow-write` on `dir`.
 *
 * @remarks
 * The folder (mode 0700) holds `state.json` (device id, data key id, target
 * id, clock, outbox and per-device positions; replaced atomically) and
 * `outbox/<n>.seg`, segments sealed but not yet pushed (already sealed, so
 * nothing in the folder is plaintext of user data). Segments are removed
 * from the outbox once on the target. A push leaves the device's newest
 * manifest and the two before it on the target and deletes older ones.
 *
 * @param dir The journal folder.
 * @param keys The sync keys (the journal is bound to their data key).
 * @param options Device id, segment size, clock.
 * @returns The device.
 * @throws {AicoDataError} `WRONG_KEY` when the journal belongs to another
 * data key, `BUSY` when it is open in this process, `INVALID_INPUT` for
 * another device id or a bad option,
 * `CORRUPT_STORE`, `PERMISSION_DENIED`.
 *
 * @example Two devices through a folder
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { createReplica, deriveSyncKeys, openFolderTarget, openSyncDevice } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 *   await using target = await openFolderTarget(`${dir}/target`);
 *   await using a = await openSyncDevice(`${dir}/a`, keys, { deviceId: "a" });
 *   await using b = await openSyncDevice(`${dir}/b`, keys, { deviceId: "b" });
 *   await a.stage([{ op: "put", table: "config", key: "ui/theme", hlc: a.clock.now(), value: { v: "dark" } }]);
 *   await a.push(target);
 *   const replica = createReplica();
 *   await b.pull(target, (changes) => void replica.apply(changes));
 *   assert.equal(replica.get("config", "ui/theme")?.op, "put");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openSyncDevice(
  dir: string,
  keys: SyncKeys,
  options: SyncDeviceOptions = {},
): Promise<SyncDevice> {
  const opts = resolveSyncDeviceOptions(options);
  if (typeof dir !== "string" || dir === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open sync device: expected a folder path",
    );
  }
  if (typeof keys?.keyId !== "string") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open sync device: expected sync keys",
    );
  }
  const path = resolve(dir);
  requirePermission(
    { name: "read", path },
    `--allow-read=${path}`,
    "open sync device",
  );
  requirePermission(
    { name: "write", path },
    `--allow-write=${path}`,
    "open sync device",
  );
  await Deno.mkdir(join(path, "outbox"), { recursive: true, mode: 0o700 });
  if (OPEN_JOURNALS.has(path)) {
    throw new AicoDataError(
      "BUSY",
      `Cannot open sync journal "${path}": it is open in this process`,
    );
  }
  OPEN_JOURNALS.add(path);
  let lock: Deno.FsFile | undefined;
  try {
    // An advisory lock another process waits on; the kernel releases it
    // when this process ends, even by kill -9.
    lock = await Deno.open(join(path, "lock"), {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    await lock.lock(true);
    const state = await loadState(path, keys, opts);
    return new Device(path, keys, state, opts, lock);
  } catch (e) {
    lock?.close();
    OPEN_JOURNALS.delete(path);
    throw e;
  }
}

/** Journals open in this process (a second open would wait on its own lock). */
const OPEN_JOURNALS = new Set<string>();

async function loadState(
  path: string,
  keys: SyncKeys,
  opts: ResolvedSyncDeviceOptions,
): Promise<JournalState> {
  const file = join(path, "state.json");
  let state: JournalState;
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (text === undefined) {
    state = {
      format: JOURNAL_FORMAT,
      version: JOURNAL_VERSION,
      deviceId: opts.deviceId ??
        sha256Hex(crypto.getRandomValues(new Uint8Array(32))).slice(0, 32),
      keyId: keys.keyId,
      out: {
        sealed: 0,
        chain: GENESIS_CHAIN,
        uploaded: 0,
        published: 0,
        stale: [],
      },
      in: {},
    };
    await writeAtomic(file, new TextEncoder().encode(JSON.stringify(state)));
  } else {
    try {
      state = JSON.parse(text);
    } catch (cause) {
      throw corruptJournal(path, cause);
    }
    if (
      state?.format !== JOURNAL_FORMAT || state.version !== JOURNAL_VERSION ||
      typeof state.deviceId !== "string" || !DEVICE_FORM.test(state.deviceId) ||
      typeof state.out?.sealed !== "number" || typeof state.in !== "object"
    ) throw corruptJournal(path);
    if (state.keyId !== keys.keyId) {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot open sync journal "${path}": it belongs to another data key`,
      );
    }
    if (opts.deviceId !== undefined && opts.deviceId !== state.deviceId) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot open sync journal "${path}": it belongs to device "${state.deviceId}"`,
      );
    }
  }
  return state;
}

/** An object's bytes, or `undefined` when the target no longer holds it. */
async function readIfPresent(
  target: SyncTarget,
  name: string,
): Promise<Uint8Array | undefined> {
  try {
    return await target.read(name);
  } catch (e) {
    if (isAicoDataError(e, "NOT_FOUND")) return undefined;
    throw e;
  }
}
