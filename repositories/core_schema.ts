/**
 * The core schema of `@aico/data`: logs, users and credentials,
 * configuration, plugins and their state, conversations and messages
 * (content sealed). Version 2 replaced the outbox of version 1 by the change
 * feed (`changes/`, its own schema) and added `messages.model`; version 3
 * added `message_gaps` (positions of erased messages).
 *
 * @example Applying the core schema with the migrator
 * ```ts
 * import { coreSchema } from "./core_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(coreSchema.name, "core");
 * assert.equal(coreSchema.owner, "core");
 * assert.equal(coreSchema.latest, 3);
 * ```
 *
 * @module
 */
import {
  registerSchema,
  type SchemaDefinition,
} from "../schema/schema_version.ts";
export type {
  MigrationFunction,
  MigrationStep,
  SchemaDefinition,
  SchemaVersion,
} from "../schema/schema_version.ts";

/**
 * The statements of core version 1, in order (each one statement).
 *
 * @remarks
 * Sealed columns (`BLOB`, sealed with `Storage.sealedColumn(table, column)`,
 * schema version 1, AAD bound to table, column and the row key column):
 * see {@linkcode CORE_SEALED_COLUMNS}. Composite keys have a `row_key` column
 * (`"<namespace>/<key>"`, `"<userId>/<kind>"`). Message ids are
 * `AUTOINCREMENT`: an id is never reused after a deletion, so an old sealed
 * copy of a deleted message cannot be replayed into a newer row. Foreign keys are declared with
 * `ON DELETE CASCADE`; the repositories also delete dependent rows
 * explicitly, so deletion does not depend on `PRAGMA foreign_keys`.
 */
export const CORE_V1_UP: readonly string[] = Object.freeze([
  `CREATE TABLE logs (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error', 'fatal')),
  module TEXT NOT NULL,
  message TEXT NOT NULL,
  context TEXT,
  trace_id TEXT
)`,
  "CREATE INDEX logs_level_ts ON logs (level, ts)",
  "CREATE INDEX logs_module_ts ON logs (module, ts)",
  "CREATE INDEX logs_ts ON logs (ts)",
  `CREATE TABLE users (
  id TEXT PRIMARY KEY,
  profile BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
)`,
  `CREATE TABLE user_credentials (
  row_key TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('pin', 'password')),
  hash BLOB NOT NULL,
  params TEXT NOT NULL,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  lockouts INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, kind)
)`,
  `CREATE TABLE config (
  row_key TEXT NOT NULL UNIQUE,
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('null', 'boolean', 'number', 'string', 'array', 'object')),
  value TEXT,
  sealed_value BLOB,
  secret INTEGER NOT NULL DEFAULT 0 CHECK (secret IN (0, 1)),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
)`,
  `CREATE TABLE plugins (
  name TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  metadata TEXT NOT NULL DEFAULT '{}',
  installed_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
)`,
  `CREATE TABLE plugin_state (
  plugin TEXT NOT NULL REFERENCES plugins (name) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (plugin, key)
)`,
  `CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
  title BLOB,
  metadata TEXT NOT NULL DEFAULT '{}',
  last_seq INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
)`,
  "CREATE INDEX conversations_updated ON conversations (updated_at, id)",
  "CREATE INDEX conversations_user_updated ON conversations (user_id, updated_at, id)",
  `CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (conversation_id, seq)
)`,
  `CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  processed_at INTEGER
)`,
  "CREATE INDEX outbox_pending ON outbox (processed_at, id)",
]);

/** The statements undoing core version 1, in order. */
export const CORE_V1_DOWN: readonly string[] = Object.freeze([
  "DROP TABLE outbox",
  "DROP TABLE messages",
  "DROP TABLE conversations",
  "DROP TABLE plugin_state",
  "DROP TABLE plugins",
  "DROP TABLE config",
  "DROP TABLE user_credentials",
  "DROP TABLE users",
  "DROP TABLE logs",
]);

/**
 * The statements of core version 2: the outbox gives way to the change feed
 * (`changes/`), and messages record the model that wrote them.
 */
export const CORE_V2_UP: readonly string[] = Object.freeze([
  "DROP INDEX outbox_pending",
  "DROP TABLE outbox",
  "ALTER TABLE messages ADD COLUMN model TEXT",
]);

/** The statements undoing core version 2 (the outbox comes back empty). */
export const CORE_V2_DOWN: readonly string[] = Object.freeze([
  "ALTER TABLE messages DROP COLUMN model",
  `CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  processed_at INTEGER
)`,
  "CREATE INDEX outbox_pending ON outbox (processed_at, id)",
]);

/**
 * The statements of core version 3: `message_gaps` records the `seq` of each
 * message erased from the middle of a conversation (`erase`, retention), so
 * that a listing can still tell an erased message from a row a damaged page
 * hid. It holds positions only, no content.
 */
export const CORE_V3_UP: readonly string[] = Object.freeze([
  `CREATE TABLE message_gaps (
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID`,
]);

/** The statements undoing core version 3. */
export const CORE_V3_DOWN: readonly string[] = Object.freeze([
  "DROP TABLE message_gaps",
]);

/** A sealed column of the core schema: its table, column and row key column. */
export interface CoreSealedColumn {
  /** The table. */
  readonly table: string;
  /** The sealed BLOB column. */
  readonly column: string;
  /** The column holding the row key the sealed values are bound to. */
  readonly rowKey: string;
  /** The schema version bound into the values. */
  readonly schemaVersion: number;
}

/**
 * Every sealed column of the core schema, in the shape `Storage.rekey()`
 * takes as `sealedColumns` (pass it when rotating the data key).
 *
 * @example Rotating the key of a store with the core schema
 * ```ts
 * import { CORE_SEALED_COLUMNS } from "./core_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(CORE_SEALED_COLUMNS.some((c) => c.table === "messages" && c.column === "content"));
 * // await storage.rekey(newKey, { sealedColumns: CORE_SEALED_COLUMNS });
 * ```
 */
export const CORE_SEALED_COLUMNS: readonly CoreSealedColumn[] = Object.freeze([
  { table: "users", column: "profile", rowKey: "id", schemaVersion: 1 },
  {
    table: "user_credentials",
    column: "hash",
    rowKey: "row_key",
    schemaVersion: 1,
  },
  {
    table: "config",
    column: "sealed_value",
    rowKey: "row_key",
    schemaVersion: 1,
  },
  { table: "conversations", column: "title", rowKey: "id", schemaVersion: 1 },
  { table: "messages", column: "content", rowKey: "id", schemaVersion: 1 },
].map((c) => Object.freeze(c)));

/**
 * The core schema definition: owner `"core"`, priority 0; version 1
 * creates every core table, version 2 drops the outbox and adds
 * `messages.model`, version 3 adds `message_gaps` (all reversible).
 *
 * @example Inspecting the core schema
 * ```ts
 * import { coreSchema } from "./core_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(coreSchema.priority, 0);
 * assert.equal(coreSchema.versions[0]!.name, "create_core_tables");
 * assert.ok(coreSchema.versions[0]!.down !== undefined);
 * assert.ok(coreSchema.sealedColumns.some((c) => c.table === "messages"));
 * ```
 */
export const coreSchema: SchemaDefinition = registerSchema("core", "core", {
  priority: 0,
  sealedColumns: CORE_SEALED_COLUMNS,
}, [
  {
    version: 1,
    name: "create_core_tables",
    description:
      "Logs, users and credentials, configuration, plugins and plugin state, conversations, messages (sealed content), outbox",
    up: CORE_V1_UP,
    down: CORE_V1_DOWN,
  },
  {
    version: 2,
    name: "change_feed_and_message_model",
    description:
      "Drops the outbox (replaced by the change feed); adds messages.model",
    up: CORE_V2_UP,
    down: CORE_V2_DOWN,
  },
  {
    version: 3,
    name: "message_gaps",
    description:
      "Positions of messages erased from a conversation (no content)",
    up: CORE_V3_UP,
    down: CORE_V3_DOWN,
  },
]);
