import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "./_doc_helpers.ts";
import {
  createLogRepository,
  type LogInput,
  MAX_LOG_MESSAGE_BYTES,
  resolveLogRepositoryOptions,
} from "./log_repository.ts";

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

function sample(n: number): LogInput[] {
  return Array.from({ length: n }, (_, i) => ({
    level: LEVELS[i % 6]!,
    module: `mod${i % 3}`,
    message: `message ${i}`,
    ts: 1_000 + Math.floor(i / 2), // pairs share a timestamp: paging must break ties by id
    context: { i, tags: ["a", "b"], nested: { ok: i % 2 === 0 } },
    ...(i % 5 === 0 ? { traceId: `trace-${i}` } : {}),
  }));
}

Deno.test("insertLog() and insertLogs() store records verbatim", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage, { now: () => 42 });
  const id = await logs.insertLog({
    level: "info",
    module: "app",
    message: "'; DROP TABLE logs; --",
    context: { sql: "1 OR 1=1", emoji: "🦕", nul: "a\u0000b" },
  });
  assert.equal(id, 1);
  const nul = await logs.insertLog({
    level: "info",
    module: "app",
    message: "a\u0000b ü",
    ts: 50,
  });
  assert.equal(await logs.insertLogs(sample(300)), 300);
  const page = await logs.queryLogs({ limit: 1 });
  assert.deepEqual(page.records[0], {
    id: 1,
    ts: 42,
    level: "info",
    module: "app",
    message: "'; DROP TABLE logs; --",
    context: { sql: "1 OR 1=1", emoji: "🦕", nul: "a\u0000b" },
    traceId: undefined,
  });
  assert.equal(
    (await logs.queryLogs({ from: 50, to: 51 })).records[0]?.message,
    "a\u0000b ü",
  );
  assert.equal(nul, 2);
  assert.equal((await logs.stats()).total, 302);
  assert.equal(await logs.insertLogs([]), 0);
});

Deno.test("queryLogs() filters by level, minLevel, module and time range", async (t) => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  const rows = sample(600);
  await logs.insertLogs(rows);
  const expect = (pred: (r: LogInput) => boolean): string[] =>
    rows.filter(pred).map((r) => r.message);
  const all = async (
    q: Parameters<typeof logs.queryLogs>[0],
  ): Promise<string[]> =>
    (await logs.queryLogs({ ...q, limit: 10_000 })).records.map((r) =>
      r.message
    );
  await t.step("level", async () => {
    assert.deepEqual(
      await all({ level: "warn" }),
      expect((r) => r.level === "warn"),
    );
    assert.deepEqual(
      await all({ level: ["trace", "fatal"] }),
      expect((r) => r.level === "trace" || r.level === "fatal"),
    );
  });
  await t.step("minLevel", async () => {
    assert.deepEqual(
      await all({ minLevel: "error" }),
      expect((r) => r.level === "error" || r.level === "fatal"),
    );
  });
  await t.step("module and range [from, to)", async () => {
    assert.deepEqual(
      await all({ module: "mod1", from: 1_100, to: 1_200 }),
      expect((r) => r.module === "mod1" && r.ts! >= 1_100 && r.ts! < 1_200),
    );
  });
  await t.step("desc order", async () => {
    assert.deepEqual(
      await all({ order: "desc", module: "mod2" }),
      expect((r) => r.module === "mod2").reverse(),
    );
  });
});

Deno.test("queryLogs() pages with a keyset cursor without gaps or duplicates", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await logs.insertLogs(sample(257));
  for (const order of ["asc", "desc"] as const) {
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await logs.queryLogs({
        limit: 10,
        order,
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.records.map((r) => r.id));
      cursor = page.nextCursor;
      pages++;
      // A write between pages does not shift the next page (keyset, not OFFSET).
      if (pages === 3) {
        await logs.insertLog({
          level: "info",
          module: "late",
          message: "x",
          ts: 5_000,
        });
      }
    } while (cursor !== undefined);
    const ids = seen.filter((id) => id <= 257);
    assert.equal(new Set(ids).size, 257, order);
    assert.equal(ids.length, 257, order);
  }
});

Deno.test("invalid records give INVALID_INPUT and a batch stores nothing", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await logs.insertLogs(sample(3));
  const bad: unknown[] = [
    null,
    "text",
    { level: "loud", module: "m", message: "x" },
    { level: "info", module: "", message: "x" },
    { level: "info", module: "a b", message: "x" },
    { level: "info", module: "m".repeat(257), message: "x" },
    { level: "info", module: "m", message: 42 },
    {
      level: "info",
      module: "m",
      message: "é".repeat(MAX_LOG_MESSAGE_BYTES / 2 + 1),
    },
    { level: "info", module: "m", message: "\ud800 lone" },
    { level: "info", module: "m", message: "x", ts: -1 },
    { level: "info", module: "m", message: "x", ts: 1.5 },
    { level: "info", module: "m", message: "x", ts: "2020" },
    { level: "info", module: "m", message: "x", context: { f: () => 1 } },
    { level: "info", module: "m", message: "x", context: { n: NaN } },
    { level: "info", module: "m", message: "x", context: { b: 1n } },
    { level: "info", module: "m", message: "x", context: { d: new Date() } },
    { level: "info", module: "m", message: "x", context: { u: undefined } },
    {
      level: "info",
      module: "m",
      message: "x",
      context: { big: "x".repeat(70_000) },
    },
    { level: "info", module: "m", message: "x", traceId: "has space" },
  ];
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  bad.push({ level: "info", module: "m", message: "x", context: circular });
  for (const entry of bad) {
    await assert.rejects(
      logs.insertLog(entry as LogInput),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      JSON.stringify(
        entry,
        (_k, v) =>
          typeof v === "bigint" ? "1n" : v === circular ? "[circular]" : v,
      )?.slice(
        0,
        100,
      ),
    );
    await assert.rejects(
      logs.insertLogs([...sample(300), entry as LogInput]),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
  await assert.rejects(
    logs.insertLogs("nope" as never),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.equal((await logs.stats()).total, 3);
});

Deno.test("queryLogs() refuses malformed filters and cursors", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  for (
    const q of [
      { level: [] },
      { level: "nope" },
      { minLevel: "x" },
      { module: "'; --" },
      { from: -5 },
      { limit: 0 },
      { limit: 10_001 },
      { order: "sideways" },
      { cursor: "!!!" },
      { cursor: btoa("[1]") },
      { cursor: btoa('["a","b"]') },
    ]
  ) {
    await assert.rejects(
      logs.queryLogs(q as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      JSON.stringify(q),
    );
  }
});

Deno.test("purge() deletes by age and by count; purgeExpired() uses the retention", async () => {
  await using store = await openTestStore();
  let now = 10_000;
  const logs = createLogRepository(store.storage, {
    now: () => now,
    retentionMs: 1_000,
  });
  await logs.insertLogs(Array.from({ length: 100 }, (_, i) => ({
    level: "info" as const,
    module: "m",
    message: `${i}`,
    ts: 8_000 + i * 20,
  })));
  assert.equal(await logs.purgeExpired(), 50); // ts < 9000
  assert.equal(await logs.purge({ keepLast: 10 }), 40);
  const left = (await logs.queryLogs()).records.map((r) => r.message);
  assert.deepEqual(left, Array.from({ length: 10 }, (_, i) => `${90 + i}`));
  now = 100_000;
  assert.equal(await logs.purge({ before: 9_900 }), 5);
  await assert.rejects(
    logs.purge({}),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await assert.rejects(
    logs.purge({ keepLast: -1 }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});

Deno.test("stats() counts by level and module within a range", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await logs.insertLogs(sample(60));
  const s = await logs.stats({ from: 1_000, to: 1_015 });
  assert.equal(s.total, 30);
  assert.deepEqual(s.byLevel, {
    trace: 5,
    debug: 5,
    info: 5,
    warn: 5,
    error: 5,
    fatal: 5,
  });
  assert.deepEqual(s.byModule, { mod0: 10, mod1: 10, mod2: 10 });
  assert.equal(s.oldest, 1_000);
  assert.equal(s.newest, 1_014);
  const empty = await logs.stats({ from: 99_999 });
  assert.equal(empty.total, 0);
  assert.equal(empty.oldest, undefined);
});

Deno.test("resolveLogRepositoryOptions() applies defaults and refuses bad values", () => {
  const o = resolveLogRepositoryOptions();
  assert.equal(o.retentionMs, 2_592_000_000);
  assert.equal(o.now, Date.now);
  assert.throws(
    () => resolveLogRepositoryOptions({ retentionMs: 0 }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.throws(
    () => resolveLogRepositoryOptions({ now: 5 as never }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});
