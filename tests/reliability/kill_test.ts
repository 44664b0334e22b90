// Scenario 1: kill -9 in the middle of write transactions, in WAL and in
// DELETE journal mode (selected through the public API with
// `PRAGMA journal_mode = DELETE` after open; storage opens in WAL). After
// each kill: integrity_check is ok, every acknowledged transaction is there
// whole, and no transaction is there in part.
import assert from "node:assert/strict";
import { join } from "node:path";
import { mod, record, ROOT, runChild, script, withTemp } from "./_harness.ts";

const RUNS_PER_MODE = 20;
const ROWS_PER_TXN = 25;

const WRITER = `
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const [path, mode, start] = Deno.args;
const key = await importDataKey(new Uint8Array(32).fill(21));
const db = await openStorage(path, { key, create: true });
await db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, v BLOB NOT NULL)");
await db.execute("CREATE INDEX IF NOT EXISTS t_txn ON t (txn)");
await db.execute("CREATE TABLE IF NOT EXISTS acks (txn INTEGER PRIMARY KEY)");
if (mode === "delete") await db.execute("PRAGMA journal_mode = DELETE");
const jm = (await db.execute("PRAGMA journal_mode")).rows[0];
console.log(JSON.stringify({ journal: Object.values(jm)[0] }));
const blob = new Uint8Array(900).fill(3);
for (let txn = Number(start); ; txn++) {
  await db.transaction(async (tx) => {
    for (let i = 0; i < ${ROWS_PER_TXN}; i++) {
      await tx.execute("INSERT INTO t (txn, v) VALUES (?, ?)", [txn, blob]);
    }
    await tx.execute("INSERT INTO acks (txn) VALUES (?)", [txn]);
  }, "write");
  console.log(JSON.stringify({ ack: txn }));
}
`;

const CHECKER = `
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const [path] = Deno.args;
const key = await importDataKey(new Uint8Array(32).fill(21));
const db = await openStorage(path, { key });
const integrity = (await db.execute("PRAGMA integrity_check")).rows.map((r) => Object.values(r)[0]);
const groups = (await db.execute("SELECT txn, COUNT(*) AS n FROM t GROUP BY txn")).rows.map((r) => [Number(r.txn), Number(r.n)]);
const acks = (await db.execute("SELECT txn FROM acks")).rows.map((r) => Number(r.txn));
await db.close();
console.log(JSON.stringify({ integrity, groups, acks }));
`;

async function killRun(
  writer: string,
  path: string,
  mode: string,
  start: number,
  killAfterAcks: number,
  extraDelayMs: number,
): Promise<{ acked: number[]; journal: string | undefined }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      join(ROOT, "deno.json"),
      writer,
      path,
      mode,
      String(start),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const acked: number[] = [];
  let journal: string | undefined;
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const safety = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    while (acked.length < killAfterAcks) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        if (!l.startsWith("{")) continue;
        const m = JSON.parse(l);
        if (m.ack !== undefined) acked.push(m.ack);
        if (m.journal !== undefined) journal = m.journal;
      }
    }
    // Land the kill somewhere inside a later transaction.
    await new Promise((r) => setTimeout(r, extraDelayMs));
    child.kill("SIGKILL");
    // Acks printed before the kill landed are acknowledged too.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
    }
    for (const l of buf.split("\n")) {
      if (!l.startsWith("{")) continue;
      try {
        const m = JSON.parse(l);
        if (m.ack !== undefined) acked.push(m.ack);
      } catch {
        // A torn line at the kill.
      }
    }
  } finally {
    clearTimeout(safety);
    await child.status;
    await child.stderr.cancel().catch(() => {});
  }
  return { acked, journal };
}

Deno.test("kill -9 during write transactions loses no acknowledged commit and leaves no partial one, in WAL and DELETE journal mode", async () => {
  await withTemp(async (dir) => {
    const writer = await script(dir, "writer.ts", WRITER);
    const checker = await script(dir, "checker.ts", CHECKER);
    let lost = 0, partial = 0, badIntegrity = 0, runs = 0, aborts = 0;
    const journals = new Set<string>();
    for (const mode of ["wal", "delete"]) {
      const path = join(dir, `${mode}.db`);
      let next = 0;
      const acked = new Set<number>();
      for (let run = 0; run < RUNS_PER_MODE; run++) {
        const r = await killRun(
          writer,
          path,
          mode,
          next,
          1 + (run * 7) % 13,
          (run * 3) % 7,
        );
        runs++;
        if (r.journal) journals.add(`${mode}:${r.journal}`);
        for (const a of r.acked) acked.add(a);
        const check = await runChild(checker, [path], { timeoutMs: 60_000 });
        if (check.code !== 0) aborts++;
        const out = JSON.parse(check.stdout.trim().split("\n").pop()!);
        if (out.integrity.length !== 1 || out.integrity[0] !== "ok") {
          badIntegrity++;
        }
        const groups = new Map<number, number>(out.groups);
        for (const [, n] of groups) if (n !== ROWS_PER_TXN) partial++;
        const ackRows = new Set<number>(out.acks);
        for (const a of acked) {
          if (groups.get(a) !== ROWS_PER_TXN || !ackRows.has(a)) lost++;
        }
        for (const t of ackRows) if (!groups.has(t)) partial++;
        next = Math.max(next, ...groups.keys(), ...acked) + 1;
      }
    }
    await record({
      test: "01 kill -9 during writes (WAL + DELETE)",
      runs,
      faults: runs,
      lost,
      wrong: partial + badIntegrity,
      aborts,
      plaintext: 0,
      notes: `journal modes seen ${
        [...journals].join(",")
      }; partial txns ${partial}; integrity failures ${badIntegrity}`,
    });
    assert.ok(
      journals.has("wal:wal") && journals.has("delete:delete"),
      [...journals].join(),
    );
    assert.equal(lost, 0);
    assert.equal(partial, 0);
    assert.equal(badIntegrity, 0);
  });
});
