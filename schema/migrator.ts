/**
 * Applying schemas to a database: {@linkcode openMigrator}.
 *
 * @module
 */

import { AicoDataError, isAicoDataError } from "../errors.ts";
import type {
  InArgs,
  InStatement,
  ResultSet,
  SqlExecutor,
  Transaction,
  TransactionMode,
  Value,
} from "../storage/types.ts";
import {
  checksumOf,
  type CompiledStep,
  type CompiledVersion,
  compileVersions,
  PLUGIN_NAME,
} from "./_compile.ts";
import {
  analyseStatement,
  checkStatement,
  pluginPrefix,
} from "./_isolation.ts";
import {
  quoteIdent,
  splitStatements,
  SqlSyntaxError,
} from "../_internal/sql_lexer.ts";
import { abortError, checkSignal, throwIfAborted } from "../_internal/abort.ts";
import { MigrationError } from "./migration_error.ts";
import { createSchemaRegistry, type SchemaRegistry } from "./registry.ts";
import type { SchemaDefinition } from "./schema_version.ts";

/**
 * What the migrator needs from a database: statements and write
 * transactions. `openStorage()` returns one.
 */
export interface MigratableDatabase extends SqlExecutor {
  /**
   * Runs `fn` in one transaction: commits when it resolves, rolls back when
   * it throws (and rethrows).
   */
  transaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    mode?: TransactionMode,
  ): Promise<T>;
}

/** Options of {@linkcode openMigrator}. */
export interface MigratorOptions {
  /**
   * Check the checksums of applied versions when opening; `false` lets a
   * changed database be opened to {@linkcode Migrator.repair} it.
   *
   * @default {true}
   */
  readonly validateOnOpen?: boolean;
  /**
   * How long to keep retrying, in milliseconds, when another connection
   * holds the write lock longer than the store's busy timeout.
   *
   * @default {30000}
   */
  readonly lockTimeoutMs?: number;
  /**
   * Stops every operation of the migrator while it waits for the write lock
   * (`ABORTED`): checked before each attempt and during the pauses between
   * attempts (one attempt waits at most the store's busy timeout). A version
   * already running is not cut short.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** Options after {@linkcode resolveMigratorOptions}. */
export interface ResolvedMigratorOptions {
  /** See {@linkcode MigratorOptions.validateOnOpen}. */
  readonly validateOnOpen: boolean;
  /** See {@linkcode MigratorOptions.lockTimeoutMs}. */
  readonly lockTimeoutMs: number;
  /** See {@linkcode MigratorOptions.signal}; absent when not given. */
  readonly signal?: AbortSignal;
}

/** Throws `INVALID_INPUT` unless `version` is an integer in [min, max]. */
function checkTargetVersion(
  action: string,
  schemaName: string,
  version: number,
  min: number,
  max: number,
): void {
  if (!Number.isSafeInteger(version) || version < min || version > max) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action} schema "${schemaName}": version "${
        String(version)
      }" is not between ${min} and ${max}`,
    );
  }
}

/**
 * Fills in the defaults of {@linkcode MigratorOptions} and checks the values.
 *
 * @param options The options given, or `undefined`.
 * @returns The frozen, complete options.
 * @throws {AicoDataError} `INVALID_INPUT` on a value of the wrong type or range.
 *
 * @example Defaults
 * ```ts
 * import { resolveMigratorOptions } from "./migrator.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(resolveMigratorOptions(undefined), { validateOnOpen: true, lockTimeoutMs: 30000 });
 * ```
 */
export function resolveMigratorOptions(
  options: MigratorOptions | undefined,
): ResolvedMigratorOptions {
  const validateOnOpen = options?.validateOnOpen ?? true;
  const lockTimeoutMs = options?.lockTimeoutMs ?? 30_000;
  if (typeof validateOnOpen !== "boolean") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open migrator: validateOnOpen "${
        String(validateOnOpen)
      }" is not a boolean`,
    );
  }
  if (
    typeof lockTimeoutMs !== "number" || !Number.isFinite(lockTimeoutMs) ||
    lockTimeoutMs < 0
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open migrator: lockTimeoutMs "${
        String(lockTimeoutMs)
      }" is not a non-negative number`,
    );
  }
  const signal = checkSignal("open migrator", options?.signal);
  return Object.freeze({
    validateOnOpen,
    lockTimeoutMs,
    ...(signal === undefined ? {} : { signal }),
  });
}

/** Options of {@linkcode Migrator.migrate}. */
export interface MigrateOptions {
  /**
   * Run every pending version in one transaction and roll it all back:
   * checks that the migrations would succeed on this database, changes
   * nothing (not even the history tables are created). Holds the write lock
   * for the whole run.
   *
   * @default {false}
   */
  readonly dryRun?: boolean;
  /**
   * Stops the run while it waits for the write lock (`ABORTED`), like
   * {@linkcode MigratorOptions.signal}; the versions applied before stay
   * applied.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** One version applied, reverted or adopted by a call. */
export interface MigrationStepReport {
  /** The schema name. */
  readonly schema: string;
  /** The version number. */
  readonly version: number;
  /** The version name. */
  readonly name: string;
  /** `up` (applied) or `down` (reverted). */
  readonly direction: "up" | "down";
  /** How long its statements took, in milliseconds. */
  readonly durationMs: number;
}

/** The state of one version in {@linkcode Migrator.plan}. */
export interface VersionPlan {
  /** The version number. */
  readonly version: number;
  /** The version name (from the code, or from the history for `unknown`). */
  readonly name: string;
  /**
   * `applied` (checksum matches), `pending` (not applied), `changed`
   * (applied, but its definition changed since), `unknown` (applied, but
   * not in the code).
   */
  readonly state: "applied" | "pending" | "changed" | "unknown";
  /** When it was applied (ms since the epoch), for applied ones. */
  readonly appliedAt: number | undefined;
  /** Whether it can be migrated down (has `down`, not irreversible). */
  readonly reversible: boolean;
}

/** One schema in {@linkcode Migrator.plan}. */
export interface SchemaPlan {
  /** The schema name. */
  readonly schema: string;
  /** `"core"` or the plugin name. */
  readonly owner: string;
  /** The highest applied version (0 when none). */
  readonly current: number;
  /** The highest version in the code. */
  readonly latest: number;
  /** The numbers of the versions not applied yet, in order. */
  readonly pending: readonly number[];
  /** The numbers of the applied versions, in order. */
  readonly applied: readonly number[];
  /** Every version with its state. */
  readonly versions: readonly VersionPlan[];
}

/** What {@linkcode Migrator.removePlugin} removed. */
export interface RemovePluginReport {
  /** The names of the objects dropped. */
  readonly objects: readonly string[];
  /** The schemas whose history was removed. */
  readonly schemas: readonly string[];
}

/** One version whose checksum {@linkcode Migrator.repair} accepted. */
export interface RepairedVersion {
  /** The schema name. */
  readonly schema: string;
  /** The version number. */
  readonly version: number;
  /** The checksum recorded before. */
  readonly previousChecksum: string;
  /** The checksum now recorded. */
  readonly checksum: string;
}

/** Applies a {@linkcode SchemaRegistry} to a database. */
export interface Migrator extends AsyncDisposable {
  /** Whether {@linkcode Migrator.close} was called. */
  readonly closed: boolean;
  /**
   * Applies every pending version of every schema: core schemas first, then
   * plugins, each group by priority. Each version runs in its own write
   * transaction with its history row; a failure rolls back that version only
   * (the ones before it stay applied) and stops.
   *
   * @returns The versions applied, in order (empty when up to date).
   * @throws {MigrationError} `MIGRATION_CHECKSUM` when an applied version
   * changed; `MIGRATION_FAILED` when a statement fails (with `schema`,
   * `version`, `statementIndex`); `PLUGIN_ISOLATION` when a plugin steps
   * outside its namespace.
   * @throws {AicoDataError} `MIGRATION_LOCKED` when another connection holds
   * the write lock longer than `lockTimeoutMs`; `STORE_CLOSED` after close.
   *
   * @param options `dryRun`: try everything, keep nothing.
   */
  migrate(options?: MigrateOptions): Promise<MigrationStepReport[]>;
  /**
   * Moves one schema up or down to `version` (0 reverts it completely),
   * running `down` from the code, newest first. Every version to revert is
   * checked first: nothing runs when one of them cannot be reverted.
   *
   * @param schema The schema name.
   * @param version The target version, 0 to `latest`.
   * @returns The versions applied or reverted, in order.
   * @throws {MigrationError} `MIGRATION_IRREVERSIBLE` when a version to revert
   * is irreversible or has no `down`; and as {@linkcode Migrator.migrate}.
   * @throws {AicoDataError} `NOT_FOUND` for an unknown schema,
   * `INVALID_INPUT` for a version out of range.
   */
  migrateTo(schema: string, version: number): Promise<MigrationStepReport[]>;
  /**
   * Lists applied and pending versions of every registered schema, with
   * `changed` and `unknown` ones marked. Changes nothing (not even the
   * history tables are created).
   *
   * @returns One entry per schema, in apply order.
   * @throws {AicoDataError} `STORE_CLOSED` after close.
   */
  plan(): Promise<SchemaPlan[]>;
  /**
   * Checks every applied version of a registered schema against the code.
   *
   * @throws {MigrationError} `MIGRATION_CHECKSUM` when one changed or is not
   * in the code any more.
   */
  validate(): Promise<void>;
  /**
   * Deliberately accepts edited applied versions: records their current
   * checksums (and names), logged as `repair`. Open with
   * `validateOnOpen: false` to reach it. Versions applied but no longer in
   * the code are left alone: revert them with the code that defines them.
   *
   * @param schema One schema, or all when omitted.
   * @returns The versions whose checksum was replaced.
   * @throws {AicoDataError} `NOT_FOUND` for an unknown schema.
   */
  repair(schema?: string): Promise<RepairedVersion[]>;
  /**
   * Adopts an existing database: marks versions 1 to `version` of a schema
   * as applied without running them (logged as `baseline`).
   *
   * @param schema The schema name.
   * @param version The version the database is known to be at.
   * @throws {AicoDataError} `ALREADY_EXISTS` when the schema already has
   * applied versions; `NOT_FOUND`, `INVALID_INPUT` for bad arguments.
   */
  baseline(schema: string, version: number): Promise<void>;
  /**
   * Removes a plugin in one transaction: drops every object named
   * `plugin_<name>_*` (triggers, views, tables, indexes) and deletes the
   * history of its schemas (logged as `remove`). Core and other plugins are
   * not touched. Works whether or not the plugin is still registered (a
   * registered one is installed again by the next `migrate()`).
   *
   * @param name The plugin name.
   * @returns The objects dropped and the schemas forgotten.
   * @throws {AicoDataError} `INVALID_INPUT` for `"core"` or a malformed name.
   */
  removePlugin(name: string): Promise<RemovePluginReport>;
  /** Closes the migrator (not the database). Safe to call twice. */
  close(): Promise<void>;
}

/** The table of applied versions: one row per (schema, version) applied. */
export const HISTORY_TABLE = "_aico_schema_history";
/** The append-only log of every run (up, down, baseline, repair, remove). */
export const LOG_TABLE = "_aico_schema_log";

const CREATE_TABLES = [
  `CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (
    schema TEXT NOT NULL,
    version INTEGER NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('up', 'baseline')),
    PRIMARY KEY (schema, version)
  )`,
  `CREATE TABLE IF NOT EXISTS ${LOG_TABLE} (
    id INTEGER PRIMARY KEY,
    schema TEXT NOT NULL,
    owner TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('up', 'down', 'baseline', 'repair', 'remove')),
    at INTEGER NOT NULL,
    duration_ms REAL NOT NULL
  )`,
];

interface CompiledSchema {
  readonly def: SchemaDefinition;
  readonly versions: readonly CompiledVersion[];
  readonly checksums: readonly string[]; // index = version - 1
}

interface HistoryRow {
  readonly schema: string;
  readonly version: number;
  readonly owner: string;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: number;
}

type SchemaObjects = Map<string, string>; // "type:name" -> tbl_name + sql

/**
 * Opens a migrator for a database and a registry. Checks the registry (again)
 * and, unless `validateOnOpen` is `false`, the checksums of applied versions.
 * Creates nothing until a method that writes is called.
 *
 * Each version runs in its own write transaction (`BEGIN IMMEDIATE`), which
 * re-reads the history first: two processes migrating the same file never
 * apply a version twice, the second one waits and skips it. A failing
 * statement rolls its version back; earlier versions stay applied.
 *
 * Permissions: those of the database (`openStorage()`: `--allow-read`,
 * `--allow-write` on the data directory, `--allow-ffi`, `--allow-sys`,
 * `--allow-env=LIBSQL_JS_DEV`).
 *
 * @param db The database (an open `Storage`).
 * @param registry The schemas.
 * @param options See {@linkcode MigratorOptions}.
 * @returns The migrator.
 * @throws {MigrationError} `MIGRATION_CHECKSUM` when an applied version
 * changed (unless `validateOnOpen` is `false`); `SCHEMA_INVALID` or
 * `PLUGIN_ISOLATION` for a bad registry.
 *
 * @example Migrating, planning, going down and up again
 * ```ts
 * import { openMigrator } from "./migrator.ts";
 * import { createSchemaRegistry } from "./registry.ts";
 * import { registerSchema } from "./schema_version.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   const registry = createSchemaRegistry([
 *     registerSchema("notes", "notes", {}, [
 *       {
 *         version: 1,
 *         name: "create_items",
 *         up: "CREATE TABLE plugin_notes_items (id INTEGER PRIMARY KEY, body TEXT)",
 *         down: "DROP TABLE plugin_notes_items",
 *       },
 *     ]),
 *   ]);
 *   await using migrator = await openMigrator(db, registry);
 *   assert.deepEqual((await migrator.plan())[0]?.pending, [1]);
 *   const applied = await migrator.migrate();
 *   assert.equal(applied.length, 1);
 *   assert.deepEqual((await migrator.plan())[0]?.applied, [1]);
 *   await migrator.migrateTo("notes", 0);
 *   assert.equal((await migrator.plan())[0]?.current, 0);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openMigrator(
  db: MigratableDatabase,
  registry: SchemaRegistry,
  options?: MigratorOptions,
): Promise<Migrator> {
  const resolved = resolveMigratorOptions(options);
  if (
    typeof db !== "object" || db === null || typeof db.execute !== "function" ||
    typeof db.transaction !== "function"
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open migrator: db must have execute() and transaction()",
    );
  }
  if (
    typeof registry !== "object" || registry === null ||
    !Array.isArray(registry.schemas)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open migrator: registry is not a SchemaRegistry",
    );
  }
  // Validated, deduplicated and ordered again: a hand-made registry object
  // cannot slip past the rules or put a plugin before core.
  const checked = createSchemaRegistry(registry.schemas);
  const compiled: CompiledSchema[] = [];
  for (const def of checked.schemas) {
    const versions = compileVersions(def.name, def.owner, def.versions);
    const checksums = await Promise.all(versions.map(checksumOf));
    compiled.push({ def, versions, checksums });
  }
  const migrator = new SchemaMigrator(db, compiled, resolved);
  if (resolved.validateOnOpen) await migrator.validate();
  return migrator;
}

class SchemaMigrator implements Migrator {
  readonly #db: MigratableDatabase;
  readonly #schemas: readonly CompiledSchema[];
  readonly #byName: ReadonlyMap<string, CompiledSchema>;
  readonly #options: ResolvedMigratorOptions;
  #closed = false;

  constructor(
    db: MigratableDatabase,
    schemas: readonly CompiledSchema[],
    options: ResolvedMigratorOptions,
  ) {
    this.#db = db;
    this.#schemas = schemas;
    this.#byName = new Map(schemas.map((s) => [s.def.name, s]));
    this.#options = options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #guard(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: the migrator is closed`,
      );
    }
  }

  #schema(action: string, name: unknown): CompiledSchema {
    const schema = typeof name === "string"
      ? this.#byName.get(name)
      : undefined;
    if (schema === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot ${action}: schema "${String(name)}" is not registered`,
      );
    }
    return schema;
  }

  async #historyExists(executor: SqlExecutor): Promise<boolean> {
    const rs = await executor.execute({
      sql: "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
      args: [HISTORY_TABLE],
    });
    return rs.rows.length > 0;
  }

  async #readHistory(
    executor: SqlExecutor,
    schema?: string,
    tablesExist = false,
  ): Promise<HistoryRow[]> {
    if (!tablesExist && !(await this.#historyExists(executor))) return [];
    const rs = await executor.execute(
      schema === undefined
        ? `SELECT schema, version, owner, name, checksum, applied_at FROM ${HISTORY_TABLE} ORDER BY schema, version`
        : {
          sql:
            `SELECT schema, version, owner, name, checksum, applied_at FROM ${HISTORY_TABLE} WHERE schema = ? ORDER BY version`,
          args: [schema],
        },
    );
    return rs.rows.map((r) => ({
      schema: String(r.schema),
      version: Number(r.version),
      owner: String(r.owner),
      name: String(r.name),
      checksum: String(r.checksum),
      appliedAt: Number(r.applied_at),
    }));
  }

  #problems(
    rows: readonly HistoryRow[],
  ): { row: HistoryRow; kind: "changed" | "unknown" }[] {
    const problems: { row: HistoryRow; kind: "changed" | "unknown" }[] = [];
    for (const row of rows) {
      const schema = this.#byName.get(row.schema);
      if (schema === undefined) continue; // not ours (an uninstalled plugin): removePlugin() cleans it
      const expected = schema.checksums[row.version - 1];
      if (expected === undefined) problems.push({ row, kind: "unknown" });
      else if (expected !== row.checksum) {
        problems.push({ row, kind: "changed" });
      }
    }
    return problems;
  }

  #throwProblems(
    problems: { row: HistoryRow; kind: "changed" | "unknown" }[],
  ): void {
    const first = problems[0];
    if (first === undefined) return;
    const what = first.kind === "changed"
      ? "its definition changed since it was applied"
      : "it is applied but not defined in the code";
    throw new MigrationError(
      "MIGRATION_CHECKSUM",
      `Cannot use schema "${first.row.schema}" version ${first.row.version}: ${what}` +
        (problems.length > 1 ? ` (and ${problems.length - 1} more)` : "") +
        "; revert the edit, or call repair() to accept it",
      { schema: first.row.schema, version: first.row.version },
    );
  }

  async validate(): Promise<void> {
    this.#guard("validate");
    this.#throwProblems(this.#problems(await this.#readHistory(this.#db)));
  }

  async plan(): Promise<SchemaPlan[]> {
    this.#guard("plan");
    const rows = await this.#readHistory(this.#db);
    return this.#schemas.map((s) => {
      const mine = new Map(
        rows.filter((r) => r.schema === s.def.name).map((r) => [r.version, r]),
      );
      const versions: VersionPlan[] = s.versions.map((v) => {
        const row = mine.get(v.version);
        return {
          version: v.version,
          name: v.name,
          state: row === undefined
            ? "pending"
            : row.checksum === s.checksums[v.version - 1]
            ? "applied"
            : "changed",
          appliedAt: row?.appliedAt,
          reversible: !v.irreversible && v.down !== undefined,
        };
      });
      for (const row of mine.values()) {
        if (row.version > s.versions.length) {
          versions.push({
            version: row.version,
            name: row.name,
            state: "unknown",
            appliedAt: row.appliedAt,
            reversible: false,
          });
        }
      }
      const applied = [...mine.keys()].sort((a, b) => a - b);
      return {
        schema: s.def.name,
        owner: s.def.owner,
        current: applied.at(-1) ?? 0,
        latest: s.def.latest,
        pending: versions.filter((v) => v.state === "pending").map((v) =>
          v.version
        ),
        applied,
        versions,
      };
    });
  }

  async migrate(options?: MigrateOptions): Promise<MigrationStepReport[]> {
    this.#guard("migrate");
    const dryRun = options?.dryRun ?? false;
    if (typeof dryRun !== "boolean") {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot migrate: dryRun "${String(dryRun)}" is not a boolean`,
      );
    }
    const signal = this.#signal(checkSignal("migrate", options?.signal));
    throwIfAborted("migrate", signal);
    await this.validate();
    const reports: MigrationStepReport[] = [];
    if (dryRun) {
      await this.#dryRun(reports, signal);
      return reports;
    }
    for (const schema of this.#schemas) {
      await this.#up(schema, schema.def.latest, reports, signal);
    }
    return reports;
  }

  /** Applies every pending version in one transaction, then rolls it back. */
  async #dryRun(
    reports: MigrationStepReport[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const rollback = new Error("dry run");
    try {
      await this.#writeTransaction(async (tx) => {
        for (const sql of CREATE_TABLES) await tx.execute(sql);
        for (const schema of this.#schemas) {
          const rows = await this.#readHistory(tx, schema.def.name, true);
          this.#throwProblems(this.#problems(rows));
          const current = rows.at(-1)?.version ?? 0;
          for (const version of schema.versions.slice(current)) {
            const durationMs = await this.#runStep(
              tx,
              schema,
              version,
              version.up,
              "up",
            );
            reports.push({
              schema: schema.def.name,
              version: version.version,
              name: version.name,
              direction: "up",
              durationMs,
            });
          }
        }
        throw rollback;
      }, signal);
    } catch (e) {
      if (e !== rollback) throw e;
    }
  }

  async migrateTo(
    schemaName: string,
    version: number,
  ): Promise<MigrationStepReport[]> {
    this.#guard("migrate");
    const schema = this.#schema("migrate", schemaName);
    checkTargetVersion("migrate", schemaName, version, 0, schema.def.latest);
    this.#throwProblems(
      this.#problems(await this.#readHistory(this.#db, schemaName)),
    );
    const current = await this.#current(this.#db, schemaName);
    const reports: MigrationStepReport[] = [];
    if (version >= current) {
      await this.#up(schema, version, reports);
      return reports;
    }
    for (let v = current; v > version; v--) {
      const def = schema.versions[v - 1]!;
      if (def.irreversible || def.down === undefined) {
        throw new MigrationError(
          "MIGRATION_IRREVERSIBLE",
          `Cannot migrate schema "${schemaName}" down to ${version}: version ${v} "${def.name}" is ${
            def.irreversible ? "irreversible" : "without down"
          }`,
          { schema: schemaName, version: v },
        );
      }
    }
    await this.#down(schema, version, reports);
    return reports;
  }

  async #current(executor: SqlExecutor, schema: string): Promise<number> {
    if (!(await this.#historyExists(executor))) return 0;
    const rs = await executor.execute({
      sql:
        `SELECT coalesce(max(version), 0) AS v FROM ${HISTORY_TABLE} WHERE schema = ?`,
      args: [schema],
    });
    return Number(rs.rows[0]?.v ?? 0);
  }

  async #ensureTables(signal?: AbortSignal): Promise<void> {
    if (await this.#historyExists(this.#db)) return;
    await this.#writeTransaction(async (tx) => {
      for (const sql of CREATE_TABLES) await tx.execute(sql);
    }, signal);
  }

  /** The migrator's signal combined with a call's. */
  #signal(call: AbortSignal | undefined): AbortSignal | undefined {
    const own = this.#options.signal;
    if (call === undefined) return own;
    return own === undefined ? call : AbortSignal.any([own, call]);
  }

  /** Runs `fn` in a write transaction, retrying while another connection holds the lock. */
  async #writeTransaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    signal: AbortSignal | undefined = this.#options.signal,
  ): Promise<T> {
    const deadline = performance.now() + this.#options.lockTimeoutMs;
    let delay = 10;
    for (;;) {
      throwIfAborted("migrate", signal);
      try {
        return await this.#db.transaction(fn, "write");
      } catch (e) {
        if (!isAicoDataError(e, "BUSY")) throw e;
        throwIfAborted("migrate", signal);
        if (performance.now() >= deadline) {
          throw new AicoDataError(
            "MIGRATION_LOCKED",
            `Cannot migrate: another connection held the write lock for more than ${this.#options.lockTimeoutMs} ms`,
            { cause: e },
          );
        }
        await pause(delay, signal);
        delay = Math.min(delay * 2, 500);
      }
    }
  }

  async #up(
    schema: CompiledSchema,
    target: number,
    reports: MigrationStepReport[],
    signal: AbortSignal | undefined = this.#options.signal,
  ): Promise<void> {
    await this.#ensureTables(signal);
    const name = schema.def.name;
    for (;;) {
      const report = await this.#writeTransaction(async (tx) => {
        // Re-read inside the lock: another process may have moved the schema.
        const rows = await this.#readHistory(tx, name, true);
        this.#throwProblems(this.#problems(rows));
        const current = rows.at(-1)?.version ?? 0;
        if (current >= target) return undefined;
        const version = schema.versions[current]!;
        const durationMs = await this.#runStep(
          tx,
          schema,
          version,
          version.up,
          "up",
        );
        const checksum = schema.checksums[current]!;
        const now = Date.now();
        await tx.execute({
          sql:
            `INSERT INTO ${HISTORY_TABLE} (schema, version, owner, name, checksum, applied_at, duration_ms, direction)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'up')`,
          args: [
            name,
            version.version,
            schema.def.owner,
            version.name,
            checksum,
            now,
            durationMs,
          ],
        });
        await this.#log(
          tx,
          schema,
          version.version,
          version.name,
          checksum,
          "up",
          now,
          durationMs,
        );
        return {
          schema: name,
          version: version.version,
          name: version.name,
          direction: "up" as const,
          durationMs,
        };
      }, signal);
      if (report === undefined) return;
      reports.push(report);
      if (report.version >= target) return;
    }
  }

  async #down(
    schema: CompiledSchema,
    target: number,
    reports: MigrationStepReport[],
  ): Promise<void> {
    const name = schema.def.name;
    for (;;) {
      const report = await this.#writeTransaction(async (tx) => {
        const rows = await this.#readHistory(tx, name, true);
        this.#throwProblems(this.#problems(rows));
        const current = rows.at(-1)?.version ?? 0;
        if (current <= target) return undefined;
        const version = schema.versions[current - 1]!;
        if (version.down === undefined || version.irreversible) {
          throw new MigrationError(
            "MIGRATION_IRREVERSIBLE",
            `Cannot migrate schema "${name}" down: version ${current} is irreversible`,
            { schema: name, version: current },
          );
        }
        const durationMs = await this.#runStep(
          tx,
          schema,
          version,
          version.down,
          "down",
        );
        await tx.execute({
          sql: `DELETE FROM ${HISTORY_TABLE} WHERE schema = ? AND version = ?`,
          args: [name, current],
        });
        await this.#log(
          tx,
          schema,
          current,
          version.name,
          schema.checksums[current - 1]!,
          "down",
          Date.now(),
          durationMs,
        );
        return {
          schema: name,
          version: current,
          name: version.name,
          direction: "down" as const,
          durationMs,
        };
      });
      if (report === undefined) return;
      reports.push(report);
      if (report.version - 1 <= target) return;
    }
  }

  async #log(
    tx: Transaction,
    schema: CompiledSchema,
    version: number,
    name: string,
    checksum: string,
    direction: "up" | "down" | "baseline" | "repair" | "remove",
    at: number,
    durationMs: number,
  ): Promise<void> {
    await tx.execute({
      sql:
        `INSERT INTO ${LOG_TABLE} (schema, owner, version, name, checksum, direction, at, duration_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      args: [
        schema.def.name,
        schema.def.owner,
        version,
        name,
        checksum,
        direction,
        at,
        durationMs,
      ],
    });
  }

  /** Runs one direction of a version inside `tx`; returns its duration in ms. */
  async #runStep(
    tx: Transaction,
    schema: CompiledSchema,
    version: CompiledVersion,
    step: CompiledStep,
    direction: "up" | "down",
  ): Promise<number> {
    const name = schema.def.name;
    const owner = schema.def.owner;
    const before = owner === "core"
      ? undefined
      : await snapshotSchema(tx, pluginPrefix(owner));
    const started = performance.now();
    if (step.kind === "sql") {
      for (const [index, statement] of step.statements.entries()) {
        try {
          await tx.execute(statement.sql);
        } catch (e) {
          throw new MigrationError(
            "MIGRATION_FAILED",
            `Cannot apply schema "${name}" version ${version.version} (${direction}): statement ${index} ${
              excerpt(statement.sql)
            } failed: ${e instanceof Error ? e.message : String(e)}`,
            {
              schema: name,
              version: version.version,
              statementIndex: index,
              cause: e,
            },
          );
        }
      }
    } else {
      const guarded = new GuardedTransaction(
        tx,
        owner,
        name,
        version.version,
        direction,
      );
      try {
        await step.fn(guarded);
      } catch (e) {
        if (e instanceof MigrationError) throw e;
        throw new MigrationError(
          "MIGRATION_FAILED",
          `Cannot apply schema "${name}" version ${version.version} (${direction}): the migration function failed: ${
            e instanceof Error ? e.message : String(e)
          }`,
          { schema: name, version: version.version, cause: e },
        );
      } finally {
        guarded.finish();
      }
    }
    const durationMs = performance.now() - started;
    if (before !== undefined) {
      const after = await snapshotSchema(tx, pluginPrefix(owner));
      const outside = changedOutside(before, after, pluginPrefix(owner));
      if (outside !== undefined) {
        throw new MigrationError(
          "PLUGIN_ISOLATION",
          `Cannot apply schema "${name}" version ${version.version} (${direction}): it changed "${outside}" outside the namespace "${
            pluginPrefix(owner)
          }"`,
          { schema: name, version: version.version },
        );
      }
    }
    return durationMs;
  }

  async repair(schemaName?: string): Promise<RepairedVersion[]> {
    this.#guard("repair");
    if (schemaName !== undefined) this.#schema("repair", schemaName);
    if (!(await this.#historyExists(this.#db))) return [];
    return await this.#writeTransaction(async (tx) => {
      const rows = await this.#readHistory(tx, schemaName);
      const repaired: RepairedVersion[] = [];
      for (const { row, kind } of this.#problems(rows)) {
        if (kind !== "changed") continue;
        const schema = this.#byName.get(row.schema)!;
        const version = schema.versions[row.version - 1]!;
        const checksum = schema.checksums[row.version - 1]!;
        await tx.execute({
          sql:
            `UPDATE ${HISTORY_TABLE} SET checksum = ?, name = ? WHERE schema = ? AND version = ?`,
          args: [checksum, version.name, row.schema, row.version],
        });
        await this.#log(
          tx,
          schema,
          row.version,
          version.name,
          checksum,
          "repair",
          Date.now(),
          0,
        );
        repaired.push({
          schema: row.schema,
          version: row.version,
          previousChecksum: row.checksum,
          checksum,
        });
      }
      return repaired;
    });
  }

  async baseline(schemaName: string, version: number): Promise<void> {
    this.#guard("baseline");
    const schema = this.#schema("baseline", schemaName);
    checkTargetVersion("baseline", schemaName, version, 1, schema.def.latest);
    await this.#ensureTables();
    await this.#writeTransaction(async (tx) => {
      if ((await this.#current(tx, schemaName)) > 0) {
        throw new AicoDataError(
          "ALREADY_EXISTS",
          `Cannot baseline schema "${schemaName}": it already has applied versions`,
        );
      }
      const now = Date.now();
      for (const v of schema.versions.slice(0, version)) {
        const checksum = schema.checksums[v.version - 1]!;
        await tx.execute({
          sql:
            `INSERT INTO ${HISTORY_TABLE} (schema, version, owner, name, checksum, applied_at, duration_ms, direction)
                VALUES (?, ?, ?, ?, ?, ?, 0, 'baseline')`,
          args: [
            schemaName,
            v.version,
            schema.def.owner,
            v.name,
            checksum,
            now,
          ],
        });
        await this.#log(
          tx,
          schema,
          v.version,
          v.name,
          checksum,
          "baseline",
          now,
          0,
        );
      }
    });
  }

  async removePlugin(plugin: string): Promise<RemovePluginReport> {
    this.#guard("remove plugin");
    if (
      typeof plugin !== "string" || !PLUGIN_NAME.test(plugin) ||
      plugin === "core"
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot remove plugin "${
          String(plugin)
        }": not a plugin name (${PLUGIN_NAME})`,
      );
    }
    const prefix = pluginPrefix(plugin);
    return await this.#writeTransaction(async (tx) => {
      await tx.execute("PRAGMA defer_foreign_keys = ON");
      const objects: string[] = [];
      for (let guard = 0; guard < 100_000; guard++) {
        const rs = await tx.execute({
          sql: `SELECT type, name FROM sqlite_schema
                WHERE substr(lower(name), 1, length(?1)) = ?1 AND type IN ('trigger', 'view', 'table', 'index')
                ORDER BY CASE type WHEN 'trigger' THEN 0 WHEN 'view' THEN 1 WHEN 'index' THEN 3 ELSE 2 END,
                         CASE WHEN sql LIKE 'CREATE VIRTUAL%' THEN 0 ELSE 1 END, name
                LIMIT 1`,
          args: [prefix],
        });
        const row = rs.rows[0];
        if (row === undefined) break;
        const type = String(row.type).toUpperCase();
        const name = String(row.name);
        await tx.execute(`DROP ${type} IF EXISTS ${quoteIdent(name)}`);
        objects.push(name);
      }
      const schemas: string[] = [];
      if (await this.#historyExists(tx)) {
        const rs = await tx.execute({
          sql:
            `SELECT schema, version, name, checksum FROM ${HISTORY_TABLE} WHERE owner = ? ORDER BY schema, version`,
          args: [plugin],
        });
        const now = Date.now();
        for (const r of rs.rows) {
          const schema = String(r.schema);
          if (!schemas.includes(schema)) schemas.push(schema);
          await tx.execute({
            sql:
              `INSERT INTO ${LOG_TABLE} (schema, owner, version, name, checksum, direction, at, duration_ms)
                  VALUES (?, ?, ?, ?, ?, 'remove', ?, 0)`,
            args: [
              schema,
              plugin,
              Number(r.version),
              String(r.name),
              String(r.checksum),
              now,
            ],
          });
        }
        await tx.execute({
          sql: `DELETE FROM ${HISTORY_TABLE} WHERE owner = ?`,
          args: [plugin],
        });
      }
      return { objects, schemas };
    });
  }
}

/**
 * The objects of `sqlite_schema` that a plugin with `prefix` must not change:
 * everything but its own objects and the automatic indexes of its tables.
 */
/** A statement quoted for a message: whitespace collapsed, at most 80 characters. */
function excerpt(sql: string): string {
  const flat = sql.replace(/\s+/g, " ").trim();
  return `"${flat.length > 80 ? `${flat.slice(0, 77)}...` : flat}"`;
}

async function snapshotSchema(
  tx: SqlExecutor,
  prefix: string,
): Promise<SchemaObjects> {
  const rs = await tx.execute({
    sql: `SELECT type, name, tbl_name, sql FROM sqlite_schema
          WHERE substr(lower(name), 1, length(?1)) <> ?1
            AND NOT (name LIKE 'sqlite\\_autoindex\\_%' ESCAPE '\\' AND substr(lower(tbl_name), 1, length(?1)) = ?1)`,
    args: [prefix],
  });
  const map: SchemaObjects = new Map();
  for (const r of rs.rows) {
    map.set(
      `${String(r.type)}:${String(r.name)}`,
      `${String(r.tbl_name)}\u0000${String(r.sql as Value)}`,
    );
  }
  return map;
}

/** The first object outside `prefix` that was created, dropped or changed, if any. */
function changedOutside(
  before: SchemaObjects,
  after: SchemaObjects,
  prefix: string,
): string | undefined {
  const allowed = (key: string, value: string | undefined): boolean => {
    const name = key.slice(key.indexOf(":") + 1).toLowerCase();
    if (name.startsWith(prefix)) return true;
    if (name === "sqlite_sequence") return true; // created by AUTOINCREMENT
    const table = (value ?? "").split("\u0000")[0]!.toLowerCase();
    return name.startsWith("sqlite_autoindex_") && table.startsWith(prefix);
  };
  for (const [key, value] of after) {
    if (before.get(key) !== value && !allowed(key, value)) {
      return key.slice(key.indexOf(":") + 1);
    }
  }
  for (const [key, value] of before) {
    if (!after.has(key) && !allowed(key, value)) {
      return key.slice(key.indexOf(":") + 1);
    }
  }
  return undefined;
}

/**
 * The transaction a migration function receives: every statement is checked
 * against the owner's rules before it runs, and it is unusable once the
 * function returns.
 */
class GuardedTransaction implements Transaction {
  readonly #tx: Transaction;
  readonly #owner: string;
  readonly #schema: string;
  readonly #version: number;
  readonly #direction: string;
  #index = 0;
  #finished = false;

  constructor(
    tx: Transaction,
    owner: string,
    schema: string,
    version: number,
    direction: string,
  ) {
    this.#tx = tx;
    this.#owner = owner;
    this.#schema = schema;
    this.#version = version;
    this.#direction = direction;
  }

  get closed(): boolean {
    return this.#finished || this.#tx.closed;
  }

  finish(): void {
    this.#finished = true;
  }

  #check(stmt: string | InStatement): void {
    if (this.#finished) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        "Cannot execute: the migration transaction is finished",
      );
    }
    const sql = typeof stmt === "string" ? stmt : stmt?.sql;
    const index = this.#index;
    const fail = (
      code: "PLUGIN_ISOLATION" | "SCHEMA_INVALID",
      reason: string,
      cause?: unknown,
    ): MigrationError =>
      new MigrationError(
        code,
        `Cannot apply schema "${this.#schema}" version ${this.#version} (${this.#direction}): statement ${index} refused: ${reason}`,
        {
          schema: this.#schema,
          version: this.#version,
          statementIndex: index,
          cause,
        },
      );
    if (typeof sql !== "string") {
      throw fail("SCHEMA_INVALID", "the statement is not SQL text");
    }
    let statements;
    try {
      statements = splitStatements(sql);
    } catch (e) {
      if (!(e instanceof SqlSyntaxError)) throw e;
      throw fail("SCHEMA_INVALID", e.message, e);
    }
    for (const s of statements) {
      const violation = checkStatement(this.#owner, analyseStatement(s.tokens));
      if (violation !== undefined) throw fail(violation.code, violation.reason);
    }
  }

  async #run<T>(sql: string, fn: () => Promise<T>): Promise<T> {
    const index = this.#index++;
    try {
      return await fn();
    } catch (e) {
      throw new MigrationError(
        "MIGRATION_FAILED",
        `Cannot apply schema "${this.#schema}" version ${this.#version} (${this.#direction}): statement ${index} ${
          excerpt(sql)
        } failed: ${e instanceof Error ? e.message : String(e)}`,
        {
          schema: this.#schema,
          version: this.#version,
          statementIndex: index,
          cause: e,
        },
      );
    }
  }

  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet> {
    try {
      this.#check(stmt);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#run(
      typeof stmt === "string" ? stmt : stmt.sql,
      () => this.#tx.execute(stmt, args),
    );
  }

  batch(
    stmts: readonly (string | InStatement)[],
    mode?: TransactionMode,
  ): Promise<ResultSet[]> {
    try {
      for (const s of stmts) this.#check(s);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#run(
      "(batch)",
      () => this.#tx.batch(stmts, mode),
    );
  }
}

/** Waits `ms`, or rejects with `ABORTED` as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError("migrate", signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
