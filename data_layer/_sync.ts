// Internal: the `sync` row of the component table: the device journal in
// `<dir>/sync`, the store wiring (its consumer registered on the feed), and
// `run()`: stage what is committed, push, pull.
import { AicoDataError, isAicoDataError } from "../errors.ts";
import type { ConsumerRegistration } from "../changes/mod.ts";
import {
  type CompactReport,
  createStoreSync,
  deriveSyncKeys,
  loadTargetSpec,
  openSyncDevice,
  openSyncTarget,
  type StoreSync,
  type SyncDevice,
  syncSchema,
  type SyncTarget,
  type SyncVerifyReport,
} from "../sync/mod.ts";
import type { Storage } from "../storage/mod.ts";
import type { DataLayerComponent } from "./components.ts";

/** Options of the data layer's sync (`DataLayerOptions.sync`). */
export interface DataLayerSyncOptions {
  /**
   * The target: an open {@linkcode SyncTarget} (the caller closes it), or
   * its text (a folder path or an `http(s)://` WebDAV URL).
   *
   * @default {undefined} (the target saved in the store by `sync init`;
   * without one, sync stays off and `DataLayer.sync` is `undefined`)
   */
  readonly target?: SyncTarget | string;
  /**
   * The id of this device when its journal is new (`[a-z0-9_-]{1,64}`).
   *
   * @default {undefined} (random)
   */
  readonly deviceId?: string;
  /**
   * A segment is closed at about this many bytes of changes.
   *
   * @default {1_048_576}
   */
  readonly maxSegmentBytes?: number;
  /**
   * `run()` compacts when the target holds more than this many segments no
   * snapshot covers (what a new device would replay); `0` never compacts
   * automatically.
   *
   * @default {256}
   */
  readonly compactAfter?: number;
}

// The default of `compactAfter`: 256 uncovered segments (up to 256 MiB of
// history at the default segment size; a few hundred small syncs).
const DEFAULT_COMPACT_AFTER = 256;

/** What {@linkcode DataSync.run} did. */
export interface SyncRunReport {
  /** Segments and bytes written to the target. */
  readonly pushed: { readonly segments: number; readonly bytes: number };
  /** Changes applied from other devices and bytes read. */
  readonly pulled: {
    readonly changes: number;
    readonly devices: number;
    readonly bytes: number;
  };
  /** Devices whose segments are not all on the target yet. */
  readonly incomplete: readonly string[];
  /** The compaction `run()` did (over `compactAfter` segments), if any. */
  readonly compacted?: CompactReport;
}

/** The data layer's sync (`DataLayer.sync`). */
export interface DataSync {
  /** This device's id. */
  readonly deviceId: string;
  /** The device journal. */
  readonly device: SyncDevice;
  /** The store wiring (consumer and applier). */
  readonly wiring: StoreSync;
  /**
   * Stages every change committed so far, pushes, then pulls and applies
   * other devices' changes.
   *
   * @param options `signal` stops between steps.
   * @returns Counts.
   * @throws {AicoDataError} `NOT_FOUND` when no target is set,
   * `AUTH_FAILED`/`SYNC_REPLAY` for a tampered target (nothing applied),
   * target errors.
   */
  run(options?: { readonly signal?: AbortSignal }): Promise<SyncRunReport>;
  /**
   * Checks the target as a pull would, applying nothing.
   *
   * @returns The device's verify report.
   * @throws {AicoDataError} `NOT_FOUND` when no target is set, target errors.
   */
  verify(): Promise<SyncVerifyReport>;
  /**
   * Syncs, then folds the state into a snapshot on the target and deletes
   * the segments it covers (a new device then pulls the snapshot and the
   * segments after it; a device behind falls back to the snapshot).
   *
   * @param options `signal` stops between steps.
   * @returns What was written and deleted.
   * @throws {AicoDataError} as {@linkcode DataSync.run}.
   */
  compact(options?: { readonly signal?: AbortSignal }): Promise<CompactReport>;
  /**
   * Removes another device: a sealed removal record on the target makes
   * honest devices refuse its manifests and segments from then on; then
   * compacts, which deletes its segments from the target. It cannot take
   * back the data key the removed device holds: rotate the key for that.
   *
   * @param deviceId The device to remove.
   * @returns The compaction.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed id or this
   * device's id; as {@linkcode DataSync.run}.
   */
  removeDevice(deviceId: string): Promise<CompactReport>;
}

class DataSyncImpl implements DataSync {
  readonly device: SyncDevice;
  readonly wiring: StoreSync;
  #registration: ConsumerRegistration;
  #storage: Storage;
  #given: SyncTarget | string | undefined;
  #opened: SyncTarget | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #compactAfter: number;

  constructor(
    device: SyncDevice,
    wiring: StoreSync,
    registration: ConsumerRegistration,
    storage: Storage,
    target: SyncTarget | string | undefined,
    compactAfter: number,
  ) {
    this.#compactAfter = compactAfter;
    this.device = device;
    this.wiring = wiring;
    this.#registration = registration;
    this.#storage = storage;
    this.#given = target;
  }

  get deviceId(): string {
    return this.device.deviceId;
  }

  async #target(): Promise<SyncTarget> {
    if (typeof this.#given === "object") return this.#given;
    if (this.#opened !== undefined) return this.#opened;
    const spec = this.#given ?? await loadTargetSpec(this.#storage);
    if (spec === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        "Cannot sync: no sync target is set (run aico-data sync init TARGET)",
      );
    }
    this.#opened = await openSyncTarget(spec);
    return this.#opened;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  run(options: { readonly signal?: AbortSignal } = {}): Promise<SyncRunReport> {
    return this.#serial(async () => {
      const signal = options.signal;
      const target = await this.#target();
      await this.#registration.catchUp(signal === undefined ? {} : { signal });
      signal?.throwIfAborted();
      const pushed = await this.device.push(target);
      signal?.throwIfAborted();
      const pulled = await this.device.pull(target, this.wiring.apply);
      let compacted: CompactReport | undefined;
      if (this.#compactAfter > 0 && pulled.uncovered > this.#compactAfter) {
        signal?.throwIfAborted();
        compacted = await this.device.compact(
          target,
          this.wiring.compaction(),
        );
      }
      return {
        ...(compacted === undefined ? {} : { compacted }),
        pushed: { segments: pushed.segments, bytes: pushed.bytes },
        pulled: {
          changes: pulled.applied.reduce((n, r) => n + r.changes, 0),
          devices: pulled.applied.length,
          bytes: pulled.bytes,
        },
        incomplete: pulled.incomplete,
      };
    });
  }

  compact(
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<CompactReport> {
    return this.#serial(() => this.#compact(options.signal));
  }

  async #compact(signal: AbortSignal | undefined): Promise<CompactReport> {
    const target = await this.#target();
    await this.#registration.catchUp(signal === undefined ? {} : { signal });
    signal?.throwIfAborted();
    await this.device.pull(target, this.wiring.apply);
    signal?.throwIfAborted();
    return await this.device.compact(target, this.wiring.compaction());
  }

  removeDevice(deviceId: string): Promise<CompactReport> {
    return this.#serial(async () => {
      const target = await this.#target();
      await this.device.removeDevice(target, deviceId);
      return await this.#compact(undefined);
    });
  }

  verify(): Promise<SyncVerifyReport> {
    return this.#serial(async () =>
      await this.device.verify(await this.#target())
    );
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#registration.stop().catch(() => {});
    await this.#opened?.close().catch(() => {});
    await this.device.close();
  }
}

/** The `sync` row (disabled unless `options` is given). */
export function syncComponent(
  options: false | DataLayerSyncOptions | undefined,
): DataLayerComponent<DataSyncImpl> {
  return {
    name: "sync",
    schemas: [syncSchema],
    async open(ctx) {
      if (options === undefined || options === false) return undefined;
      // Without a target (given or saved by `sync init`) sync stays off: no
      // journal is made and no feed cursor starts keeping events.
      if (
        options.target === undefined &&
        await loadTargetSpec(ctx.storage) === undefined
      ) return undefined;
      const after = options.compactAfter ?? DEFAULT_COMPACT_AFTER;
      if (!Number.isSafeInteger(after) || after < 0) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot open sync: compactAfter must be a non-negative integer, got "${after}"`,
        );
      }
      const keys = await deriveSyncKeys(ctx.key);
      let device: SyncDevice;
      try {
        device = await openSyncDevice(`${ctx.dir}/sync`, keys, {
          ...(options.deviceId === undefined
            ? {}
            : { deviceId: options.deviceId }),
          ...(options.maxSegmentBytes === undefined
            ? {}
            : { maxSegmentBytes: options.maxSegmentBytes }),
        });
      } catch (err) {
        if (isAicoDataError(err, "WRONG_KEY")) {
          throw new AicoDataError(
            "WRONG_KEY",
            "Cannot open sync: the data key was rotated after sync was set up; sync across a key rotation is not supported yet (open without sync, or move the sync folder away and set up sync on a new target)",
            { cause: err },
          );
        }
        throw err;
      }
      try {
        const wiring = createStoreSync(ctx.storage, ctx.changes, device);
        const registration = await ctx.changes.register(wiring.consumer);
        return new DataSyncImpl(
          device,
          wiring,
          registration,
          ctx.storage,
          options.target,
          options.compactAfter ?? DEFAULT_COMPACT_AFTER,
        );
      } catch (err) {
        await device.close();
        throw err;
      }
    },
    close: (instance) => instance.close(),
  };
}
