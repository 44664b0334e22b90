// Test helper: a minimal Hrana v2 over HTTP server (the protocol sqld and
// Turso speak to `@libsql/client`) backed by a real `npm:libsql` database
// file, so the remote path of storage/ runs against real SQL. No sqld binary
// can be installed here; this covers the client side of the protocol only.
import Database from "libsql";

type NativeDb = InstanceType<typeof Database>;
type HValue =
  | { type: "null" }
  | { type: "integer"; value: string }
  | { type: "float"; value: number }
  | { type: "text"; value: string }
  | { type: "blob"; base64: string };

interface HStmt {
  sql?: string;
  sql_id?: number;
  args?: HValue[];
  named_args?: { name: string; value: HValue }[];
  want_rows?: boolean;
}

type HCond =
  | { type: "ok"; step: number }
  | { type: "error"; step: number }
  | { type: "not"; cond: HCond }
  | { type: "and"; conds: HCond[] }
  | { type: "or"; conds: HCond[] }
  | { type: "is_autocommit" };

function encodeBase64Bytes(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function decodeBase64(text: string): Uint8Array {
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function fromHrana(v: HValue): unknown {
  switch (v.type) {
    case "null":
      return null;
    case "integer":
      return BigInt(v.value);
    case "float":
      return v.value;
    case "text":
      return v.value;
    case "blob":
      return decodeBase64(v.base64);
  }
}

function toHrana(v: unknown): HValue {
  if (v === null || v === undefined) return { type: "null" };
  if (typeof v === "bigint") return { type: "integer", value: v.toString() };
  if (typeof v === "number") return { type: "float", value: v };
  if (typeof v === "string") return { type: "text", value: v };
  const bytes = v instanceof Uint8Array ? v : new Uint8Array(v as ArrayBuffer);
  return { type: "blob", base64: encodeBase64Bytes(bytes) };
}

function execute(
  db: NativeDb,
  stmt: HStmt,
  stored: Map<number, string>,
): unknown {
  const s = db.prepare(stmt.sql ?? stored.get(stmt.sql_id ?? -1) ?? "");
  let args: unknown = (stmt.args ?? []).map(fromHrana);
  if (stmt.named_args && stmt.named_args.length > 0) {
    const named: Record<string, unknown> = {};
    for (const a of stmt.named_args) {
      named[a.name.replace(/^[:@$]/, "")] = fromHrana(a.value);
    }
    args = named;
  }
  if (s.reader) {
    const cols = (s.columns() as { name: string; type: string | null }[]).map((
      c,
    ) => ({
      name: c.name,
      decltype: c.type,
    }));
    const rows =
      (s.raw(true).safeIntegers(true).all(args as never) as unknown[][]).map((
        r,
      ) => r.map(toHrana));
    return { cols, rows, affected_row_count: 0, last_insert_rowid: null };
  }
  const info = s.safeIntegers(true).run(args as never) as unknown as {
    changes: bigint;
    lastInsertRowid: bigint;
  };
  return {
    cols: [],
    rows: [],
    affected_row_count: Number(info.changes),
    last_insert_rowid: String(info.lastInsertRowid),
  };
}

function errorOf(err: unknown): { message: string; code: string } {
  const e = err as { message?: string; code?: string };
  return { message: e.message ?? String(err), code: e.code ?? "UNKNOWN" };
}

/** A running shim server. */
export interface HranaShim {
  readonly url: string;
  readonly requests: number;
  close(): Promise<void>;
}

/** Starts the shim on 127.0.0.1 with a database file at `path`. */
export function startHranaShim(path: string): HranaShim {
  const streams = new Map<string, NativeDb>();
  const storedSql = new Map<string, Map<number, string>>();
  let nextBaton = 1;
  let requests = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      if (req.method === "GET") {
        return new Response(null, {
          status: url.pathname === "/v2" ? 200 : 404,
        });
      }
      if (req.method !== "POST" || url.pathname !== "/v2/pipeline") {
        return new Response(null, { status: 404 });
      }
      requests++;
      const body = await req.json() as {
        baton?: string | null;
        requests: { type: string }[];
      };
      let baton = body.baton ?? null;
      let db = baton === null ? undefined : streams.get(baton);
      if (baton !== null && db === undefined) {
        return new Response(
          "unknown baton",
          { status: 400 },
        );
      }
      if (db === undefined) {
        db = new Database(path, { timeout: 5000 } as never);
        baton = `b${nextBaton++}`;
        streams.set(baton, db);
        storedSql.set(baton, new Map());
      }
      const stored = storedSql.get(baton!)!;
      const results: unknown[] = [];
      let closed = false;
      for (const r of body.requests) {
        try {
          if (r.type === "execute") {
            const result = execute(
              db,
              (r as unknown as { stmt: HStmt }).stmt,
              stored,
            );
            results.push({ type: "ok", response: { type: "execute", result } });
          } else if (r.type === "batch") {
            const steps = (r as unknown as {
              batch: { steps: { condition?: HCond | null; stmt: HStmt }[] };
            }).batch.steps;
            const stepResults: unknown[] = [];
            const stepErrors: unknown[] = [];
            const holds = (c: HCond): boolean => {
              switch (c.type) {
                case "ok":
                  return stepResults[c.step] !== null &&
                    stepResults[c.step] !== undefined;
                case "error":
                  return stepErrors[c.step] !== null &&
                    stepErrors[c.step] !== undefined;
                case "not":
                  return !holds(c.cond);
                case "and":
                  return c.conds.every(holds);
                case "or":
                  return c.conds.some(holds);
                case "is_autocommit":
                  return !db!.inTransaction;
              }
            };
            for (const step of steps) {
              if (step.condition && !holds(step.condition)) {
                stepResults.push(null);
                stepErrors.push(null);
                continue;
              }
              try {
                stepResults.push(execute(db, step.stmt, stored));
                stepErrors.push(null);
              } catch (err) {
                stepResults.push(null);
                stepErrors.push(errorOf(err));
              }
            }
            results.push({
              type: "ok",
              response: {
                type: "batch",
                result: { step_results: stepResults, step_errors: stepErrors },
              },
            });
          } else if (r.type === "store_sql") {
            const q = r as unknown as { sql_id: number; sql: string };
            stored.set(q.sql_id, q.sql);
            results.push({ type: "ok", response: { type: "store_sql" } });
          } else if (r.type === "close_sql") {
            stored.delete((r as unknown as { sql_id: number }).sql_id);
            results.push({ type: "ok", response: { type: "close_sql" } });
          } else if (r.type === "sequence") {
            db.exec((r as unknown as { sql: string }).sql);
            results.push({ type: "ok", response: { type: "sequence" } });
          } else if (r.type === "get_autocommit") {
            results.push({
              type: "ok",
              response: {
                type: "get_autocommit",
                is_autocommit: !db.inTransaction,
              },
            });
          } else if (r.type === "close") {
            closed = true;
            results.push({ type: "ok", response: { type: "close" } });
          } else {
            results.push({
              type: "error",
              error: { message: `unsupported ${r.type}` },
            });
          }
        } catch (err) {
          results.push({ type: "error", error: errorOf(err) });
        }
      }
      if (closed) {
        if (db.inTransaction) db.exec("ROLLBACK");
        db.close();
        streams.delete(baton!);
        storedSql.delete(baton!);
      }
      return Response.json({
        baton: closed ? null : baton,
        base_url: null,
        results,
      });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    async close() {
      for (const db of streams.values()) db.close();
      streams.clear();
      await server.shutdown();
    },
  };
}
