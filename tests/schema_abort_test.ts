// AbortSignal on the migration lock wait (issue 8, section 3): a migrate()
// that waits for a write lock held by another connection stops with ABORTED
// when its signal fires, long before lockTimeoutMs, and changes nothing.
import assert from "node:assert/strict";
import { rejectsWith, withDir } from "./_helpers.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createSchemaRegistry,
  openMigrator,
  registerSchema,
  resolveMigratorOptions,
} from "../schema/mod.ts";
import { openStorage } from "../storage/mod.ts";

const notes = registerSchema("notes", "core", {}, [{
  version: 1,
  name: "notes",
  up: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
}]);

Deno.test("migrate() waiting for the write lock stops with ABORTED and applies nothing", async (t) => {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    const path = `${dir}/s.db`;
    await using holder = await openStorage(path, { key });
    await using db = await openStorage(path, { key, busyTimeoutMs: 20 });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holding = holder.transaction(async (tx) => {
      await tx.execute("CREATE TABLE other (x)");
      locked();
      await held;
    });
    await isLocked;
    try {
      await t.step("per call (MigrateOptions.signal)", async () => {
        const migrator = await openMigrator(
          db,
          createSchemaRegistry([notes]),
          { lockTimeoutMs: 60_000 },
        );
        const controller = new AbortController();
        const run = rejectsWith(
          migrator.migrate({ signal: controller.signal }),
          "ABORTED",
        );
        setTimeout(() => controller.abort(), 100);
        await run;
      });
      await t.step("for the migrator (MigratorOptions.signal)", async () => {
        const migrator = await openMigrator(
          db,
          createSchemaRegistry([notes]),
          { lockTimeoutMs: 60_000, signal: AbortSignal.timeout(100) },
        );
        await rejectsWith(migrator.migrate(), "ABORTED");
      });
    } finally {
      release();
      await holding;
    }
    const { rows } = await db.execute(
      "SELECT count(*) AS n FROM sqlite_schema WHERE name = 'notes'",
    );
    assert.deepEqual(rows, [{ n: 0 }]);
    // Once the lock is free the same migration runs.
    const migrator = await openMigrator(db, createSchemaRegistry([notes]));
    assert.equal((await migrator.migrate()).length, 1);
  });
});

Deno.test("resolveMigratorOptions() refuses a signal that is not an AbortSignal", () => {
  assert.throws(
    () => resolveMigratorOptions({ signal: "x" as never }),
    (e: unknown) => (e as { code?: string }).code === "INVALID_INPUT",
  );
  const signal = new AbortController().signal;
  assert.equal(resolveMigratorOptions({ signal }).signal, signal);
});
