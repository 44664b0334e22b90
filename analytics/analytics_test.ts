import assert from "node:assert/strict";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import {
  createConversationRepository,
  createLogRepository,
  createUserService,
} from "../repositories/mod.ts";
import { rejectsWith } from "../tests/_helpers.ts";
import type { ChangeEvent } from "../changes/types.ts";
import { type Analytics, openAnalytics } from "./analytics.ts";
import type { EngineKind } from "./engine.ts";
import { STOP_WORDS } from "./_stop_words.ts";
import {
  addModels,
  readTruth,
  refActivity,
  refErrorRates,
  refHeatmap,
  refLatency,
  refLengths,
  refRoles,
  refSessions,
  refStreaks,
  refTopTerms,
  seed,
} from "../tests/_analytics_fixture.ts";

const ENGINES: readonly EngineKind[] = ["wasm", "native"];

/** deepEqual with numbers compared to 1e-9 relative. */
function close(actual: unknown, expected: unknown, path = "$"): void {
  if (typeof expected === "number" && typeof actual === "number") {
    const tol = 1e-9 * Math.max(1, Math.abs(expected));
    assert.ok(
      Math.abs(actual - expected) <= tol,
      `${path}: ${actual} != ${expected}`,
    );
    return;
  }
  if (expected instanceof Date) {
    assert.ok(actual instanceof Date, `${path}: not a Date`);
    assert.equal(actual.getTime(), expected.getTime(), path);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: not an array`);
    assert.equal(actual.length, expected.length, `${path}.length`);
    expected.forEach((e, i) => close(actual[i], e, `${path}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === "object") {
    assert.ok(actual !== null && typeof actual === "object", path);
    assert.deepEqual(
      Object.keys(actual as object).sort(),
      Object.keys(expected).sort(),
      `${path} keys`,
    );
    for (const [k, v] of Object.entries(expected)) {
      close((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
    }
    return;
  }
  assert.deepEqual(actual, expected, path);
}

/** Every analytics table, ordered, as plain rows. */
async function snapshot(a: Analytics): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (
    const [t, order] of [
      ["messages", "id"],
      ["message_text", "id"],
      ["conversations", "id"],
      ["logs", "id"],
      ["users", "id"],
    ]
  ) {
    // conv_key is a surrogate (dense per load): compared as a bijection.
    const cols = t === "messages" ? "* EXCLUDE (conv_key)" : "*";
    out[t!] = (await a.query(`SELECT ${cols} FROM ${t} ORDER BY ${order}`))
      .rows;
  }
  out.convKeyBijection = (await a.query(
    "SELECT (SELECT count(*) FROM (SELECT conversation_id FROM messages GROUP BY 1 HAVING count(DISTINCT conv_key) <> 1 OR count(conv_key) <> count(*))) AS a, " +
      "(SELECT count(*) FROM (SELECT conv_key FROM messages GROUP BY 1 HAVING count(DISTINCT conversation_id) <> 1)) AS b",
  )).rows;
  assert.deepEqual(out.convKeyBijection, [{ a: 0, b: 0 }]);
  return out;
}

let seqNo = 0;
function ev(
  table: string,
  op: ChangeEvent["op"],
  keys: (string | number)[],
  scope?: string,
): ChangeEvent {
  return {
    table,
    op,
    keys: keys.map(String),
    ...(scope ? { scope } : {}),
    seq: ++seqNo,
    at: Date.now(),
  };
}
const ctx = { signal: new AbortController().signal };

for (const engine of ENGINES) {
  Deno.test(`canned analyses equal an independent computation over the same rows (${engine})`, async (t) => {
    await using store = await openTestStore();
    await seed(store.storage, { model: true });
    const truth = await readTruth(store.storage);
    await using a = await openAnalytics(store.storage, { engine });
    assert.equal(a.engine, engine);
    const m = truth.messages;
    await t.step("activity per day, week and month", async () => {
      for (const p of ["day", "week", "month"] as const) {
        close(await a.activity(p), refActivity(m, p));
      }
    });
    await t.step("hour × weekday heatmap", async () => {
      close(await a.heatmap(), refHeatmap(m));
    });
    await t.step("conversation length quantiles", async () => {
      close(await a.conversationLengths(), refLengths(m));
    });
    await t.step("user-to-assistant response latency", async () => {
      const got = await a.responseLatency();
      assert.ok(got.count > 10);
      close(got, refLatency(m));
    });
    await t.step("messages by role and model", async () => {
      const got = await a.messagesByRoleAndModel();
      assert.ok(got.some((r) => r.model === "gpt-x"));
      assert.ok(got.some((r) => r.model === null));
      close(got, refRoles(m));
    });
    await t.step("top terms in English, German and Spanish", async () => {
      const got = await a.topTerms(15);
      close(got, refTopTerms(m, new Set(STOP_WORDS), 15));
      const terms = got.map((x) => x.term);
      for (const stop of ["the", "und", "la", "ich"]) {
        assert.ok(!terms.includes(stop), stop);
      }
      assert.ok(terms.some((x) => /[äöüßñéí]/.test(x)));
    });
    await t.step("activity streaks", async () => {
      const got = await a.streaks();
      assert.ok(got.activeDays > 3);
      close(got, refStreaks(m));
    });
    await t.step("gap-based sessions", async () => {
      for (const gap of [30, 5]) {
        close(await a.sessions(gap), refSessions(m, gap));
      }
    });
    await t.step("error rates by module and level over time", async () => {
      for (const p of ["day", "week"] as const) {
        close(await a.errorRates(p), refErrorRates(truth.logs, p));
      }
    });
  });

  Deno.test(`incremental refresh after appends, edits and deletions equals a full load (${engine})`, async () => {
    await using store = await openTestStore();
    const { conversationIds } = await seed(store.storage, { conversations: 6 });
    await using a = await openAnalytics(store.storage, { engine });
    await a.refresh({ text: true });
    const s = store.storage;
    const repo = createConversationRepository(s);
    const users = createUserService(s);
    const logs = createLogRepository(s);
    const events: ChangeEvent[] = [];
    // appends
    const r = await repo.appendMessages(conversationIds[0]!, [
      {
        role: "user",
        content: "neue Nachricht über Kaffee",
        createdAt: 1.8e12,
      },
      {
        role: "assistant",
        content: "respuesta sobre café",
        createdAt: 1.8e12 + 5000,
      },
    ]);
    events.push(
      ev("messages", "insert", [r.firstId, r.lastId], conversationIds[0]),
    );
    const nc = await repo.createConversation({ id: "fresh", userId: "bob" });
    const r2 = await repo.appendMessage(nc.id, {
      role: "user",
      content: "hello world",
    });
    events.push(
      ev("conversations", "insert", [nc.id]),
      ev("messages", "insert", [r2.id], nc.id),
    );
    const logId = await logs.insertLog({
      level: "error",
      module: "cli",
      message: "boom",
    });
    events.push(ev("logs", "insert", [logId]));
    await users.createUser({ id: "carol" });
    events.push(ev("users", "insert", ["carol"]));
    // edits (a message edit done in SQL: the v1 repository has none)
    const victim =
      (await s.execute("SELECT id FROM messages ORDER BY id LIMIT 1 OFFSET 3"))
        .rows[0]!.id;
    await s.execute({
      sql:
        "UPDATE messages SET role = 'tool', created_at = created_at + 1000 WHERE id = ?",
      args: [Number(victim)],
    });
    events.push(ev("messages", "update", [Number(victim)]));
    await repo.updateConversation(conversationIds[1]!, { title: "renamed" });
    events.push(ev("conversations", "update", [conversationIds[1]!]));
    // deletions: a conversation with its messages (the feed's convention: a
    // messages delete for each of its ids), and old logs
    const gone = (await s.execute({
      sql: "SELECT id FROM messages WHERE conversation_id = ?",
      args: [conversationIds[2]!],
    })).rows.map((x) => Number(x.id));
    await repo.deleteConversation(conversationIds[2]!);
    events.push(
      ev("messages", "delete", gone, conversationIds[2]),
      ev("conversations", "delete", [conversationIds[2]!]),
    );
    const oldLogs =
      (await s.execute("SELECT id FROM logs ORDER BY ts LIMIT 50")).rows.map((
        x,
      ) => Number(x.id));
    await s.execute(`DELETE FROM logs WHERE id IN (${oldLogs.join(",")})`);
    events.push(ev("logs", "delete", oldLogs));
    await users.deleteUser("carol");
    events.push(ev("users", "delete", ["carol"]));
    // unrelated tables are ignored; delivery twice is harmless
    events.push(ev("config", "update", ["ns/key"]));
    await a.consumer.handle(events.slice(0, 4), ctx);
    await a.consumer.handle(events, ctx);
    await a.consumer.handle(events.slice(2), ctx);

    await using b = await openAnalytics(store.storage, { engine });
    await b.refresh({ text: true });
    const inc = await snapshot(a);
    assert.deepEqual(inc, await snapshot(b));
    const counts = await a.query(
      "SELECT (SELECT count(*) FROM messages WHERE conversation_id = ?) AS gone, (SELECT count(*) FROM users WHERE id = 'carol') AS carol, (SELECT count(*) FROM message_text) AS texts, (SELECT count(*) FROM messages) AS msgs",
      [conversationIds[2]!],
    );
    assert.equal(counts.rows[0]!.gone, 0);
    assert.equal(counts.rows[0]!.carol, 0);
    assert.equal(counts.rows[0]!.texts, counts.rows[0]!.msgs);
    // and the analyses agree with the reference over the new rows
    const truth = await readTruth(store.storage);
    close(await a.activity("day"), refActivity(truth.messages, "day"));
    close(
      await a.topTerms(10),
      refTopTerms(truth.messages, new Set(STOP_WORDS), 10),
    );
  });

  Deno.test(`query() returns plain values and bad SQL is SQL_ERROR with the engine still usable (${engine})`, async () => {
    await using store = await openTestStore();
    await using a = await openAnalytics(store.storage, { engine });
    const r = await a.query(
      "SELECT 1::TINYINT AS i, 9007199254740993::BIGINT AS big, 12.5::DECIMAL(10,2) AS d, 'x' AS s, NULL AS n, TIMESTAMP '2024-01-02 03:04:05' AS ts, DATE '2024-01-02' AS dt, true AS b, [1, 2] AS l, {'k': 'v'} AS st, 5::HUGEINT AS h, ?::INTEGER AS p",
      [41],
    );
    assert.deepEqual(r.columns, [
      "i",
      "big",
      "d",
      "s",
      "n",
      "ts",
      "dt",
      "b",
      "l",
      "st",
      "h",
      "p",
    ]);
    const row = r.rows[0]!;
    assert.equal(row.i, 1);
    assert.equal(row.big, 9007199254740993n);
    assert.equal(row.d, 12.5);
    assert.equal(row.s, "x");
    assert.equal(row.n, null);
    assert.deepEqual(row.ts, new Date("2024-01-02T03:04:05Z"));
    assert.deepEqual(row.dt, new Date("2024-01-02T00:00:00Z"));
    assert.equal(row.b, true);
    assert.deepEqual(row.l, [1, 2]);
    assert.deepEqual(row.st, { k: "v" });
    assert.equal(row.h, 5);
    assert.equal(row.p, 41);
    await rejectsWith(a.query("SELEC 1"), "SQL_ERROR");
    await rejectsWith(a.query("SELECT * FROM no_such_table"), "SQL_ERROR");
    await assert.rejects(
      a.query("SELECT nope"),
      (e: Error) => /nope/.test(e.message),
    );
    await rejectsWith(a.query(""), "INVALID_INPUT");
    assert.deepEqual(
      (await a.query("SELECT count(*) AS n FROM messages")).rows,
      [{ n: 0 }],
    );
  });

  Deno.test(`no query reaches files, the network, extensions or settings (${engine})`, async () => {
    await using store = await openTestStore();
    await using a = await openAnalytics(store.storage, { engine });
    const outside = `${store.dir}/out.csv`;
    for (
      const sql of [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        `COPY (SELECT 1) TO '${outside}'`,
        `COPY messages TO '${outside}' (FORMAT csv)`,
        `ATTACH '${store.dir}/x.duckdb' AS x`,
        `ATTACH '${store.path}' AS core`,
        "INSTALL httpfs",
        "FORCE INSTALL fts",
        "LOAD fts",
        "SELECT 1; LOAD httpfs",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
      ]
    ) {
      await rejectsWith(a.query(sql), "SQL_ERROR");
    }
    await assert.rejects(Deno.stat(outside));
    await assert.rejects(Deno.stat(`${store.dir}/x.duckdb`));
    // a string that merely mentions LOAD is fine
    assert.deepEqual((await a.query("SELECT 'LOAD fts' AS s")).rows, [{
      s: "LOAD fts",
    }]);
  });

  Deno.test(`a store without the v2 model column gives model null (${engine})`, async () => {
    await using store = await openTestStore();
    const repo = createConversationRepository(store.storage);
    const c = await repo.createConversation();
    await repo.appendMessages(c.id, [{ role: "user", content: "a" }, {
      role: "assistant",
      content: "b",
    }]);
    await using a = await openAnalytics(store.storage, { engine });
    close(await a.messagesByRoleAndModel(), [
      { role: "assistant", model: null, messages: 1 },
      { role: "user", model: null, messages: 1 },
    ]);
    await addModels(store.storage);
    await a.refresh();
    close(await a.messagesByRoleAndModel(), [
      { role: "assistant", model: "llama-3", messages: 1 },
      { role: "user", model: null, messages: 1 },
    ]);
  });
}

Deno.test("analytics copies no secret column and opens no text unless asked", async () => {
  await using store = await openTestStore();
  await seed(store.storage, { conversations: 2 });
  await using a = await openAnalytics(store.storage);
  const cols = await a.query(
    "SELECT table_name, column_name FROM information_schema.columns ORDER BY ALL",
  );
  const names = cols.rows.map((r) => `${r.table_name}.${r.column_name}`);
  for (
    const secret of [
      "users.profile",
      "conversations.title",
      "conversations.metadata",
      "messages.content",
    ]
  ) {
    assert.ok(!names.includes(secret), secret);
  }
  assert.deepEqual(
    (await a.query("SELECT count(*) AS n FROM message_text")).rows,
    [{ n: 0 }],
  );
  const dump = JSON.stringify((await a.query("SELECT * FROM users")).rows) +
    JSON.stringify((await a.query("SELECT * FROM conversations")).rows);
  assert.ok(!dump.includes("secret-name") && !dump.includes("Private title"));
});

Deno.test("analytics is lazy, closes twice and is STORE_CLOSED after close", async () => {
  await using store = await openTestStore();
  const a = await openAnalytics(store.storage);
  // handle() before the first analytics call does nothing (nothing started)
  await a.consumer.handle([ev("messages", "insert", [1])], ctx);
  await a.close();
  await a.close();
  assert.equal(a.closed, true);
  await rejectsWith(a.query("SELECT 1"), "STORE_CLOSED");
  await rejectsWith(a.activity(), "STORE_CLOSED");
  await rejectsWith(
    async () => await openAnalytics(store.storage, { threads: 0 }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    async () => await openAnalytics(store.storage, { engine: "gpu" as "wasm" }),
    "INVALID_INPUT",
  );
});

Deno.test("refresh() catches up through the feed it registered on, and an aborted refresh keeps the previous copy", async () => {
  await using store = await openTestStore();
  const repo = createConversationRepository(store.storage);
  const c = await repo.createConversation({ id: "c1" });
  await repo.appendMessage(c.id, { role: "user", content: "one" });
  // A stand-in feed (the real one is changes/, wired at merge): it hands
  // the events recorded below to the registered consumer on catchUp().
  const pending: ChangeEvent[] = [];
  const registered: string[] = [];
  const feed = {
    register(consumer: import("../changes/types.ts").ChangeConsumer) {
      registered.push(consumer.name);
      return Promise.resolve({
        async catchUp() {
          const batch = pending.splice(0);
          if (batch.length) await consumer.handle(batch, ctx);
        },
        stop: () => Promise.resolve(),
      });
    },
  };
  await using a = await openAnalytics(store.storage, { feed });
  assert.deepEqual(registered, ["analytics.refresher"]);
  assert.equal((await a.refresh()).rows.messages, 1); // first call: full load
  const m = await repo.appendMessage(c.id, {
    role: "assistant",
    content: "two",
  });
  pending.push(ev("messages", "insert", [m.id], c.id));
  const stats = await a.refresh();
  assert.equal(stats.mode, "incremental");
  assert.equal(stats.rows.messages, 2);

  await repo.appendMessage(c.id, { role: "user", content: "three" });
  await assert.rejects(
    a.refresh({ full: true, signal: AbortSignal.abort() }),
    (e: Error) => e.name === "AbortError",
  );
  assert.deepEqual((await a.query("SELECT count(*) AS n FROM messages")).rows, [
    { n: 2 },
  ]);
  assert.equal((await a.refresh({ full: true })).rows.messages, 3);
});
