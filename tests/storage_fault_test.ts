// Issue 12, defect 4 (storage part): typed codes for damaged headers and a
// full disk. Before the fix a flipped byte in the header's format fields
// gave SQL_ERROR ("unsupported file format") instead of CORRUPT_STORE, and a
// full disk gave SQL_ERROR with no code of its own; both now come from the
// driver's primary result code (SQLITE_CORRUPT / SQLITE_NOTADB / SQLITE_FULL)
// at the adapter boundary.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { isAicoDataError } from "../errors.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

Deno.test("a damaged header gives CORRUPT_STORE, never SQL_ERROR", async () => {
  await withDir(async (dir) => {
    // A fixed key: the page cipher is deterministic, so the damage below
    // hits the same fields in every run.
    const key = await importDataKey(new Uint8Array(32).fill(7));
    const path = `${dir}/h.db`;
    {
      await using db = await openStorage(path, { key });
      await db.execute("CREATE TABLE t (x)");
      await db.execute("INSERT INTO t VALUES (1)");
    }
    const original = await Deno.readFile(path);
    // 16..31: page size and format bytes; 32..47: counters and the schema
    // format number (SQL_ERROR "unsupported file format" before the fix).
    const codes: string[] = [];
    for (const offset of [16, 18, 20, 24, 32, 40, 44, 48]) {
      const damaged = original.slice();
      damaged[offset]! ^= 0x55;
      await Deno.writeFile(path, damaged);
      try {
        await using db = await openStorage(path, { key });
        await db.execute("SELECT * FROM t");
        codes.push("ok");
      } catch (err) {
        assert.ok(isAicoDataError(err), String(err));
        codes.push(err.code);
      }
    }
    assert.deepEqual(
      codes.filter((c) => c !== "ok" && c !== "CORRUPT_STORE"),
      [],
      codes.join(","),
    );
    assert.ok(
      codes.filter((c) => c === "CORRUPT_STORE").length >= 4,
      codes.join(","),
    );
    await Deno.writeFile(path, original);
    await using db = await openStorage(path, { key });
    assert.deepEqual((await db.execute("SELECT x FROM t")).rows, [{ x: 1 }]);
  });
});

/** Mounts a small tmpfs at `dir`; `false` (with the reason printed) when refused. */
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch(() => undefined);
  if (out === undefined || !out.success) {
    // deno-lint-ignore no-console
    console.log(
      `skipped: cannot mount a tmpfs (${
        out ? new TextDecoder().decode(out.stderr).trim() : "no mount"
      })`,
    );
    return false;
  }
  return true;
}

Deno.test("a full disk gives DISK_FULL, keeps the store readable, and writes succeed once space returns", async () => {
  await withDir(async (parent) => {
    const dir = `${parent}/small`;
    await Deno.mkdir(dir);
    if (!(await mountTmpfs(dir, "1m"))) return;
    try {
      const key = await importDataKey(generateDataKey());
      await using db = await openStorage(`${dir}/f.db`, { key });
      await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)");
      await db.execute("INSERT INTO t (b) VALUES (?)", [new Uint8Array(10)]);
      // Fill the rest of the disk with a file we can remove later.
      const filler = await Deno.open(`${dir}/filler`, {
        write: true,
        create: true,
      });
      try {
        const chunk = new Uint8Array(16 * 1024);
        for (;;) await filler.write(chunk);
      } catch {
        // ENOSPC: the disk is full.
      } finally {
        filler.close();
      }
      let code = "";
      for (let i = 0; i < 200 && code === ""; i++) {
        try {
          await db.execute("INSERT INTO t (b) VALUES (?)", [
            crypto.getRandomValues(new Uint8Array(8192)),
          ]);
        } catch (err) {
          assert.ok(isAicoDataError(err), String(err));
          code = err.code;
        }
      }
      assert.equal(code, "DISK_FULL");
      const { rows } = await db.execute("SELECT count(*) AS n FROM t");
      assert.ok(Number(rows[0]!.n) >= 1);
      await Deno.remove(`${dir}/filler`);
      await db.execute("INSERT INTO t (b) VALUES (?)", [new Uint8Array(10)]);
      await db.close();
      await using again = await openStorage(`${dir}/f.db`, { key });
      assert.equal((await again.verify()).ok, true);
    } finally {
      // Lazy: npm:libsql closes a closed connection's file descriptor only
      // when its statements are garbage-collected.
      await new Deno.Command("umount", { args: ["-l", dir] }).output();
    }
  });
});
