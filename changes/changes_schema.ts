/**
 * The feed's own tables: `change_events` (one row per recorded change, in
 * commit order) and `change_cursors` (one row per durable consumer).
 *
 * @module
 */
import {
  registerSchema,
  type SchemaDefinition,
} from "../schema/schema_version.ts";

/** The statements of version 1 of {@linkcode changesSchema}, in order. */
export const CHANGES_V1_UP: readonly string[] = Object.freeze([
  `CREATE TABLE change_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tbl TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  keys TEXT NOT NULL,
  scope TEXT,
  at INTEGER NOT NULL
)`,
  `CREATE TABLE change_cursors (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('backfill', 'ready')),
  updated_at INTEGER NOT NULL,
  last_error TEXT
)`,
]);

/** The statements undoing version 1 of {@linkcode changesSchema}. */
export const CHANGES_V1_DOWN: readonly string[] = Object.freeze([
  "DROP TABLE change_cursors",
  "DROP TABLE change_events",
]);

/**
 * The schema of the change feed: owner `"core"`, name `"changes"`, priority
 * 1 (after the core tables). Register it with every store a change feed
 * is opened on.
 *
 * @example Registering the feed's tables
 * ```ts
 * import { changesSchema } from "./changes_schema.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(changesSchema.owner, "core");
 * assert.equal(changesSchema.latest, 1);
 * ```
 */
export const changesSchema: SchemaDefinition = registerSchema(
  "changes",
  "core",
  { priority: 1 },
  [
    {
      version: 1,
      name: "create_change_feed",
      description: "Change events in commit order and consumer cursors",
      up: CHANGES_V1_UP,
      down: CHANGES_V1_DOWN,
    },
  ],
);
