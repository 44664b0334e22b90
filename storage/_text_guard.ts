// Internal: the SQL rewrites of the UTF-8 guard. `npm:libsql` aborts the
// process when it reads a TEXT cell that is not valid UTF-8 (also through
// RETURNING and PRAGMA), and cuts a string at a NUL. The guard makes such a
// cell come back as bytes (CAST AS BLOB), decoded in JavaScript with a fatal
// decoder, and appends mask columns whose bits flag the cells that were real
// BLOBs. Pure string functions over the shared lexer: the engine
// (`_local.ts`) prepares what they build and falls back when SQLite refuses
// it. Not exported from the package.
import {
  isKeyword,
  quoteIdent,
  type Token,
  tokenize,
} from "../_internal/sql_lexer.ts";

/** How many cells one mask column flags. */
export const MASK_BITS = 30;

/**
 * How a result column is guarded:
 * - `skip`: not at all (a rowid alias: always an integer);
 * - `typed`: declared with INTEGER, REAL or BLOB affinity: a TEXT cell that
 *   is not plain ASCII becomes bytes and is returned as bytes (no mask bit:
 *   such a column holds numbers and BLOBs, text there is an anomaly);
 * - `text`: everything else (TEXT, NUMERIC, no declared type, expressions):
 *   a non-ASCII TEXT cell becomes bytes, decoded back to a string, and a
 *   mask bit tells real BLOBs apart.
 */
export type GuardKind = "skip" | "typed" | "text";

/** The guard kind of a column from its declared type (`null`: none). */
export function kindOfDeclaredType(type: string | null): GuardKind {
  if (type === null) return "text";
  const t = type.toUpperCase();
  if (t === "ANY") return "text";
  if (t.includes("INT")) return "typed";
  if (t.includes("CHAR") || t.includes("CLOB") || t.includes("TEXT")) {
    return "text";
  }
  if (
    t.includes("BLOB") || t.includes("REAL") || t.includes("FLOA") ||
    t.includes("DOUB")
  ) {
    return "typed";
  }
  return "text";
}

/** A guarded statement: its SQL and how many mask columns it appends. */
export interface Guarded {
  readonly sql: string;
  readonly masks: number;
}

/**
 * The guarded form of one result expression `e` (a column reference or any
 * expression, evaluated again for each use): TEXT that is not plain ASCII
 * (a byte outside 0x01..0x7F, or a NUL) becomes its bytes.
 */
export function guardExpr(e: string): string {
  return `CASE WHEN (typeof(${e})='text' AND (${e} GLOB '*[^\x01-\x7f]*' OR length(${e})<>octet_length(${e}))) THEN CAST(${e} AS BLOB) ELSE ${e} END`;
}

/**
 * The mask columns of the result expressions `exprs`: bit `k % 30` of mask
 * `k / 30` is set when cell `k` is a real BLOB. Expressions that are
 * `undefined` (not guarded: they cannot be TEXT) add no term.
 */
export function maskExprs(
  exprs: readonly (string | undefined)[],
  kinds?: readonly GuardKind[],
): string[] {
  const masks: string[] = [];
  for (let start = 0; start < exprs.length; start += MASK_BITS) {
    const parts: string[] = [];
    let constant = 0;
    for (let k = start; k < Math.min(exprs.length, start + MASK_BITS); k++) {
      const e = exprs[k];
      if (kinds?.[k] === "typed") constant |= 1 << (k - start);
      else if (e !== undefined) {
        parts.push(`((typeof(${e})='blob')<<${k - start})`);
      }
    }
    if (constant !== 0) parts.push(String(constant));
    masks.push(parts.length === 0 ? "0" : parts.join("|"));
  }
  return masks;
}

/**
 * The general guard of a query: `SELECT guard(c1), ..., masks FROM (q)`.
 * `names` are the column names of the subquery (as SQLite names them there).
 */
export function wrapQuery(
  sql: string,
  names: readonly string[],
  kinds?: readonly GuardKind[],
): Guarded {
  const refs = names.map(quoteIdent);
  const masks = maskExprs(refs, kinds);
  return {
    sql: `SELECT ${refs.map(guardExpr).join(",")},${
      masks.join(",")
    } FROM (${sql}\n)`,
    masks: masks.length,
  };
}

/**
 * The guard of a simple query written in place, without a subquery (which
 * SQLite runs as a co-routine and costs about 20% on a paged listing): only
 * for `SELECT [ALL] r1, ..., rn FROM ...` where every result is a plain
 * (optionally qualified) column reference without alias, and no compound
 * operator at the top level. Each guarded result gets a private alias so
 * that ORDER BY, GROUP BY and WHERE still resolve to the table columns, as
 * in the original. `skip[k]` marks results that need no guard (a rowid
 * alias: always an integer, read from the b-tree key), see
 * {@linkcode GuardKind}. Returns `undefined` when the query is not of that
 * shape.
 */
export function guardInline(
  sql: string,
  kinds: readonly GuardKind[],
): Guarded | undefined {
  const skip = kinds.map((k) => k === "skip");
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch {
    return undefined;
  }
  if (!isKeyword(tokens[0], "SELECT")) return undefined;
  let i = 1;
  if (isKeyword(tokens[i], "ALL")) i++;
  if (isKeyword(tokens[i], "DISTINCT")) return undefined;
  const items: Token[][] = [[]];
  let from = -1;
  for (let depth = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === "punct" && t.text === "(") depth++;
    else if (t.kind === "punct" && t.text === ")") depth--;
    else if (depth === 0 && isKeyword(t, "FROM")) {
      from = i;
      break;
    } else if (depth === 0 && t.kind === "punct" && t.text === ",") {
      items.push([]);
      continue;
    }
    items[items.length - 1]!.push(t);
  }
  if (from < 0 || items.length !== skip.length) return undefined;
  for (let depth = 0, j = from; j < tokens.length; j++) {
    const t = tokens[j]!;
    if (t.kind === "punct" && t.text === "(") depth++;
    else if (t.kind === "punct" && t.text === ")") depth--;
    else if (
      depth === 0 &&
      (isKeyword(t, "UNION") || isKeyword(t, "INTERSECT") ||
        isKeyword(t, "EXCEPT"))
    ) return undefined;
  }
  const refs: string[] = [];
  for (const item of items) {
    if (!isColumnRef(item)) return undefined;
    refs.push(sql.slice(item[0]!.start, item[item.length - 1]!.end));
  }
  const guarded = refs.map((r, k) => (skip[k] ? undefined : r));
  if (guarded.every((g) => g === undefined)) return { sql, masks: 0 };
  const cells = refs.map((r, k) =>
    skip[k] ? r : `${guardExpr(r)} AS "_aico_g${k}"`
  );
  const masks = maskExprs(guarded, kinds);
  return {
    sql: `SELECT ${cells.join(",")},${masks.join(",")} ${
      sql.slice(tokens[from]!.start)
    }`,
    masks: masks.length,
  };
}

function isName(t: Token | undefined): boolean {
  return t !== undefined && (t.kind === "word" || t.kind === "ident");
}

function isColumnRef(item: readonly Token[]): boolean {
  if (item.length === 1) return isName(item[0]);
  if (item.length === 3) {
    return isName(item[0]) && item[1]!.text === "." && isName(item[2]);
  }
  if (item.length === 5) {
    return isName(item[0]) && item[1]!.text === "." && isName(item[2]) &&
      item[3]!.text === "." && isName(item[4]);
  }
  return false;
}

/**
 * The guard of a DML statement's RETURNING clause, written in place: each
 * result expression `e [AS name]` becomes `guard(e) AS "name"` (the names
 * as SQLite gave them), then the masks. `*` is expanded to `names`.
 * Returns `undefined` when no top-level RETURNING is found.
 */
export function guardReturning(
  sql: string,
  names: readonly string[],
): Guarded | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch {
    return undefined;
  }
  let at = -1;
  for (let depth = 0, i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === "punct" && t.text === "(") depth++;
    else if (t.kind === "punct" && t.text === ")") depth--;
    else if (depth === 0 && isKeyword(t, "RETURNING")) at = i;
  }
  if (at < 0) return undefined;
  const items: Token[][] = [[]];
  for (let depth = 0, i = at + 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === "punct" && t.text === "(") depth++;
    else if (t.kind === "punct" && t.text === ")") depth--;
    else if (depth === 0 && t.kind === "punct" && t.text === ",") {
      items.push([]);
      continue;
    }
    items[items.length - 1]!.push(t);
  }
  const exprs: string[] = [];
  for (const item of items) {
    if (item.length === 0) return undefined;
    if (item.length === 1 && item[0]!.text === "*") {
      // `*` alone stands for every column of the table, in `names`.
      if (items.length !== 1) return undefined;
      exprs.push(...names.map(quoteIdent));
      continue;
    }
    // Drop a trailing `[AS] alias`: the output name comes from `names`.
    let end = item.length;
    if (end >= 2 && isName(item[end - 1]) && isKeyword(item[end - 2], "AS")) {
      end -= 2;
    }
    const last = item[end - 1]!;
    exprs.push(`(${sql.slice(item[0]!.start, last.end)})`);
  }
  if (exprs.length !== names.length) return undefined;
  const masks = maskExprs(exprs);
  return {
    sql: `${sql.slice(0, tokens[at]!.end)} ${
      exprs.map((e, k) => `${guardExpr(e)} AS ${quoteIdent(names[k]!)}`)
        .join(",")
    },${masks.map((m, k) => `${m} AS "_aico_mask${k}"`).join(",")}`,
    masks: masks.length,
  };
}

/**
 * A PRAGMA that reads (no `=`) as a query over its table-valued function:
 * `PRAGMA [schema.]name[(arg)]` → `SELECT * FROM pragma_name(arg[, 'schema'])`,
 * which the query guard can then wrap. `undefined` for a setter or a shape
 * it does not know.
 */
export function pragmaAsQuery(sql: string): string | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch {
    return undefined;
  }
  if (!isKeyword(tokens[0], "PRAGMA")) return undefined;
  let i = 1;
  let schema: string | undefined;
  if (isName(tokens[i]) && tokens[i + 1]?.text === ".") {
    schema = tokens[i]!.value;
    i += 2;
  }
  const name = tokens[i];
  if (name?.kind !== "word" || !/^[A-Za-z_]+$/.test(name.text)) {
    return undefined;
  }
  i++;
  let arg: string | undefined;
  if (tokens[i]?.text === "(") {
    const close = tokens[i + 2];
    const value = tokens[i + 1];
    if (close?.text !== ")" || value === undefined) return undefined;
    arg = value.kind === "word" || value.kind === "ident"
      ? `'${value.value.replaceAll("'", "''")}'`
      : value.text;
    i += 3;
  }
  if (i !== tokens.length) return undefined;
  const args = [
    ...(arg === undefined ? [] : [arg]),
    ...(schema === undefined ? [] : [`'${schema.replaceAll("'", "''")}'`]),
  ];
  return `SELECT * FROM pragma_${name.text.toLowerCase()}(${args.join(",")})`;
}

/**
 * PRAGMAs whose rows carry names or messages from the database (TEXT a
 * damaged or hostile file controls). When one of them cannot be read
 * through the guard it is refused; the other PRAGMAs return numbers and
 * SQLite's own keywords only.
 */
export const TEXT_PRAGMAS: ReadonlySet<string> = new Set([
  "collation_list",
  "compile_options",
  "database_list",
  "foreign_key_check",
  "foreign_key_list",
  "function_list",
  "index_info",
  "index_list",
  "index_xinfo",
  "integrity_check",
  "module_list",
  "pragma_list",
  "quick_check",
  "table_info",
  "table_list",
  "table_xinfo",
]);

/** The lower-case name of the PRAGMA in `sql`, or `""`. */
export function pragmaName(sql: string): string {
  let tokens: Token[];
  try {
    tokens = tokenize(sql);
  } catch {
    return "";
  }
  const at = tokens[2]?.text === "." ? 3 : 1;
  return tokens[at]?.kind === "word" ? tokens[at]!.text.toLowerCase() : "";
}
