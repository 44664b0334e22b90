// Scenario 12: a bounded soak of mixed load (appends, listings, reads,
// cache reads and writes) in a child process, reporting throughput, p99
// latency per operation and memory growth. AICO_SOAK_SECONDS sets the length
// (default 60). Searches and analytics refreshes join once they exist here.
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

const SECONDS = Number(Deno.env.get("AICO_SOAK_SECONDS") ?? "60");

const CHILD = `
import { openDataLayer } from ${mod("mod.ts")};
const [dir, seconds] = Deno.args;
const data = await openDataLayer(dir, { passphrase: "soak soak soak", create: true, kdf: { memoryKiB: 19456, iterations: 2 } });
const convs = [];
for (let i = 0; i < 8; i++) convs.push((await data.conversations.createConversation({ title: "c" + i })).id);
const lat = { append: [], list: [], get: [], cacheGet: [], cacheSet: [] };
const errors = {};
let ops = 0, n = 0, appended = 0;
const time = async (name, fn) => {
  const t0 = performance.now();
  try { await fn(); } catch (e) { errors[name + ":" + (e.code ?? e.name)] = (errors[name + ":" + (e.code ?? e.name)] ?? 0) + 1; }
  lat[name].push(performance.now() - t0);
  ops++;
};
const warmEnd = Date.now() + Math.min(5000, Number(seconds) * 100);
const end = Date.now() + Number(seconds) * 1000;
let rss0;
while (Date.now() < end) {
  if (rss0 === undefined && Date.now() > warmEnd) { rss0 = Deno.memoryUsage().rss; for (const k in lat) lat[k].length = 0; ops = 0; }
  const c = convs[n++ % convs.length];
  await time("append", async () => { await data.conversations.appendMessage(c, { role: "user", content: "soak message " + n + " " + "x".repeat(n % 400) }); appended++; });
  await time("list", () => data.conversations.listMessages(c, { order: "desc", limit: 20 }));
  await time("get", () => data.conversations.getConversation(c));
  await time("cacheSet", () => data.cache.set("k" + (n % 5000), { n, s: "v".repeat(n % 200) }));
  for (let j = 0; j < 5; j++) await time("cacheGet", () => data.cache.get("k" + ((n * 7 + j) % 5000)));
}
const rss1 = Deno.memoryUsage().rss;
// A full listing of every conversation checks nothing was lost.
let listed = 0;
for (const c of convs) {
  let cursor;
  do { const p = await data.conversations.listMessages(c, { limit: 500, ...(cursor ? { cursor } : {}) }); listed += p.items.length; cursor = p.nextCursor; } while (cursor);
}
await data.close();
const p99 = (a) => { const s = a.slice().sort((x, y) => x - y); return s.length ? s[Math.floor(s.length * 0.99)] : 0; };
const measured = Number(seconds) * 1000 - Math.min(5000, Number(seconds) * 100);
console.log(JSON.stringify({
  ops, opsPerSec: Math.round(ops / (measured / 1000)), appended, listed,
  p99: Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, Number(p99(v).toFixed(3))])),
  rssStartMiB: Math.round(rss0 / 1048576), rssEndMiB: Math.round(rss1 / 1048576), errors,
}));
`;

Deno.test(`a ${SECONDS} s soak of mixed load reports throughput, p99 latency and memory growth with no error`, async () => {
  await withTemp(async (tmp) => {
    const path = await script(tmp, "soak.ts", CHILD);
    const r = await runChild(path, [join(tmp, "layer"), String(SECONDS)], {
      timeoutMs: (SECONDS + 120) * 1000,
    });
    const out = jsonLines(r.stdout)[0];
    assert.ok(out, `${r.code}: ${r.stderr.slice(-2000)}`);
    const errors = Object.values(out.errors as Record<string, number>).reduce(
      (a, b) => a + b,
      0,
    );
    await record({
      test: "12 soak mixed load",
      runs: 1,
      faults: 0,
      lost: Math.max(0, Number(out.appended) - Number(out.listed)),
      wrong: errors,
      aborts: aborted(r) ? 1 : 0,
      plaintext: 0,
      notes:
        `${SECONDS} s on a shared machine: ${out.opsPerSec} ops/s (${out.ops} ops), p99 ms ${
          JSON.stringify(out.p99)
        }, RSS ${out.rssStartMiB} -> ${out.rssEndMiB} MiB after warm-up, errors ${
          JSON.stringify(out.errors)
        }`,
    });
    assert.equal(errors, 0, JSON.stringify(out.errors));
    assert.equal(out.listed, out.appended);
  });
});
