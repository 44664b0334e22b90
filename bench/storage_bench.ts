// Storage benchmarks: ours next to the raw `npm:libsql` driver (prepared
// statements, baseline) and `@libsql/client` (local file), all encrypted,
// on 100k message rows of about 200 bytes, each side in the same statement
// shape (one-row inserts in one transaction; point selects in batches of
// 1000 lookups per iteration).
//
//   deno bench -A bench/storage_bench.ts
import Database from "libsql";
import { createClient } from "@libsql/client";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const ROWS = 100_000;
const dir = await Deno.makeTempDir({ prefix: "aico_storage_bench_" });
const key = await importDataKey(generateDataKey());
const pageBytes = await key.purposeKeyBytes("libsql-page");
// The same key string the storage module hands to the driver.
const pageKey = String.fromCharCode(...pageBytes.map((b) => b & 0x7f));

const SCHEMA =
  "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, " +
  "role TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER NOT NULL)";
const INSERT =
  "INSERT INTO messages (conversation_id, role, content, created_at) VALUES (?, ?, ?, ?)";
const SELECT = "SELECT * FROM messages WHERE id = ?";
const content = "The quick brown fox jumps over the lazy dog. ".repeat(4).slice(
  0,
  160,
);

function row(i: number): [string, string, string, number] {
  return [
    `conv-${i % 500}`,
    i % 2 === 0 ? "user" : "assistant",
    content,
    1_700_000_000_000 + i,
  ];
}

const raw = new Database(
  `${dir}/raw.db`,
  { encryptionKey: pageKey, timeout: 5000 } as never,
);
raw.exec(
  "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
);
const ours = await openStorage(`${dir}/ours.db`, { key });
const client = createClient({
  url: `file:${dir}/client.db`,
  encryptionKey: pageKey,
});
await client.execute("PRAGMA journal_mode = WAL");
await client.execute("PRAGMA synchronous = FULL");

// Point-select tables, filled once.
raw.exec(SCHEMA.replace("messages", "sel"));
{
  const ins = raw.prepare(INSERT.replace("messages", "sel"));
  raw.exec("BEGIN");
  for (let i = 0; i < ROWS; i++) ins.run(row(i));
  raw.exec("COMMIT");
}
await ours.execute(SCHEMA.replace("messages", "sel"));
await ours.transaction(async (tx) => {
  for (let i = 0; i < ROWS; i++) {
    await tx.execute(INSERT.replace("messages", "sel"), row(i));
  }
});
await client.execute(SCHEMA.replace("messages", "sel"));
{
  const tx = await client.transaction("write");
  for (let i = 0; i < ROWS; i++) {
    await tx.execute({ sql: INSERT.replace("messages", "sel"), args: row(i) });
  }
  await tx.commit();
}

let tableNo = 0;
function freshTable(): string {
  return `m${++tableNo}`;
}

Deno.bench({
  name: "raw npm:libsql prepared loop",
  group: "insert 100k rows (1 tx)",
  baseline: true,
  n: 5,
  warmup: 1,
  fn(b) {
    const t = freshTable();
    raw.exec(SCHEMA.replace("messages", t));
    const ins = raw.prepare(INSERT.replace("messages", t));
    b.start();
    raw.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < ROWS; i++) ins.run(row(i));
    raw.exec("COMMIT");
    b.end();
    raw.exec(`DROP TABLE ${t}`);
  },
});

Deno.bench({
  name: "ours: storage.transaction + tx.execute",
  group: "insert 100k rows (1 tx)",
  n: 5,
  warmup: 1,
  async fn(b) {
    const t = freshTable();
    await ours.execute(SCHEMA.replace("messages", t));
    const sql = INSERT.replace("messages", t);
    b.start();
    await ours.transaction(async (tx) => {
      for (let i = 0; i < ROWS; i++) await tx.execute(sql, row(i));
    });
    b.end();
    await ours.execute(`DROP TABLE ${t}`);
  },
});

Deno.bench({
  name: "@libsql/client local transaction",
  group: "insert 100k rows (1 tx)",
  n: 2,
  warmup: 0,
  async fn(b) {
    const t = freshTable();
    await client.execute(SCHEMA.replace("messages", t));
    const sql = INSERT.replace("messages", t);
    b.start();
    const tx = await client.transaction("write");
    for (let i = 0; i < ROWS; i++) await tx.execute({ sql, args: row(i) });
    await tx.commit();
    b.end();
    await client.execute(`DROP TABLE ${t}`);
  },
});

const rawGet = raw.prepare(SELECT.replace("messages", "sel"));
const oursSelect = SELECT.replace("messages", "sel");
let seed = 1;
function nextId(): number {
  seed = (seed * 48271) % 2147483647;
  return (seed % ROWS) + 1;
}

// Point selects are timed over batches of 1000 lookups per iteration: one
// 5 µs call per iteration would measure the harness, not the store.
const LOOKUPS = 1000;

Deno.bench({
  name: "raw npm:libsql prepared get, 1000 lookups",
  group: "point select by primary key",
  baseline: true,
  n: 200,
  warmup: 20,
  fn() {
    for (let i = 0; i < LOOKUPS; i++) rawGet.get([nextId()]);
  },
});

Deno.bench({
  name: "ours: storage.execute, 1000 lookups",
  group: "point select by primary key",
  n: 200,
  warmup: 20,
  async fn() {
    for (let i = 0; i < LOOKUPS; i++) {
      await ours.execute(oursSelect, [nextId()]);
    }
  },
});

Deno.bench({
  name: "@libsql/client local execute, 1000 lookups",
  group: "point select by primary key",
  n: 20,
  warmup: 2,
  async fn() {
    for (let i = 0; i < LOOKUPS; i++) {
      await client.execute({ sql: oursSelect, args: [nextId()] });
    }
  },
});

globalThis.addEventListener("unload", () => {
  raw.close();
  client.close();
  ours.close().catch(() => {});
  Deno.removeSync(dir, { recursive: true });
});
