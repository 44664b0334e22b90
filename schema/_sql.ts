/**
 * The normal forms of migration steps used for checksums, over the shared
 * SQL lexer (`_internal/sql_lexer.ts`).
 *
 * Internal to `schema/`.
 *
 * @module
 */
import type { Token } from "../_internal/sql_lexer.ts";

/**
 * The normal form of a statement used for checksums: tokens joined by single
 * spaces (so whitespace and comments do not matter, string literals and
 * identifiers are kept exactly).
 *
 * @param tokens A statement's tokens.
 * @returns The normal form.
 */
export function normalizeTokens(tokens: readonly Token[]): string {
  return tokens.map((t) => t.text).join(" ");
}

/**
 * The normal form of arbitrary text (used for the source of migration
 * functions): whitespace runs collapsed to one space outside string literals,
 * trimmed.
 *
 * @param text Any text.
 * @returns The normal form.
 */
export function normalizeText(text: string): string {
  let out = "";
  let quote: string | undefined;
  let space = false;
  let escaped = false;
  for (const c of text.trim()) {
    if (quote !== undefined) {
      out += c;
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (/\s/.test(c)) {
      space = true;
      continue;
    }
    if (space) out += " ";
    space = false;
    out += c;
    if (c === "'" || c === '"' || c === "`") quote = c;
  }
  return out;
}
