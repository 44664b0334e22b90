// Encryption at rest, wrong key vs damaged file, invalid UTF-8 reads,
// permissions and remote errors of storage/, against real libSQL files.
import assert from "node:assert/strict";
import { rejectsWith } from "./_helpers.ts";
import Database from "libsql";
import { type DataKey, generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openRemoteStorage, openStorage } from "../storage/mod.ts";

const MARKER = "MARKER-7f3a9c-PLAINTEXT";

function count(haystack: Uint8Array, needle: Uint8Array): number {
  let n = 0;
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    n++;
  }
  return n;
}

async function filesOf(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    const bytes = await Deno.readFile(`${dir}/${e.name}`);
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    out.set(
      e.name,
      Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join(""),
    );
  }
  return out;
}

/** Checks every file in `dir`: no marker, no plaintext SQLite header. */
async function assertNoPlaintext(dir: string): Promise<string[]> {
  const names: string[] = [];
  const marker = new TextEncoder().encode(MARKER);
  const header = new TextEncoder().encode("SQLite format 3");
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    names.push(e.name);
    const bytes = await Deno.readFile(`${dir}/${e.name}`);
    assert.equal(count(bytes, marker), 0, `marker found in ${e.name}`);
    assert.notDeepEqual(
      bytes.subarray(0, header.length),
      header,
      `${e.name} is plaintext SQLite`,
    );
  }
  return names.sort();
}

async function seeded(dir: string, key: DataKey): Promise<void> {
  await using db = await openStorage(`${dir}/s.db`, { key });
  await db.execute(
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, raw BLOB)",
  );
  await db.execute("INSERT INTO notes (body, raw) VALUES (?, ?)", [
    MARKER,
    new TextEncoder().encode(MARKER),
  ]);
}

Deno.test("storage writes no plaintext to the database, -wal, -shm or journal files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    const db = await openStorage(`${dir}/m.db`, { key });
    await db.execute(
      "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, raw BLOB)",
    );
    await db.transaction(async (tx) => {
      for (let i = 0; i < 500; i++) {
        await tx.execute("INSERT INTO notes (body, raw) VALUES (?, ?)", [
          `${i} ${MARKER} ${"x".repeat(i % 50)}`,
          new TextEncoder().encode(MARKER),
        ]);
      }
    });
    await db.execute("UPDATE notes SET body = ? WHERE id = 1", [MARKER]);
    // While open: the WAL holds the recent pages.
    const open = await assertNoPlaintext(dir);
    assert.ok(open.includes("m.db-wal"), `expected a WAL file, got ${open}`);
    // A backup is encrypted too.
    await db.backup(`${dir}/m.bak`);
    await db.close();
    const names = await assertNoPlaintext(dir);
    assert.ok(
      names.includes("m.bak") && names.includes("m.bak.aico"),
      names.join(),
    );
    // The raw driver without the key cannot read the file, nor with a naive hex key.
    for (const opts of [{}, { encryptionKey: "00".repeat(32) }]) {
      const raw = new Database(`${dir}/m.db`, opts as never);
      try {
        assert.throws(
          () => raw.prepare("SELECT count(*) FROM notes").all(),
          (err: unknown) => {
            return (err as { code?: string }).code === "SQLITE_NOTADB";
          },
        );
      } finally {
        raw.close();
      }
    }
    // With the key it opens and the marker is there.
    await using again = await openStorage(`${dir}/m.db`, { key });
    const { rows } = await again.execute("SELECT body FROM notes WHERE id = 1");
    assert.equal(rows[0]!.body, MARKER);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStorage() gives WRONG_KEY for another key and leaves files byte-identical", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await seeded(dir, key);
    const before = await filesOf(dir);
    const other = await importDataKey(generateDataKey());
    await rejectsWith(openStorage(`${dir}/s.db`, { key: other }), "WRONG_KEY");
    assert.deepEqual(await filesOf(dir), before);
    // The right key still opens it.
    await using db = await openStorage(`${dir}/s.db`, { key });
    assert.equal(
      (await db.execute("SELECT count(*) AS n FROM notes")).rows[0]!.n,
      1,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStorage() gives CORRUPT_STORE for a damaged file and leaves files byte-identical", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await seeded(dir, key);
    const path = `${dir}/s.db`;
    const original = await Deno.readFile(path);
    await t.step("damaged first page", async () => {
      const damaged = original.slice();
      for (let i = 0; i < 16; i++) damaged[i]! ^= 0x5a;
      await Deno.writeFile(path, damaged);
      const before = await filesOf(dir);
      await rejectsWith(openStorage(path, { key }), "CORRUPT_STORE");
      assert.deepEqual(await filesOf(dir), before);
    });
    await t.step("garbage file", async () => {
      await Deno.writeFile(path, crypto.getRandomValues(new Uint8Array(8192)));
      const before = await filesOf(dir);
      await rejectsWith(openStorage(path, { key }), "CORRUPT_STORE");
      assert.deepEqual(await filesOf(dir), before);
    });
    await t.step("missing key record", async () => {
      await Deno.writeFile(path, original);
      const record = await Deno.readFile(`${path}.aico`);
      await Deno.remove(`${path}.aico`);
      await rejectsWith(openStorage(path, { key }), "CORRUPT_STORE");
      await Deno.writeFile(`${path}.aico`, record);
    });
    await t.step("unreadable key record", async () => {
      await Deno.writeTextFile(`${path}.aico`, "{not json");
      await rejectsWith(openStorage(path, { key }), "CORRUPT_STORE");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a TEXT cell holding invalid UTF-8 is read as CORRUPT_VALUE, not a process abort", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/u.db`, { key });
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, y TEXT)");
    // A raw insert: SQL builds the invalid TEXT, no argument goes through the guard.
    await db.execute(
      "INSERT INTO t (x, y) VALUES (cast(x'41ff42' as text), 'fine')",
    );
    await db.execute("INSERT INTO t (x, y) VALUES ('ok', 'é ok')");
    const queries = [
      "SELECT * FROM t",
      "SELECT x FROM t WHERE id = 1",
      "SELECT t.x, t.x FROM t JOIN t AS u ON u.id = t.id",
      "WITH c AS (SELECT x FROM t) SELECT * FROM c",
      "VALUES (cast(x'c328' as text))",
      "SELECT cast(x'41ff42' as text) AS lit UNION ALL SELECT 'a'",
      "SELECT x || '' AS y FROM t ORDER BY id",
      "SELECT cast(x'ed' as text)",
      "SELECT cast(x'00ff' as text)",
    ];
    for (const sql of queries) {
      await rejectsWith(db.execute(sql), "CORRUPT_VALUE");
    }
    await rejectsWith(
      db.transaction((tx) => tx.execute("SELECT x FROM t")),
      "CORRUPT_VALUE",
    );
    await rejectsWith(db.batch(["SELECT x FROM t"]), "CORRUPT_VALUE");
    // Valid rows and other columns still read; the bytes can be fetched.
    assert.deepEqual(
      (await db.execute("SELECT x, y FROM t WHERE id = 2")).rows,
      [
        { x: "ok", y: "é ok" },
      ],
    );
    const { rows } = await db.execute(
      "SELECT CAST(x AS BLOB) AS b, hex(x) AS h FROM t WHERE id = 1",
    );
    assert.deepEqual(rows[0]!.b, new Uint8Array([0x41, 0xff, 0x42]));
    assert.equal(rows[0]!.h, "41FF42");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStorage() gives PERMISSION_DENIED naming the missing flag", async (t) => {
  const dir = await Deno.makeTempDir();
  const script =
    new URL("./_storage_permission_child.ts", import.meta.url).pathname;
  try {
    const cases: [string[], string][] = [
      [
        ["--allow-read", "--allow-write", "--allow-sys", "--allow-env"],
        "--allow-ffi",
      ],
      [
        ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env"],
        "--allow-sys",
      ],
      [
        ["--allow-read", "--allow-write", "--allow-ffi", "--allow-sys"],
        "--allow-env=LIBSQL_JS_DEV",
      ],
      [
        [`--allow-read`, "--allow-ffi", "--allow-sys", "--allow-env"],
        "--allow-write=",
      ],
    ];
    for (const [flags, missing] of cases) {
      await t.step(`without ${missing}`, async () => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-prompt", ...flags, script, `${dir}/p.db`],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout).trim();
        const [code, message] = text.split("\t");
        assert.equal(
          code,
          "PERMISSION_DENIED",
          new TextDecoder().decode(out.stderr),
        );
        assert.ok(message!.includes(missing), text);
      });
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("openRemoteStorage() gives CONNECTION_FAILED for a server that cannot be reached", async (t) => {
  const port = closedPort();
  const key = await importDataKey(generateDataKey());
  await t.step("http://", async () => {
    await rejectsWith(
      openRemoteStorage(`http://127.0.0.1:${port}`, {}),
      "CONNECTION_FAILED",
    );
  });
  await t.step("ws://", async () => {
    await rejectsWith(
      openRemoteStorage(`ws://127.0.0.1:${port}`, {}),
      "CONNECTION_FAILED",
    );
  });
  await t.step("embedded replica with syncUrl", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await rejectsWith(
        openRemoteStorage(`${dir}/replica.db`, {
          key,
          syncUrl: `http://127.0.0.1:${port}`,
        }),
        "CONNECTION_FAILED",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
