// Child process of storage_text_guard_test.ts: runs one case that reads
// invalid UTF-8 back through a statement other than a plain SELECT and
// prints a JSON line with what happened. Before the guard covered these
// statements, `npm:libsql` aborted the process here (exit 134), so the
// parent runs each case in its own process.
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const [dir, name] = Deno.args as [string, string];
const key = await importDataKey(generateDataKey());
await using db = await openStorage(`${dir}/t.db`, { key });
await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, b BLOB)");
await db.execute("INSERT INTO t (id, x, b) VALUES (1, 'ok', x'00')");

const bad = "CAST(x'c3ff' AS TEXT)";
const cases: Record<string, () => Promise<unknown>> = {
  "insert-returning": () =>
    db.execute(`INSERT INTO t (id, x) VALUES (2, ${bad}) RETURNING x`),
  "update-returning-star": () =>
    db.execute(`UPDATE t SET x = ${bad} WHERE id = 1 RETURNING *`),
  "with-insert-returning": () =>
    db.execute(
      `WITH v(s) AS (SELECT ${bad}) INSERT INTO t (id, x) SELECT 3, s FROM v RETURNING id, x AS y`,
    ),
  "delete-returning": async () => {
    await db.execute(`INSERT INTO t (id, b) VALUES (4, ${bad})`);
    return await db.execute("DELETE FROM t WHERE id = 4 RETURNING b");
  },
  "blob-column-holding-text": async () => {
    await db.execute(`INSERT INTO t (id, b) VALUES (5, ${bad})`);
    return await db.execute("SELECT id, b FROM t WHERE id = 5");
  },
  "explain-blob-literal": () => db.execute("EXPLAIN SELECT x'c3ff'"),
  "pragma-table-info": () => db.execute("PRAGMA table_info(t)"),
};

let out: Record<string, unknown>;
try {
  const result = await cases[name]!() as { rows: Record<string, unknown>[] };
  const last = result.rows.at(-1);
  out = {
    ok: true,
    rows: result.rows.length,
    types: last === undefined
      ? []
      : Object.values(last).map((v) =>
        v instanceof Uint8Array ? `bytes:${v.length}` : typeof v
      ),
  };
} catch (err) {
  out = { ok: false, code: (err as { code?: string }).code ?? String(err) };
}
const count = (await db.execute("SELECT count(*) AS n FROM t")).rows[0]!.n;
const first =
  (await db.execute("SELECT CAST(x AS BLOB) AS x FROM t WHERE id = 1"))
    .rows[0]!.x as Uint8Array;
out.count = count;
out.firstX = new TextDecoder().decode(first);
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(out) + "\n"));
