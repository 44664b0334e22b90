import assert from "node:assert/strict";
import { splitStatements } from "../_internal/sql_lexer.ts";
import { normalizeText, normalizeTokens } from "./_sql.ts";

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
