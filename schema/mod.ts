/**
 * Schema registry and migrator: versioned schemas per owner (core or a
 * plugin), applied in priority order, one transaction per version, with
 * per-schema history, checksums checked at open, up and down migrations, a
 * cross-process lock and plugin isolation.
 *
 * - {@linkcode registerSchema} declares a schema (pure; validated; frozen).
 * - {@linkcode createSchemaRegistry} groups definitions in apply order.
 * - {@linkcode openMigrator} applies them: `migrate()`, `migrateTo()`,
 *   `plan()`, `validate()`, `repair()`, `baseline()`, `removePlugin()`.
 *
 * Registration is static (no dynamic `import()`), so it survives
 * `deno compile`. History lives in `_aico_schema_history` (one row per
 * applied version: schema, version, owner, name, SHA-256 checksum, applied
 * at, duration, direction) and `_aico_schema_log` (append-only: every up,
 * down, baseline, repair and plugin removal).
 *
 * A plugin schema may only create, alter, drop, write, read or reference
 * objects named `plugin_<plugin>_*`: checked statically at registration,
 * again for every statement a migration function runs, and after each
 * version against `sqlite_schema` (rolled back with `PLUGIN_ISOLATION`).
 *
 * Permissions: those of the database (`openStorage()`: `--allow-read`,
 * `--allow-write`, `--allow-ffi`, `--allow-sys`, `--allow-env=LIBSQL_JS_DEV`).
 *
 * @example Core and a plugin, migrated, then the plugin removed
 * ```ts
 * import { createSchemaRegistry, openMigrator, registerSchema } from "./mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const core = registerSchema("core", "core", { priority: 0 }, [
 *   { version: 1, name: "logs", up: "CREATE TABLE logs (id INTEGER PRIMARY KEY, msg TEXT)" },
 * ]);
 * const weather = registerSchema("weather", "weather", {}, [
 *   {
 *     version: 1,
 *     name: "readings",
 *     up: "CREATE TABLE plugin_weather_readings (at INTEGER PRIMARY KEY, celsius REAL)",
 *     down: "DROP TABLE plugin_weather_readings",
 *   },
 * ]);
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   await using migrator = await openMigrator(db, createSchemaRegistry([core, weather]));
 *   const applied = await migrator.migrate();
 *   assert.deepEqual(applied.map((a) => a.schema), ["core", "weather"]);
 *   const removed = await migrator.removePlugin("weather");
 *   assert.deepEqual(removed.objects, ["plugin_weather_readings"]);
 *   assert.equal((await db.execute("SELECT count(*) AS n FROM logs")).rows[0]?.n, 0);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */

export {
  type MigrationFunction,
  type MigrationStep,
  registerSchema,
  type RegisterSchemaOptions,
  type SchemaDefinition,
  type SchemaVersion,
} from "./schema_version.ts";
export { createSchemaRegistry, type SchemaRegistry } from "./registry.ts";
export {
  HISTORY_TABLE,
  LOG_TABLE,
  type MigratableDatabase,
  type MigrateOptions,
  type MigrationStepReport,
  type Migrator,
  type MigratorOptions,
  openMigrator,
  type RemovePluginReport,
  type RepairedVersion,
  type ResolvedMigratorOptions,
  resolveMigratorOptions,
  type SchemaPlan,
  type VersionPlan,
} from "./migrator.ts";
export {
  MigrationError,
  type MigrationErrorDetails,
} from "./migration_error.ts";
export {
  AicoDataError,
  type AicoDataErrorCode,
  isAicoDataError,
} from "../errors.ts";
export type {
  InArgs,
  InStatement,
  InValue,
  ResultSet,
  Row,
  SqlExecutor,
  Transaction,
  TransactionMode,
  Value,
} from "../storage/types.ts";
