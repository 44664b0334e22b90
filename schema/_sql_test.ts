import assert from "node:assert/strict";
import {
  normalizeText,
  normalizeTokens,
  splitStatements,
  SqlSyntaxError,
  tokenize,
} from "./_sql.ts";

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

Deno.test("normalizeTokens() ignores whitespace and comments but not literals or case", () => {
  const norm = (sql: string) =>
    normalizeTokens(splitStatements(sql)[0]!.tokens);
  assert.equal(
    norm("CREATE TABLE a(x TEXT);"),
    norm("  CREATE   TABLE a ( x\n\tTEXT ) -- trailing\n ; "),
  );
  assert.equal(norm("SELECT 'a  b'") === norm("SELECT 'a b'"), false);
  assert.equal(norm("SELECT x") === norm("select x"), false);
  assert.equal(norm("SELECT /* c */ 1"), norm("SELECT 1"));
});

Deno.test("normalizeText() collapses whitespace outside string literals", () => {
  assert.equal(
    normalizeText('  a  \n b \'x  y\' "p \\" q"  c '),
    'a b \'x  y\' "p \\" q" c',
  );
});
