// Internal: the native DuckDB adapter (the one importer of @duckdb/node-api).
// In memory; loads batches through data chunks and the appender.
import {
  DOUBLE,
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBType,
  VARCHAR,
} from "npm:@duckdb/node-api@1.5.6-r.1";
import type {
  AnalyticsEngine,
  ColumnBatch,
  PlainValue,
  QueryParam,
  QueryResult,
} from "./engine.ts";
import {
  checkTableName,
  closedError,
  ident,
  LOCKDOWN,
  plainInteger,
  sqlError,
} from "./_engine_util.ts";

const CHUNK = 2048;

function plain(v: unknown): PlainValue {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return plainInteger(v);
  if (
    typeof v === "number" || typeof v === "string" || typeof v === "boolean"
  ) return v;
  if (v instanceof Date) return v;
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "object") {
    const o: Record<string, PlainValue> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      o[k] = plain(x);
    }
    return o;
  }
  return String(v);
}

function bindable(p: QueryParam): string | number | boolean | bigint | null {
  if (p instanceof Date) return p.toISOString();
  return p;
}

class NativeEngine implements AnalyticsEngine {
  readonly kind = "native" as const;
  #instance: DuckDBInstance | undefined;
  #conn: DuckDBConnection | undefined;
  #tmp: string;

  constructor(instance: DuckDBInstance, conn: DuckDBConnection, tmp: string) {
    this.#instance = instance;
    this.#conn = conn;
    this.#tmp = tmp;
  }

  get closed(): boolean {
    return this.#conn === undefined;
  }

  #c(action: string): DuckDBConnection {
    if (this.#conn === undefined) throw closedError(action);
    return this.#conn;
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.#c("run analytics SQL").run(sql);
    } catch (e) {
      throw sqlError("run analytics SQL", e);
    }
  }

  async query(
    sql: string,
    params: readonly QueryParam[] = [],
  ): Promise<QueryResult> {
    try {
      const c = this.#c("query analytics");
      const r = params.length === 0
        ? await c.run(sql)
        : await c.run(sql, params.map(bindable));
      const columns = r.columnNames();
      const raw = await r.getRowsJS();
      const rows = raw.map((values) => {
        const o: Record<string, PlainValue> = {};
        for (let i = 0; i < columns.length; i++) {
          o[columns[i]!] = plain(values[i]);
        }
        return o;
      });
      return { columns, rows };
    } catch (e) {
      throw sqlError("query analytics", e);
    }
  }

  async load(table: string, batch: ColumnBatch): Promise<void> {
    let appender: DuckDBAppender | undefined;
    try {
      checkTableName(table);
      const c = this.#c("load analytics table");
      const types: DuckDBType[] = batch.columns.map((col) =>
        col.type === "double" ? DOUBLE : VARCHAR
      );
      await c.run(
        `CREATE TABLE ${ident(table)} (${
          batch.columns.map((col, i) =>
            `${ident(col.name)} ${types[i] === DOUBLE ? "DOUBLE" : "VARCHAR"}`
          ).join(", ")
        })`,
      );
      appender = await c.createAppender(table);
      for (let o = 0; o < batch.length; o += CHUNK) {
        const e = Math.min(batch.length, o + CHUNK);
        const chunk = DuckDBDataChunk.create(types, e - o);
        for (let j = 0; j < batch.columns.length; j++) {
          const col = batch.columns[j]!;
          // A typed subarray is read in place (no array of boxed numbers).
          chunk.setColumnValues(
            j,
            col.type === "double"
              ? col.values.subarray(o, e) as unknown as readonly number[]
              : col.values.slice(o, e),
          );
        }
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } catch (e) {
      throw sqlError("load analytics table", e);
    } finally {
      appender?.closeSync();
    }
  }

  async parquet(sql: string): Promise<Uint8Array> {
    const c = this.#c("export Parquet");
    const file = `${this.#tmp}/${crypto.randomUUID()}.parquet`;
    try {
      await c.run(
        `COPY (${sql}) TO '${file}' (FORMAT parquet)`,
      );
      return await Deno.readFile(file);
    } catch (e) {
      throw sqlError("export Parquet", e);
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  }

  async close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = undefined;
    try {
      conn?.closeSync();
      this.#instance?.closeSync();
    } catch {
      // closing twice or after a failure is fine
    }
    this.#instance = undefined;
    await Deno.remove(this.#tmp, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

export async function openNativeEngine(
  threads: number,
): Promise<AnalyticsEngine> {
  // A private folder (in memory where /dev/shm exists) is the only path
  // DuckDB may touch: Parquet exports are written there and read back.
  let base: string | undefined;
  try {
    if ((await Deno.stat("/dev/shm")).isDirectory) base = "/dev/shm";
  } catch {
    base = undefined;
  }
  const tmp = await Deno.makeTempDir({
    prefix: "aico_duckdb_",
    ...(base ? { dir: base } : {}),
  });
  let instance: DuckDBInstance | undefined;
  try {
    instance = await DuckDBInstance.create(":memory:", {
      threads: String(threads),
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
    });
    const conn = await instance.connect();
    await conn.run(`SET allowed_directories = ['${tmp}/']`);
    for (const s of LOCKDOWN) await conn.run(s);
    return new NativeEngine(instance, conn, tmp);
  } catch (e) {
    instance?.closeSync();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw sqlError("open analytics engine", e);
  }
}
