// Issue 12, defect 3 (first half): a closed store must release the database
// file. npm:libsql frees a closed connection only once its statements are
// garbage-collected, and until then the connection kept its WAL shared-memory
// lock: process A opened and closed the store and stayed alive, and process
// B's rekey failed with BUSY until A exited. close() now takes the file out
// of WAL mode after the checkpoint (an idle connection in DELETE mode holds
// no lock), so the file is free at once. Before the fix this test failed
// with BUSY.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const CHILD = new URL("./_storage_hold_child.ts", import.meta.url).pathname;

Deno.test("a store closed by a process that stays alive can be rekeyed by another process", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/data.db`;
    const raw = generateDataKey();
    const hex = Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    const key = await importDataKey(raw);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, path, hex],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const writer = child.stdin.getWriter();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let seen = "";
      while (!seen.includes("CLOSED\n")) {
        const { value, done } = await reader.read();
        assert.ok(!done, "the child ended before closing its store");
        seen += value;
      }
      reader.releaseLock();
      // Process A is alive with its closed store: process B (this one)
      // rotates the key.
      const newKey = await importDataKey(generateDataKey());
      {
        await using db = await openStorage(path, { key });
        await db.rekey(newKey);
      }
      await using again = await openStorage(path, { key: newKey });
      const { rows } = await again.execute("SELECT count(*) AS n FROM t");
      assert.deepEqual(rows, [{ n: 20 }]);
      assert.equal((await again.verify()).ok, true);
    } finally {
      await writer.close();
      await child.status;
      await child.stdout.cancel().catch(() => {});
    }
  });
});

Deno.test("a store closed earlier in the same process does not block a rekey", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/same.db`;
    const key = await importDataKey(generateDataKey());
    {
      await using first = await openStorage(path, { key });
      await first.execute("CREATE TABLE t (x TEXT)");
      await first.execute("INSERT INTO t VALUES (?)", ["kept"]);
      await first.execute("SELECT x FROM t");
    }
    const newKey = await importDataKey(generateDataKey());
    {
      await using second = await openStorage(path, { key });
      await second.rekey(newKey);
    }
    await using again = await openStorage(path, { key: newKey });
    assert.deepEqual((await again.execute("SELECT x FROM t")).rows, [{
      x: "kept",
    }]);
  });
});
