import assert from "node:assert/strict";
import { analyseStatement, checkStatement } from "./_isolation.ts";
import { splitStatements } from "../_internal/sql_lexer.ts";

function check(owner: string, sql: string) {
  const statements = splitStatements(sql);
  assert.equal(statements.length, 1, `one statement expected in ${sql}`);
  return checkStatement(owner, analyseStatement(statements[0]!.tokens));
}

function refs(sql: string): string[] {
  return analyseStatement(splitStatements(sql)[0]!.tokens).refs.map((r) =>
    `${r.role}:${r.qualifier === undefined ? "" : r.qualifier + "."}${r.name}`
  );
}

Deno.test("analyseStatement() finds the objects each kind of statement touches", () => {
  assert.deepEqual(
    refs('CREATE TABLE IF NOT EXISTS "p_a" (id INTEGER REFERENCES [p_b](id))'),
    [
      "create:p_a",
      "reference:p_b",
    ],
  );
  assert.deepEqual(
    refs("CREATE UNIQUE INDEX IF NOT EXISTS i ON main.t (a) WHERE a > 0"),
    [
      "create:i",
      "reference:main.t",
    ],
  );
  assert.deepEqual(refs("DROP VIEW IF EXISTS v"), ["drop:v"]);
  assert.deepEqual(refs("ALTER TABLE a RENAME TO b"), ["alter:a", "create:b"]);
  assert.deepEqual(refs("ALTER TABLE a RENAME COLUMN x TO y"), ["alter:a"]);
  assert.deepEqual(
    refs(
      "INSERT OR IGNORE INTO a (x) SELECT x FROM b AS bb, c cc JOIN d ON d.x = cc.x",
    ),
    [
      "write:a",
      "read:b",
      "read:c",
      "read:d",
    ],
  );
  assert.deepEqual(
    refs(
      "UPDATE OR REPLACE a SET x = (SELECT y FROM b) WHERE z IN (SELECT z FROM c)",
    ),
    [
      "write:a",
      "read:b",
      "read:c",
    ],
  );
  assert.deepEqual(refs("DELETE FROM a WHERE x = 1"), ["write:a"]);
  assert.deepEqual(
    refs(
      "CREATE TRIGGER tr AFTER UPDATE OF x ON a BEGIN DELETE FROM logs; INSERT INTO b VALUES (1); END",
    ),
    ["create:tr", "reference:a", "write:logs", "write:b"],
  );
  assert.deepEqual(
    refs("CREATE VIRTUAL TABLE f USING fts5(body, content='logs')"),
    ["create:f", "read:logs"],
  );
  assert.deepEqual(
    refs("INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 2"),
    ["write:a"],
  );
});

Deno.test("checkStatement() keeps a plugin inside its namespace", async (t) => {
  await t.step("own objects are allowed, case-insensitively and quoted", () => {
    for (
      const sql of [
        "CREATE TABLE plugin_wx_a (id INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT)",
        'CREATE INDEX "PLUGIN_WX_I" ON plugin_wx_a (b)',
        "CREATE VIEW plugin_wx_v AS SELECT a.id FROM plugin_wx_a a JOIN plugin_wx_b AS b ON a.id = b.id",
        "CREATE TRIGGER plugin_wx_t AFTER INSERT ON plugin_wx_a BEGIN INSERT INTO plugin_wx_b VALUES (new.id); END",
        "WITH recent AS (SELECT * FROM plugin_wx_a) SELECT * FROM recent",
        "SELECT value FROM plugin_wx_a, json_each(plugin_wx_a.b)",
        "SELECT * FROM plugin_wx_a WHERE id IN plugin_wx_b AND b IN ('x', 'y')",
        "UPDATE plugin_wx_a SET b = 'content=logs' WHERE id = 1",
        "ALTER TABLE main.plugin_wx_a RENAME TO plugin_wx_c",
        "CREATE VIRTUAL TABLE plugin_wx_f USING fts5(body, content='plugin_wx_a')",
        "DROP TABLE IF EXISTS plugin_wx_a",
        'CREATE TABLE "plugin_wx_a""; DROP TABLE logs; --" (x)',
        "INSERT INTO plugin_wx_a VALUES ('DROP TABLE logs; DELETE FROM users')",
        "INSERT INTO plugin_wx_a VALUES (1) -- ; DROP TABLE logs",
      ]
    ) {
      assert.equal(check("wx", sql), undefined, sql);
    }
  });
  await t.step(
    "core tables, other plugins and system objects are refused",
    () => {
      for (
        const sql of [
          "DROP TABLE logs",
          "DROP TABLE IF EXISTS main.logs",
          "CREATE TABLE plugin_other_a (id INTEGER)",
          "CREATE TABLE plugin_wxother_a (id INTEGER)",
          "CREATE TABLE wx_a (id INTEGER)",
          "CREATE INDEX plugin_wx_i ON logs (id)",
          "CREATE TRIGGER plugin_wx_t AFTER INSERT ON logs BEGIN SELECT 1; END",
          "CREATE TRIGGER plugin_wx_t AFTER INSERT ON plugin_wx_a BEGIN DELETE FROM logs; END",
          "CREATE TRIGGER plugin_wx_t AFTER INSERT ON plugin_wx_a BEGIN UPDATE users SET x = 1; END",
          "CREATE VIEW plugin_wx_v AS SELECT * FROM logs",
          "CREATE TEMP TRIGGER plugin_wx_t AFTER DELETE ON logs BEGIN SELECT 1; END",
          "CREATE TEMPORARY VIEW plugin_wx_v AS SELECT * FROM plugin_wx_a JOIN users USING (id)",
          "CREATE TRIGGER plugin_wx_t INSTEAD OF INSERT ON plugin_wx_v BEGIN REPLACE INTO config VALUES (1); END",
          "WITH x AS (SELECT 1) INSERT INTO logs SELECT * FROM x",
          "CREATE TABLE plugin_wx_a AS SELECT * FROM users",
          "CREATE TABLE plugin_wx_a (id INTEGER REFERENCES users(id))",
          "ALTER TABLE plugin_wx_a RENAME TO logs",
          "ALTER TABLE logs ADD COLUMN x TEXT",
          "INSERT INTO logs VALUES (1)",
          "DELETE FROM [logs]",
          'UPDATE "logs" SET x = 1',
          "SELECT * FROM plugin_wx_a, logs",
          "SELECT * FROM plugin_wx_a WHERE id IN logs",
          "CREATE VIEW plugin_wx_v AS SELECT * FROM plugin_wx_a WHERE id NOT IN main.users",
          "SELECT * FROM sqlite_schema",
          "SELECT * FROM pragma_table_info('logs')",
          "CREATE VIRTUAL TABLE plugin_wx_f USING fts5(body, content=logs)",
          "CREATE TABLE other.plugin_wx_a (id INTEGER)",
          "CREATE VIRTUAL TABLE plugin_wx_v USING fts5vocab(logs_fts, row)",
          'CREATE VIRTUAL TABLE plugin_wx_v USING fts4(body, content="users")',
          "PRAGMA foreign_keys = OFF",
          "ATTACH DATABASE 'x.db' AS other",
          "DETACH other",
          "REINDEX logs",
          "ANALYZE",
          "BEGIN",
          "COMMIT",
          "SAVEPOINT s",
          "VACUUM",
          "DROP TABLE _aico_schema_history",
        ]
      ) {
        assert.notEqual(check("wx", sql), undefined, sql);
      }
    },
  );
});

Deno.test("checkStatement() lets core do anything but transaction control and reserved names", () => {
  assert.equal(check("core", "DROP TABLE logs"), undefined);
  assert.equal(check("core", "PRAGMA user_version = 3"), undefined);
  assert.equal(
    check("core", "CREATE TABLE plugin_state (plugin TEXT PRIMARY KEY)"),
    undefined,
  );
  assert.equal(check("core", "COMMIT")?.code, "SCHEMA_INVALID");
  assert.equal(check("core", "ROLLBACK")?.code, "SCHEMA_INVALID");
  assert.equal(
    check("core", "DELETE FROM _aico_schema_history")?.code,
    "SCHEMA_INVALID",
  );
  assert.equal(
    check("core", "CREATE TABLE plugin_wx_a (id INTEGER)")?.code,
    "SCHEMA_INVALID",
  );
});
