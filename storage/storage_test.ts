import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage, resolveStorageOptions, type Storage } from "./mod.ts";

async function withStorage(
  fn: (db: Storage, dir: string) => Promise<void>,
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

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(
      isAicoDataError(err),
      `expected AicoDataError, got ${String(err)}`,
    );
    assert.equal(err.code, code);
    return true;
  });
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
    ["authToken", ""],
    ["syncUrl", 3],
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
