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
