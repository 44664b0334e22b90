/**
 * End-to-end encrypted sync between a user's devices through storage they
 * already have: a folder kept in sync by Syncthing, Dropbox or iCloud Drive
 * (or a USB stick), or a WebDAV server such as Nextcloud.
 *
 * - {@linkcode SyncTarget}: immutable named objects; {@linkcode openFolderTarget},
 *   {@linkcode openWebDavTarget}.
 * - Segments ({@linkcode sealSegment}) and manifests ({@linkcode sealManifest}):
 *   AES-256-GCM under the `sync` purpose key, keyed opaque names, Padmé
 *   padding, a hash chain per device.
 * - {@linkcode createHlc}: hybrid logical clocks; {@linkcode mergeRow} and
 *   {@linkcode createReplica}: last writer wins per row, permanent erasure,
 *   idempotent appends.
 * - {@linkcode openSyncDevice}: the journal of a device with `stage`, `push`
 *   and `pull`; {@linkcode publishKeyFile} / {@linkcode fetchKeyFile} to join.
 *
 * Permissions: `--allow-read`/`--allow-write` on the journal and folder
 * target, `--allow-net=<host>` for WebDAV.
 *
 * What the target sees: objects `keyfile` (the passphrase-wrapped key file),
 * `m<64 hex>` (manifests: a new name at each push, the last three of each
 * device kept) and `s<64 hex>` (segments); names are HMACs of (device, number)
 * under a key derived from the data key; sizes are Padmé-padded (≤ 12%,
 * at least 512 bytes); times and the number of pushes remain visible.
 *
 * What a reader verifies before applying anything: every segment opens
 * (AES-256-GCM, associated data binding format version, device, number and
 * the chain value before it), the chain over all new segments equals the
 * device's manifest, and no manifest states a smaller head than one
 * already applied (`SYNC_REPLAY`). Limits: a device that never saw a newer
 * manifest cannot tell a withheld one from no news (freshness needs a
 * trusted clock); a missing segment is reported as `incomplete`, not as an
 * attack, because folder-sync tools deliver files in any order.
 *
 * Merge rule ({@linkcode compareVersions}): an `erase` wins over every
 * version and takes the rows whose `parent` it is with it; otherwise the
 * greater hybrid-logical-clock reading wins (device id breaks ties), a
 * `delete` beating older writes; appends are idempotent by their globally
 * unique key. Compaction (`SyncDevice.compact`, `sync/snapshot.ts`) folds
 * the history into a sealed snapshot and deletes the segments it covers; a
 * removal record makes honest devices refuse a removed device. Not built
 * yet: re-publishing the key file after a passphrase change, and re-keying
 * sync after a data-key rotation.
 *
 * @example Sync between two devices through a folder
 * ```ts
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import { createReplica, deriveSyncKeys, openFolderTarget, openSyncDevice } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
 *   await using target = await openFolderTarget(`${dir}/target`);
 *   await using phone = await openSyncDevice(`${dir}/phone`, keys);
 *   await using laptop = await openSyncDevice(`${dir}/laptop`, keys);
 *   const conv = { table: "conversations", key: "c1" };
 *   await phone.stage([
 *     { op: "put", ...conv, hlc: phone.clock.now(), value: { title: "Trip" } },
 *     { op: "append", table: "messages", key: `${phone.deviceId}/1`, parent: conv, hlc: phone.clock.now(), value: { text: "hi" } },
 *   ]);
 *   await phone.push(target);
 *   const state = createReplica();
 *   await laptop.pull(target, (changes) => void state.apply(changes));
 *   assert.equal(state.rows("messages").length, 1);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./hlc.ts";
export * from "./merge.ts";
export * from "./keys.ts";
export * from "./segment.ts";
export * from "./manifest.ts";
export * from "./snapshot.ts";
export * from "./folder_target.ts";
export * from "./webdav_target.ts";
export * from "./device.ts";
export * from "./join.ts";
export * from "./consumer.ts";
export * from "./store_schema.ts";
export * from "./store_sync.ts";
export * from "./open_target.ts";
export type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
  ChangeInput,
  ChangeOp,
} from "../changes/types.ts";
