/**
 * The narrow engine seam of `analytics/`: what the refresher, the analyses
 * and `query()` call, implemented by DuckDB-WASM (`_wasm_engine.ts`, the
 * default) and by the native `@duckdb/node-api` (`_native_engine.ts`).
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import { requirePermission } from "../_internal/permissions.ts";

/** Which DuckDB build runs the analyses. */
export type EngineKind = "wasm" | "native";

/** The engine choice of {@linkcode openAnalyticsEngine}: `auto` takes `native` when `--allow-ffi` is granted. */
export type EngineChoice = EngineKind | "auto";

/** A value bound to a `?` (or `$1`) parameter of a query. */
export type QueryParam = null | string | number | boolean | bigint | Date;

/**
 * A value read back from a query.
 *
 * - integers (`TINYINT` to `BIGINT`, `UBIGINT`, native `HUGEINT`): a
 *   `number` when within ±(2^53 − 1), otherwise a `bigint` (never a lossy
 *   number). DuckDB-WASM hands `HUGEINT`/`UHUGEINT` over as doubles: on the
 *   WASM engine cast them (`x::VARCHAR`) when exact values past 2^53 matter;
 * - `DECIMAL`, `FLOAT`, `DOUBLE`: `number`;
 * - `VARCHAR`, `UUID`, `ENUM`: `string`; `BOOLEAN`: `boolean`;
 * - `TIMESTAMP` (any unit, with or without time zone) and `DATE`: `Date`
 *   (UTC); `TIME`: microseconds since midnight (`number`);
 * - `BLOB`: `Uint8Array`; `LIST`/`ARRAY`: arrays; `STRUCT`: plain objects;
 *   `MAP`: arrays of `{ key, value }`;
 * - `INTERVAL`: not portable between the engines; convert it in SQL
 *   (`epoch(x)`, `x::VARCHAR`);
 * - SQL `NULL`: `null`.
 *
 * Columns with the same name: the last one wins in the row object.
 */
export type PlainValue =
  | null
  | string
  | number
  | boolean
  | bigint
  | Date
  | Uint8Array
  | PlainValue[]
  | { [key: string]: PlainValue };

/** A result: column names and rows keyed by them, in order. */
export interface QueryResult {
  /** The column names, in order. */
  readonly columns: string[];
  /** The rows. */
  readonly rows: Record<string, PlainValue>[];
}

/** One column of a {@linkcode ColumnBatch}: doubles or nullable strings. */
export type LoadColumn =
  | {
    readonly name: string;
    readonly type: "double";
    readonly values: Float64Array;
  }
  | {
    readonly name: string;
    readonly type: "varchar";
    readonly values: readonly (string | null)[];
  };

/** Rows in columnar form, loaded into a new engine table. */
export interface ColumnBatch {
  /** The columns (each with `length` values). */
  readonly columns: readonly LoadColumn[];
  /** The number of rows. */
  readonly length: number;
}

/**
 * What the analytics core calls on a DuckDB build. An engine is in memory,
 * has external access disabled and its configuration locked (no file, no
 * network, no extension install or load), and runs one call at a time.
 */
export interface AnalyticsEngine extends AsyncDisposable {
  /** The build. */
  readonly kind: EngineKind;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /**
   * Runs SQL statements that return nothing of interest.
   *
   * @param sql One or more statements.
   * @returns When done.
   * @throws {AicoDataError} `SQL_ERROR` with DuckDB's message; `STORE_CLOSED`.
   */
  exec(sql: string): Promise<void>;
  /**
   * Runs one query with positional parameters.
   *
   * @param sql The query.
   * @param params The values of its `?` parameters.
   * @returns Plain JS rows.
   * @throws {AicoDataError} `SQL_ERROR` with DuckDB's message; `STORE_CLOSED`.
   */
  query(sql: string, params?: readonly QueryParam[]): Promise<QueryResult>;
  /**
   * Creates table `table` (which must not exist) from a batch: `double`
   * columns as `DOUBLE`, `varchar` columns as `VARCHAR`.
   *
   * @param table The new table's name (`[a-z_][a-z0-9_]*`).
   * @param batch The rows.
   * @returns When loaded.
   * @throws {AicoDataError} `SQL_ERROR`; `STORE_CLOSED`.
   */
  load(table: string, batch: ColumnBatch): Promise<void>;
  /**
   * Writes a query's result as Parquet bytes (native engine only).
   *
   * @param sql The query.
   * @returns The Parquet file's bytes.
   * @throws {AicoDataError} `INVALID_INPUT` on the WASM engine; `SQL_ERROR`.
   */
  parquet(sql: string): Promise<Uint8Array>;
  /**
   * Frees the engine; safe to call twice.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
}

/** Options of {@linkcode openAnalyticsEngine}. */
export interface AnalyticsEngineOptions {
  /**
   * Threads DuckDB may use (the native engine; the WASM build has one).
   *
   * @default {1}
   */
  readonly threads?: number;
}

/**
 * Tells which engine `choice` means here: `auto` is `native` when
 * `--allow-ffi` is granted, else `wasm`.
 *
 * @param choice The choice.
 * @returns The engine kind.
 * @throws {AicoDataError} `INVALID_INPUT` for an unknown choice.
 *
 * @example Resolving a choice
 * ```ts
 * import { resolveEngineKind } from "./engine.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveEngineKind("wasm"), "wasm");
 * assert.ok(["wasm", "native"].includes(resolveEngineKind("auto")));
 * ```
 */
export function resolveEngineKind(choice: EngineChoice): EngineKind {
  if (choice === "wasm" || choice === "native") return choice;
  if (choice === "auto") {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted"
      ? "native"
      : "wasm";
  }
  throw new AicoDataError(
    "INVALID_INPUT",
    `Cannot open analytics engine: "engine" must be wasm, native or auto, got "${
      String(choice)
    }"`,
  );
}

/**
 * Opens an in-memory DuckDB engine. The SDK is imported here, lazily.
 *
 * Permissions: `--allow-read` (the package files, in `node_modules` or Deno's npm cache) and
 * `--allow-sys=cpus` for `wasm`; `--allow-read` and `--allow-ffi` for
 * `native`.
 *
 * @param choice `wasm`, `native` or `auto`.
 * @param options Threads.
 * @returns The engine.
 * @throws {AicoDataError} `PERMISSION_DENIED` naming the flag, `INVALID_INPUT`.
 *
 * @example Running SQL on the WASM engine
 * ```ts
 * import { openAnalyticsEngine } from "./engine.ts";
 * import assert from "node:assert/strict";
 *
 * await using engine = await openAnalyticsEngine("wasm");
 * const r = await engine.query("SELECT 40 + ? AS n", [2]);
 * assert.deepEqual(r.rows, [{ n: 42 }]);
 * ```
 */
export async function openAnalyticsEngine(
  choice: EngineChoice = "wasm",
  options: AnalyticsEngineOptions = {},
): Promise<AnalyticsEngine> {
  const kind = resolveEngineKind(choice);
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open analytics engine: "threads" must be an integer from 1 to 256, got "${
        String(threads)
      }"`,
    );
  }
  requirePermission({ name: "read" }, "--allow-read", "open analytics engine");
  if (kind === "native") {
    requirePermission(
      { name: "ffi" },
      "--allow-ffi",
      "open native analytics engine",
    );
    const { openNativeEngine } = await import("./_native_engine.ts");
    return await openNativeEngine(threads);
  }
  requirePermission(
    { name: "sys", kind: "cpus" },
    "--allow-sys=cpus",
    "open analytics engine",
  );
  const { openWasmEngine } = await import("./_wasm_engine.ts");
  return await openWasmEngine();
}
