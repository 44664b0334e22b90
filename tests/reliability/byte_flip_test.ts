// deno-lint-ignore-file no-console
// Scenario 3 (and defects 2, 5): single-byte changes and truncations of the
// database file and of the cache files, each checked in a child process:
// the child either returns the right values, a miss (cache), or a typed
// error; it never aborts and never returns a wrong or missing value silently.
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

const MESSAGES = 120;
const PAGE = 4096;

const DB_CHILD = `
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
import { coreSchema, createConversationRepository } from ${
  mod("repositories/mod.ts")
};
import { createSchemaRegistry, openMigrator } from ${mod("schema/mod.ts")};
import { isAicoDataError } from ${mod("errors.ts")};
const [mode, dir, list] = Deno.args;
const key = await importDataKey(new Uint8Array(32).fill(11));
const content = (i) => "message " + i + " " + "lorem ipsum ".repeat(8 + (i % 5));
if (mode === "build") {
  const db = await openStorage(dir + "/pristine.db", { key, create: true });
  { await using m = await openMigrator(db, createSchemaRegistry([coreSchema])); await m.migrate(); }
  const repo = createConversationRepository(db);
  const c = await repo.createConversation({ id: "conv", title: "sweep" });
  for (let i = 0; i < ${MESSAGES}; i += 10) {
    await repo.appendMessages(c.id, Array.from({ length: 10 }, (_, j) => ({ role: "user", content: content(i + j) })));
  }
  await db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  await db.close();
  console.log(JSON.stringify({ built: true }));
  Deno.exit(0);
}
const pristine = await Deno.readFile(dir + "/pristine.db");
const sidecar = await Deno.readFile(dir + "/pristine.db.aico");
for (const item of list.split(",")) {
  const [kind, n] = item.split(":");
  const offset = Number(n);
  const path = dir + "/work-" + offset + ".db";
  for (const s of ["", "-wal", "-shm", "-journal"]) await Deno.remove(path + s).catch(() => {});
  const bytes = kind === "trunc" ? pristine.slice(0, offset) : pristine.slice();
  if (kind === "flip") bytes[offset] ^= 0x5a;
  await Deno.writeFile(path, bytes);
  await Deno.writeFile(path + ".aico", sidecar);
  console.log(JSON.stringify({ start: item }));
  let outcome = "ok", detail = "";
  let db;
  try {
    db = await openStorage(path, { key });
    const repo = createConversationRepository(db);
    const conv = await repo.getConversation("conv");
    if (conv.messageCount !== ${MESSAGES} || conv.title !== "sweep") { outcome = "wrong"; detail = "conversation " + conv.messageCount + " " + conv.title; }
    const seen = [];
    let cursor;
    do {
      const page = await repo.listMessages("conv", { limit: 50, ...(cursor ? { cursor } : {}) });
      for (const m of page.items) seen.push(m);
      cursor = page.nextCursor;
    } while (cursor);
    if (seen.length !== ${MESSAGES}) { outcome = "wrong"; detail = "listed " + seen.length; }
    for (const m of seen) if (m.content !== content(m.seq - 1)) { outcome = "wrong"; detail = "content of seq " + m.seq; break; }
  } catch (e) {
    outcome = isAicoDataError(e) ? "typed" : "untyped";
    detail = isAicoDataError(e) ? e.code : String(e?.name) + ": " + String(e?.message).slice(0, 120);
  } finally {
    try { await db?.close(); } catch {}
  }
  for (const s of ["", "-wal", "-shm", "-journal", ".aico"]) await Deno.remove(path + s).catch(() => {});
  console.log(JSON.stringify({ item, outcome, detail }));
}
`;

const CACHE_CHILD = `
import { openCache } from ${mod("cache/mod.ts")};
const [mode, dir, list] = Deno.args;
const key = new Uint8Array(32).fill(12);
const opts = (path) => ({ path, key, sweepIntervalMs: 0, defaultTtlMs: Infinity });
const value = (i) => ({ i, text: "value " + i + " " + "z".repeat(i % 300) });
const KEYS = 400;
if (mode === "build") {
  const c = await openCache(opts(dir + "/pristine"));
  await c.setMany(Array.from({ length: KEYS }, (_, i) => ["k" + i, value(i)]));
  await c.close();
  console.log(JSON.stringify({ built: true, size: (await Deno.stat(dir + "/pristine/cache.mdb")).size }));
  Deno.exit(0);
}
const files = {};
for (const f of ["cache.mdb", "key-check.json", "clean-close.json"]) {
  try { files[f] = await Deno.readFile(dir + "/pristine/" + f); } catch { /* absent in this version */ }
}
for (const item of list.split(",")) {
  const [kind, file, n] = item.split(":");
  const offset = Number(n);
  const work = dir + "/work";
  await Deno.remove(work, { recursive: true }).catch(() => {});
  await Deno.mkdir(work);
  for (const [f, b] of Object.entries(files)) {
    let bytes = b.slice();
    if (f === file && kind === "flip") bytes[offset % bytes.length] ^= 0x5a;
    if (f === file && kind === "trunc") bytes = bytes.slice(0, offset);
    await Deno.writeFile(work + "/" + f, bytes);
  }
  console.log(JSON.stringify({ start: item }));
  let outcome = "ok", detail = "", hits = 0;
  try {
    const c = await openCache(opts(work));
    for (let i = 0; i < KEYS; i++) {
      const v = c.get("k" + i);
      if (v === undefined) continue;
      if (JSON.stringify(v) !== JSON.stringify(value(i))) { outcome = "wrong"; detail = "k" + i; break; }
      hits++;
    }
    await c.set("fresh", 1);
    if (c.get("fresh") !== 1) { outcome = "wrong"; detail = "fresh"; }
    await c.close();
  } catch (e) {
    outcome = e?.name === "AicoDataError" || typeof e?.code === "string" ? "typed" : "untyped";
    detail = String(e?.code ?? e?.name);
  }
  console.log(JSON.stringify({ item, outcome, detail, hits }));
}
`;

interface Tally {
  runs: number;
  faults: number;
  wrong: number;
  aborts: number;
  untyped: number;
  outcomes: Record<string, number>;
  examples: string[];
}

/** Runs `items` through the child in batches; a crashed child is counted and the next item goes on. */
async function sweep(
  path: string,
  dir: string,
  items: string[],
  batch: number,
): Promise<Tally> {
  const tally: Tally = {
    runs: 0,
    faults: 0,
    wrong: 0,
    aborts: 0,
    untyped: 0,
    outcomes: {},
    examples: [],
  };
  let i = 0;
  while (i < items.length) {
    const chunk = items.slice(i, i + batch);
    const child = await runChild(path, ["check", dir, chunk.join(",")], {
      timeoutMs: 120_000,
    });
    tally.runs++;
    const lines = jsonLines<
      { start?: string; item?: string; outcome?: string; detail?: string }
    >(child.stdout);
    const done = lines.filter((l) => l.item !== undefined);
    for (const l of done) {
      tally.faults++;
      const key = `${l.outcome}${
        l.detail && l.outcome !== "ok" ? `:${l.detail}` : ""
      }`;
      const short = l.outcome === "typed" ? `typed:${l.detail}` : l.outcome!;
      tally.outcomes[short] = (tally.outcomes[short] ?? 0) + 1;
      if (l.outcome === "wrong") {
        tally.wrong++;
        tally.examples.push(`${l.item} ${key}`);
      }
      if (l.outcome === "untyped") {
        tally.untyped++;
        tally.examples.push(`${l.item} ${key}`);
      }
    }
    i += done.length;
    if (done.length < chunk.length) {
      // The child ended in the middle of an item: that item crashed it.
      const crashed = chunk[done.length]!;
      tally.faults++;
      if (aborted(child) || child.code !== 0) {
        tally.aborts++;
        tally.outcomes.abort = (tally.outcomes.abort ?? 0) + 1;
        tally.examples.push(
          `${crashed} abort (exit ${child.code}${
            child.signal ? `, ${child.signal}` : ""
          }${child.timedOut ? ", hang" : ""}): ${
            child.stderr.trim().split("\n").slice(-1)[0]?.slice(0, 160)
          }`,
        );
      }
      i++;
    }
  }
  return tally;
}

Deno.test("a flipped byte or a truncation of the database file never gives a wrong or missing value silently", async () => {
  await withTemp(async (dir) => {
    const path = await script(dir, "db_child.ts", DB_CHILD);
    const built = await runChild(path, ["build", dir]);
    assert.equal(built.code, 0, built.stderr);
    const size = (await Deno.stat(join(dir, "pristine.db"))).size;
    const pages = Math.ceil(size / PAGE);
    const within = [
      0,
      1,
      3,
      5,
      7,
      8,
      11,
      16,
      24,
      40,
      100,
      700,
      1500,
      2048,
      3000,
      4095,
    ];
    const items: string[] = ["none:0"];
    for (let p = 0; p < pages; p++) {
      for (const o of within) {
        if (p * PAGE + o < size) items.push(`flip:${p * PAGE + o}`);
      }
    }
    for (
      const n of [0, 100, PAGE, Math.floor(size / 2), size - PAGE, size - 1]
    ) {
      items.push(`trunc:${n}`);
    }
    const tally = await sweep(path, dir, items, 40);
    console.log(JSON.stringify({ pages, size, ...tally }, null, 1));
    assert.ok(tally.outcomes.ok! >= 1, "the unchanged copy reads back");
    await record({
      test: "03a byte flips: database",
      runs: tally.runs,
      faults: tally.faults,
      lost: 0,
      wrong: tally.wrong,
      aborts: tally.aborts,
      plaintext: 0,
      notes: `${pages} pages; outcomes ${
        JSON.stringify(tally.outcomes)
      }; untyped ${tally.untyped}${
        tally.examples.length
          ? `; e.g. ${tally.examples.slice(0, 4).join(" | ")}`
          : ""
      }`,
    });
    assert.ok(tally.faults >= 200, `${tally.faults} offsets`);
    assert.equal(tally.aborts, 0, tally.examples.join("\n"));
    assert.equal(tally.wrong, 0, tally.examples.join("\n"));
    assert.equal(tally.untyped, 0, tally.examples.join("\n"));
  });
});

Deno.test("a flipped byte or a truncation of the cache files never crashes and never gives a wrong value", async () => {
  await withTemp(async (dir) => {
    const path = await script(dir, "cache_child.ts", CACHE_CHILD);
    const built = await runChild(path, ["build", dir]);
    assert.equal(built.code, 0, built.stderr);
    const size = (await Deno.stat(join(dir, "pristine", "cache.mdb"))).size;
    const items: string[] = [];
    // Both meta pages densely, then a spread over every page.
    for (let o = 0; o < 2 * PAGE; o += 97) items.push(`flip:cache.mdb:${o}`);
    for (let o = 2 * PAGE; o < size; o += Math.max(1, Math.floor(size / 60))) {
      items.push(`flip:cache.mdb:${o}`);
    }
    for (const n of [0, 1, 8, 40, 60]) items.push(`flip:clean-close.json:${n}`);
    for (const n of [0, 10, 30]) items.push(`flip:key-check.json:${n}`);
    for (const n of [0, 100, PAGE, 2 * PAGE, Math.floor(size / 2), size - 1]) {
      items.push(`trunc:cache.mdb:${n}`);
    }
    const tally = await sweep(path, dir, items, 40);
    console.log(JSON.stringify({ size, ...tally }, null, 1));
    await record({
      test: "03b byte flips: cache",
      runs: tally.runs,
      faults: tally.faults,
      lost: 0,
      wrong: tally.wrong,
      aborts: tally.aborts,
      plaintext: 0,
      notes: `outcomes ${JSON.stringify(tally.outcomes)}${
        tally.examples.length
          ? `; e.g. ${tally.examples.slice(0, 4).join(" | ")}`
          : ""
      }`,
    });
    assert.ok(tally.faults >= 40);
    assert.equal(tally.aborts, 0, tally.examples.join("\n"));
    assert.equal(tally.wrong, 0, tally.examples.join("\n"));
  });
});
