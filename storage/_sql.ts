// Internal: a small SQL scanner and the argument and value conversions shared
// by the local and remote engines. Not exported from the package.
import { AicoDataError } from "../errors.ts";
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

const IDENT = /[A-Za-z0-9_\u0080-\uffff]/;

/**
 * Scans one SQL statement: finds its parameters and first keyword, and
 * refuses an empty text or more than one statement with `INVALID_INPUT`
 * (the native driver would silently ignore the rest).
 *
 * A `CREATE [TEMP|TEMPORARY] TRIGGER` body holds `;`-terminated statements:
 * there the scanner counts `BEGIN` (the body opener, at depth 0) and `CASE`
 * up and `END` down, as word tokens outside literals, quoted identifiers and
 * comments, and a `;` ends the statement only at depth 0. Inside the body
 * `BEGIN` cannot start a statement, so it is not counted there (it can only
 * be an identifier). An unquoted identifier named `end` inside the body ends
 * the count early, so the rest is refused as a second statement: quote it.
 */
export function scanSql(sql: string): SqlInfo {
  if (typeof sql !== "string") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL is not a string",
    );
  }
  let i = 0;
  const n = sql.length;
  let keyword = "";
  let maxIndex = 0;
  let anonymous = 0;
  const named: string[] = [];
  let end = -1; // index of the first top-level ';'
  let lastCode = -1; // end index (exclusive) of the last code character
  let sawCode = false;
  let blobLiteral = false;
  let words = 0; // word tokens seen, counted up to the TRIGGER keyword
  let second = ""; // the second word token, upper case
  let trigger = false; // CREATE [TEMP|TEMPORARY] TRIGGER
  let depth = 0; // open BEGIN/CASE blocks inside a trigger
  if (!sql.isWellFormed()) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL is not well-formed UTF-16 (lone surrogate)",
    );
  }
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "-" && next === "-") {
      const nl = sql.indexOf("\n", i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === "/" && next === "*") {
      const close = sql.indexOf("*/", i + 2);
      i = close < 0 ? n : close + 2;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (end >= 0) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run statement: the SQL holds more than one statement, use executeMultiple()",
      );
    }
    if (c === ";") {
      if (depth > 0) {
        i++;
        lastCode = i;
        continue;
      }
      end = i;
      i++;
      continue;
    }
    sawCode = true;
    if (c === "'" || c === '"' || c === "`") {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      i = j + 1;
      lastCode = i;
      continue;
    }
    if (c === "[") {
      const close = sql.indexOf("]", i);
      i = close < 0 ? n : close + 1;
      lastCode = i;
      continue;
    }
    if (c === "?") {
      let j = i + 1;
      while (j < n && sql[j]! >= "0" && sql[j]! <= "9") j++;
      if (j > i + 1) {
        const index = Number(sql.slice(i + 1, j));
        maxIndex = Math.max(maxIndex, index);
      } else {
        maxIndex += 1;
        anonymous++;
      }
      i = j;
      lastCode = i;
      continue;
    }
    if (
      (c === ":" || c === "@" || c === "$") && next !== undefined &&
      IDENT.test(next)
    ) {
      let j = i + 1;
      while (j < n && IDENT.test(sql[j]!)) j++;
      const name = sql.slice(i + 1, j);
      if (!named.includes(name)) named.push(name);
      i = j;
      lastCode = i;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(sql[j]!)) j++;
      if (keyword === "") keyword = sql.slice(i, j).toUpperCase();
      if (trigger) {
        const len = j - i;
        if (len === 3 || len === 4 || len === 5) {
          const word = sql.slice(i, j).toUpperCase();
          if (word === "CASE" || (word === "BEGIN" && depth === 0)) depth++;
          else if (word === "END" && depth > 0) depth--;
        }
      } else if (words < 3 && keyword === "CREATE") {
        words++;
        const word = words === 1 ? "" : sql.slice(i, j).toUpperCase();
        if (words === 2) second = word;
        trigger = word === "TRIGGER" &&
          (words === 2 || second === "TEMP" || second === "TEMPORARY");
      }
      if (j === i + 1 && (c === "x" || c === "X") && sql[j] === "'") {
        blobLiteral = true;
      }
      i = j;
      lastCode = i;
      continue;
    }
    i++;
    lastCode = i;
  }
  if (!sawCode) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL is empty",
    );
  }
  if (named.length > 0 && maxIndex > 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run statement: the SQL mixes positional and named parameters",
    );
  }
  void anonymous;
  return {
    sql: sql.slice(0, lastCode),
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

const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes TEXT bytes, or throws `CORRUPT_VALUE` when they are not UTF-8. */
export function decodeText(bytes: Uint8Array, column: string): string {
  try {
    return fatalDecoder.decode(bytes);
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot read column "${column}": the TEXT value is not valid UTF-8`,
      { cause },
    );
  }
}

/** Converts an integer read in safe-integer mode to number when exact. */
export function fromDriverInteger(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n
    ? Number(value)
    : value;
}

/** Copies a driver blob (Buffer or ArrayBuffer) to a plain Uint8Array. */
export function toBytes(value: ArrayBuffer | Uint8Array): Uint8Array {
  if (value instanceof Uint8Array) {
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

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
