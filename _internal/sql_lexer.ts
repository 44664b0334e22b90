// Internal: the one SQL lexer of the toolkit. `storage/` uses it to check
// that `execute()` gets exactly one statement and to find its parameters;
// `schema/` uses it to split migration scripts, normalise them for checksums
// and find the objects they touch. Not exported from the package.

/** The kinds of token the lexer produces (comments and whitespace are dropped). */
export type TokenKind =
  | "word" // unquoted identifier or keyword
  | "ident" // quoted identifier: "x", `x` or [x]
  | "string" // 'text'
  | "number"
  | "blob" // X'00ff'
  | "param" // ?, ?1, :name, @name, $name
  | "punct"; // operators and punctuation

/** One token of SQL text. */
export interface Token {
  readonly kind: TokenKind;
  /** The token exactly as written. */
  readonly text: string;
  /**
   * For `word`, `ident` and `string`: the name it denotes (quotes removed,
   * escapes resolved); otherwise the text.
   */
  readonly value: string;
  /** Offset of the first character in the source. */
  readonly start: number;
  /** Offset just past the last character in the source. */
  readonly end: number;
}

/** Thrown by {@linkcode tokenize} on malformed text; the caller wraps it. */
export class SqlSyntaxError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SqlSyntaxError";
  }
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DIGIT = /[0-9]/;
const THREE_CHAR = ["->>"];
const TWO_CHAR = ["||", "<=", ">=", "==", "!=", "<>", "<<", ">>", "->"];

/**
 * Splits SQL text into tokens, dropping whitespace and comments.
 *
 * @param sql The SQL text.
 * @returns The tokens in order.
 * @throws {SqlSyntaxError} On an unterminated string or quoted identifier.
 */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  const push = (
    kind: TokenKind,
    start: number,
    end: number,
    value?: string,
  ) => {
    const text = sql.slice(start, end);
    tokens.push({ kind, text, value: value ?? text, start, end });
  };
  while (i < n) {
    const c = sql[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") {
      i++;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      const eol = sql.indexOf("\n", i);
      i = eol === -1 ? n : eol + 1;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const close = sql.indexOf("*/", i + 2);
      i = close === -1 ? n : close + 2; // SQLite accepts an unterminated block comment
      continue;
    }
    if (c === "'" || c === '"' || c === "`") {
      const { end, value } = readQuoted(sql, i, c);
      push(c === "'" ? "string" : "ident", i, end, value);
      i = end;
      continue;
    }
    if (c === "[") {
      const close = sql.indexOf("]", i + 1);
      if (close === -1) throw new SqlSyntaxError("unterminated [identifier]");
      push("ident", i, close + 1, sql.slice(i + 1, close));
      i = close + 1;
      continue;
    }
    if ((c === "x" || c === "X") && sql[i + 1] === "'") {
      const { end } = readQuoted(sql, i + 1, "'");
      push("blob", i, end);
      i = end;
      continue;
    }
    if (DIGIT.test(c) || (c === "." && DIGIT.test(sql[i + 1] ?? ""))) {
      let j = i;
      if (c === "0" && (sql[i + 1] === "x" || sql[i + 1] === "X")) {
        j = i + 2;
        while (j < n && /[0-9A-Fa-f_]/.test(sql[j]!)) j++;
      } else {
        while (j < n && /[0-9_]/.test(sql[j]!)) j++;
        if (sql[j] === ".") {
          j++;
          while (j < n && /[0-9_]/.test(sql[j]!)) j++;
        }
        if (sql[j] === "e" || sql[j] === "E") {
          let k = j + 1;
          if (sql[k] === "+" || sql[k] === "-") k++;
          if (DIGIT.test(sql[k] ?? "")) {
            j = k;
            while (j < n && DIGIT.test(sql[j]!)) j++;
          }
        }
      }
      push("number", i, j);
      i = j;
      continue;
    }
    if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD_PART.test(sql[j]!)) j++;
      push("word", i, j);
      i = j;
      continue;
    }
    if (c === "?") {
      let j = i + 1;
      while (j < n && DIGIT.test(sql[j]!)) j++;
      push("param", i, j);
      i = j;
      continue;
    }
    if (
      (c === ":" || c === "@" || c === "$") && WORD_PART.test(sql[i + 1] ?? "")
    ) {
      let j = i + 1;
      while (j < n && (WORD_PART.test(sql[j]!) || sql[j] === ":")) j++;
      push("param", i, j);
      i = j;
      continue;
    }
    const three = sql.slice(i, i + 3);
    if (THREE_CHAR.includes(three)) {
      push("punct", i, i + 3);
      i += 3;
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (TWO_CHAR.includes(two)) {
      push("punct", i, i + 2);
      i += 2;
      continue;
    }
    push("punct", i, i + 1);
    i++;
  }
  return tokens;
}

function readQuoted(
  sql: string,
  start: number,
  quote: string,
): { end: number; value: string } {
  let value = "";
  let i = start + 1;
  for (;;) {
    const close = sql.indexOf(quote, i);
    if (close === -1) {
      throw new SqlSyntaxError(
        quote === "'"
          ? "unterminated string literal"
          : "unterminated quoted identifier",
      );
    }
    value += sql.slice(i, close);
    if (sql[close + 1] === quote) {
      value += quote;
      i = close + 2;
      continue;
    }
    return { end: close + 1, value };
  }
}

/** Whether a token is the unquoted keyword `kw` (upper case). */
export function isKeyword(token: Token | undefined, kw: string): boolean {
  return token !== undefined && token.kind === "word" &&
    token.text.toUpperCase() === kw;
}

/** One statement of a script: its source text and its tokens. */
export interface SqlStatement {
  /** The statement's source text, trimmed, without the final semicolon. */
  readonly sql: string;
  /** Its tokens (no trailing semicolon). */
  readonly tokens: readonly Token[];
  /** Offset of its first token in the script. */
  readonly start: number;
  /** Offset just past its last token in the script. */
  readonly end: number;
}

/**
 * Splits a script into statements at top-level semicolons, keeping the
 * semicolons inside `CREATE [TEMP|TEMPORARY] TRIGGER ... BEGIN ... END`
 * bodies.
 *
 * In a trigger, `BEGIN` (the body opener, at depth 0) and `CASE` count up
 * and `END` counts down, as word tokens outside literals, quoted identifiers
 * and comments; a `;` ends the statement only at depth 0. Inside the body
 * `BEGIN` cannot start a statement, so it is not counted there (it can only
 * be an identifier). An unquoted identifier named `end` inside the body ends
 * the count early, so the rest becomes a statement of its own: quote it.
 *
 * @param script SQL text with one or more statements.
 * @returns The non-empty statements in order.
 * @throws {SqlSyntaxError} On malformed text.
 */
export function splitStatements(script: string): SqlStatement[] {
  const tokens = tokenize(script);
  const out: SqlStatement[] = [];
  let current: Token[] = [];
  let blockDepth = 0; // BEGIN/CASE ... END nesting inside a trigger body
  let trigger = false; // the current statement is CREATE [TEMP] TRIGGER
  const flush = () => {
    if (current.length > 0) {
      const first = current[0]!;
      const last = current[current.length - 1]!;
      out.push({
        sql: script.slice(first.start, last.end),
        tokens: current,
        start: first.start,
        end: last.end,
      });
    }
    current = [];
    blockDepth = 0;
  };
  for (const t of tokens) {
    if (t.kind === "punct" && t.text === ";" && blockDepth === 0) {
      flush();
      continue;
    }
    current.push(t);
    if (current.length === 1) trigger = false;
    else if (current.length <= 3 && !trigger) {
      trigger = isTriggerStatement(current);
    }
    if (trigger) {
      // Inside the body BEGIN cannot start a statement: there it is a name.
      if (isKeyword(t, "CASE") || (isKeyword(t, "BEGIN") && blockDepth === 0)) {
        blockDepth++;
      } else if (isKeyword(t, "END") && blockDepth > 0) blockDepth--;
    }
  }
  flush();
  return out;
}

function isTriggerStatement(tokens: readonly Token[]): boolean {
  if (!isKeyword(tokens[0], "CREATE")) return false;
  const second = tokens[1];
  if (isKeyword(second, "TRIGGER")) return true;
  return (isKeyword(second, "TEMP") || isKeyword(second, "TEMPORARY")) &&
    isKeyword(tokens[2], "TRIGGER");
}

/** Quotes a name as an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
