/**
 * Repositories over the core schema (`core_schema.ts`): typed, validated
 * access where every value is a bound parameter and every bad input is
 * `INVALID_INPUT` before anything is written.
 *
 * - {@linkcode createLogRepository}: structured logs, batched inserts,
 *   queries by level, module and time with keyset pagination, retention, stats.
 * - {@linkcode createUserService}: users (sealed profile), PIN / password
 *   with Argon2id and a persisted lockout.
 * - {@linkcode createConfigRepository}: namespaced, typed JSON values; secrets sealed.
 * - {@linkcode createPluginStateRepository}: plugins and their key/value state.
 * - {@linkcode createConversationRepository}: conversations and messages
 *   (content sealed), appends in one transaction, keyset paging.
 * - {@linkcode RepositoryOptions}: every repository takes `changes` (a
 *   `ChangeRecorder`, the change feed of `changes/`) and records
 *   `{ table, op, keys, scope }` in the transaction of each write; after
 *   commit the feed publishes `data.changed.<table>` on the bus and wakes its
 *   durable consumers. Deleting a conversation or a user announces the
 *   deletion of every message it removes.
 *
 * Sealed columns use the store's `sealedColumn()` helper (AAD bound to
 * table, column, row key and schema version): pass
 * `CORE_SEALED_COLUMNS` (`core_schema.ts`) to `Storage.rekey()`.
 *
 * Permissions: those of the store (local file: `--allow-read --allow-write`
 * on its folder, `--allow-ffi --allow-sys --allow-env=LIBSQL_JS_DEV`).
 *
 * @example A store with the core schema and its repositories
 * ```ts
 * import {
 *   createConfigRepository,
 *   createConversationRepository,
 *   createUserService,
 * } from "./mod.ts";
 * import { coreSchema } from "./core_schema.ts";
 * import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   await (await openMigrator(db, createSchemaRegistry([coreSchema]))).migrate();
 *   const users = createUserService(db);
 *   const user = await users.createUser({ profile: { name: "Ada" } });
 *   const conversations = createConversationRepository(db);
 *   const c = await conversations.createConversation({ userId: user.id, title: "Hello" });
 *   await conversations.appendMessage(c.id, { role: "user", content: "'; DROP TABLE users; --" });
 *   const { items } = await conversations.listMessages(c.id);
 *   assert.equal(items[0]?.content, "'; DROP TABLE users; --");
 *   const config = createConfigRepository(db);
 *   await config.set("ui", "theme", "dark");
 *   assert.equal(await config.get("ui", "theme"), "dark");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export * from "./log_repository.ts";
export * from "./user_service.ts";
export * from "./config_repository.ts";
export * from "./plugin_state_repository.ts";
export * from "./conversation_repository.ts";
export * from "./repository_options.ts";
export * from "./log_persistence.ts";
export * from "./audit_log.ts";
export {
  CORE_SEALED_COLUMNS,
  CORE_V1_DOWN,
  CORE_V1_UP,
  CORE_V2_DOWN,
  CORE_V2_UP,
  CORE_V3_DOWN,
  CORE_V3_UP,
  coreSchema,
  type CoreSealedColumn,
} from "./core_schema.ts";
export type { RepositoryStorage } from "./_storage.ts";
export type { JsonObject, JsonValue } from "./_validate.ts";
export type {
  InArgs,
  InStatement,
  InValue,
  ResultSet,
  Row,
  SqlExecutor,
  Transaction,
  TransactionMode,
  Value,
} from "../storage/types.ts";
export type {
  RowKey,
  SealedColumn,
  SealedColumnOptions,
} from "../storage/storage.ts";
export type {
  ChangeInput,
  ChangeOp,
  ChangeRecorder,
} from "../changes/types.ts";
