import assert from "node:assert/strict";
import { rejectsWith } from "../tests/_helpers.ts";
import { openAnalyticsEngine, resolveEngineKind } from "./engine.ts";
import { guardSql } from "./_sql_guard.ts";

for (const kind of ["wasm", "native"] as const) {
  Deno.test(`openAnalyticsEngine() loads batches and returns plain values (${kind})`, async () => {
    const e = await openAnalyticsEngine(kind);
    assert.equal(e.kind, kind);
    await e.load("t", {
      length: 3,
      columns: [
        { name: "a", type: "double", values: new Float64Array([1, 2.5, 3]) },
        { name: "s", type: "varchar", values: ["x", null, "ü😀"] },
      ],
    });
    const r = await e.query("SELECT a, s FROM t WHERE a >= ? ORDER BY a", [2]);
    assert.deepEqual(r.rows, [{ a: 2.5, s: null }, { a: 3, s: "ü😀" }]);
    const v = await e.query(
      "SELECT 18446744073709551615::UBIGINT AS u, -9007199254740991::BIGINT AS lo, TIME '01:00:00' AS tm, 'ab'::BLOB AS b, MAP {'k': 2} AS m",
    );
    assert.deepEqual(v.rows[0], {
      u: 18446744073709551615n,
      lo: -9007199254740991,
      tm: 3_600_000_000,
      b: new Uint8Array([97, 98]),
      m: [{ key: "k", value: 2 }],
    });
    await rejectsWith(
      e.load("Bad-Name", { length: 0, columns: [] }),
      "INVALID_INPUT",
    );
    await rejectsWith(
      e.load("t", {
        length: 0,
        columns: [{ name: "a", type: "double", values: new Float64Array() }],
      }),
      "SQL_ERROR",
    );
    await rejectsWith(e.exec("CREATE TABLE"), "SQL_ERROR");
    assert.deepEqual((await e.query("SELECT count(*) AS n FROM t")).rows, [{
      n: 3,
    }]);
    await e.close();
    await e.close();
    assert.equal(e.closed, true);
    await rejectsWith(e.query("SELECT 1"), "STORE_CLOSED");
  });
}

Deno.test("resolveEngineKind() takes native for auto only with --allow-ffi", () => {
  assert.equal(resolveEngineKind("native"), "native");
  assert.equal(resolveEngineKind("auto"), "native"); // tests run with -A
  assert.throws(() => resolveEngineKind("x" as "wasm"), {
    code: "INVALID_INPUT",
  });
});

Deno.test("guardSql() refuses extension and attach statements outside literals and comments", () => {
  for (
    const sql of [
      "INSTALL x",
      " load x",
      "SELECT 1; force install y",
      "ATTACH 'a'",
      "detach a",
      "UPDATE EXTENSIONS",
    ]
  ) {
    assert.throws(() => guardSql(sql), { code: "SQL_ERROR" }, sql);
  }
  for (
    const sql of [
      "SELECT 'load x'",
      "SELECT 1 -- install x",
      "/* attach */ SELECT 2",
      'SELECT 1 AS "load"',
      "SELECT download FROM t",
    ]
  ) {
    guardSql(sql);
  }
  assert.throws(() => guardSql("  "), { code: "INVALID_INPUT" });
});
