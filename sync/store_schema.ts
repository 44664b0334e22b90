/**
 * The tables sync keeps inside the encrypted store: the version of every
 * synced row (`sync_rows`), changes waiting for the row they belong to
 * (`sync_pending`, sealed), how far each other device was applied
 * (`sync_applied`) and the sync settings (`sync_settings`: the target).
 *
 * @module
 */
import {
  registerSchema,
  type SchemaDefinition,
} from "../schema/schema_version.ts";

/** The statements of version 1 of {@linkcode syncSchema}, in order. */
export const SYNC_V1_UP: readonly string[] = Object.freeze([
  `CREATE TABLE sync_rows (
  tbl TEXT NOT NULL,
  key TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('append', 'put', 'delete', 'erase')),
  hlc TEXT NOT NULL,
  hash TEXT,
  local INTEGER,
  parent TEXT,
  PRIMARY KEY (tbl, key)
) WITHOUT ROWID`,
  "CREATE INDEX sync_rows_local ON sync_rows (tbl, local)",
  "CREATE INDEX sync_rows_parent ON sync_rows (parent)",
  `CREATE TABLE sync_pending (
  id INTEGER PRIMARY KEY,
  parent TEXT NOT NULL,
  change BLOB NOT NULL
)`,
  "CREATE INDEX sync_pending_parent ON sync_pending (parent)",
  `CREATE TABLE sync_applied (
  device TEXT PRIMARY KEY,
  head INTEGER NOT NULL
)`,
  `CREATE TABLE sync_settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
)`,
]);

/** The statements undoing version 1 of {@linkcode syncSchema}. */
export const SYNC_V1_DOWN: readonly string[] = Object.freeze([
  "DROP TABLE sync_settings",
  "DROP TABLE sync_applied",
  "DROP TABLE sync_pending",
  "DROP TABLE sync_rows",
]);

/**
 * The schema of the sync tables: owner `"core"`, name `"sync"`, priority
 * 300; `sync_pending.change` is sealed (bound to its row id).
 *
 * @example Registering the sync tables
 * ```ts
 * import { syncSchema } from "./store_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(syncSchema.name, "sync");
 * assert.equal(syncSchema.latest, 1);
 * assert.ok(syncSchema.sealedColumns.some((c) => c.table === "sync_pending"));
 * ```
 */
export const syncSchema: SchemaDefinition = registerSchema(
  "sync",
  "core",
  {
    priority: 300,
    sealedColumns: [{
      table: "sync_pending",
      column: "change",
      rowKey: "id",
      schemaVersion: 1,
    }],
  },
  [{
    version: 1,
    name: "create_sync_tables",
    description:
      "Versions of synced rows, changes waiting for their parent row (sealed), applied positions, settings",
    up: SYNC_V1_UP,
    down: SYNC_V1_DOWN,
  }],
);
