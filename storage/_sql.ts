// Internal: the statement check (over the shared SQL lexer) and the argument
// and value conversions shared by the local and remote engines. Not exported
// from the package.
import { AicoDataError } from "../errors.ts";
import {
  splitStatements,
  type SqlStatement,
  SqlSyntaxError,
} from "../_internal/sql_lexer.ts";
import type { InArgs, InStatement, InValue, Value } from "./types.ts";

/** What the scanner learns about one SQL text. */
export interface SqlInfo {
  /** The SQL text without trailing semicolons, whitespace and comments. */
  readonly sql: string;
  /** The first keyword, upper case (`SELECT`, `INSERT`, ...), or `""`. */
  readonly keyword: string;
  /** The number of positional parameters (`?`, `?NNN`), 0 when named. */
  readonly positional: number;
  /** The named parameters without their prefix, in order of appearance. */
  readonly named: readonly string[];
  /** Whether the SQL holds a blob literal (`x'..'`). */
  readonly blobLiteral: boolean;
}

/**
 * Scans one SQL statement with the shared lexer: finds its parameters and
 * first keyword, and refuses an empty text or more than one statement with
 * `INVALID_INPUT` (the native driver would silently ignore the rest). A
 * `CREATE TRIGGER` body with `;` inside is one statement (see
 * `splitStatements()` in `_internal/sql_lexer.ts` for the rule). An
 * unterminated string or quoted identifier is `SQL_ERROR`, as the database
 * would report it.
 */
export function scanSql(sql: string): SqlInfo {
  if (typeof sql !== "string") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL is not a string",
    );
  }
  if (!sql.isWellFormed()) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL is not well-formed UTF-16 (lone surrogate)",
    );
  }
  let statements: SqlStatement[];
  try {
    statements = splitStatements(sql);
  } catch (cause) {
    if (!(cause instanceof SqlSyntaxError)) throw cause;
    throw new AicoDataError(
      "SQL_ERROR",
      `Cannot run statement: ${cause.message}`,
      { cause },
    );
  }
  if (statements.length === 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL is empty",
    );
  }
  if (statements.length > 1) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL holds more than one statement, use executeMultiple()",
    );
  }
  const statement = statements[0]!;
  let keyword = "";
  let maxIndex = 0;
  const named: string[] = [];
  let blobLiteral = false;
  for (const token of statement.tokens) {
    switch (token.kind) {
      case "word":
        if (keyword === "") keyword = token.text.toUpperCase();
        break;
      case "blob":
        blobLiteral = true;
        break;
      case "param": {
        const text = token.text;
        if (text[0] === "?") {
          // `?NNN` names its index; a bare `?` takes the next one.
          maxIndex = text.length > 1
            ? Math.max(maxIndex, Number(text.slice(1)))
            : maxIndex + 1;
        } else {
          const name = text.slice(1);
          if (!named.includes(name)) named.push(name);
        }
        break;
      }
    }
  }
  if (named.length > 0 && maxIndex > 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL mixes positional and named parameters",
    );
  }
  return {
    sql: sql.slice(0, statement.end),
    keyword,
    positional: maxIndex,
    named,
    blobLiteral,
  };
}

/** The arguments in the form the native drivers accept. */
export type BindArgs = DriverValue[] | Record<string, DriverValue>;

/** A value the native driver binds without panicking. */
export type DriverValue = null | string | number | bigint | Uint8Array;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Converts one argument to what the driver can bind, or throws
 * `INVALID_INPUT`. Refuses lone surrogates (the driver would silently store
 * U+FFFD), integers outside 64 bits, NaN and unsupported types.
 */
export function toDriverValue(
  value: InValue | undefined,
  where: string,
): DriverValue {
  if (value === null) return null;
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot bind ${where}: the string is not well-formed UTF-16 (lone surrogate)`,
        );
      }
      return value;
    case "number":
      if (Number.isNaN(value)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot bind ${where}: NaN cannot be stored`,
        );
      }
      return value;
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot bind ${where}: the integer does not fit in 64 bits`,
        );
      }
      return value;
    case "boolean":
      return value ? 1 : 0;
    case "object":
      if (value instanceof Uint8Array) return value;
      if (value instanceof ArrayBuffer) return new Uint8Array(value);
      if (value instanceof Date) {
        const ms = value.getTime();
        if (Number.isNaN(ms)) {
          throw new AicoDataError(
            "INVALID_INPUT",
            `Cannot bind ${where}: invalid Date`,
          );
        }
        return ms;
      }
      break;
  }
  throw new AicoDataError(
    "INVALID_INPUT",
    `Cannot bind ${where}: unsupported type "${
      value === undefined ? "undefined" : typeof value
    }"`,
  );
}

/**
 * Checks `args` against the statement's parameters and converts them. A
 * missing, extra or misplaced argument is refused with `INVALID_INPUT`
 * (the native driver would bind NULL, ignore it, or abort the process).
 */
export function toBindArgs(info: SqlInfo, args: InArgs | undefined): BindArgs {
  if (args === undefined || args === null) {
    if (info.positional > 0 || info.named.length > 0) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run statement: arguments are missing",
      );
    }
    return [];
  }
  if (Array.isArray(args)) {
    if (info.named.length > 0) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run statement: named parameters need an object of arguments",
      );
    }
    if (args.length !== info.positional) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot run statement: expected ${info.positional} arguments, got ${args.length}`,
      );
    }
    const out: DriverValue[] = new Array(args.length);
    for (let k = 0; k < args.length; k++) {
      out[k] = toDriverValue(args[k] as InValue, `argument ${k + 1}`);
    }
    return out;
  }
  if (typeof args !== "object") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: arguments must be an array or object",
    );
  }
  if (info.positional > 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: positional parameters need an array of arguments",
    );
  }
  const out: Record<string, DriverValue> = {};
  const record = args as Readonly<Record<string, InValue>>;
  for (const key of Object.keys(record)) {
    const name = /^[:@$]/.test(key) ? key.slice(1) : key;
    if (!info.named.includes(name)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot run statement: no parameter named "${name}"`,
      );
    }
    out[name] = toDriverValue(record[key], `parameter "${name}"`);
  }
  for (const name of info.named) {
    if (!(name in out)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot run statement: missing argument for parameter "${name}"`,
      );
    }
  }
  return out;
}

/** Splits `execute(stmt, args)` into SQL text and arguments. */
export function statementParts(
  stmt: string | InStatement,
  args: InArgs | undefined,
): [string, InArgs | undefined] {
  if (typeof stmt === "string") return [stmt, args];
  if (
    stmt === null || typeof stmt !== "object" || typeof stmt.sql !== "string"
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: expected a SQL string or { sql, args }",
    );
  }
  if (args !== undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: pass arguments either in the statement object or as the second argument",
    );
  }
  return [stmt.sql, stmt.args];
}

/** Converts an integer read in safe-integer mode to number when exact. */
export function fromDriverInteger(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n
    ? Number(value)
    : value;
}

/**
 * A driver blob (Buffer or ArrayBuffer) as a plain Uint8Array. A Buffer that
 * owns all of its memory (the local driver makes one per cell) is viewed,
 * not copied; one that is a window into a larger (pooled) buffer is copied,
 * so that no caller sees bytes outside its cell.
 */
export function toBytes(value: ArrayBuffer | Uint8Array): Uint8Array {
  if (value instanceof Uint8Array) {
    if (
      value.byteOffset === 0 && value.byteLength === value.buffer.byteLength &&
      value.buffer instanceof ArrayBuffer
    ) {
      return new Uint8Array(value.buffer);
    }
    return new Uint8Array(
      value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength),
    );
  }
  return new Uint8Array(value);
}

/** Converts one cell the driver returned to a {@linkcode Value}. */
export function fromDriverValue(value: unknown): Value {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "bigint":
      return fromDriverInteger(value);
    case "number":
    case "string":
      return value;
  }
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) {
    return toBytes(value);
  }
  return null;
}

export { quoteIdent } from "../_internal/sql_lexer.ts";
