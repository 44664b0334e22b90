/**
 * A sync device: the local journal of one device (its id, clock, sealed
 * outbox and how far it has read every other device) with `stage`, `push`
 * and `pull`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { requirePermission } from "../_internal/permissions.ts";
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
import type { SyncChange, SyncTarget } from "./types.ts";

const JOURNAL_FORMAT = "aico-sync-journal";
const JOURNAL_VERSION = 1;
const DEVICE_FORM = /^[a-z0-9_-]{1,64}$/;
/** Manifests of a device left on the target: the newest and older ones. */
const KEPT_MANIFESTS = 3;

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
  in: Record<string, { head: number; chain: string }>;
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
    });
  }

  async #collect(target: SyncTarget): Promise<Collected> {
    let bytes = 0;
    const newest = new Map<string, Manifest>();
    for (const name of await target.list("m")) {
      let m = this.#manifests.get(name);
      if (m === undefined) {
        let data: Uint8Array;
        try {
          data = await target.read(name);
        } catch (e) {
          if (isAicoDataError(e, "NOT_FOUND")) continue; // deleted meanwhile
          throw e;
        }
        bytes += data.length;
        m = openManifest(this.#keys, name, data);
        this.#manifests.set(name, m);
      }
      const best = newest.get(m.deviceId);
      if (best === undefined || m.head > best.head) newest.set(m.deviceId, m);
    }
    for (const [id, known] of Object.entries(this.#state.in)) {
      const m = newest.get(id);
      if (m === undefined) continue;
      if (m.head < known.head) {
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
    const ready: { m: Manifest; from: number; changes: SyncChange[] }[] = [];
    const incomplete: string[] = [];
    for (
      const m of [...newest.values()].sort((a, b) =>
        a.deviceId < b.deviceId ? -1 : 1
      )
    ) {
      if (m.deviceId === this.deviceId) continue;
      const known = this.#state.in[m.deviceId] ??
        { head: 0, chain: GENESIS_CHAIN };
      if (m.head <= known.head) continue;
      let chain = known.chain;
      const changes: SyncChange[] = [];
      let complete = true;
      for (let n = known.head + 1; n <= m.head; n++) {
        let data: Uint8Array;
        try {
          data = await target.read(segmentName(this.#keys, m.deviceId, n));
        } catch (e) {
          if (isAicoDataError(e, "NOT_FOUND")) {
            complete = false;
            break;
          }
          throw e;
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
    return { ready, incomplete, bytes };
  }

  verify(target: SyncTarget): Promise<SyncVerifyReport> {
    return this.#run("verify", async () => {
      await this.#bind(target);
      try {
        const { ready, incomplete } = await this.#collect(target);
        return {
          ok: true,
          pending: ready.map((r) => ({
            deviceId: r.m.deviceId,
            from: r.from,
            to: r.m.head,
            changes: r.changes.length,
          })),
          incomplete,
          problem: undefined,
        };
      } catch (e) {
        if (
          isAicoDataError(e, "AUTH_FAILED") ||
          isAicoDataError(e, "SYNC_REPLAY") ||
          isAicoDataError(e, "CORRUPT_VALUE")
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
      const { ready, incomplete, bytes } = await this.#collect(target);
      const applied: PulledRange[] = [];
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
      return { applied, incomplete, bytes };
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
