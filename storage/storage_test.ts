import assert from "node:assert/strict";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { BatchError, isAicoDataError } from "../errors.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  type LocalStorage,
  openRemoteStorage,
  openStorage,
  resolveRemoteStorageOptions,
  resolveStorageOptions,
  sealedColumnAad,
} from "./mod.ts";

async function withStorage(
  fn: (db: LocalStorage, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aico_storage_" });
  try {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/t.db`, { key });
    await fn(db, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("execute() accepts (sql, args) and { sql, args } and returns plain rows", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
    const ins = await db.execute("INSERT INTO t (name) VALUES (?)", ["a"]);
    assert.equal(ins.rowsAffected, 1);
    assert.equal(ins.lastInsertRowid, 1n);
    await db.execute({
      sql: "INSERT INTO t (name) VALUES (:name)",
      args: { name: "b" },
    });
    await db.execute({
      sql: "INSERT INTO t (name) VALUES ($name)",
      args: { $name: "c" },
    });
    const rs = await db.execute("SELECT id, name FROM t ORDER BY id DESC");
    assert.deepEqual(rs.columns, ["id", "name"]);
    assert.deepEqual(rs.rows, [{ id: 3, name: "c" }, { id: 2, name: "b" }, {
      id: 1,
      name: "a",
    }]);
    assert.equal(Object.getPrototypeOf(rs.rows[0]), Object.prototype);
    assert.ok(!("_metadata" in rs.rows[0]!));
    assert.equal(rs.rowsAffected, 0);
  });
});

Deno.test("execute() round-trips every SQLite type", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE v (k INTEGER PRIMARY KEY, x)");
    const values: [unknown, unknown][] = [
      [null, null],
      [0, 0],
      [-1, -1],
      [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
      [2n ** 53n + 1n, 2n ** 53n + 1n],
      [2n ** 63n - 1n, 2n ** 63n - 1n],
      [-(2n ** 63n), -(2n ** 63n)],
      [5n, 5],
      [1.5, 1.5],
      [-0.25, -0.25],
      [Infinity, Infinity],
      ["", ""],
      ["plain ascii", "plain ascii"],
      ["emoji 👋🏽 and e\u0301 combining", "emoji 👋🏽 and e\u0301 combining"],
      ["nul\u0000inside", "nul\u0000inside"],
      ["\u0000", "\u0000"],
      [new Uint8Array([]), new Uint8Array([])],
      [new Uint8Array([0, 255, 128, 10]), new Uint8Array([0, 255, 128, 10])],
      [new Uint8Array([9, 1, 2]).subarray(1), new Uint8Array([1, 2])],
      [new Uint8Array([7, 8]).buffer, new Uint8Array([7, 8])],
      [true, 1],
      [false, 0],
      [new Date(1700000000000), 1700000000000],
    ];
    for (const [k, [input]] of values.entries()) {
      await db.execute("INSERT INTO v (k, x) VALUES (?, ?)", [
        k,
        input as never,
      ]);
    }
    const { rows } = await db.execute("SELECT k, x FROM v ORDER BY k");
    assert.equal(rows.length, values.length);
    for (const [k, [, expected]] of values.entries()) {
      assert.deepEqual(rows[k]!.x, expected, `value ${k}`);
    }
    const types = await db.execute("SELECT typeof(x) AS t FROM v WHERE k = 16");
    assert.equal(types.rows[0]!.t, "blob");
  });
});

Deno.test("execute() refuses bad arguments with INVALID_INPUT and stores nothing", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (x, y)");
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", ["a\uD800b"]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", ["\uDC00"]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", [2n ** 63n]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", [NaN]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", [{} as never]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", [undefined as never]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x, y) VALUES (?, ?)", [1]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", [1, 2]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)"),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (?)", { x: 1 }),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (:x)", [1]),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (:x)", { y: 1 }),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t (x) VALUES (:x)", {}),
      "INVALID_INPUT",
    );
    await rejectsWith(
      db.execute("INSERT INTO t VALUES (1, 2); DROP TABLE t"),
      "INVALID_INPUT",
    );
    await rejectsWith(db.execute("  -- nothing\n "), "INVALID_INPUT");
    await rejectsWith(db.execute(42 as never), "INVALID_INPUT");
    const { rows } = await db.execute("SELECT count(*) AS n FROM t");
    assert.deepEqual(rows, [{ n: 0 }]);
    // A question mark or colon inside literals, identifiers and comments is not a parameter.
    await db.execute(
      "INSERT INTO t (\"x\", y) VALUES ('what? :no', ?) -- why? :x\n;  /* ? */",
      ["ok"],
    );
    assert.deepEqual((await db.execute("SELECT x, y FROM t")).rows, [{
      x: "what? :no",
      y: "ok",
    }]);
  });
});

Deno.test("execute() translates driver errors to typed errors", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)");
    await db.execute(
      "CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id))",
    );
    await db.execute("INSERT INTO p VALUES (1)");
    await rejectsWith(
      db.execute("INSERT INTO p VALUES (1)"),
      "CONSTRAINT_VIOLATION",
    );
    // Foreign keys are on.
    await rejectsWith(
      db.execute("INSERT INTO c VALUES (1, 99)"),
      "CONSTRAINT_VIOLATION",
    );
    await rejectsWith(db.execute("SELECT * FROM missing"), "SQL_ERROR");
    await rejectsWith(db.execute("SELEC 1"), "SQL_ERROR");
  });
});

Deno.test("resolveStorageOptions() applies defaults and refuses bad values", async (t) => {
  await t.step("defaults", () => {
    const r = resolveStorageOptions({});
    assert.equal(r.busyTimeoutMs, 5000);
    assert.equal(r.create, true);
    assert.equal(r.statementCacheSize, 256);
    assert.equal(r.safeText, true);
    assert.equal(r.key, undefined);
    assert.ok(Object.isFrozen(r));
  });
  const bad: [string, unknown][] = [
    ["busyTimeoutMs", -1],
    ["busyTimeoutMs", 1.5],
    ["busyTimeoutMs", "5"],
    ["statementCacheSize", 0],
    ["create", "yes"],
    ["safeText", 1],
    ["key", { keyId: "x" }],
  ];
  for (const [name, value] of bad) {
    await t.step(`refuses ${name}=${JSON.stringify(value)}`, () => {
      assert.throws(
        () => resolveStorageOptions({ [name]: value } as never),
        (err: unknown) => isAicoDataError(err, "INVALID_INPUT"),
      );
    });
  }
});

Deno.test("resolveRemoteStorageOptions() refuses bad values", async (t) => {
  const bad: [string, unknown][] = [
    ["authToken", ""],
    ["syncUrl", 3],
    ["key", { keyId: "x" }],
  ];
  for (const [name, value] of bad) {
    await t.step(`refuses ${name}=${JSON.stringify(value)}`, () => {
      assert.throws(
        () => resolveRemoteStorageOptions({ [name]: value } as never),
        (err: unknown) => isAicoDataError(err, "INVALID_INPUT"),
      );
    });
  }
});

Deno.test("openStorage() refuses remote URLs and remote options, naming openRemoteStorage()", async () => {
  const key = await importDataKey(generateDataKey());
  for (const url of ["http://127.0.0.1:1", "libsql://x.example", "wss://h"]) {
    await rejectsWith(openStorage(url, { key }), "INVALID_INPUT");
  }
  await withDir(async (dir) => {
    await rejectsWith(
      openStorage(`${dir}/r.db`, { key, syncUrl: "http://h" } as never),
      "INVALID_INPUT",
    );
    await rejectsWith(
      openRemoteStorage(`${dir}/r.db`, { key }),
      "INVALID_INPUT",
    );
  });
});

Deno.test("transaction() commits when fn returns and rolls back when it throws", async (t) => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (x TEXT)");
    await t.step("commit returns the value", async () => {
      const out = await db.transaction(async (tx) => {
        await tx.execute("INSERT INTO t VALUES (?)", ["kept"]);
        return 7;
      });
      assert.equal(out, 7);
    });
    await t.step("a throw leaves no row behind and is rethrown", async () => {
      const boom = new Error("boom");
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.execute("INSERT INTO t VALUES (?)", ["lost"]);
          await tx.execute("INSERT INTO t VALUES (?)", ["lost too"]);
          throw boom;
        }),
        (err) => err === boom,
      );
      const { rows } = await db.execute("SELECT x FROM t");
      assert.deepEqual(rows, [{ x: "kept" }]);
    });
    await t.step(
      "a failing statement rolls back the whole transaction",
      async () => {
        await rejectsWith(
          db.transaction(async (tx) => {
            await tx.execute("INSERT INTO t VALUES ('lost')");
            await tx.execute("INSERT INTO nowhere VALUES (1)");
          }),
          "SQL_ERROR",
        );
        assert.equal(
          (await db.execute("SELECT count(*) AS n FROM t")).rows[0]!.n,
          1,
        );
      },
    );
    await t.step("read mode refuses writes", async () => {
      await rejectsWith(
        db.transaction(
          (tx) => tx.execute("INSERT INTO t VALUES ('x')"),
          "read",
        ),
        "SQL_ERROR",
      );
      // The connection is writable again afterwards.
      await db.execute("INSERT INTO t VALUES ('after read')");
      await db.execute("DELETE FROM t WHERE x = 'after read'");
    });
    await t.step("an unknown mode is INVALID_INPUT", async () => {
      await rejectsWith(
        db.transaction(() => 1, "exclusive" as never),
        "INVALID_INPUT",
      );
    });
  });
});

Deno.test("transaction() misuse gives TRANSACTION_MISUSE", async (t) => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (x)");
    await t.step("nested transaction()", async () => {
      let inner: unknown;
      await db.transaction(async (tx) => {
        await tx.execute("INSERT INTO t VALUES (1)");
        try {
          await db.transaction(() => 1);
        } catch (err) {
          inner = err;
        }
      });
      assert.ok(isAicoDataError(inner, "TRANSACTION_MISUSE"));
      // The outer transaction still committed.
      assert.equal(
        (await db.execute("SELECT count(*) AS n FROM t")).rows[0]!.n,
        1,
      );
    });
    await t.step("calling the storage instead of tx inside fn", async () => {
      await rejectsWith(
        db.transaction(async () => {
          await db.execute("INSERT INTO t VALUES (2)");
        }),
        "TRANSACTION_MISUSE",
      );
      await rejectsWith(
        db.transaction(() => db.batch(["SELECT 1"])),
        "TRANSACTION_MISUSE",
      );
    });
    await t.step("using tx after the callback returned", async () => {
      let saved: import("./mod.ts").Transaction | undefined;
      await db.transaction((tx) => {
        saved = tx;
      });
      assert.equal(saved!.closed, true);
      await rejectsWith(saved!.execute("SELECT 1"), "TRANSACTION_MISUSE");
      await rejectsWith(saved!.batch(["SELECT 1"]), "TRANSACTION_MISUSE");
    });
    await t.step("BEGIN issued as SQL blocks transaction()", async () => {
      await db.execute("BEGIN");
      await rejectsWith(db.transaction(() => 1), "TRANSACTION_MISUSE");
      await db.execute("ROLLBACK");
    });
  });
});

Deno.test("transaction() serialises concurrent callers from other tasks", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE log (n INTEGER)");
    const order: string[] = [];
    const slow = db.transaction(async (tx) => {
      order.push("a:start");
      await tx.execute("INSERT INTO log VALUES (1)");
      await new Promise((r) => setTimeout(r, 30));
      await tx.execute("INSERT INTO log VALUES (2)");
      order.push("a:end");
    });
    const second = db.transaction(async (tx) => {
      order.push("b:start");
      await tx.execute("INSERT INTO log VALUES (3)");
    });
    const read = db.execute("SELECT count(*) AS n FROM log").then((rs) => {
      order.push(`read:${rs.rows[0]!.n}`);
    });
    await Promise.all([slow, second, read]);
    assert.equal(order[0], "a:start");
    assert.equal(order[1], "a:end");
    assert.ok(order.indexOf("b:start") > 1);
    // The plain read never saw the transaction half done.
    assert.ok(order.includes("read:2") || order.includes("read:3"));
    const { rows } = await db.execute("SELECT n FROM log ORDER BY rowid");
    assert.deepEqual(rows.map((r) => r.n), [1, 2, 3]);
  });
});

Deno.test("transaction() runs 20 concurrent read-modify-write callers one at a time", async (t) => {
  await withStorage(async (db) => {
    await db.execute(
      "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)",
    );
    await db.execute("INSERT INTO counter VALUES (1, 0)");
    const bump = (wait: () => Promise<unknown>) =>
      db.transaction(async (tx) => {
        const rs = await tx.execute("SELECT n FROM counter WHERE id = 1");
        const n = rs.rows[0]!.n as number;
        await wait();
        await tx.execute("UPDATE counter SET n = ? WHERE id = 1", [n + 1]);
        return n;
      });
    const read = async (): Promise<number> =>
      (await db.execute("SELECT n FROM counter WHERE id = 1")).rows[0]!
        .n as number;

    await t.step("with a timer tick between read and write", async () => {
      const seen = await Promise.all(
        Array.from(
          { length: 20 },
          () => bump(() => new Promise((r) => setTimeout(r, 0))),
        ),
      );
      assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i));
      assert.equal(await read(), 20);
    });

    await t.step("with only a microtask between read and write", async () => {
      await Promise.all(
        Array.from({ length: 20 }, () => bump(() => Promise.resolve())),
      );
      assert.equal(await read(), 40);
    });

    await t.step(
      "mixed with batch(), plain execute() and a failing transaction",
      async () => {
        const calls: Promise<unknown>[] = [];
        for (let i = 0; i < 10; i++) {
          calls.push(bump(() => new Promise((r) => setTimeout(r, 0))));
          calls.push(db.batch([
            "UPDATE counter SET n = n + 1 WHERE id = 1",
            "UPDATE counter SET n = n + 1 WHERE id = 1",
          ]));
          calls.push(read());
        }
        const failing = db.transaction(async (tx) => {
          await tx.execute("UPDATE counter SET n = n + 1000 WHERE id = 1");
          await new Promise((r) => setTimeout(r, 0));
          throw new RangeError("no");
        });
        calls.push(failing.then(() => assert.fail("should reject"), (err) => {
          assert.ok(err instanceof RangeError);
        }));
        for (let i = 0; i < 5; i++) {
          calls.push(bump(() => Promise.resolve()));
        }
        const results = await Promise.allSettled(calls);
        assert.deepEqual(
          results.filter((r) => r.status === "rejected"),
          [],
        );
        assert.equal(await read(), 40 + 10 + 20 + 5);
      },
    );
  });
});

Deno.test("close() with queued transactions lets the running one finish and fails the rest with STORE_CLOSED", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aico_storage_" });
  try {
    const key = await importDataKey(generateDataKey());
    const db = await openStorage(`${dir}/t.db`, { key });
    await db.execute("CREATE TABLE t (n INTEGER)");
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const first = db.transaction(async (tx) => {
      await tx.execute("INSERT INTO t VALUES (1)");
      started();
      await new Promise((r) => setTimeout(r, 10));
    });
    const queued = Array.from(
      { length: 5 },
      (_, i) =>
        db.transaction((tx) => tx.execute("INSERT INTO t VALUES (?)", [i])),
    );
    await running;
    const closing = db.close();
    const settled = Promise.all(
      queued.map((p) => rejectsWith(p, "STORE_CLOSED")),
    );
    await first;
    await settled;
    await closing;
    assert.equal(db.closed, true);
    await using again = await openStorage(`${dir}/t.db`, { key });
    const { rows } = await again.execute("SELECT n FROM t");
    assert.deepEqual(rows.map((r) => r.n), [1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the UTF-8 guard returns every kind of value as stored, by declared type", async () => {
  await withStorage(async (db) => {
    await db.execute(
      "CREATE TABLE v (id INTEGER PRIMARY KEY, t TEXT, b BLOB, i INTEGER, j JSON, n)",
    );
    await db.execute("CREATE TABLE s (k ANY, x INTEGER) STRICT");
    await db.execute("CREATE TABLE w (k INTEGER PRIMARY KEY, x) WITHOUT ROWID");
    const bytes = new Uint8Array([0xc3, 0xa9, 0]);
    await db.execute("INSERT INTO v VALUES (1, ?, ?, ?, ?, ?)", [
      "é\u0000x",
      bytes,
      7,
      '{"a":"é"}',
      "ñ",
    ]);
    // Odd data in a non-STRICT table: text in BLOB and INTEGER columns,
    // bytes in a TEXT column.
    await db.execute("INSERT INTO v VALUES (2, ?, 'ascii', 'abc', NULL, ?)", [
      bytes,
      bytes,
    ]);
    await db.execute("INSERT INTO v VALUES (3, NULL, 'é', 'é', NULL, NULL)");
    await db.execute("INSERT INTO s VALUES ('é', 1), (?, 2)", [bytes]);
    await db.execute("INSERT INTO w VALUES (5, 'é')");
    const { rows } = await db.execute(
      "SELECT id, t, b, i, j, n FROM v ORDER BY id",
    );
    assert.deepEqual(rows, [
      { id: 1, t: "é\u0000x", b: bytes, i: 7, j: '{"a":"é"}', n: "ñ" },
      { id: 2, t: bytes, b: "ascii", i: "abc", j: null, n: bytes },
      // Non-ASCII TEXT in a column declared BLOB or INTEGER comes back as
      // its UTF-8 bytes (documented on Storage).
      {
        id: 3,
        t: null,
        b: new TextEncoder().encode("é"),
        i: new TextEncoder().encode("é"),
        j: null,
        n: null,
      },
    ]);
    assert.deepEqual(
      (await db.execute("SELECT k, x FROM s ORDER BY x")).rows,
      [{ k: "é", x: 1 }, { k: bytes, x: 2 }],
    );
    assert.deepEqual((await db.execute("SELECT k, x FROM w")).rows, [
      { k: 5, x: "é" },
    ]);
    // Expressions and aliases take the subquery wrapper: same values.
    assert.deepEqual(
      (await db.execute("SELECT t || '' AS t2, b AS bb FROM v WHERE id = 1"))
        .rows,
      [{ t2: "é\u0000x", bb: bytes }],
    );
    // A schema change is seen by statements prepared before it.
    await db.execute("DROP TABLE w");
    await db.execute("CREATE TABLE w (k INTEGER, x)");
    await db.execute("INSERT INTO w VALUES ('é', 1)");
    assert.deepEqual((await db.execute("SELECT k, x FROM w")).rows, [
      { k: new TextEncoder().encode("é"), x: 1 },
    ]);
  });
});

Deno.test("batch() failures are a BatchError with the statement index and the driver's extended code", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT UNIQUE)");
    await db.execute("INSERT INTO t VALUES (1, 'a')");
    const caught = await db.batch([
      "INSERT INTO t VALUES (2, 'b')",
      "INSERT INTO t VALUES (3, 'c')",
      "INSERT INTO t VALUES (4, 'a')",
    ]).catch((e: unknown) => e);
    assert.ok(caught instanceof BatchError, String(caught));
    assert.equal(caught.code, "CONSTRAINT_VIOLATION");
    assert.equal(caught.statementIndex, 2);
    assert.equal(caught.extendedCode, "SQLITE_CONSTRAINT_UNIQUE");
    const badArgs = await db.batch([
      "SELECT 1",
      { sql: "SELECT ?", args: [] },
    ]).catch((e: unknown) => e);
    assert.ok(badArgs instanceof BatchError);
    assert.equal(badArgs.code, "INVALID_INPUT");
    assert.equal(badArgs.statementIndex, 1);
    assert.equal(badArgs.extendedCode, undefined);
    await db.transaction(async (tx) => {
      const inner = await tx.batch(["SELECT 1", "SELECT * FROM nowhere"])
        .catch((e: unknown) => e);
      assert.ok(inner instanceof BatchError);
      assert.equal(inner.statementIndex, 1);
      assert.equal(inner.code, "SQL_ERROR");
    });
    assert.deepEqual((await db.execute("SELECT id FROM t")).rows, [{ id: 1 }]);
  });
});

Deno.test("batch() is all or nothing", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    const results = await db.batch([
      "INSERT INTO t VALUES (1)",
      { sql: "INSERT INTO t VALUES (?)", args: [2] },
      "SELECT id FROM t ORDER BY id",
    ]);
    assert.equal(results.length, 3);
    assert.deepEqual(results[2]!.rows, [{ id: 1 }, { id: 2 }]);
    await rejectsWith(
      db.batch(["INSERT INTO t VALUES (3)", "INSERT INTO t VALUES (1)"]),
      "CONSTRAINT_VIOLATION",
    );
    assert.deepEqual((await db.execute("SELECT id FROM t")).rows, [{ id: 1 }, {
      id: 2,
    }]);
    // Inside a transaction, a failed batch is undone to its savepoint only.
    await db.transaction(async (tx) => {
      await tx.execute("INSERT INTO t VALUES (10)");
      await rejectsWith(
        tx.batch(["INSERT INTO t VALUES (11)", "INSERT INTO t VALUES (10)"]),
        "CONSTRAINT_VIOLATION",
      );
    });
    assert.deepEqual((await db.execute("SELECT id FROM t")).rows, [{ id: 1 }, {
      id: 2,
    }, {
      id: 10,
    }]);
  });
});

Deno.test("close() is safe twice and later calls give STORE_CLOSED", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    const db = await openStorage(`${dir}/c.db`, { key });
    assert.equal(db.closed, false);
    assert.equal(db.kind, "local");
    await db.close();
    await db.close();
    assert.equal(db.closed, true);
    await rejectsWith(db.execute("SELECT 1"), "STORE_CLOSED");
    await rejectsWith(db.batch(["SELECT 1"]), "STORE_CLOSED");
    await rejectsWith(db.transaction(() => 1), "STORE_CLOSED");
    await rejectsWith(db.verify(), "STORE_CLOSED");
    assert.throws(
      () => db.sealedColumn("t", "c"),
      (e) => isAicoDataError(e, "STORE_CLOSED"),
    );
    let disposed: LocalStorage | undefined;
    {
      await using db2 = await openStorage(`${dir}/c.db`, { key });
      disposed = db2;
      assert.equal((await db2.execute("SELECT 1 AS one")).rows[0]!.one, 1);
    }
    assert.equal(disposed.closed, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStorage() verifies WAL, synchronous=FULL, busy timeout and foreign keys", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/p.db`, {
      key,
      busyTimeoutMs: 1234,
    });
    const one = async (sql: string) =>
      Object.values((await db.execute(sql)).rows[0]!)[0];
    assert.equal(await one("PRAGMA journal_mode"), "wal");
    assert.equal(await one("PRAGMA synchronous"), 2);
    assert.equal(await one("PRAGMA busy_timeout"), 1234);
    assert.equal(await one("PRAGMA foreign_keys"), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStorage() refuses a missing file with create: false and a missing key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await rejectsWith(
      openStorage(`${dir}/none.db`, { key, create: false }),
      "NOT_FOUND",
    );
    await rejectsWith(openStorage(`${dir}/none.db`, {}), "INVALID_INPUT");
    await rejectsWith(
      openStorage(`${dir}/no/such/dir.db`, { key }),
      "NOT_FOUND",
    );
    await rejectsWith(openStorage("", { key }), "INVALID_INPUT");
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("executeMultiple() runs a script", async () => {
  await withStorage(async (db) => {
    await db.executeMultiple(
      "CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1);",
    );
    assert.deepEqual((await db.execute("SELECT x FROM a")).rows, [{ x: 1 }]);
    await rejectsWith(
      db.executeMultiple("CREATE TABLE c (x); SELEC"),
      "SQL_ERROR",
    );
  });
});

Deno.test("execute() returns every row of queries that look like point selects", async () => {
  await withStorage(async (db) => {
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)");
    await db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER)");
    await db.batch([
      "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
      "INSERT INTO u VALUES (1, 1), (2, 3)",
    ]);
    const cases: [string, unknown[], number[]][] = [
      ["SELECT id FROM t WHERE id = ?", [2], [2]],
      ["SELECT id FROM t WHERE id = ?", [9], []],
      ["SELECT id FROM t WHERE id IN (1, 2, 3) ORDER BY id", [], [1, 2, 3]],
      ["SELECT id FROM t WHERE id = ? OR id = ? ORDER BY id", [1, 3], [1, 3]],
      ["SELECT id FROM t WHERE id IN (SELECT t_id FROM u) ORDER BY id", [], [
        1,
        3,
      ]],
      [
        "SELECT id FROM t WHERE id = ? UNION ALL SELECT id FROM t WHERE id = ?",
        [1, 2],
        [1, 2],
      ],
      ["SELECT t.id FROM t, u WHERE t.id = ? ORDER BY u.id", [1], [1, 1]],
      ["SELECT id FROM t WHERE rowid = ?", [3], [3]],
    ];
    for (const [sql, args, ids] of cases) {
      const { rows } = await db.execute(sql, args as never);
      assert.deepEqual(rows.map((r) => r.id), ids, sql);
    }
    assert.deepEqual(
      (await db.execute("SELECT count(*) AS n FROM t WHERE id = ?", [1])).rows,
      [{
        n: 1,
      }],
    );
  });
});

Deno.test("reads leave no open snapshot: another connection's write is seen, checkpoints succeed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await using a = await openStorage(`${dir}/s.db`, { key });
    await using b = await openStorage(`${dir}/s.db`, { key });
    await a.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)");
    await a.execute("INSERT INTO t VALUES (1, 'old'), (2, 'x')");
    const point = "SELECT x FROM t WHERE id = ?";
    const scan = "SELECT x FROM t ORDER BY id";
    assert.deepEqual((await a.execute(point, [1])).rows, [{ x: "old" }]);
    assert.equal((await a.execute(scan)).rows.length, 2);
    await b.execute("UPDATE t SET x = 'new' WHERE id = 1");
    assert.deepEqual((await a.execute(point, [1])).rows, [{ x: "new" }]);
    const ck = await a.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    assert.equal(ck.rows[0]!.busy, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a write blocked by another connection past busyTimeoutMs gives BUSY", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await using a = await openStorage(`${dir}/b.db`, { key });
    await using b = await openStorage(`${dir}/b.db`, {
      key,
      busyTimeoutMs: 50,
    });
    await a.execute("CREATE TABLE t (x)");
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holder = a.transaction(async (tx) => {
      await tx.execute("INSERT INTO t VALUES (1)");
      await held;
    });
    await new Promise((r) => setTimeout(r, 10));
    await rejectsWith(b.execute("INSERT INTO t VALUES (2)"), "BUSY");
    // rekey needs the only connection: refused while another one is open.
    const other = await importDataKey(generateDataKey());
    release();
    await holder;
    const record = await Deno.readFile(`${dir}/b.db.aico`);
    await rejectsWith(b.rekey(other), "BUSY");
    // A refused rotation leaves the key record as it was.
    assert.deepEqual(await Deno.readFile(`${dir}/b.db.aico`), record);
    assert.deepEqual((await b.execute("SELECT x FROM t")).rows, [{ x: 1 }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("close() inside a transaction is TRANSACTION_MISUSE; outside it waits for the transaction", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    const db = await openStorage(`${dir}/c.db`, { key });
    await db.execute("CREATE TABLE t (x)");
    await db.transaction(async (tx) => {
      await rejectsWith(db.close(), "TRANSACTION_MISUSE");
      await tx.execute("INSERT INTO t VALUES (1)");
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const running = db.transaction(async (tx) => {
      await tx.execute("INSERT INTO t VALUES (2)");
      await gate;
    });
    const closing = db.close();
    assert.equal(db.closed, true);
    release();
    await rejectsWith(running, "STORE_CLOSED");
    await closing;
    await using again = await openStorage(`${dir}/c.db`, { key });
    assert.deepEqual((await again.execute("SELECT x FROM t")).rows, [{ x: 1 }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The AAD layout as documented on sealedColumnAad(), written out plainly. */
function referenceAad(
  table: string,
  column: string,
  rowKey: string | number | bigint,
  version: number,
): Uint8Array {
  const enc = new TextEncoder();
  const u32 = (
    n: number,
  ) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const field = (b: Uint8Array) => [...u32(b.length), ...b];
  const key = typeof rowKey === "string" ? rowKey : BigInt(rowKey).toString();
  return new Uint8Array([
    1,
    ...u32(version),
    typeof rowKey === "string" ? 0x73 : 0x69,
    ...field(enc.encode(table)),
    ...field(enc.encode(column)),
    ...field(enc.encode(key)),
  ]);
}

Deno.test("sealedColumnAad() bytes follow the documented layout", () => {
  assert.deepEqual(
    sealedColumnAad("t", "c", 5, 1),
    new Uint8Array([
      1,
      0,
      0,
      0,
      1,
      0x69,
      0,
      0,
      0,
      1,
      0x74,
      0,
      0,
      0,
      1,
      0x63,
      0,
      0,
      0,
      1,
      0x35,
    ]),
  );
  const keys = [
    0,
    -1,
    42,
    Number.MAX_SAFE_INTEGER,
    -(2n ** 63n),
    2n ** 70n,
    "",
    "m0",
    "é👋",
    "5",
  ];
  for (const k of keys) {
    for (const version of [0, 1, 0xffffffff]) {
      assert.deepEqual(
        sealedColumnAad("messages", "content", k, version),
        referenceAad("messages", "content", k, version),
        String(k),
      );
    }
  }
  assert.deepEqual(
    sealedColumnAad("tä", "c👋", "k", 3),
    referenceAad("tä", "c👋", "k", 3),
  );
});

Deno.test("SealedColumn.sealBatch() and openBatch() bind each value to its own row, like seal() and open()", async (t) => {
  await withStorage(async (db) => {
    const key = db.sealedColumn("messages", "content");
    const keys = [1, 2, 2n ** 60n, "m1", "é", 9007199254740991];
    const sealed = await key.sealBatch(
      keys.map((rowKey, i) => ({
        rowKey,
        value: i % 2 ? `v${i}` : new TextEncoder().encode(`v${i}`),
      })),
    );
    await t.step(
      "each batch value opens with open() for its row only",
      async () => {
        for (let i = 0; i < keys.length; i++) {
          assert.equal(await key.openText(keys[i]!, sealed[i]!), `v${i}`);
          await rejectsWith(
            key.open(keys[(i + 1) % keys.length]!, sealed[i]!),
            "AUTH_FAILED",
          );
        }
      },
    );
    await t.step("every value has its own nonce", () => {
      const nonces = new Set(sealed.map((s) => s.subarray(1, 13).join(",")));
      assert.equal(nonces.size, keys.length);
    });
    await t.step(
      "openBatch() opens values of seal() and refuses a swapped pair",
      async () => {
        const one = await key.seal(7, "seven");
        const opened = await key.openBatch([
          { rowKey: 7, sealed: one },
          ...keys.map((rowKey, i) => ({ rowKey, sealed: sealed[i]! })),
        ]);
        assert.deepEqual(
          opened.map((b) => new TextDecoder().decode(b)),
          ["seven", ...keys.map((_, i) => `v${i}`)],
        );
        await rejectsWith(
          key.openBatch([{ rowKey: 1, sealed: sealed[0]! }, {
            rowKey: 7,
            sealed: sealed[1]!,
          }]),
          "AUTH_FAILED",
        );
        await rejectsWith(
          db.sealedColumn("messages", "content", { schemaVersion: 2 })
            .openBatch([{ rowKey: 1, sealed: sealed[0]! }]),
          "AUTH_FAILED",
        );
        await rejectsWith(
          db.sealedColumn("messages", "title").openBatch([{
            rowKey: 1,
            sealed: sealed[0]!,
          }]),
          "AUTH_FAILED",
        );
      },
    );
    await t.step(
      "values sealed with the documented AAD open (stored values stay readable)",
      async () => {
        const dataKey = await importDataKey(generateDataKey());
        const dir = await Deno.makeTempDir({ prefix: "aico_storage_" });
        try {
          await using other = await openStorage(`${dir}/k.db`, {
            key: dataKey,
          });
          const sealer = await dataKey.sealer("field-aead");
          const old = await sealer.seal(
            "old value",
            referenceAad("messages", "content", 12, 1),
          );
          const col = other.sealedColumn("messages", "content");
          assert.equal(await col.openText(12, old), "old value");
          assert.deepEqual(
            (await col.openBatch([{ rowKey: 12n, sealed: old }])).map((b) =>
              new TextDecoder().decode(b)
            ),
            ["old value"],
          );
          const made =
            (await col.sealBatch([{ rowKey: "r", value: "new" }]))[0]!;
          assert.equal(
            new TextDecoder().decode(
              await sealer.open(
                made,
                referenceAad("messages", "content", "r", 1),
              ),
            ),
            "new",
          );
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );
    await t.step(
      "bad items are INVALID_INPUT; an empty batch is empty",
      async () => {
        await rejectsWith(
          key.sealBatch([{ rowKey: 1, value: "a" }, {
            rowKey: 1.5,
            value: "b",
          }]),
          "INVALID_INPUT",
        );
        await rejectsWith(
          key.sealBatch([{ rowKey: 1, value: "\uD800" }]),
          "INVALID_INPUT",
        );
        await rejectsWith(
          key.sealBatch([{ rowKey: "\uDC00", value: "x" }]),
          "INVALID_INPUT",
        );
        await rejectsWith(
          key.sealBatch([{ rowKey: 1, value: 5 as unknown as string }]),
          "INVALID_INPUT",
        );
        await rejectsWith(key.sealBatch("x" as unknown as []), "INVALID_INPUT");
        await rejectsWith(
          key.openBatch([{ rowKey: 1, sealed: "x" as unknown as Uint8Array }]),
          "INVALID_INPUT",
        );
        assert.deepEqual(await key.sealBatch([]), []);
        assert.deepEqual(await key.openBatch([]), []);
      },
    );
  });
});
