import assert from "node:assert/strict";
import { splitStatements, SqlSyntaxError, tokenize } from "./sql_lexer.ts";

Deno.test("tokenize() reads quotes, comments, numbers, params and operators", () => {
  const tokens = tokenize(
    `SELECT "a""b", \`c\`, [d e], 'it''s', x'00ff', 1.5e3, ?2, :name -- comment ;
     /* block ; */ FROM t WHERE a->>'$.x' <> 3`,
  );
  assert.deepEqual(
    tokens.map((t) => [t.kind, t.value]),
    [
      ["word", "SELECT"],
      ["ident", 'a"b'],
      ["punct", ","],
      ["ident", "c"],
      ["punct", ","],
      ["ident", "d e"],
      ["punct", ","],
      ["string", "it's"],
      ["punct", ","],
      ["blob", "x'00ff'"],
      ["punct", ","],
      ["number", "1.5e3"],
      ["punct", ","],
      ["param", "?2"],
      ["punct", ","],
      ["param", ":name"],
      ["word", "FROM"],
      ["word", "t"],
      ["word", "WHERE"],
      ["word", "a"],
      ["punct", "->>"],
      ["string", "$.x"],
      ["punct", "<>"],
      ["number", "3"],
    ],
  );
});

Deno.test("tokenize() rejects unterminated strings and identifiers", () => {
  assert.throws(() => tokenize("SELECT 'abc"), SqlSyntaxError);
  assert.throws(() => tokenize('SELECT "abc'), SqlSyntaxError);
  assert.throws(() => tokenize("SELECT [abc"), SqlSyntaxError);
});

Deno.test("splitStatements() splits at top-level semicolons only", async (t) => {
  await t.step(
    "plain statements, empty ones dropped, semicolons in literals kept",
    () => {
      const s = splitStatements(
        "CREATE TABLE a (x TEXT DEFAULT ';');; -- c;\nINSERT INTO a VALUES ('x;y');",
      );
      assert.deepEqual(s.map((x) => x.sql), [
        "CREATE TABLE a (x TEXT DEFAULT ';')",
        "INSERT INTO a VALUES ('x;y')",
      ]);
    },
  );
  await t.step("trigger bodies stay whole, including CASE ... END", () => {
    const s = splitStatements(`
      CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = CASE WHEN new.x IS NULL THEN 'n' ELSE new.x END WHERE rowid = new.rowid;
        DELETE FROM b;
      END;
      CREATE TEMP TRIGGER t2 AFTER DELETE ON a BEGIN SELECT 1; END;
      SELECT 2`);
    assert.equal(s.length, 3);
    assert.match(s[0]!.sql, /^CREATE TRIGGER t .*DELETE FROM b;\s+END$/s);
    assert.match(s[1]!.sql, /^CREATE TEMP TRIGGER t2 .* END$/);
    assert.equal(s[2]!.sql, "SELECT 2");
  });
});

Deno.test("splitStatements() keeps a trigger body with nested CASE and inner ';' whole", () => {
  const nested = `CREATE TRIGGER t_audit AFTER INSERT ON t
    WHEN CASE new.kind WHEN 'a' THEN 1 ELSE 0 END
    BEGIN
      INSERT INTO log (msg) VALUES (CASE WHEN new.x > 0
        THEN CASE new.y WHEN 1 THEN 'one' ELSE 'other' END
        ELSE 'none' END);
      SELECT CASE WHEN new.x = 'bad' THEN RAISE(ABORT, 'bad; END') END;
    END;  -- done`;
  const s = splitStatements(nested);
  assert.equal(s.length, 1);
  assert.ok(s[0]!.sql.endsWith("END"), s[0]!.sql);
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
    assert.equal(splitStatements(sql).length, 1, sql);
  }
});

Deno.test("splitStatements() ends a trigger at its END and splits at ';' outside triggers", () => {
  const cases: [string, number][] = [
    ["CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; DROP TABLE x", 2],
    [
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT CASE 1 WHEN 1 THEN 2 END; END; SELECT 1",
      2,
    ],
    [
      "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET begin = 1; END; DELETE FROM y",
      2,
    ],
    [
      "CREATE TABLE t (a); CREATE TRIGGER u AFTER INSERT ON t BEGIN SELECT 1; END",
      2,
    ],
    ["CREATE VIEW v AS SELECT CASE 1 WHEN 1 THEN 2 END; SELECT 1", 2],
    ["BEGIN; SELECT 1", 2],
    ["SELECT 'CREATE TRIGGER' ; SELECT 1", 2],
  ];
  for (const [sql, count] of cases) {
    assert.equal(splitStatements(sql).length, count, sql);
  }
});

Deno.test("splitStatements() gives each statement's offsets in the script", () => {
  const script = "  SELECT 1 ; -- c\n SELECT 2";
  const s = splitStatements(script);
  assert.deepEqual(
    s.map((x) => script.slice(x.start, x.end)),
    ["SELECT 1", "SELECT 2"],
  );
});
