import assert from "node:assert/strict";
import {
  guardInline,
  guardReturning,
  kindOfDeclaredType,
  pragmaAsQuery,
  pragmaName,
} from "./_text_guard.ts";

Deno.test("kindOfDeclaredType() guards TEXT-like and untyped columns with a mask, numbers and BLOBs without", () => {
  const cases: [string | null, string][] = [
    [null, "text"],
    ["TEXT", "text"],
    ["VARCHAR(10)", "text"],
    ["JSON", "text"],
    ["NUMERIC", "text"],
    ["ANY", "text"],
    ["INTEGER", "typed"],
    ["BIGINT", "typed"],
    ["BLOB", "typed"],
    ["REAL", "typed"],
    ["DOUBLE PRECISION", "typed"],
  ];
  for (const [type, kind] of cases) {
    assert.equal(kindOfDeclaredType(type), kind, String(type));
  }
});

Deno.test("guardInline() rewrites plain column lists in place and leaves other shapes to the wrapper", () => {
  assert.deepEqual(guardInline("SELECT id FROM t", ["skip"]), {
    sql: "SELECT id FROM t",
    masks: 0,
  });
  const g = guardInline(
    "SELECT id, t.x, main.t.y FROM t ORDER BY x",
    ["skip", "text", "typed"],
  )!;
  assert.equal(g.masks, 1);
  assert.match(
    g.sql,
    /^SELECT id,CASE WHEN .* AS "_aico_g1",CASE WHEN .* AS "_aico_g2",\(\(typeof\(t\.x\)='blob'\)<<1\)\|4 FROM t ORDER BY x$/,
  );
  for (
    const sql of [
      "SELECT DISTINCT x FROM t",
      "SELECT x AS y FROM t",
      "SELECT x + 1 FROM t",
      "SELECT * FROM t",
      "SELECT x FROM t UNION SELECT y FROM u",
      "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
      "SELECT 1",
    ]
  ) {
    assert.equal(guardInline(sql, ["text"]), undefined, sql);
  }
  // A compound inside a subquery is fine.
  assert.ok(
    guardInline("SELECT x FROM (SELECT x FROM t UNION SELECT y FROM u)", [
      "text",
    ]),
  );
});

Deno.test("guardReturning() guards each RETURNING result under its output name", () => {
  const g = guardReturning(
    "INSERT INTO t (a) VALUES ('(,)') RETURNING id, upper(a) AS u",
    ["id", "u"],
  )!;
  assert.equal(g.masks, 1);
  assert.match(
    g.sql,
    /^INSERT INTO t \(a\) VALUES \('\(,\)'\) RETURNING CASE .*\(id\).* AS "id",CASE .*\(upper\(a\)\).* AS "u",.* AS "_aico_mask0"$/,
  );
  assert.match(
    guardReturning("DELETE FROM t RETURNING *", ["a", "b"])!.sql,
    /RETURNING CASE .*"a".* AS "a",CASE .*"b".* AS "b",/,
  );
  assert.equal(guardReturning("INSERT INTO t VALUES (1)", []), undefined);
});

Deno.test("pragmaAsQuery() reads a PRAGMA through its table-valued function", () => {
  assert.equal(
    pragmaAsQuery("PRAGMA table_info(notes)"),
    "SELECT * FROM pragma_table_info('notes')",
  );
  assert.equal(
    pragmaAsQuery("pragma aux.index_list('t')"),
    "SELECT * FROM pragma_index_list('t','aux')",
  );
  assert.equal(
    pragmaAsQuery("PRAGMA database_list"),
    "SELECT * FROM pragma_database_list()",
  );
  assert.equal(pragmaAsQuery("PRAGMA journal_mode = WAL"), undefined);
  assert.equal(pragmaName("PRAGMA main.table_info(t)"), "table_info");
});
