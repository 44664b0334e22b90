import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import {
  CORE_SEALED_COLUMNS,
  CORE_V1_DOWN,
  CORE_V1_UP,
  CORE_V2_DOWN,
  CORE_V2_UP,
  coreSchema,
} from "./core_schema.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";

const TABLES = [
  "config",
  "conversations",
  "logs",
  "message_gaps",
  "messages",
  "plugin_state",
  "plugins",
  "user_credentials",
  "users",
];

async function userObjects(
  db: Awaited<ReturnType<typeof openStorage>>,
  type: string,
): Promise<string[]> {
  const rs = await db.execute({
    sql:
      "SELECT name FROM sqlite_schema WHERE type = ? AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_aico_%' ORDER BY name",
    args: [type],
  });
  return rs.rows.map((r) => r.name as string);
}

Deno.test("coreSchema is registered as core, priority 0, three reversible versions", () => {
  assert.equal(coreSchema.name, "core");
  assert.equal(coreSchema.owner, "core");
  assert.equal(coreSchema.priority, 0);
  assert.equal(coreSchema.latest, 3);
  assert.deepEqual(coreSchema.versions[1]?.up, CORE_V2_UP);
  assert.deepEqual(coreSchema.versions[1]?.down, CORE_V2_DOWN);
  assert.equal(coreSchema.namespace, undefined);
  assert.deepEqual(coreSchema.versions[0]?.up, CORE_V1_UP);
  assert.deepEqual(coreSchema.versions[0]?.down, CORE_V1_DOWN);
  assert.ok(Object.isFrozen(coreSchema));
});

Deno.test("the migrator applies the core schema and reverts it completely", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using db = await openStorage(`${dir}/core.db`, {
      key: await importDataKey(generateDataKey()),
    });
    await using migrator = await openMigrator(
      db,
      createSchemaRegistry([coreSchema]),
    );
    const applied = await migrator.migrate();
    assert.deepEqual(applied.map((a) => [a.schema, a.version]), [
      ["core", 1],
      ["core", 2],
      ["core", 3],
    ]);
    assert.deepEqual(await userObjects(db, "table"), TABLES);
    assert.deepEqual(await userObjects(db, "index"), [
      "conversations_updated",
      "conversations_user_updated",
      "logs_level_ts",
      "logs_module_ts",
      "logs_ts",
    ]);
    const columns =
      (await db.execute("SELECT name FROM pragma_table_info('messages')"))
        .rows.map((r) => r.name);
    assert.ok(columns.includes("model"));
    await migrator.validate();
    await migrator.migrateTo("core", 1);
    assert.deepEqual(
      await userObjects(db, "table"),
      [...TABLES.filter((t) => t !== "message_gaps"), "outbox"].sort(),
    );
    await migrator.migrate();
    assert.deepEqual(await migrator.migrate(), []);
    await migrator.migrateTo("core", 0);
    assert.deepEqual(await userObjects(db, "table"), []);
    await migrator.migrate();
    assert.deepEqual(await userObjects(db, "table"), TABLES);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the core schema's CHECK constraints refuse bad levels, roles and kinds", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using db = await openStorage(`${dir}/core.db`, {
      key: await importDataKey(generateDataKey()),
    });
    await (await openMigrator(db, createSchemaRegistry([coreSchema])))
      .migrate();
    await assert.rejects(
      db.execute(
        "INSERT INTO logs (ts, level, module, message) VALUES (1, 'loud', 'm', 'x')",
      ),
    );
    await db.execute(
      "INSERT INTO conversations (id, created_at, updated_at) VALUES ('c', 1, 1)",
    );
    await assert.rejects(
      db.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, created_at) VALUES ('c', 1, 'robot', x'00', 1)",
      ),
    );
    await assert.rejects(
      db.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, created_at) VALUES ('nope', 1, 'user', x'00', 1)",
      ),
    );
    await db.execute(
      "INSERT INTO users (id, profile, created_at, updated_at) VALUES ('u', x'00', 1, 1)",
    );
    await assert.rejects(
      db.execute(
        "INSERT INTO user_credentials (row_key, user_id, kind, hash, params, updated_at) VALUES ('u/x', 'u', 'token', x'00', '{}', 1)",
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CORE_SEALED_COLUMNS names real BLOB columns and row key columns", () => {
  const sql = CORE_V1_UP.join("\n");
  for (const c of CORE_SEALED_COLUMNS) {
    const table = CORE_V1_UP.find((s) =>
      s.startsWith(`CREATE TABLE ${c.table} (`)
    );
    assert.ok(table, c.table);
    assert.match(
      table,
      new RegExp(`\\n  ${c.column} BLOB`),
      `${c.table}.${c.column}`,
    );
    assert.match(
      table,
      new RegExp(`\\n  ${c.rowKey} (TEXT|INTEGER)`),
      `${c.table}.${c.rowKey}`,
    );
    assert.equal(c.schemaVersion, 1);
  }
  assert.ok(sql.includes("messages"));
});
