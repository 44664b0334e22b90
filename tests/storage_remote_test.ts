// The remote path of storage/ (`@libsql/client` over HTTP) against a Hrana
// v2 shim backed by a real libSQL file (tests/_hrana_shim.ts): no sqld can
// be installed here. The unreachable-server case is in
// storage_security_test.ts.
import assert from "node:assert/strict";
import { rejectsWith } from "./_helpers.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openRemoteStorage } from "../storage/mod.ts";
import { startHranaShim } from "./_hrana_shim.ts";

Deno.test("openRemoteStorage() on an http:// URL keeps the same interface through @libsql/client", async (t) => {
  const dir = await Deno.makeTempDir();
  const shim = startHranaShim(`${dir}/server.db`);
  try {
    const key = await importDataKey(generateDataKey());
    await using db = await openRemoteStorage(shim.url, {
      key,
      authToken: "test-token",
    });
    assert.equal(db.kind, "remote");
    await t.step("execute and value types", async () => {
      await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x, s TEXT)");
      const ins = await db.execute("INSERT INTO t (x, s) VALUES (?, ?)", [
        2n ** 60n,
        "é 👋",
      ]);
      assert.equal(ins.rowsAffected, 1);
      assert.equal(ins.lastInsertRowid, 1n);
      await db.execute({
        sql: "INSERT INTO t (x, s) VALUES (:x, :s)",
        args: { x: 1.5, s: "b" },
      });
      await db.execute("INSERT INTO t (x, s) VALUES (?, ?)", [
        new Uint8Array([1, 2]),
        null,
      ]);
      const rs = await db.execute("SELECT id, x, s FROM t ORDER BY id");
      assert.deepEqual(rs.columns, ["id", "x", "s"]);
      assert.deepEqual(rs.rows, [
        { id: 1, x: 2n ** 60n, s: "é 👋" },
        { id: 2, x: 1.5, s: "b" },
        { id: 3, x: new Uint8Array([1, 2]), s: null },
      ]);
    });
    await t.step("transaction commits and rolls back", async () => {
      await db.transaction(async (tx) => {
        await tx.execute("INSERT INTO t (x) VALUES (10)");
      });
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.execute("INSERT INTO t (x) VALUES (11)");
          throw new Error("boom");
        }),
        /boom/,
      );
      const { rows } = await db.execute("SELECT x FROM t WHERE x IN (10, 11)");
      assert.deepEqual(rows, [{ x: 10 }]);
    });
    await t.step("batch is all or nothing; errors are typed", async () => {
      await rejectsWith(
        db.batch([
          "INSERT INTO t (id) VALUES (100)",
          "INSERT INTO t (id) VALUES (1)",
        ]),
        "CONSTRAINT_VIOLATION",
      );
      assert.deepEqual(
        (await db.execute("SELECT id FROM t WHERE id = 100")).rows,
        [],
      );
      await rejectsWith(db.execute("SELECT * FROM nowhere"), "SQL_ERROR");
      await rejectsWith(db.execute("SELECT ?", ["\uD800"]), "INVALID_INPUT");
    });
    await t.step("sealed columns and local-only operations", async () => {
      const col = db.sealedColumn("t", "s");
      assert.equal(await col.openText(1, await col.seal(1, "hi")), "hi");
      // A remote store has no local-only operations: the type says so (no
      // runtime "not supported" error to call into).
      // @ts-expect-error backup() is only on LocalStorage
      assert.equal(typeof db.backup, "undefined");
      // @ts-expect-error rekey() is only on LocalStorage
      assert.equal(typeof db.rekey, "undefined");
    });
    assert.ok(shim.requests > 0);
  } finally {
    await shim.close();
    await Deno.remove(dir, { recursive: true });
  }
});
