/**
 * The static analyser behind plugin isolation: finds every object name a
 * statement creates, drops, alters, writes, reads or references, and checks
 * them against the owner's namespace.
 *
 * It is deliberately conservative: when in doubt a plugin statement is
 * refused (quote a column named like a keyword, for example `"view"`).
 *
 * Internal to `schema/`.
 *
 * @module
 */

import { isKeyword, type Token } from "../_internal/sql_lexer.ts";

/** What a statement does with a named object. */
export type RefRole =
  | "create"
  | "drop"
  | "alter"
  | "write"
  | "read"
  | "reference";

/** One object name found in a statement. */
export interface ObjectRef {
  /** The object name, unquoted. */
  readonly name: string;
  /** The schema qualifier (`main`, `temp`, an attached name), if any. */
  readonly qualifier: string | undefined;
  /** What the statement does with it. */
  readonly role: RefRole;
}

/** The result of {@linkcode analyseStatement}. */
export interface StatementAnalysis {
  /** The first keyword, upper case (`CREATE`, `INSERT`, ...). */
  readonly verb: string;
  /** Every object name found. */
  readonly refs: readonly ObjectRef[];
  /** Names declared by the statement itself (CTEs, window names). */
  readonly localNames: ReadonlySet<string>;
  /** For `CREATE VIRTUAL TABLE`: the module name, lower case. */
  readonly module: string | undefined;
}

/** Why a statement is refused, and with which error code. */
export interface Violation {
  readonly code: "PLUGIN_ISOLATION" | "SCHEMA_INVALID";
  readonly reason: string;
}

const NOT_ALIAS = new Set([
  "WHERE",
  "JOIN",
  "INNER",
  "LEFT",
  "RIGHT",
  "FULL",
  "CROSS",
  "NATURAL",
  "OUTER",
  "ON",
  "USING",
  "GROUP",
  "ORDER",
  "LIMIT",
  "UNION",
  "EXCEPT",
  "INTERSECT",
  "WINDOW",
  "HAVING",
  "RETURNING",
  "SET",
  "INDEXED",
  "NOT",
  "END",
  "VALUES",
  "SELECT",
  "DEFAULT",
  "AS",
]);

const TRANSACTION_CONTROL = new Set([
  "BEGIN",
  "COMMIT",
  "END",
  "ROLLBACK",
  "SAVEPOINT",
  "RELEASE",
  "VACUUM",
]);

const PLUGIN_VERBS = new Set([
  "CREATE",
  "DROP",
  "ALTER",
  "INSERT",
  "REPLACE",
  "UPDATE",
  "DELETE",
  "SELECT",
  "WITH",
  "VALUES",
]);

/**
 * Virtual table modules a plugin may use (their other-table options, such as
 * fts5 `content=`, are checked). Others, like `fts5vocab`, can read tables
 * named in their arguments.
 */
const PLUGIN_MODULES = new Set([
  "fts5",
  "fts4",
  "fts3",
  "rtree",
  "rtree_i32",
  "geopoly",
]);

/** Table-valued functions a plugin may read from. */
const SAFE_TABLE_FUNCTIONS = new Set(["json_each", "json_tree"]);

/** Names that look like a plugin namespace (`plugin_<name>_...`). */
const PLUGIN_NAMESPACE_LIKE = /^plugin_[a-z][a-z0-9]*_/;

/** The prefix of the migrator's own tables. */
export const RESERVED_PREFIX = "_aico_schema_";

function isName(t: Token | undefined): t is Token {
  return t !== undefined &&
    (t.kind === "word" || t.kind === "ident" || t.kind === "string");
}

function isPunct(t: Token | undefined, p: string): boolean {
  return t !== undefined && t.kind === "punct" && t.text === p;
}

/**
 * Finds the object names one statement touches.
 *
 * @param tokens The statement's tokens (no trailing semicolon).
 * @returns The verb, the references and the statement-local names.
 */
export function analyseStatement(tokens: readonly Token[]): StatementAnalysis {
  const refs: ObjectRef[] = [];
  const localNames = new Set<string>();
  const first = tokens[0];
  const verb = first?.kind === "word"
    ? first.text.toUpperCase()
    : (first?.text ?? "");

  // Statement-local names: `name AS (` / `name AS [NOT] MATERIALIZED (` / `name (cols) AS (`.
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!isName(t) || t.kind === "string") continue;
    let j = i + 1;
    if (isPunct(tokens[j], "(")) {
      j = skipParens(tokens, j);
    }
    if (!isKeyword(tokens[j], "AS")) continue;
    let k = j + 1;
    if (isKeyword(tokens[k], "NOT")) k++;
    if (isKeyword(tokens[k], "MATERIALIZED")) k++;
    if (isPunct(tokens[k], "(")) localNames.add(t.value.toLowerCase());
  }

  const readName = (
    j: number,
    role: RefRole,
  ): number => {
    const t = tokens[j];
    if (!isName(t)) return j;
    if (isPunct(tokens[j + 1], ".") && isName(tokens[j + 2])) {
      refs.push({ name: tokens[j + 2]!.value, qualifier: t.value, role });
      return j + 3;
    }
    refs.push({ name: t.value, qualifier: undefined, role });
    return j + 1;
  };
  const skipIfExists = (j: number): number => {
    if (isKeyword(tokens[j], "IF")) {
      j++;
      if (isKeyword(tokens[j], "NOT")) j++;
      if (isKeyword(tokens[j], "EXISTS")) j++;
    }
    return j;
  };
  const objectRole: RefRole = verb === "CREATE"
    ? "create"
    : verb === "DROP"
    ? "drop"
    : verb === "ALTER"
    ? "alter"
    : "write";
  const createsIndexOrTrigger = verb === "CREATE" &&
    tokens.slice(0, 5).some((t) =>
      isKeyword(t, "INDEX") || isKeyword(t, "TRIGGER")
    );
  const createsVirtualTable = verb === "CREATE" &&
    isKeyword(tokens[1], "VIRTUAL");
  let onSeen = false;
  let depth = 0;

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === "punct") {
      if (t.text === "(") depth++;
      else if (t.text === ")") depth--;
      continue;
    }
    if (t.kind !== "word") continue;
    const kw = t.text.toUpperCase();
    switch (kw) {
      case "TABLE":
      case "VIEW":
      case "INDEX":
      case "TRIGGER": {
        readName(skipIfExists(i + 1), objectRole);
        break;
      }
      case "ON": {
        if (createsIndexOrTrigger && !onSeen && depth === 0) {
          onSeen = true;
          readName(i + 1, "reference");
        }
        break;
      }
      case "INTO":
        readName(i + 1, "write");
        break;
      case "UPDATE": {
        let j = i + 1;
        if (
          isKeyword(tokens[j], "OF") || isKeyword(tokens[j], "SET") ||
          isKeyword(tokens[j], "ON")
        ) {
          break;
        }
        if (isKeyword(tokens[j], "OR")) j += 2;
        readName(j, "write");
        break;
      }
      case "FROM":
      case "JOIN": {
        const role: RefRole =
          kw === "FROM" && isKeyword(tokens[i - 1], "DELETE")
            ? "write"
            : "read";
        let j = i + 1;
        for (;;) {
          if (isPunct(tokens[j], "(")) break; // a subquery: its own FROM is seen later
          const before = refs.length;
          j = readName(j, role);
          if (refs.length === before) break;
          if (isPunct(tokens[j], "(")) j = skipParens(tokens, j); // table-valued function
          if (isKeyword(tokens[j], "AS")) j += 2;
          else if (
            tokens[j] !== undefined &&
            (tokens[j]!.kind === "ident" ||
              (tokens[j]!.kind === "word" &&
                !NOT_ALIAS.has(tokens[j]!.text.toUpperCase())))
          ) j++;
          if (isKeyword(tokens[j], "INDEXED")) j += 3;
          else if (
            isKeyword(tokens[j], "NOT") && isKeyword(tokens[j + 1], "INDEXED")
          ) j += 2;
          if (!isPunct(tokens[j], ",")) break;
          j++;
        }
        break;
      }
      case "IN": {
        // `x IN table` reads a whole table without FROM.
        if (isName(tokens[i + 1]) && tokens[i + 1]!.kind !== "string") {
          readName(i + 1, "read");
        }
        break;
      }
      case "REFERENCES":
        readName(i + 1, "reference");
        break;
      case "RENAME":
        if (isKeyword(tokens[i + 1], "TO")) readName(i + 2, "create");
        break;
      case "CONTENT": {
        // fts5 external content: `content=table` or `content='table'`.
        if (
          createsVirtualTable && isPunct(tokens[i + 1], "=") &&
          isName(tokens[i + 2]) &&
          tokens[i + 2]!.value !== ""
        ) {
          refs.push({
            name: tokens[i + 2]!.value,
            qualifier: undefined,
            role: "read",
          });
        }
        break;
      }
    }
  }
  let module: string | undefined;
  if (createsVirtualTable) {
    const using = tokens.findIndex((t) => isKeyword(t, "USING"));
    const name = tokens[using + 1];
    module = using >= 0 && isName(name) ? name.value.toLowerCase() : "";
  }
  return { verb, refs, localNames, module };
}

function skipParens(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let j = open; j < tokens.length; j++) {
    if (isPunct(tokens[j], "(")) depth++;
    else if (isPunct(tokens[j], ")")) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return tokens.length;
}

/**
 * The namespace prefix of a plugin.
 *
 * @param plugin The plugin name.
 * @returns `plugin_<name>_`.
 */
export function pluginPrefix(plugin: string): string {
  return `plugin_${plugin}_`;
}

/**
 * Checks one analysed statement against the rules for its owner.
 *
 * - Everyone: no transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`, ...,
 *   `VACUUM`), nothing named `_aico_schema_*`.
 * - Core: creates nothing named like a plugin namespace (`plugin_<x>_*`), so
 *   that removing a plugin can never drop a core object.
 * - A plugin: only `CREATE`, `DROP`, `ALTER`, `INSERT`, `REPLACE`, `UPDATE`,
 *   `DELETE`, `SELECT`, `WITH`, `VALUES`; every object it names (created,
 *   dropped, altered, written, read or referenced) starts with its prefix;
 *   no schema qualifier other than `main` or `temp`; nothing named `sqlite_*`.
 *
 * @param owner `"core"` or a plugin name.
 * @param analysis The statement's analysis.
 * @returns The first violation, or `undefined` when the statement is allowed.
 */
export function checkStatement(
  owner: string,
  analysis: StatementAnalysis,
): Violation | undefined {
  if (TRANSACTION_CONTROL.has(analysis.verb)) {
    return {
      code: "SCHEMA_INVALID",
      reason:
        `transaction control "${analysis.verb}" is not allowed in a migration`,
    };
  }
  for (const ref of analysis.refs) {
    if (ref.name.toLowerCase().startsWith(RESERVED_PREFIX)) {
      return {
        code: owner === "core" ? "SCHEMA_INVALID" : "PLUGIN_ISOLATION",
        reason: `"${ref.name}" is reserved for the migrator`,
      };
    }
  }
  if (owner === "core") {
    for (const ref of analysis.refs) {
      if (
        ref.role === "create" &&
        PLUGIN_NAMESPACE_LIKE.test(ref.name.toLowerCase())
      ) {
        return {
          code: "SCHEMA_INVALID",
          reason: `core object "${ref.name}" would fall in a plugin namespace`,
        };
      }
    }
    return undefined;
  }
  if (!PLUGIN_VERBS.has(analysis.verb)) {
    return {
      code: "PLUGIN_ISOLATION",
      reason:
        `statement "${analysis.verb}" is not allowed in a plugin migration`,
    };
  }
  if (analysis.module !== undefined && !PLUGIN_MODULES.has(analysis.module)) {
    return {
      code: "PLUGIN_ISOLATION",
      reason:
        `virtual table module "${analysis.module}" is not allowed in a plugin migration`,
    };
  }
  const prefix = pluginPrefix(owner);
  for (const ref of analysis.refs) {
    const lower = ref.name.toLowerCase();
    const qualifier = ref.qualifier?.toLowerCase();
    if (
      qualifier !== undefined && qualifier !== "main" && qualifier !== "temp"
    ) {
      return {
        code: "PLUGIN_ISOLATION",
        reason: `"${ref.qualifier}.${ref.name}" is in another database`,
      };
    }
    if (lower.startsWith(prefix)) continue;
    if (
      ref.role === "read" &&
      (analysis.localNames.has(lower) || SAFE_TABLE_FUNCTIONS.has(lower))
    ) {
      continue;
    }
    return {
      code: "PLUGIN_ISOLATION",
      reason:
        `"${ref.name}" (${ref.role}) is outside the namespace "${prefix}"`,
    };
  }
  return undefined;
}
