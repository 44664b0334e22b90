// Internal: the DuckDB-WASM adapter (the one importer of
// @duckdb/duckdb-wasm). In memory, single-threaded, blocking Node bindings;
// the SDK is imported and its wasm file resolved by full `npm:` specifier,
// so that both work from outside this repository (no import map, no
// node_modules next to this file) and in a `deno compile` binary (the
// package is part of the module graph, so it is embedded).
import duckdb from "npm:@duckdb/duckdb-wasm@1.32.0/dist/duckdb-node-blocking.cjs";
import { fileURLToPath } from "node:url";
import type {
  AnalyticsEngine,
  ColumnBatch,
  PlainValue,
  QueryParam,
  QueryResult,
} from "./engine.ts";
import { AicoDataError } from "../errors.ts";
import { batchToIpc } from "./_arrow.ts";
import {
  checkTableName,
  closedError,
  LOCKDOWN,
  plainInteger,
  sqlError,
} from "./_engine_util.ts";

// Minimal views of the SDK's objects (its types stay in this file).
interface ArrowType {
  readonly typeId: number;
  readonly scale?: number;
  readonly unit?: number;
  readonly children?: { readonly name: string; readonly type: ArrowType }[];
  readonly dictionary?: ArrowType;
  readonly valueType?: ArrowType;
}
interface ArrowVector {
  readonly length: number;
  readonly type: ArrowType;
  get(i: number): unknown;
}
interface ArrowTable {
  readonly numRows: number;
  readonly schema: { readonly fields: { name: string; type: ArrowType }[] };
  getChildAt(i: number): ArrowVector | null;
}
interface WasmConnection {
  query(sql: string): ArrowTable;
  prepare(sql: string): {
    query(...params: unknown[]): ArrowTable;
    close(): void;
  };
  insertArrowFromIPCStream(
    buffer: Uint8Array,
    options: { name: string; create?: boolean },
  ): void;
  close(): void;
}
interface WasmDb {
  instantiate(): Promise<unknown>;
  connect(): WasmConnection;
  reset?(): unknown;
}

// Arrow type ids (stable across apache-arrow copies).
const T = {
  Null: 1,
  Int: 2,
  Float: 3,
  Binary: 4,
  Utf8: 5,
  Bool: 6,
  Decimal: 7,
  Date: 8,
  Time: 9,
  Timestamp: 10,
  Interval: 11,
  List: 12,
  Struct: 13,
  FixedSizeBinary: 15,
  FixedSizeList: 16,
  Map: 17,
  LargeBinary: 19,
  LargeUtf8: 20,
  Dictionary: -1,
} as const;

function decimalToNumber(v: unknown, scale: number): number {
  // A DecimalBigNum: little-endian uint32 words of a two's-complement integer.
  const words = v as Uint32Array;
  let n = 0n;
  for (let i = words.length - 1; i >= 0; i--) {
    n = (n << 32n) | BigInt(words[i]!);
  }
  const bits = BigInt(words.length * 32);
  if (words.length > 0 && (words[words.length - 1]! & 0x80000000) !== 0) {
    n -= 1n << bits;
  }
  return Number(n) / 10 ** scale;
}

function convert(v: unknown, type: ArrowType): PlainValue {
  if (v === null || v === undefined) return null;
  switch (type.typeId) {
    case T.Int:
      return typeof v === "bigint" ? plainInteger(v) : v as number;
    case T.Float:
      return v as number;
    case T.Decimal:
      return decimalToNumber(v, type.scale ?? 0);
    case T.Date:
    case T.Timestamp:
      return new Date(Number(v));
    case T.Utf8:
    case T.LargeUtf8:
      return v as string;
    case T.Bool:
      return v as boolean;
    case T.Binary:
    case T.LargeBinary:
    case T.FixedSizeBinary:
      return new Uint8Array(v as Uint8Array);
    case T.List:
    case T.FixedSizeList: {
      const vec = v as ArrowVector;
      const child = type.children?.[0]?.type ?? vec.type;
      const out: PlainValue[] = [];
      for (let i = 0; i < vec.length; i++) out.push(convert(vec.get(i), child));
      return out;
    }
    case T.Struct: {
      const row = v as Record<string, unknown>;
      const o: Record<string, PlainValue> = {};
      for (const f of type.children ?? []) {
        o[f.name] = convert(row[f.name], f.type);
      }
      return o;
    }
    case T.Map: {
      const entries = (v as { toJSON(): Record<string, unknown> }).toJSON();
      const valueType = type.children?.[0]?.type.children?.[1]?.type;
      return Object.entries(entries).map(([key, value]) => ({
        key,
        value: valueType ? convert(value, valueType) : String(value),
      }));
    }
    case T.Dictionary:
      return convert(v, type.dictionary!);
    default:
      return typeof v === "bigint" ? plainInteger(v) : String(v);
  }
}

function toRows(t: ArrowTable): QueryResult {
  const fields = t.schema.fields;
  const columns = fields.map((f) => f.name);
  const vectors = fields.map((_, i) => t.getChildAt(i)!);
  const rows: Record<string, PlainValue>[] = new Array(t.numRows);
  for (let r = 0; r < t.numRows; r++) {
    const o: Record<string, PlainValue> = {};
    for (let c = 0; c < fields.length; c++) {
      o[columns[c]!] = convert(vectors[c]!.get(r), fields[c]!.type);
    }
    rows[r] = o;
  }
  return { columns, rows };
}

function bindable(p: QueryParam): unknown {
  if (p instanceof Date) return p.toISOString();
  if (typeof p === "bigint") {
    const n = plainInteger(p);
    return typeof n === "bigint" ? n.toString() : n;
  }
  return p;
}

class WasmEngine implements AnalyticsEngine {
  readonly kind = "wasm" as const;
  #db: WasmDb | undefined;
  #conn: WasmConnection | undefined;

  constructor(db: WasmDb, conn: WasmConnection) {
    this.#db = db;
    this.#conn = conn;
  }

  get closed(): boolean {
    return this.#conn === undefined;
  }

  #c(action: string): WasmConnection {
    if (this.#conn === undefined) throw closedError(action);
    return this.#conn;
  }

  exec(sql: string): Promise<void> {
    try {
      this.#c("run analytics SQL").query(sql);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(sqlError("run analytics SQL", e));
    }
  }

  query(sql: string, params: readonly QueryParam[] = []): Promise<QueryResult> {
    try {
      const c = this.#c("query analytics");
      if (params.length === 0) return Promise.resolve(toRows(c.query(sql)));
      const stmt = c.prepare(sql);
      try {
        return Promise.resolve(toRows(stmt.query(...params.map(bindable))));
      } finally {
        stmt.close();
      }
    } catch (e) {
      return Promise.reject(sqlError("query analytics", e));
    }
  }

  load(table: string, batch: ColumnBatch): Promise<void> {
    try {
      checkTableName(table);
      const c = this.#c("load analytics table");
      c.insertArrowFromIPCStream(batchToIpc(batch), {
        name: table,
        create: true,
      });
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(sqlError("load analytics table", e));
    }
  }

  parquet(_sql: string): Promise<Uint8Array> {
    return Promise.reject(
      new AicoDataError(
        "INVALID_INPUT",
        'Cannot export Parquet: the WASM engine has no Parquet writer, use engine "native"',
      ),
    );
  }

  close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#db = undefined;
    try {
      conn?.close();
    } catch {
      // closing twice or after a failure is fine
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The DuckDB wasm modules. `import.meta.resolve` of a full `npm:` specifier
 * gives the file in whichever npm layout Deno uses: the project's
 * `node_modules`, the global cache (a script outside this repository), or
 * the files embedded in a `deno compile` binary.
 */
const WASM = {
  eh: import.meta.resolve("npm:@duckdb/duckdb-wasm@1.32.0/dist/duckdb-eh.wasm"),
  mvp: import.meta.resolve(
    "npm:@duckdb/duckdb-wasm@1.32.0/dist/duckdb-mvp.wasm",
  ),
};

function localPath(url: string): string {
  if (!url.startsWith("file:")) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open analytics engine: the DuckDB wasm module resolved to "${url}", not a local file`,
    );
  }
  return fileURLToPath(url);
}

export async function openWasmEngine(): Promise<AnalyticsEngine> {
  let conn: WasmConnection | undefined;
  try {
    const eh = localPath(WASM.eh);
    const mvp = localPath(WASM.mvp);
    const db: WasmDb = await duckdb.createDuckDB(
      {
        mvp: { mainModule: mvp, mainWorker: "" },
        eh: { mainModule: eh, mainWorker: "" },
      },
      new duckdb.VoidLogger(),
      duckdb.NODE_RUNTIME,
    );
    await db.instantiate();
    conn = db.connect();
    for (const s of LOCKDOWN) conn.query(s);
    return new WasmEngine(db, conn);
  } catch (e) {
    try {
      conn?.close();
    } catch {
      // already failing
    }
    throw sqlError("open analytics engine", e);
  }
}
