// Scenario 6: hostile input through every public API, case by case in child
// processes: lone surrogates, invalid UTF-8, NUL, 10 MB strings, JSON nested
// 10,000 deep, wrong types, sparse arrays, negative and huge limits. Each
// case gives a typed error with nothing stored changed, or is stored and
// read back verbatim; none aborts the process.
import assert from "node:assert/strict";
import { join } from "node:path";
import { mod, record, runChild, script, withTemp } from "./_harness.ts";
import { sweepCases } from "./_sweep.ts";

const CHILD = `
import { openDataLayer } from ${mod("mod.ts")};
import { isAicoDataError } from ${mod("errors.ts")};
const [dir, list] = Deno.args;
const data = await openDataLayer(dir, { passphrase: "hostile hostile" });
const conv = (await data.conversations.listConversations()).items[0].id;
// The table of the RETURNING case exists before the first snapshot: the case
// itself must change nothing.
await data.storage.execute("CREATE TABLE IF NOT EXISTS h (t TEXT)");
const deep = (n) => { let v = {}; for (let i = 0; i < n; i++) v = { a: v }; return v; };
const deepArr = (n) => { let v = []; for (let i = 0; i < n; i++) v = [v]; return v; };
const big = "x".repeat(10 * 1024 * 1024);
const lone = "a\\uD800b", loneLow = "\\uDC00", nul = "a\\u0000b";
const sparse = (n) => { const a = new Array(n); a[0] = { role: "user", content: "x" }; return a; };
const cur = (v) => btoa(JSON.stringify(v));
const C = data.conversations, U = data.users, K = data.config, P = data.plugins, L = data.logs, Ca = data.cache, S = data.storage;
const cases = {
  "user.profile.lone": () => U.createUser({ profile: { name: lone } }),
  "user.profile.deep": () => U.createUser({ profile: deep(10000) }),
  "user.profile.big": () => U.createUser({ profile: { s: big } }),
  "user.profile.string": () => U.createUser({ profile: "nope" }),
  "user.id.nul": () => U.createUser({ id: nul }),
  "user.id.number": () => U.createUser({ id: 42 }),
  "user.credential.lone": () => U.setCredential("u1", "password", lone),
  "user.credential.kind": () => U.setCredential("u1", "retina", "x"),
  "user.credential.number": () => U.setCredential("u1", "pin", 1234),
  "conv.title.lone": () => C.createConversation({ title: loneLow }),
  "conv.title.big": () => C.createConversation({ title: big }),
  "conv.title.nul": async () => { const c = await C.createConversation({ title: nul }); return (await C.getConversation(c.id)).title === nul ? "roundtrip" : "mismatch"; },
  "conv.metadata.deep": () => C.createConversation({ metadata: deep(10000) }),
  "conv.metadata.array": () => C.createConversation({ metadata: [1, 2] }),
  "conv.metadata.deepArray": () => C.createConversation({ metadata: { a: deepArr(10000) } }),
  "msg.content.lone": () => C.appendMessage(conv, { role: "user", content: lone }),
  "msg.content.big": () => C.appendMessage(conv, { role: "user", content: big }),
  "msg.content.nul": async () => { const r = await C.appendMessage(conv, { role: "user", content: nul }); const p = await C.listMessages(conv, { order: "desc", limit: 1 }); return p.items[0].content === nul ? "roundtrip" : "mismatch"; },
  "msg.content.number": () => C.appendMessage(conv, { role: "user", content: 42 }),
  "msg.role.bad": () => C.appendMessage(conv, { role: "root", content: "x" }),
  "msg.sparse": () => C.appendMessages(conv, sparse(5)),
  "msg.notArray": () => C.appendMessages(conv, { length: 2 }),
  "msg.null": () => C.appendMessages(conv, [null]),
  "msg.conv.nul": () => C.appendMessage(nul, { role: "user", content: "x" }),
  "list.limit.negative": () => C.listMessages(conv, { limit: -1 }),
  "list.limit.huge": () => C.listMessages(conv, { limit: 1e12 }),
  "list.limit.nan": () => C.listMessages(conv, { limit: NaN }),
  "list.limit.string": () => C.listMessages(conv, { limit: "10" }),
  "list.limit.infinity": () => C.listMessages(conv, { limit: Infinity }),
  "list.cursor.garbage": () => C.listMessages(conv, { cursor: "%%%not base64" }),
  "list.cursor.deep": () => C.listMessages(conv, { cursor: cur(deepArr(10000)) }),
  "list.cursor.types": () => C.listMessages(conv, { cursor: cur(["1", {}]) }),
  "list.order.bad": () => C.listMessages(conv, { order: "sideways" }),
  "convs.limit.negative": () => C.listConversations({ limit: -5 }),
  "convs.limit.huge": () => C.listConversations({ limit: 2 ** 53 }),
  "convs.query.string": () => C.listConversations("everything"),
  "config.value.deep": () => K.set("ui", "k", deep(10000)),
  "config.value.big": () => K.set("ui", "k", big),
  "config.value.lone": () => K.set("ui", "k", lone),
  "config.value.function": () => K.set("ui", "k", { f() {} }),
  "config.value.undefined": () => K.set("ui", "k", undefined),
  "config.ns.nul": () => K.set(nul, "k", 1),
  "config.key.lone": () => K.set("ui", lone, 1),
  "plugin.name.nul": () => P.registerPlugin({ name: nul, version: "1" }),
  "plugin.state.deep": () => P.setState("p1", "k", deep(10000)),
  "plugin.state.lone": () => P.setState("p1", "k", lone),
  "log.level.bad": () => L.insertLog({ level: "panic", module: "m", message: "x" }),
  "log.message.big": () => L.insertLog({ level: "info", module: "m", message: big }),
  "log.message.lone": () => L.insertLog({ level: "info", module: "m", message: lone }),
  "log.context.deep": () => L.insertLog({ level: "info", module: "m", message: "x", context: deep(10000) }),
  "log.query.limit": () => L.queryLogs({ limit: -1 }),
  "logs.batch.sparse": () => L.insertLogs(new Array(3)),
  "cache.key.lone": () => Ca.set(lone, 1),
  "cache.key.nul": () => Ca.set(nul, 1),
  "cache.key.number": () => Ca.get(42),
  "cache.value.deep": () => Ca.set("k", deep(10000)),
  "cache.value.big": () => Ca.set("k", big),
  "cache.value.function": () => Ca.set("k", { f() {} }),
  "cache.ttl.negative": () => Ca.set("k", 1, { ttlMs: -1 }),
  "cache.session.nul": () => Ca.session(nul),
  "sql.invalidUtf8.select": () => S.execute("SELECT CAST(x'ff80fe' AS TEXT) AS t"),
  // Issue 12 defect 6 (storage/, not fixed on this branch): aborts the process.
  "sql.invalidUtf8.returning": () => S.execute("INSERT INTO h (t) VALUES (CAST(x'ff80' AS TEXT)) RETURNING t"),
  "sql.blob.onlyArg": () => S.execute("SELECT ? AS b", new Uint8Array([1, 2])),
  "sql.args.object": () => S.execute("SELECT ? AS b", { length: 1 }),
  "sql.statement.number": () => S.execute(42),
};
async function snapshot() {
  const tables = (await S.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")).rows.map((r) => r.name);
  const parts = [];
  for (const t of tables) {
    const rs = await S.execute('SELECT * FROM "' + t + '"');
    parts.push(t + ":" + rs.rows.length + ":" + JSON.stringify(rs.rows, (k, v) => v instanceof Uint8Array ? Array.from(v).join(",") : typeof v === "bigint" ? String(v) : v));
  }
  return parts.join("|");
}
const cacheKeys = () => JSON.stringify([Ca.get("k") ?? null, Ca.stats().entries]);
console.log(JSON.stringify({ ready: true }));
for (const item of list.split("\\u0001")) {
  const before = await snapshot();
  const cacheBefore = cacheKeys();
  let outcome, detail = "";
  try {
    const r = await cases[item]();
    outcome = r === "mismatch" ? "wrong" : "accepted";
    detail = typeof r === "string" ? r : "";
  } catch (e) {
    outcome = isAicoDataError(e) ? "typed" : (e instanceof TypeError || e instanceof RangeError) ? "builtin" : "untyped";
    detail = isAicoDataError(e) ? e.code : String(e?.name) + ": " + String(e?.message).slice(0, 100);
    if (outcome !== "untyped") {
      const after = await snapshot();
      if (after !== before || cacheKeys() !== cacheBefore) { outcome = "changed"; }
    }
  }
  console.log(JSON.stringify({ item, outcome, detail }));
}
await data.close();
`;

const SEED = `
import { openDataLayer } from ${mod("mod.ts")};
const data = await openDataLayer(Deno.args[0], { passphrase: "hostile hostile", create: true, kdf: { memoryKiB: 19456, iterations: 2 } });
const c = await data.conversations.createConversation({ title: "c" });
await data.conversations.appendMessage(c.id, { role: "user", content: "hello" });
await data.plugins.registerPlugin({ name: "p1", version: "1.0.0" });
await data.users.createUser({ id: "u1" });
await data.close();
`;

Deno.test("hostile input through every public API gives typed errors, changes nothing and never aborts", async () => {
  await withTemp(async (tmp) => {
    const dir = join(tmp, "layer");
    const seed = await runChild(await script(tmp, "seed.ts", SEED), [dir]);
    assert.equal(seed.code, 0, seed.stderr);
    const path = await script(tmp, "hostile.ts", CHILD);
    const names = [...CHILD.matchAll(/^ {2}"([a-zA-Z0-9.]+)": /gm)].map((m) =>
      m[1]!
    );
    // One child process per case: no case leaves state behind for the next.
    const r = await sweepCases(path, [dir], names, {
      batch: 1,
      stallMs: 20_000,
    });
    const by: Record<string, string[]> = {};
    for (const l of r.lines) {
      (by[l.outcome] ??= []).push(`${l.item}${l.detail ? `=${l.detail}` : ""}`);
    }
    for (const c of r.crashed) (by.crash ??= []).push(`${c.item} (${c.why})`);
    const aborts = r.crashed.length;
    const wrong = (by.wrong?.length ?? 0) + (by.changed?.length ?? 0);
    const untyped = (by.untyped?.length ?? 0) + (by.builtin?.length ?? 0);
    await record({
      test: "06 hostile input",
      runs: r.runs,
      faults: names.length,
      lost: 0,
      wrong,
      aborts,
      plaintext: 0,
      notes: `${names.length} cases: typed ${
        by.typed?.length ?? 0
      }, accepted verbatim ${
        by.accepted?.length ?? 0
      }, built-in TypeError/RangeError ${by.builtin?.length ?? 0}${
        by.builtin ? ` [${by.builtin.join(", ")}]` : ""
      }, untyped ${by.untyped?.length ?? 0}${
        by.untyped ? ` [${by.untyped.join(", ")}]` : ""
      }, changed-on-error ${by.changed?.length ?? 0}${
        by.changed ? ` [${by.changed.join(", ")}]` : ""
      }${by.crash ? `; crashes [${by.crash.join(", ")}]` : ""}; accepted: [${
        (by.accepted ?? []).join(", ")
      }]`,
    });
    assert.equal(aborts, 0, JSON.stringify(by.crash));
    assert.equal(wrong, 0, JSON.stringify([by.wrong, by.changed]));
    assert.equal(untyped, 0, JSON.stringify([by.untyped, by.builtin]));
  });
});
