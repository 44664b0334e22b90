/**
 * The durable change feed of `@aico/data`.
 *
 * Writers (the repositories) record `{ table, op, keys, scope }` changes in
 * the same transaction as the rows they announce ({@linkcode ChangeRecorder});
 * after commit the feed publishes `data.changed.<table>` `{ op, keys, scope }`
 * on the in-process bus (cache invalidation) and wakes its durable
 * consumers. A consumer ({@linkcode ChangeConsumer}: the vector indexer, the
 * analytics refresher) registers by name and keeps its cursor in the
 * database (`change_cursors`); its cursor advances only after its async
 * `handle()` resolved (at-least-once), a failed batch is retried with
 * back-off, and after a crash it resumes from its cursor at the next open.
 * A consumer without a cursor first runs its `backfill()`; its cursor starts
 * at the position read before it. Events at or below the lowest cursor are
 * purged. The bus is in process: a commit made by another process (the CLI)
 * wakes no consumer here; they pick it up at their next wake-up,
 * `catchUp()`, `drain()` or open.
 *
 * Register {@linkcode changesSchema} with the migrator before
 * {@linkcode openChangeFeed}. Permissions: those of the store.
 *
 * @example A consumer that keeps an index in step with a table
 * ```ts
 * import { changesSchema, openChangeFeed } from "./mod.ts";
 * import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   await (await openMigrator(db, createSchemaRegistry([changesSchema]))).migrate();
 *   const index = new Set<string>();
 *   {
 *     await using feed = await openChangeFeed(db);
 *     await feed.register({
 *       name: "index",
 *       async handle(batch) {
 *         for (const e of batch) for (const k of e.keys) index.add(`${e.table}/${k}`);
 *       },
 *     });
 *     await db.transaction((tx) => feed.record(tx, [{ table: "notes", op: "insert", keys: ["a"] }]));
 *     await feed.drain();
 *   }
 *   assert.deepEqual([...index], ["notes/a"]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export {
  type ChangeFeedOptions,
  type ChangeFeedStorage,
  type ChangePublisher,
  type DataChanged,
  type DataChangedTopics,
  openChangeFeed,
  resolveChangeFeedOptions,
  type ResolvedChangeFeedOptions,
} from "./change_feed.ts";
export {
  CHANGES_V1_DOWN,
  CHANGES_V1_UP,
  changesSchema,
} from "./changes_schema.ts";
export type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
  ChangeFeed,
  ChangeInput,
  ChangeOp,
  ChangeRecorder,
  ConsumerRegistration,
  ConsumerStatus,
} from "./types.ts";
