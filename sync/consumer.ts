/**
 * The outbound side as a durable change-feed consumer: committed changes
 * become row versions (read by a caller-provided {@linkcode SyncRowReader})
 * sealed into the device's outbox.
 *
 * @module
 */
import type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
} from "../changes/types.ts";
import { AicoDataError } from "../errors.ts";
import type { SyncDevice } from "./device.ts";
import { type HybridLogicalClock, parseHlc } from "./hlc.ts";
import type { SyncChange } from "./types.ts";

/**
 * Reads the rows that committed changes name, as the row versions to send.
 * The repositories implement it (they know the tables).
 */
export interface SyncRowReader {
  /**
   * The versions for a batch of events: for each key, the row as it is now
   * (a `put`/`append` stamped with its stored clock reading), or a
   * tombstone when the row is gone. Versions whose clock reading names
   * another device (rows that arrived by sync) are dropped by the consumer,
   * so nothing echoes back.
   *
   * @param events Committed events, in `seq` order.
   * @param clock The device clock, for rows without a stored reading.
   * @returns The versions (may be empty).
   */
  changesFor(
    events: readonly ChangeEvent[],
    clock: HybridLogicalClock,
  ): Promise<SyncChange[]>;
  /**
   * Every live row, in batches, for the consumer's first registration.
   *
   * @param clock The device clock.
   * @returns The batches.
   */
  snapshot?(clock: HybridLogicalClock): AsyncIterable<SyncChange[]>;
}

/** Options of {@linkcode createSyncConsumer}. */
export interface SyncConsumerOptions {
  /**
   * The consumer name (the key of its cursor).
   *
   * @default {"sync"}
   */
  readonly name?: string;
  /**
   * Tables whose events are handed over.
   *
   * @default {["users", "config", "plugins", "plugin_state", "conversations", "messages"]}
   */
  readonly tables?: readonly string[];
  /**
   * Events per batch.
   *
   * @default {500}
   */
  readonly batchSize?: number;
}

function authoredHere(
  changes: readonly SyncChange[],
  deviceId: string,
): SyncChange[] {
  return changes.filter((c) => parseHlc(c.hlc).node === deviceId);
}

/** The tables synced by default (logs, credentials and the outbox stay local). */
export const SYNC_TABLES: readonly string[] = Object.freeze([
  "users",
  "config",
  "plugins",
  "plugin_state",
  "conversations",
  "messages",
]);

/**
 * Creates the change-feed consumer of sync. `handle` resolves only once the
 * batch's versions are durable in the outbox, so the feed's cursor never
 * passes a change that was not staged; a redelivered batch is staged again,
 * which merging makes harmless. Only versions stamped by this device's
 * clock are staged (rows applied from other devices do not echo back).
 * Pushing is separate (`device.push(target)`).
 *
 * @param device The sync device.
 * @param reader Reads rows as versions.
 * @param options Name, tables, batch size.
 * @returns The consumer, to pass to `ChangeFeed.register()`.
 * @throws {AicoDataError} `INVALID_INPUT` for a bad argument.
 *
 * @example Staging what the feed delivers
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { createSyncConsumer, deriveSyncKeys, openSyncDevice } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 *   await using device = await openSyncDevice(dir, keys);
 *   const consumer = createSyncConsumer(device, {
 *     changesFor: (events, clock) =>
 *       Promise.resolve(events.map((e) => ({ op: "delete" as const, table: e.table, key: e.keys[0]!, hlc: clock.now() }))),
 *   });
 *   await consumer.handle([{ table: "config", op: "delete", keys: ["ui/theme"], seq: 1, at: 0 }], {
 *     signal: new AbortController().signal,
 *   });
 *   assert.equal(device.status().sealed, 1);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function createSyncConsumer(
  device: SyncDevice,
  reader: SyncRowReader,
  options: SyncConsumerOptions = {},
): ChangeConsumer {
  if (typeof device?.stage !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot create sync consumer: expected a SyncDevice",
    );
  }
  if (typeof reader?.changesFor !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot create sync consumer: the reader needs changesFor()",
    );
  }
  const snapshot = reader.snapshot?.bind(reader);
  return {
    name: options.name ?? "sync",
    tables: options.tables ?? SYNC_TABLES,
    batchSize: options.batchSize ?? 500,
    ...(snapshot === undefined ? {} : {
      async backfill(context: ChangeBatchContext): Promise<void> {
        for await (const batch of snapshot(device.clock)) {
          context.signal.throwIfAborted();
          const own = authoredHere(batch, device.deviceId);
          if (own.length > 0) await device.stage(own);
        }
      },
    }),
    async handle(
      batch: readonly ChangeEvent[],
      context: ChangeBatchContext,
    ): Promise<void> {
      const changes = authoredHere(
        await reader.changesFor(batch, device.clock),
        device.deviceId,
      );
      context.signal.throwIfAborted();
      if (changes.length > 0) await device.stage(changes);
    },
  };
}
