/**
 * Declaring a schema: {@linkcode registerSchema} turns a list of
 * {@linkcode SchemaVersion}s into a frozen, validated
 * {@linkcode SchemaDefinition}.
 *
 * @module
 */

import { AicoDataError } from "../errors.ts";
import {
  compileVersions,
  type MigrationFunction,
  type MigrationStep,
  namespaceOf,
  validateHeader,
} from "./_compile.ts";

import type { SealedColumnSpec } from "../storage/storage.ts";

export type { MigrationFunction, MigrationStep, SealedColumnSpec };

/**
 * One version of a schema.
 *
 * `up` and `down` are SQL text (one or more statements separated by `;`;
 * `CREATE TRIGGER ... BEGIN ... END` bodies are kept whole), a list of SQL
 * texts, or an async function given the version's transaction.
 *
 * @remarks Checksum: SHA-256 over `version`, `name` and the normal form of
 * `up` (tokens joined by single spaces: whitespace and comments do not count,
 * string literals, identifiers and letter case do; trailing semicolons
 * dropped). For a function it is the source text of the function
 * (`fn.toString()`, whitespace collapsed outside string literals), or
 * `checksumKey` when given: set one when the source text is not stable (for
 * example bundled or minified code) and change it whenever the function's
 * effect changes. `down` and `description` are not part of the checksum: they
 * may be fixed after the version was applied.
 */
export interface SchemaVersion {
  /** The version number: 1, 2, 3, ... without gaps. */
  readonly version: number;
  /** A short name, for example `"create_notes"` (1 to 200 printable characters). */
  readonly name: string;
  /** What the version does, for people. */
  readonly description?: string;
  /** How to apply the version. */
  readonly up: MigrationStep;
  /** How to revert it; without it (or when `irreversible`) it cannot be migrated down. */
  readonly down?: MigrationStep;
  /**
   * Marks a version that cannot be reverted (a data-destroying step); it must
   * not have `down`.
   *
   * @default {false}
   */
  readonly irreversible?: boolean;
  /** For a function `up` only: the checksum input instead of the function's source text. */
  readonly checksumKey?: string;
}

/** Options of {@linkcode registerSchema}. */
export interface RegisterSchemaOptions {
  /**
   * Apply order within the owner group (lower first). Core schemas are
   * always applied before plugin schemas, whatever their priority; ties are
   * broken by schema name.
   *
   * @default {100}
   */
  readonly priority?: number;
  /**
   * The sealed columns the schema's tables hold (BLOB columns of values
   * sealed with the `field-aead` key, bound to a row key). Repositories take
   * their sealed columns from this declaration, and key rotation re-seals
   * every declared column of every registered schema. A plugin may declare
   * only tables inside its namespace.
   *
   * @default {[]}
   */
  readonly sealedColumns?: readonly SealedColumnSpec[];
}

/** A validated, frozen schema, ready to go into a registry. */
export interface SchemaDefinition {
  /** The schema name (`[a-z][a-z0-9_]{0,62}`), unique within a registry. */
  readonly name: string;
  /** `"core"` or the plugin name (`[a-z][a-z0-9]{0,62}`). */
  readonly owner: string;
  /** The apply priority (lower first, within its owner group). */
  readonly priority: number;
  /**
   * The prefix every object of a plugin schema must have
   * (`plugin_<owner>_`); `undefined` for core.
   */
  readonly namespace: string | undefined;
  /** The highest version. */
  readonly latest: number;
  /** The versions, sorted, frozen. */
  readonly versions: readonly SchemaVersion[];
  /** The declared sealed columns (frozen, `schemaVersion` filled in). */
  readonly sealedColumns: readonly Required<SealedColumnSpec>[];
}

/**
 * Declares a schema: validates its name, owner, priority and versions, and
 * returns a frozen definition. Pure: nothing global is registered; hand the
 * definitions to {@linkcode createSchemaRegistry}.
 *
 * Rules: the schema name matches `[a-z][a-z0-9_]{0,62}`; the owner is
 * `"core"` or a plugin name matching `[a-z][a-z0-9]{0,62}` (no `_`, so that
 * plugin prefixes never overlap); versions run 1, 2, 3, ... with no gap or
 * duplicate; unknown fields are refused; SQL must tokenise; no statement may
 * control the transaction (`BEGIN`, `COMMIT`, `SAVEPOINT`, `VACUUM`, ...) or
 * name the migrator's `_aico_schema_*` tables; core may not create objects
 * named `plugin_<x>_*`; a plugin's SQL may only name objects with its prefix
 * `plugin_<owner>_` (checked statically here, again before running, and
 * after running against `sqlite_schema`). A migration function cannot be
 * checked before it runs: each statement it executes is checked first, and a
 * refused one raises `PLUGIN_ISOLATION` and rolls the whole version back.
 * The analyser is conservative: quote a column named like a keyword (for
 * example `"view"`) or it may be taken for an object name and refused.
 *
 * @param name The schema name.
 * @param owner `"core"` or the plugin name.
 * @param options The priority.
 * @param versions The versions, in any order.
 * @returns The frozen definition.
 * @throws {MigrationError} `SCHEMA_INVALID` on a malformed registration,
 * `PLUGIN_ISOLATION` when a plugin's SQL names an object outside its namespace.
 *
 * @example Declaring a plugin schema
 * ```ts
 * import { registerSchema } from "./schema_version.ts";
 * import assert from "node:assert/strict";
 *
 * const notes = registerSchema("notes", "notes", { priority: 10 }, [
 *   {
 *     version: 1,
 *     name: "create_notes",
 *     up: "CREATE TABLE plugin_notes_items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
 *     down: "DROP TABLE plugin_notes_items",
 *   },
 * ]);
 * assert.equal(notes.latest, 1);
 * assert.equal(notes.namespace, "plugin_notes_");
 * assert.ok(Object.isFrozen(notes));
 * ```
 *
 * @example Gaps and foreign objects are refused
 * ```ts
 * import { registerSchema } from "./schema_version.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => registerSchema("app", "core", {}, [{ version: 2, name: "two", up: "SELECT 1" }]),
 *   (e) => isAicoDataError(e, "SCHEMA_INVALID"),
 * );
 * assert.throws(
 *   () => registerSchema("evil", "evil", {}, [{ version: 1, name: "x", up: "DROP TABLE logs" }]),
 *   (e) => isAicoDataError(e, "PLUGIN_ISOLATION"),
 * );
 * ```
 */
export function registerSchema(
  name: string,
  owner: string,
  options: RegisterSchemaOptions,
  versions: readonly SchemaVersion[],
): SchemaDefinition {
  const priority = options?.priority ?? 100;
  validateHeader(name, owner, priority);
  const compiled = compileVersions(name, owner, versions);
  const byNumber = new Map<number, SchemaVersion>();
  for (const v of versions) byNumber.set(v.version, v);
  const frozen = compiled.map((c) => freezeVersion(byNumber.get(c.version)!));
  const namespace = namespaceOf(owner);
  return Object.freeze({
    name,
    owner,
    priority,
    namespace,
    latest: compiled.length,
    versions: Object.freeze(frozen),
    sealedColumns: checkSealedColumns(
      name,
      namespace,
      compiled.length,
      options?.sealedColumns ?? [],
    ),
  });
}

const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function checkSealedColumns(
  schema: string,
  namespace: string | undefined,
  latest: number,
  specs: readonly SealedColumnSpec[],
): readonly Required<SealedColumnSpec>[] {
  const fail = (detail: string) =>
    new AicoDataError(
      "SCHEMA_INVALID",
      `Cannot register schema "${schema}": ${detail}`,
    );
  if (!Array.isArray(specs)) throw fail('"sealedColumns" must be an array');
  const seen = new Set<string>();
  return Object.freeze(specs.map((spec, i) => {
    if (typeof spec !== "object" || spec === null) {
      throw fail(`sealed column ${i} must be an object`);
    }
    for (const field of ["table", "column", "rowKey"] as const) {
      const value: unknown = spec[field];
      if (typeof value !== "string" || !COLUMN_NAME.test(value)) {
        throw fail(
          `sealed column ${i}: "${field}" must match ${COLUMN_NAME}`,
        );
      }
    }
    const schemaVersion = spec.schemaVersion ?? 1;
    if (
      !Number.isSafeInteger(schemaVersion) || schemaVersion < 1 ||
      schemaVersion > latest
    ) {
      throw fail(
        `sealed column "${spec.table}.${spec.column}": schemaVersion must be an integer from 1 to ${latest}`,
      );
    }
    if (namespace !== undefined && !spec.table.startsWith(namespace)) {
      throw fail(
        `sealed column "${spec.table}.${spec.column}": a plugin may declare only tables named "${namespace}*"`,
      );
    }
    const id = `${spec.table}.${spec.column}`;
    if (seen.has(id)) throw fail(`sealed column "${id}" is declared twice`);
    seen.add(id);
    return Object.freeze({
      table: spec.table,
      column: spec.column,
      rowKey: spec.rowKey,
      schemaVersion,
    });
  }));
}

function freezeVersion(v: SchemaVersion): SchemaVersion {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v)) {
    copy[key] = Array.isArray(value) ? Object.freeze([...value]) : value;
  }
  return Object.freeze(copy) as unknown as SchemaVersion;
}
