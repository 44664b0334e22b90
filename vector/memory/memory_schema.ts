/**
 * The schema of semantic memory's keyword index, inside the encrypted
 * libSQL file beside the messages it indexes.
 *
 * @module
 */
import { registerSchema, type SchemaDefinition } from "../../schema/mod.ts";

/**
 * The FTS5 tokenizer: Unicode word splitting with diacritics folded
 * (`café` = `cafe`, `Straße` stays one word, `niño` = `nino`), so that German
 * and Spanish words match whatever accents a query carries.
 */
export const MEMORY_FTS_TOKENIZER = "unicode61 remove_diacritics 2";

/** The statements of memory schema version 1. */
export const MEMORY_V1_UP: readonly string[] = Object.freeze([
  // Contentless (content=''): FTS5 keeps only its inverted index, never a
  // copy of the text; contentless_delete=1 lets rows be deleted by rowid.
  // rowid = messages.id. Column `body` is the message, `context` its
  // neighbours (ranked lower).
  `CREATE VIRTUAL TABLE memory_fts USING fts5(body, context, content='', contentless_delete=1, tokenize='${MEMORY_FTS_TOKENIZER}')`,
  // One row per indexed message: what the filters test, and whether the
  // message still waits for its vector (embedded = 0); `version` grows at
  // every re-index, so that a vector made from an older text is not marked
  // current.
  `CREATE TABLE memory_items (
  message_id INTEGER PRIMARY KEY,
  conversation_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  embedded INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0
)`,
  "CREATE INDEX memory_items_pending ON memory_items (embedded, message_id)",
  "CREATE INDEX memory_items_conversation ON memory_items (conversation_id, message_id)",
  // Backfill position and the embedder the vectors were made with.
  `CREATE TABLE memory_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
)`,
]);

/**
 * The memory schema: owner `"core"`, priority 20 (after the core schema);
 * version 1 creates the contentless FTS5 index `memory_fts`, the item table
 * `memory_items` and `memory_state`. It declares no sealed column: it keeps
 * no message text (the FTS index holds only tokens, inside the encrypted
 * file).
 *
 * @example Migrating a store with the core and memory schemas
 * ```ts
 * import { memorySchema } from "./memory_schema.ts";
 * import { coreSchema } from "../../repositories/core_schema.ts";
 * import { createSchemaRegistry, openMigrator } from "../../schema/mod.ts";
 * import { openStorage } from "../../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/a.db`, { key: await importDataKey(generateDataKey()) });
 *   await using migrator = await openMigrator(db, createSchemaRegistry([coreSchema, memorySchema]));
 *   await migrator.migrate();
 *   const rs = await db.execute("SELECT name FROM sqlite_master WHERE name = 'memory_fts'");
 *   assert.equal(rs.rows.length, 1);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export const memorySchema: SchemaDefinition = registerSchema(
  "memory",
  "core",
  { priority: 20 },
  [{
    version: 1,
    name: "create_memory_index",
    description:
      "Contentless FTS5 keyword index of messages, indexed items and their embedding state",
    up: MEMORY_V1_UP,
    down: [
      "DROP TABLE memory_state",
      "DROP TABLE memory_items",
      "DROP TABLE memory_fts",
    ],
  }],
);
