import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { scanSql, toBindArgs } from "./_sql.ts";

Deno.test("scanSql() finds parameters outside literals, identifiers and comments", () => {
  const cases: [string, string, number, string[]][] = [
    ["SELECT 1", "SELECT", 0, []],
    ["select ?, ?", "SELECT", 2, []],
    ["SELECT ?3, ?1", "SELECT", 3, []],
    ["INSERT INTO t VALUES (:a, @b, $c, :a)", "INSERT", 0, ["a", "b", "c"]],
    [
      "SELECT '?', \"?\", `?`, [?], 'it''s ?' -- ?\n, ? /* ? */",
      "SELECT",
      1,
      [],
    ],
    ["  -- lead\n WITH x AS (SELECT ?) SELECT * FROM x;  ", "WITH", 1, []],
    ["SELECT x'3f3a'", "SELECT", 0, []],
  ];
  for (const [sql, keyword, positional, named] of cases) {
    const info = scanSql(sql);
    assert.equal(info.keyword, keyword, sql);
    assert.equal(info.positional, positional, sql);
    assert.deepEqual(info.named, named, sql);
  }
  assert.equal(scanSql("SELECT 1 ; -- done").sql, "SELECT 1");
});

Deno.test("scanSql() refuses empty text, several statements and mixed parameters", () => {
  for (
    const sql of [
      "",
      "  ",
      "-- only a comment",
      "SELECT 1; SELECT 2",
      "SELECT ?, :a",
    ]
  ) {
    assert.throws(
      () => scanSql(sql),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      sql,
    );
  }
});

Deno.test("toBindArgs() strips name prefixes and checks counts", () => {
  const info = scanSql("SELECT :a, $b");
  assert.deepEqual(toBindArgs(info, { ":a": 1, b: "x" }), { a: 1, b: "x" });
  assert.deepEqual(toBindArgs(scanSql("SELECT ?"), [true]), [1]);
  assert.throws(
    () => toBindArgs(info, { a: 1 }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});

Deno.test("scanSql() flags blob literals and refuses lone surrogates", () => {
  assert.equal(scanSql("SELECT x'00'").blobLiteral, true);
  assert.equal(scanSql("SELECT X'00'").blobLiteral, true);
  assert.equal(scanSql("SELECT 'x''00'''").blobLiteral, false);
  assert.equal(scanSql("SELECT max'a'").blobLiteral, false);
  assert.throws(
    () => scanSql("SELECT '\uD800'"),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});

Deno.test("scanSql() reads a CREATE TRIGGER body with inner ';' as one statement", () => {
  const nested = `CREATE TRIGGER t_audit AFTER INSERT ON t
    WHEN CASE new.kind WHEN 'a' THEN 1 ELSE 0 END
    BEGIN
      INSERT INTO log (msg) VALUES (CASE WHEN new.x > 0
        THEN CASE new.y WHEN 1 THEN 'one' ELSE 'other' END
        ELSE 'none' END);
      SELECT CASE WHEN new.x = 'bad' THEN RAISE(ABORT, 'bad; END') END;
    END;  -- done`;
  const info = scanSql(nested);
  assert.equal(info.keyword, "CREATE");
  assert.ok(info.sql.endsWith("END"), info.sql);
  for (
    const sql of [
      "create temp trigger t after delete on x begin delete from y; end",
      "CREATE TEMPORARY TRIGGER IF NOT EXISTS t BEFORE UPDATE ON x BEGIN SELECT 1; END;",
      // END inside a string, a comment and a quoted identifier is not a token.
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN INSERT INTO y VALUES ('END; x'); /* END; */ UPDATE z SET \"end\" = 1, [end] = 2, `end` = 3; END",
      // BEGIN inside the body can only be an identifier.
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET begin = 1; END",
    ]
  ) {
    assert.equal(scanSql(sql).keyword, "CREATE", sql);
  }
  assert.equal(
    scanSql("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT ?; END")
      .positional,
    1,
  );
});

Deno.test("scanSql() still refuses a statement after a trigger and ';' outside triggers", () => {
  for (
    const sql of [
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; DROP TABLE x",
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT CASE 1 WHEN 1 THEN 2 END; END; SELECT 1",
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET begin = 1; END; DELETE FROM y",
      "CREATE TABLE t (a); CREATE TRIGGER u AFTER INSERT ON t BEGIN SELECT 1; END",
      "CREATE VIEW v AS SELECT CASE 1 WHEN 1 THEN 2 END; SELECT 1",
      "BEGIN; SELECT 1",
      "SELECT 'CREATE TRIGGER' ; SELECT 1",
    ]
  ) {
    assert.throws(
      () => scanSql(sql),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      sql,
    );
  }
});
