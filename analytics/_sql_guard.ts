// Internal: refuses extension statements before they reach DuckDB. DuckDB's
// own settings (external access off, configuration locked) are the real
// barrier; DuckDB-WASM accepts `INSTALL` as a no-op, so it is refused here
// to give every engine the same typed error.
import { AicoDataError } from "../errors.ts";

const BLOCKED =
  /(?:^|;)\s*(?:force\s+)?(install|load|attach|detach|update\s+extensions)\b/i;

/** The SQL with string literals, quoted names and comments blanked out. */
function skeleton(sql: string): string {
  return sql.replace(
    /'(?:[^']|'')*'|"(?:[^"]|"")*"|\$\$[\s\S]*?\$\$|--[^\n]*|\/\*[\s\S]*?\*\//g,
    " ",
  );
}

/** Throws `SQL_ERROR` for an extension or attach statement. */
export function guardSql(sql: string): void {
  if (typeof sql !== "string" || sql.trim() === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot query analytics: SQL must be a non-empty string",
    );
  }
  const m = BLOCKED.exec(skeleton(sql));
  if (m) {
    throw new AicoDataError(
      "SQL_ERROR",
      `Cannot query analytics: "${
        m[1]!.toUpperCase()
      }" statements are not allowed (extensions and other databases are disabled)`,
    );
  }
}
