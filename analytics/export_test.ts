import assert from "node:assert/strict";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { rejectsWith } from "../tests/_helpers.ts";
import { seed } from "../tests/_analytics_fixture.ts";
import { openAnalytics } from "./analytics.ts";
import { openAnalyticsEngine } from "./engine.ts";
import { isSealedExport, openSealedExport, resultToCsv } from "./export.ts";
import { ipcToRows } from "./_arrow.ts";

const SQL =
  "SELECT role, count(*) AS n, min(created_at) AS first FROM messages GROUP BY role ORDER BY role";

for (const engine of ["wasm", "native"] as const) {
  Deno.test(`exports are sealed with the export key and open to the query result (${engine})`, async (t) => {
    await using store = await openTestStore();
    await seed(store.storage, { conversations: 3 });
    await using a = await openAnalytics(store.storage, {
      engine,
      key: store.key,
    });
    const expected = await a.query(SQL);

    await t.step("CSV", async () => {
      const file = await a.export(SQL, { format: "csv" });
      assert.ok(isSealedExport(file));
      assert.ok(!new TextDecoder().decode(file).includes("assistant"));
      const opened = await openSealedExport(store.key, file);
      assert.equal(opened.format, "csv");
      assert.equal(
        new TextDecoder().decode(opened.data),
        resultToCsv(expected),
      );
      const plain = await a.export(SQL, { format: "csv", plaintext: true });
      assert.deepEqual(plain, opened.data);
    });

    await t.step("Arrow IPC stream", async () => {
      const opened = await openSealedExport(
        store.key,
        await a.export(SQL, { format: "arrow" }),
      );
      assert.equal(opened.format, "arrow");
      const back = await ipcToRows(opened.data);
      assert.deepEqual(back.columns, expected.columns);
      assert.deepEqual(
        back.rows.map((r) => [r.role, r.n, r.first]),
        expected.rows.map((r) => [r.role, r.n, (r.first as Date).getTime()]),
      );
    });

    await t.step("Parquet (native engine only)", async () => {
      if (engine === "wasm") {
        await rejectsWith(
          a.export(SQL, { format: "parquet" }),
          "INVALID_INPUT",
        );
        return;
      }
      const opened = await openSealedExport(
        store.key,
        await a.export(SQL, { format: "parquet" }),
      );
      assert.equal(opened.format, "parquet");
      assert.deepEqual([...opened.data.subarray(0, 4)], [
        ...new TextEncoder().encode("PAR1"),
      ]);
      assert.deepEqual([...opened.data.subarray(-4)], [
        ...new TextEncoder().encode("PAR1"),
      ]);
    });

    await t.step("wrong key, tampering, truncation, missing key", async () => {
      const file = await a.export(SQL, { format: "csv" });
      const other = await importDataKey(generateDataKey());
      await rejectsWith(openSealedExport(other, file), "WRONG_KEY");
      for (const i of [9, 14, file.length - 20, file.length - 1]) {
        const bad = file.slice();
        bad[i]! ^= 1;
        await assert.rejects(openSealedExport(store.key, bad));
      }
      await rejectsWith(
        openSealedExport(store.key, file.subarray(0, 40)),
        "CORRUPT_VALUE",
      );
      await using noKey = await openAnalytics(store.storage, { engine });
      await rejectsWith(noKey.export(SQL, { format: "csv" }), "INVALID_INPUT");
      await rejectsWith(
        a.export(SQL, { format: "xml" as "csv" }),
        "INVALID_INPUT",
      );
      await rejectsWith(a.export("SELEC", { format: "csv" }), "SQL_ERROR");
    });
  });
}

Deno.test("the native engine's Parquet folder is the only path it may write", async () => {
  await using e = await openAnalyticsEngine("native");
  const bytes = await e.parquet("SELECT 42 AS x");
  assert.ok(bytes.length > 0);
  await rejectsWith(
    e.query("COPY (SELECT 1) TO '/tmp/aico_parquet_escape.csv'"),
    "SQL_ERROR",
  );
  await assert.rejects(Deno.stat("/tmp/aico_parquet_escape.csv"));
});

Deno.test("resultToCsv quotes fields and writes dates, nulls and lists", () => {
  assert.equal(
    resultToCsv({
      columns: ["a", "b", "c", "d"],
      rows: [{ a: 'say "hi"', b: new Date(0), c: null, d: [1, 2n] }],
    }),
    'a,b,c,d\r\n"say ""hi""",1970-01-01T00:00:00.000Z,,"[1,""2""]"\r\n',
  );
});
