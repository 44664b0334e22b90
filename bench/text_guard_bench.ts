// The UTF-8 guard's cost on a listMessages-shaped read: all 100 pages of 100 rows
// (id INTEGER PRIMARY KEY, seq, role TEXT, content BLOB of 256 bytes,
// created_at) from a 10k-message conversation, encrypted. Same statement in
// every case:
//   - raw: the `npm:libsql` driver, prepared, rows as objects (baseline);
//   - ours, guard off (`safeText: false`);
//   - ours, guard on (the default): written in place, the rowid alias
//     unguarded;
//   - ours, guard on, a shape that needs the subquery wrapper (an
//     expression in the select list), to show what in-place saves.
//
//   deno bench -A bench/text_guard_bench.ts
import Database from "libsql";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const ROWS = 10_000;
const PAGE = 100;
const dir = await Deno.makeTempDir({ prefix: "aico_guard_bench_" });
const key = await importDataKey(generateDataKey());
const path = `${dir}/g.db`;
const SCHEMA = [
  "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content BLOB NOT NULL, created_at INTEGER NOT NULL)",
  "CREATE INDEX messages_seq ON messages (conversation_id, seq)",
];
const LIST =
  "SELECT id, seq, role, content, created_at FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT 100";
const LIST_WRAPPED =
  "SELECT id, seq, role, content, created_at + 0 AS created_at FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT 100";

const guarded = await openStorage(path, { key });
for (const sql of SCHEMA) await guarded.execute(sql);
await guarded.transaction(async (tx) => {
  for (let i = 0; i < ROWS; i++) {
    await tx.execute(
      "INSERT INTO messages (conversation_id, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)",
      [
        "c1",
        i,
        i % 2 === 0 ? "user" : "assistant",
        crypto.getRandomValues(new Uint8Array(256)),
        1_700_000_000_000 + i,
      ],
    );
  }
});
const unguarded = await openStorage(path, { key, safeText: false });
const pageBytes = await key.purposeKeyBytes("libsql-page");
const raw = new Database(path, {
  encryptionKey: String.fromCharCode(...pageBytes.map((b) => b & 0x7f)),
  timeout: 5000,
} as never);
// Rows as objects, like ours.
const rawList = raw.prepare(LIST).safeIntegers(true);

function check(n: number): void {
  if (n !== PAGE) throw new Error(`expected ${PAGE} rows, got ${n}`);
}

Deno.bench("raw npm:libsql, paged listing", {
  group: "list",
  baseline: true,
}, () => {
  for (let s = -1; s < ROWS - PAGE; s += PAGE) {
    check((rawList.all(["c1", s]) as unknown[]).length);
  }
});

Deno.bench("ours, guard off", { group: "list" }, async () => {
  for (let s = -1; s < ROWS - PAGE; s += PAGE) {
    check((await unguarded.execute(LIST, ["c1", s])).rows.length);
  }
});

Deno.bench("ours, guard on (in place)", { group: "list" }, async () => {
  for (let s = -1; s < ROWS - PAGE; s += PAGE) {
    check((await guarded.execute(LIST, ["c1", s])).rows.length);
  }
});

Deno.bench("ours, guard on (subquery wrapper)", { group: "list" }, async () => {
  for (let s = -1; s < ROWS - PAGE; s += PAGE) {
    check((await guarded.execute(LIST_WRAPPED, ["c1", s])).rows.length);
  }
});

globalThis.addEventListener("unload", () => {
  raw.close();
  void guarded.close();
  void unguarded.close();
  Deno.removeSync(dir, { recursive: true });
});
