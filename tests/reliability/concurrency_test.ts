// Scenario 8: two writer processes and one reader on one database for a
// bounded time: no corruption, no lost acknowledged write, no partial
// transaction seen, and BUSY only as a typed error after the busy timeout.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  aborted,
  jsonLines,
  mod,
  record,
  runChild,
  script,
  withTemp,
} from "./_harness.ts";

const SECONDS = 10;
const ROWS = 10;

const CHILD = `
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
import { isAicoDataError } from ${mod("errors.ts")};
const [path, role, id, seconds] = Deno.args;
const key = await importDataKey(new Uint8Array(32).fill(31));
const db = await openStorage(path, { key, create: role === "init", busyTimeoutMs: 2000 });
if (role === "init") {
  await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, v TEXT NOT NULL)");
  await db.execute("CREATE INDEX t_txn ON t (txn)");
  await db.close();
  Deno.exit(0);
}
const end = Date.now() + Number(seconds) * 1000;
const codes = {};
const acks = [];
let reads = 0, partial = 0, untyped = 0;
let n = 0;
while (Date.now() < end) {
  try {
    if (role === "writer") {
      const txn = Number(id) * 1_000_000 + n++;
      await db.transaction(async (tx) => {
        for (let i = 0; i < ${ROWS}; i++) await tx.execute("INSERT INTO t (txn, v) VALUES (?, ?)", [txn, "w" + id + "-" + i]);
      }, "write");
      acks.push(txn);
    } else {
      const rs = await db.execute("SELECT txn, COUNT(*) AS c FROM t GROUP BY txn HAVING c != ${ROWS}");
      partial += rs.rows.length;
      reads++;
    }
  } catch (e) {
    if (isAicoDataError(e)) codes[e.code] = (codes[e.code] ?? 0) + 1; else { untyped++; codes[String(e?.name)] = (codes[String(e?.name)] ?? 0) + 1; }
  }
}
await db.close();
console.log(JSON.stringify({ role, id, acks, reads, partial, untyped, codes }));
`;

Deno.test("two writer processes and a reader: no lost acknowledged write, no partial transaction, BUSY only typed", async () => {
  await withTemp(async (dir) => {
    const path = await script(dir, "conc.ts", CHILD);
    const db = join(dir, "shared.db");
    const init = await runChild(path, [db, "init", "0", "0"]);
    assert.equal(init.code, 0, init.stderr);
    const results = await Promise.all([
      runChild(path, [db, "writer", "1", String(SECONDS)], {
        timeoutMs: 120_000,
      }),
      runChild(path, [db, "writer", "2", String(SECONDS)], {
        timeoutMs: 120_000,
      }),
      runChild(path, [db, "reader", "3", String(SECONDS)], {
        timeoutMs: 120_000,
      }),
    ]);
    const outs = results.map((r) => jsonLines(r.stdout)[0]);
    const aborts = results.filter((r) => aborted(r) || r.code !== 0).length;
    const check = await runChild(
      await script(
        dir,
        "check.ts",
        `
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const db = await openStorage(Deno.args[0], { key: await importDataKey(new Uint8Array(32).fill(31)) });
const integrity = (await db.execute("PRAGMA integrity_check")).rows.map((r) => Object.values(r)[0]);
const groups = (await db.execute("SELECT txn, COUNT(*) AS c FROM t GROUP BY txn")).rows.map((r) => [Number(r.txn), Number(r.c)]);
await db.close();
console.log(JSON.stringify({ integrity, groups }));
`,
      ),
      [db],
    );
    const final =
      jsonLines<{ integrity: string[]; groups: [number, number][] }>(
        check.stdout,
      )[0];
    assert.ok(final, check.stderr);
    const groups = new Map(final.groups);
    let lost = 0, partial = 0, untyped = 0, acked = 0;
    const codes: Record<string, number> = {};
    for (const o of outs) {
      if (!o) continue;
      for (const a of o.acks as number[]) {
        acked++;
        if (groups.get(a) !== ROWS) lost++;
      }
      partial += Number(o.partial);
      untyped += Number(o.untyped);
      for (const [k, v] of Object.entries(o.codes as Record<string, number>)) {
        codes[k] = (codes[k] ?? 0) + v;
      }
    }
    for (const [, c] of groups) if (c !== ROWS) partial++;
    const reads = Number(outs[2]?.reads ?? 0);
    await record({
      test: "08 concurrency 2 writers + 1 reader",
      runs: 3,
      faults: acked + reads,
      lost,
      wrong: partial + untyped + (final.integrity[0] === "ok" ? 0 : 1),
      aborts,
      plaintext: 0,
      notes:
        `${SECONDS} s: ${acked} acked txns of ${ROWS} rows, ${reads} reads; errors ${
          JSON.stringify(codes)
        }; integrity ${final.integrity[0]}`,
    });
    assert.equal(aborts, 0, results.map((r) => r.stderr).join("\n"));
    assert.ok(acked > 0);
    assert.equal(lost, 0);
    assert.equal(partial, 0);
    assert.equal(untyped, 0);
    for (const k of Object.keys(codes)) {
      assert.equal(k, "BUSY", `only BUSY, got ${k}`);
    }
    assert.deepEqual(final.integrity, ["ok"]);
  });
});
