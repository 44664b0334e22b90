// AbortSignal on the long storage operations (issue 8, section 3): rekey
// (between re-seal pages), backup and verify. An aborted rekey must leave a
// consistent store: the old key opens it, every sealed value opens, the key
// record names one key, and a later rekey completes.
import assert from "node:assert/strict";
import { rejectsWith, withDir } from "./_helpers.ts";
import { type DataKey, generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  type LocalStorage,
  openStorage,
  type SealedColumnSpec,
} from "../storage/mod.ts";

const SPECS: SealedColumnSpec[] = [{
  table: "msgs",
  column: "body",
  rowKey: "id",
}];
// More rows than one re-seal page (256), so an abort can land between pages.
const ROWS = 700;

async function fill(db: LocalStorage): Promise<void> {
  await db.execute("CREATE TABLE msgs (id TEXT PRIMARY KEY, body BLOB)");
  const body = db.sealedColumn("msgs", "body");
  const sealed = await body.sealBatch(
    Array.from({ length: ROWS }, (_, i) => ({
      rowKey: `m${i}`,
      value: `secret ${i}`,
    })),
  );
  await db.transaction(async (tx) => {
    for (let i = 0; i < ROWS; i++) {
      await tx.execute("INSERT INTO msgs VALUES (?, ?)", [`m${i}`, sealed[i]!]);
    }
  });
}

async function readAll(db: LocalStorage): Promise<string[]> {
  const body = db.sealedColumn("msgs", "body");
  const { rows } = await db.execute("SELECT id, body FROM msgs ORDER BY id");
  const opened = await body.openBatch(
    rows.map((r) => ({
      rowKey: r.id as string,
      sealed: r.body as Uint8Array,
    })),
  );
  return opened.map((b) => new TextDecoder().decode(b));
}

/** A real AbortSignal that reports aborted from its `n`-th check on. */
function abortAfterChecks(n: number): AbortSignal {
  const controller = new AbortController();
  const signal = controller.signal;
  let checks = 0;
  Object.defineProperty(signal, "aborted", {
    get: () => ++checks >= n,
  });
  Object.defineProperty(signal, "reason", {
    get: () => new Error("stop"),
  });
  return signal;
}

async function sidecar(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(`${path}.aico`));
}

Deno.test("rekey() aborted between re-seal pages puts the store back under the old key", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.db`;
    const oldKey = await importDataKey(generateDataKey());
    const newKey = await importDataKey(generateDataKey());
    let expected: string[];
    {
      await using db = await openStorage(path, { key: oldKey });
      await fill(db);
      expected = await readAll(db);
      // Checks: the connection queue, the start, 3 pages of the dry run and
      // its end, then the pages of the real re-seal (after PRAGMA rekey):
      // the 8th check is its second page, after the first was re-sealed.
      await rejectsWith(
        db.rekey(newKey, {
          sealedColumns: SPECS,
          signal: abortAfterChecks(8),
        }),
        "ABORTED",
      );
      // The same storage keeps working under the old key.
      assert.deepEqual(await readAll(db), expected);
      assert.equal((await db.verify()).ok, true);
    }
    assert.equal((await sidecar(path)).pendingKeyId, undefined);
    assert.equal((await sidecar(path)).keyId, oldKey.keyId);
    await rejectsWith(openStorage(path, { key: newKey }), "WRONG_KEY");
    {
      await using db = await openStorage(path, { key: oldKey });
      assert.deepEqual(await readAll(db), expected);
      // A rotation after the aborted one completes.
      await db.rekey(newKey, { sealedColumns: SPECS });
    }
    await using db = await openStorage(path, { key: newKey });
    assert.deepEqual(await readAll(db), expected);
  });
});

Deno.test("rekey() with an aborted signal or aborted during the check changes nothing", async (t) => {
  for (
    const [name, signal] of [
      ["already aborted", AbortSignal.abort()],
      ["during the dry run", abortAfterChecks(3)],
    ] as const
  ) {
    await t.step(name, async () => {
      await withDir(async (dir) => {
        const path = `${dir}/b.db`;
        const oldKey = await importDataKey(generateDataKey());
        const newKey: DataKey = await importDataKey(generateDataKey());
        await using db = await openStorage(path, { key: oldKey });
        await fill(db);
        const before = await Deno.readFile(`${path}.aico`);
        await rejectsWith(
          db.rekey(newKey, { sealedColumns: SPECS, signal }),
          "ABORTED",
        );
        assert.deepEqual(await Deno.readFile(`${path}.aico`), before);
        assert.equal((await readAll(db)).length, ROWS);
        const mode = await db.execute("PRAGMA journal_mode");
        assert.deepEqual(mode.rows, [{ journal_mode: "wal" }]);
      });
    });
  }
});

Deno.test("backup() and verify() waiting for the connection stop with ABORTED; nothing is written", async () => {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/c.db`, { key });
    await db.execute("CREATE TABLE t (x)");
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (tx) => {
      await tx.execute("INSERT INTO t VALUES (1)");
      await held;
    });
    const controller = new AbortController();
    // Both handlers are attached at once (the second one rejects while the
    // first is awaited).
    const both = Promise.all([
      rejectsWith(
        db.backup(`${dir}/c.bak`, { signal: controller.signal }),
        "ABORTED",
      ),
      rejectsWith(db.verify({ signal: controller.signal }), "ABORTED"),
    ]);
    controller.abort();
    await both;
    release();
    await tx;
    await assert.rejects(Deno.lstat(`${dir}/c.bak`), Deno.errors.NotFound);
    await rejectsWith(
      db.backup(`${dir}/c.bak`, { signal: AbortSignal.abort() }),
      "ABORTED",
    );
    await rejectsWith(
      db.backup(`${dir}/c.bak`, { signal: "no" as never }),
      "INVALID_INPUT",
    );
    // The queue still works after the aborted waiters left it.
    await db.backup(`${dir}/c.bak`);
    assert.equal((await db.verify()).ok, true);
  });
});
