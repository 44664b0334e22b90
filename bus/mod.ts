/**
 * An in-process typed message bus and the log persistence subscriber.
 *
 * - {@linkcode createMessageBus}: publish/subscribe with exact topics,
 *   prefix patterns (`"log.*"`) and `"*"`; handler failures are isolated and
 *   reported to `onError`; `publishAsync` lets handlers apply back-pressure.
 * - {@linkcode createLogPersistence}: batches `log.<level>` events into a
 *   `LogRepository` (one transaction per batch, bounded queue, every
 *   accepted record written by `close()`).
 *
 * Topic conventions: `log.<level>` (payload: a log record), and
 * `data.changed.<table>` with `{ keys: string[] }` published by the outbox
 * of `storage/repositories` after a commit.
 *
 * Permissions: none for the bus; log persistence needs those of the store.
 *
 * @example Logs from the bus into the store
 * ```ts
 * import { createLogPersistence, createMessageBus } from "./mod.ts";
 * import { createLogRepository } from "../storage/repositories/mod.ts";
 * import { coreSchema } from "../schema/core.ts";
 * import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   await (await openMigrator(db, createSchemaRegistry([coreSchema]))).migrate();
 *   const logs = createLogRepository(db);
 *   await using bus = createMessageBus();
 *   const persistence = createLogPersistence(bus, logs);
 *   bus.publish("log.warn", { module: "scheduler", message: "job late" });
 *   await persistence.close();
 *   const page = await logs.queryLogs({ level: "warn" });
 *   assert.equal(page.records[0]?.message, "job late");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export * from "./message_bus.ts";
export * from "./log_persistence.ts";
