// Sealed columns, key rotation (with simulated crashes), backup, restore and
// verify of storage/, against real libSQL files.
import assert from "node:assert/strict";
import { rejectsWith } from "./_helpers.ts";
import { isAicoDataError } from "../errors.ts";
import { type DataKey, generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  openStorage,
  restoreStorage,
  sealedColumnAad,
  type SealedColumnSpec,
  type Storage,
} from "../storage/mod.ts";

const SPECS: SealedColumnSpec[] = [{
  table: "msgs",
  column: "body",
  rowKey: "id",
}];

async function fill(db: Storage, n = 20): Promise<void> {
  await db.execute(
    "CREATE TABLE msgs (id TEXT PRIMARY KEY, body BLOB, n INTEGER)",
  );
  const body = db.sealedColumn("msgs", "body");
  await db.transaction(async (tx) => {
    for (let i = 0; i < n; i++) {
      await tx.execute("INSERT INTO msgs VALUES (?, ?, ?)", [
        `m${i}`,
        await body.seal(`m${i}`, `secret ${i} 👋`),
        2n ** 60n + BigInt(i),
      ]);
    }
  });
}

async function readAll(db: Storage): Promise<string[]> {
  const body = db.sealedColumn("msgs", "body");
  const { rows } = await db.execute("SELECT id, body, n FROM msgs ORDER BY id");
  const out: string[] = [];
  for (const r of rows) {
    out.push(
      `${r.id}|${await body.openText(
        r.id as string,
        r.body as Uint8Array,
      )}|${r.n}`,
    );
  }
  return out;
}

async function contentHash(db: Storage, sql: string): Promise<string> {
  const { rows } = await db.execute(sql);
  const text = JSON.stringify(
    rows,
    (_k, v) =>
      typeof v === "bigint"
        ? `${v}n`
        : v instanceof Uint8Array
        ? Array.from(v)
        : v,
  );
  const hash = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(hash),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aico_storage_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sealedColumn() values open only in their own table, column, row and version", async () => {
  await inTemp(async (dir) => {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/s.db`, { key });
    await fill(db, 2);
    const body = db.sealedColumn("msgs", "body");
    const { rows } = await db.execute("SELECT id, body FROM msgs ORDER BY id");
    const [a, b] = [rows[0]!, rows[1]!];
    assert.equal(
      await body.openText("m0", a.body as Uint8Array),
      "secret 0 👋",
    );
    // The stored bytes hold no plaintext.
    assert.ok(
      !new TextDecoder("latin1").decode(a.body as Uint8Array).includes(
        "secret",
      ),
    );
    // Swap the two rows' sealed values in the database.
    await db.batch([
      { sql: "UPDATE msgs SET body = ? WHERE id = 'm0'", args: [b.body!] },
      { sql: "UPDATE msgs SET body = ? WHERE id = 'm1'", args: [a.body!] },
    ]);
    const swapped = await db.execute("SELECT id, body FROM msgs ORDER BY id");
    let plaintexts = 0;
    for (const r of swapped.rows) {
      await rejectsWith(
        body.open(r.id as string, r.body as Uint8Array).then(() =>
          plaintexts++
        ),
        "AUTH_FAILED",
      );
    }
    assert.equal(plaintexts, 0);
    // Another column, table or schema version: AUTH_FAILED too.
    const sealed = a.body as Uint8Array;
    await rejectsWith(
      db.sealedColumn("msgs", "title").open("m0", sealed),
      "AUTH_FAILED",
    );
    await rejectsWith(
      db.sealedColumn("other", "body").open("m0", sealed),
      "AUTH_FAILED",
    );
    await rejectsWith(
      db.sealedColumn("msgs", "body", { schemaVersion: 2 }).open("m0", sealed),
      "AUTH_FAILED",
    );
    // Integer row keys: 5 and 5n are the same key.
    const n = db.sealedColumn("t", "c");
    assert.equal(await n.openText(5n, await n.seal(5, "x")), "x");
    await rejectsWith(n.open("5", await n.seal(5, "x")), "AUTH_FAILED");
    await rejectsWith(n.seal(1.5, "x"), "INVALID_INPUT");
    await rejectsWith(n.seal("k", "\uD800"), "INVALID_INPUT");
    assert.throws(
      () => db.sealedColumn("", "c"),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  });
});

Deno.test("sealedColumnAad() length-prefixes its fields", () => {
  const ab = sealedColumnAad("ab", "c", "k", 1);
  const a_bc = sealedColumnAad("a", "bc", "k", 1);
  assert.notDeepEqual(ab, a_bc);
  assert.notDeepEqual(
    sealedColumnAad("t", "c", "1", 1),
    sealedColumnAad("t", "c", 1, 1),
  );
  assert.notDeepEqual(
    sealedColumnAad("t", "c", 1, 1),
    sealedColumnAad("t", "c", 1, 2),
  );
  assert.deepEqual(
    sealedColumnAad("t", "c", 7, 1),
    sealedColumnAad("t", "c", 7n, 1),
  );
});

Deno.test("rekey() rotates the page key and re-seals: old key fails, everything reads back", async () => {
  await inTemp(async (dir) => {
    const oldKey = await importDataKey(generateDataKey());
    const newKey = await importDataKey(generateDataKey());
    const path = `${dir}/r.db`;
    let expected: string[];
    {
      await using db = await openStorage(path, { key: oldKey });
      await fill(db);
      expected = await readAll(db);
      await db.rekey(newKey, { sealedColumns: SPECS });
      // Still usable and in WAL after the rotation.
      assert.deepEqual(await readAll(db), expected);
      const mode = await db.execute("PRAGMA journal_mode");
      assert.equal(Object.values(mode.rows[0]!)[0], "wal");
      assert.equal((await db.verify()).ok, true);
      await rejectsWith(db.rekey(newKey), "INVALID_INPUT");
    }
    await rejectsWith(openStorage(path, { key: oldKey }), "WRONG_KEY");
    await using db = await openStorage(path, { key: newKey });
    assert.deepEqual(await readAll(db), expected);
    assert.deepEqual(await db.verify(), {
      ok: true,
      integrity: ["ok"],
      keyMatches: true,
    });
  });
});

type Step = "pending" | "rekey" | "reseal";
async function crashAt(
  path: string,
  oldKey: DataKey,
  newKey: DataKey,
  step: Step,
) {
  const db = await openStorage(path, { key: oldKey });
  await fill(db);
  const expected = await readAll(db);
  await (db as unknown as {
    rekeySteps(k: DataKey, o: unknown, s: Step): Promise<void>;
  }).rekeySteps(newKey, { sealedColumns: SPECS }, step);
  assert.equal(db.closed, true);
  return expected;
}

Deno.test("rekey() interrupted at any step leaves a store that opens with one key and loses nothing", async (t) => {
  await t.step(
    "crash after the pending record: the old key still opens it",
    async () => {
      await inTemp(async (dir) => {
        const [oldKey, newKey] = [
          await importDataKey(generateDataKey()),
          await importDataKey(generateDataKey()),
        ];
        const expected = await crashAt(
          `${dir}/c.db`,
          oldKey,
          newKey,
          "pending",
        );
        await rejectsWith(
          openStorage(`${dir}/c.db`, { key: newKey }),
          "WRONG_KEY",
        );
        await using db = await openStorage(`${dir}/c.db`, { key: oldKey });
        assert.deepEqual(await readAll(db), expected);
        assert.equal((await db.verify()).ok, true);
      });
    },
  );
  await t.step(
    "crash after PRAGMA rekey: the new key with previousKey finishes it",
    async () => {
      await inTemp(async (dir) => {
        const [oldKey, newKey] = [
          await importDataKey(generateDataKey()),
          await importDataKey(generateDataKey()),
        ];
        const path = `${dir}/c.db`;
        const expected = await crashAt(path, oldKey, newKey, "rekey");
        await rejectsWith(openStorage(path, { key: oldKey }), "WRONG_KEY");
        await rejectsWith(openStorage(path, { key: newKey }), "WRONG_KEY");
        {
          await using db = await openStorage(path, {
            key: newKey,
            previousKey: oldKey,
          });
          assert.deepEqual(await readAll(db), expected);
        }
        await using db = await openStorage(path, { key: newKey });
        assert.deepEqual(await readAll(db), expected);
        assert.equal((await db.verify()).ok, true);
      });
    },
  );
  await t.step("crash after re-sealing: the new key opens it", async () => {
    await inTemp(async (dir) => {
      const [oldKey, newKey] = [
        await importDataKey(generateDataKey()),
        await importDataKey(generateDataKey()),
      ];
      const path = `${dir}/c.db`;
      const expected = await crashAt(path, oldKey, newKey, "reseal");
      await rejectsWith(openStorage(path, { key: oldKey }), "WRONG_KEY");
      await using db = await openStorage(path, { key: newKey });
      assert.deepEqual(await readAll(db), expected);
      assert.equal((await db.verify()).ok, true);
    });
  });
});

Deno.test("backup() and restoreStorage() keep row count, content hash and integrity", async () => {
  await inTemp(async (dir) => {
    const key = await importDataKey(generateDataKey());
    const sql = "SELECT id, body, n FROM msgs ORDER BY id";
    let hash: string;
    {
      await using db = await openStorage(`${dir}/a.db`, { key });
      await fill(db, 200);
      hash = await contentHash(db, sql);
      await db.backup(`${dir}/a.bak`);
      await rejectsWith(db.backup(`${dir}/a.bak`), "ALREADY_EXISTS");
      await rejectsWith(db.backup(`${dir}/a.db`), "INVALID_INPUT");
    }
    const bak = await Deno.readFile(`${dir}/a.bak`);
    assert.notDeepEqual(
      bak.subarray(0, 15),
      new TextEncoder().encode("SQLite format 3"),
    );
    const other = await importDataKey(generateDataKey());
    await rejectsWith(
      restoreStorage(`${dir}/a.bak`, `${dir}/x.db`, { key: other }),
      "WRONG_KEY",
    );
    await rejectsWith(
      restoreStorage(`${dir}/missing.bak`, `${dir}/x.db`, { key }),
      "NOT_FOUND",
    );
    await restoreStorage(`${dir}/a.bak`, `${dir}/b.db`, { key });
    await rejectsWith(
      restoreStorage(`${dir}/a.bak`, `${dir}/b.db`, { key }),
      "ALREADY_EXISTS",
    );
    await using restored = await openStorage(`${dir}/b.db`, { key });
    assert.equal(
      (await restored.execute("SELECT count(*) AS n FROM msgs")).rows[0]!.n,
      200,
    );
    assert.equal(await contentHash(restored, sql), hash);
    const report = await restored.verify();
    assert.deepEqual(report, { ok: true, integrity: ["ok"], keyMatches: true });
    // The sealed values open in the restored copy (same table, column, row).
    assert.equal((await readAll(restored))[0], `m0|secret 0 👋|${2n ** 60n}`);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.ok(!names.some((n) => n.includes("restoring")), names.join());
  });
});

Deno.test("restoreStorage() refuses a damaged backup with CORRUPT_STORE", async () => {
  await inTemp(async (dir) => {
    const key = await importDataKey(generateDataKey());
    {
      await using db = await openStorage(`${dir}/a.db`, { key });
      await fill(db, 50);
      await db.backup(`${dir}/a.bak`);
    }
    const bytes = await Deno.readFile(`${dir}/a.bak`);
    for (let i = 0; i < 16; i++) bytes[i]! ^= 0xff;
    await Deno.writeFile(`${dir}/a.bak`, bytes);
    await rejectsWith(
      restoreStorage(`${dir}/a.bak`, `${dir}/b.db`, { key }),
      "CORRUPT_STORE",
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.startsWith("b.db")
      ),
      [],
    );
  });
});

Deno.test("rekey() refuses a sealed value that does not open and changes nothing", async () => {
  await inTemp(async (dir) => {
    const [oldKey, newKey] = [
      await importDataKey(generateDataKey()),
      await importDataKey(generateDataKey()),
    ];
    const path = `${dir}/r.db`;
    {
      await using db = await openStorage(path, { key: oldKey });
      await fill(db, 3);
      // Move m1's value to m2: it no longer opens for m2.
      await db.execute(
        "UPDATE msgs SET body = (SELECT body FROM msgs WHERE id = 'm1') WHERE id = 'm2'",
      );
      await rejectsWith(
        db.rekey(newKey, { sealedColumns: SPECS }),
        "AUTH_FAILED",
      );
      assert.equal((await db.verify()).ok, true);
      const body = db.sealedColumn("msgs", "body");
      const { rows } = await db.execute(
        "SELECT body FROM msgs WHERE id = 'm0'",
      );
      assert.equal(
        await body.openText("m0", rows[0]!.body as Uint8Array),
        "secret 0 👋",
      );
    }
    await rejectsWith(openStorage(path, { key: newKey }), "WRONG_KEY");
    await using db = await openStorage(path, { key: oldKey });
    assert.equal(
      (await db.execute("SELECT count(*) AS n FROM msgs")).rows[0]!.n,
      3,
    );
  });
});
