import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createSchemaRegistry,
  HISTORY_TABLE,
  LOG_TABLE,
  openMigrator,
  registerSchema,
} from "../schema/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { VERSIONS } from "./_schema_lock_child.ts";

const CHILD = fileURLToPath(
  new URL("./_schema_lock_child.ts", import.meta.url),
);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("two processes migrating the same file at once never apply a version twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aico-schema-lock-" });
  try {
    const path = `${dir}/shared.db`;
    const dek = generateDataKey();
    const keyHex = Array.from(dek, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    // Create the file and the migrator's tables first (with another schema):
    // the test is about two processes racing for the same versions.
    {
      await using db = await openStorage(path, {
        key: await importDataKey(dek),
      });
      const setup = registerSchema("setup", "core", {}, [{
        version: 1,
        name: "setup",
        up: "CREATE TABLE setup (x)",
      }]);
      await (await openMigrator(db, createSchemaRegistry([setup]))).migrate();
    }
    const children = [0, 1].map((index) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CHILD, path, keyHex, dir, String(index)],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    // Let both processes load and open the database, then start them together.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await Deno.writeTextFile(`${dir}/go`, "go");
    const outputs = await Promise.all(children);
    const results = outputs.map((o) => {
      const stdout = new TextDecoder().decode(o.stdout).trim();
      assert.equal(
        o.code,
        0,
        `child failed: ${stdout} ${new TextDecoder().decode(o.stderr)}`,
      );
      return JSON.parse(stdout) as {
        pid: number;
        pendingBefore: number[];
        applied: number[];
      };
    });
    const every = Array.from({ length: VERSIONS }, (_, i) => i + 1);
    // Both saw every version pending, so both tried to apply all of them.
    assert.deepEqual(results.map((r) => r.pendingBefore), [every, every]);
    // Between them they applied every version exactly once.
    const all = results.flatMap((r) => r.applied).sort((a, b) => a - b);
    assert.deepEqual(all, every);

    await using db = await openStorage(path, { key: await importDataKey(dek) });
    const rows =
      (await db.execute("SELECT version, pid FROM applied ORDER BY version"))
        .rows;
    assert.deepEqual(rows.map((r) => Number(r.version)), every);
    // Each insert was made by the process that reports having applied that version.
    for (const r of rows) {
      const owner = results.find((x) => x.applied.includes(Number(r.version)));
      assert.equal(Number(r.pid), owner?.pid);
    }
    const history = (await db.execute(
      `SELECT count(*) AS n FROM ${HISTORY_TABLE} WHERE schema = 'locktest'`,
    )).rows;
    assert.equal(Number(history[0]?.n), VERSIONS);
    const ups = (await db.execute(
      `SELECT count(*) AS n FROM ${LOG_TABLE} WHERE direction = 'up' AND schema = 'locktest'`,
    )).rows;
    assert.equal(Number(ups[0]?.n), VERSIONS);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
