// deno-lint-ignore-file no-console
// Scenario 9 (and defect 1): a full disk, a read-only folder and a denied
// permission under the cache, the database and the data layer. Each case
// runs in a child process on a small tmpfs (CI runs as root; without mount
// the case is skipped with the reason printed).
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  aborted,
  type ChildResult,
  jsonLines,
  mod,
  mountTmpfs,
  record,
  ROOT,
  runChild,
  script,
  withTemp,
} from "./_harness.ts";

const CACHE_CHILD = `
import { openCache } from ${mod("cache/mod.ts")};
const [dir, filler] = Deno.args;
const key = new Uint8Array(32).fill(7);
const opts = { path: dir, key, sweepIntervalMs: 0, defaultTtlMs: Infinity };
const cache = await openCache(opts);
const blob = "x".repeat(20_000);
const acked = [];
const codes = {};
for (let i = 0; i < 600 && Object.keys(codes).length < 3; i++) {
  try { await cache.set("k" + i, { i, blob }); acked.push(i); }
  catch (e) { codes[e.code ?? e.name] = (codes[e.code ?? e.name] ?? 0) + 1; if (Object.values(codes).reduce((a, b) => a + b) >= 5) break; }
}
let wrong = 0;
for (const i of acked) { const v = cache.get("k" + i); if (v !== undefined && v.i !== i) wrong++; }
await Deno.remove(filler);
let after = 0;
for (let j = 0; j < 5; j++) { try { await cache.set("after" + j, j); after++; } catch (e) { codes["after:" + (e.code ?? e.name)] = 1; } }
const closed = await Promise.race([cache.close().then(() => true), new Promise((r) => Deno.unrefTimer(setTimeout(() => r(false), 10_000)))]);
const again = await openCache(opts);
let kept = 0;
for (const i of acked) { const v = again.get("k" + i); if (v === undefined) continue; if (v.i !== i) wrong++; else kept++; }
await again.set("reopened", 1);
const reopenedWrite = again.get("reopened") === 1;
await again.close();
console.log(JSON.stringify({ acked: acked.length, codes, wrong, after, closed, kept, reopenedWrite }));
`;

const DB_CHILD = `
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const [path, filler] = Deno.args;
const key = await importDataKey(new Uint8Array(32).fill(5));
let db = await openStorage(path, { key, create: true });
await db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)");
const acked = [];
const codes = {};
const blob = new Uint8Array(60_000).fill(1);
for (let i = 0; i < 400; i++) {
  try { await db.execute("INSERT INTO t (id, v) VALUES (?, ?)", [i, blob]); acked.push(i); }
  catch (e) { codes[e.code ?? e.name] = (codes[e.code ?? e.name] ?? 0) + 1; if (Object.values(codes).reduce((a, b) => a + b) >= 3) break; }
}
await Deno.remove(filler);
let after = 0;
for (let j = 0; j < 3; j++) { try { await db.execute("INSERT INTO t (id, v) VALUES (?, ?)", [100000 + j, new Uint8Array(10)]); after++; } catch (e) { codes["after:" + (e.code ?? e.name)] = 1; } }
await db.close();
db = await openStorage(path, { key });
const rows = await db.execute("SELECT id FROM t");
const have = new Set(rows.rows.map((r) => Number(r.id)));
const lost = acked.filter((i) => !have.has(i)).length;
const integrity = (await db.execute("PRAGMA integrity_check")).rows[0];
await db.close();
console.log(JSON.stringify({ acked: acked.length, codes, lost, after, integrity: Object.values(integrity)[0] }));
`;

const LAYER_CHILD = `
import { openDataLayer } from ${mod("mod.ts")};
const [dir, filler] = Deno.args;
const kdf = { memoryKiB: 19456, iterations: 2 };
let data = await openDataLayer(dir, { passphrase: "pw pw pw pw", create: true, kdf });
const c = await data.conversations.createConversation({ title: "t" });
const codes = {};
let cacheAcked = 0, msgAcked = 0;
const blob = "y".repeat(30_000);
for (let i = 0; i < 400 && Object.values(codes).reduce((a, b) => a + b, 0) < 6; i++) {
  try { await data.cache.set("c" + i, { i, blob }); cacheAcked++; } catch (e) { codes["cache:" + (e.code ?? e.name)] = (codes["cache:" + (e.code ?? e.name)] ?? 0) + 1; }
  try { await data.conversations.appendMessage(c.id, { role: "user", content: blob }); msgAcked++; } catch (e) { codes["db:" + (e.code ?? e.name)] = (codes["db:" + (e.code ?? e.name)] ?? 0) + 1; }
}
await Deno.remove(filler);
let after = 0;
try { await data.conversations.appendMessage(c.id, { role: "user", content: "after" }); after++; } catch (e) { codes["after:db:" + (e.code ?? e.name)] = 1; }
try { await data.cache.set("after", 1); after++; } catch (e) { codes["after:cache:" + (e.code ?? e.name)] = 1; }
const closed = await Promise.race([data.close().then(() => true), new Promise((r) => Deno.unrefTimer(setTimeout(() => r(false), 15_000)))]);
data = await openDataLayer(dir, { passphrase: "pw pw pw pw" });
const n = (await data.conversations.getConversation(c.id)).messageCount;
let listed = 0, cursor;
do { const p = await data.conversations.listMessages(c.id, { limit: 100, ...(cursor ? { cursor } : {}) }); listed += p.items.length; cursor = p.nextCursor; } while (cursor);
await data.close();
console.log(JSON.stringify({ cacheAcked, msgAcked, codes, after, closed, lost: Math.max(0, msgAcked + 1 - listed), count: n, listed }));
`;

interface Outcome {
  result: Record<string, unknown> | undefined;
  child: ChildResult;
}

async function onTmpfs(
  sizeKiB: number,
  fillerKiB: number,
  source: string,
  target: (dir: string) => string,
  flags?: (mount: string) => string[],
): Promise<Outcome | string> {
  const mounted = await mountTmpfs(sizeKiB);
  if ("reason" in mounted) return mounted.reason;
  try {
    return await withTemp(async (tmp) => {
      const filler = join(mounted.dir, "filler");
      await Deno.writeFile(filler, new Uint8Array(fillerKiB * 1024).fill(9));
      const path = await script(tmp, "child.ts", source);
      const child = await runChild(path, [target(mounted.dir), filler], {
        timeoutMs: 120_000,
        ...(flags ? { flags: flags(mounted.dir) } : {}),
      });
      return { result: jsonLines(child.stdout)[0], child };
    });
  } finally {
    await mounted.unmount();
  }
}

Deno.test("a full disk, read-only folder or denied permission gives typed errors; stores stay intact and write again", async (t) => {
  const fig = {
    test: "09 disk full / read-only / denied",
    runs: 0,
    faults: 0,
    lost: 0,
    wrong: 0,
    aborts: 0,
    plaintext: 0,
    notes: "",
  };
  const notes: string[] = [];
  const check = (name: string, o: Outcome | string) => {
    if (typeof o === "string") {
      console.log(`skipped ${name}: ${o}`);
      notes.push(`${name} skipped (${o})`);
      return undefined;
    }
    fig.runs++;
    fig.faults++;
    if (aborted(o.child) || o.result === undefined) fig.aborts++;
    assert.ok(
      o.result !== undefined && !aborted(o.child),
      `${name}: child ended with ${o.child.code}/${o.child.signal}: ${
        o.child.stderr.slice(-2000)
      }`,
    );
    return o.result;
  };
  await t.step("cache on a full disk", async () => {
    const r = check(
      "cache",
      await onTmpfs(3072, 1024, CACHE_CHILD, (d) => join(d, "cache")),
    );
    if (!r) return;
    fig.wrong += Number(r.wrong);
    notes.push(`cache: ${JSON.stringify(r)}`);
    assert.deepEqual(Object.keys(r.codes as object), ["CACHE_ERROR"]);
    assert.equal(r.wrong, 0);
    assert.equal(r.closed, true, "close() settles");
    assert.equal(r.after, 5, "writes succeed once space returns");
    assert.equal(r.reopenedWrite, true);
  });
  await t.step(
    "cache on a full disk with only the documented flags (no free-space check: LMDB fails first)",
    async () => {
      const r = check(
        "cache, documented flags",
        await onTmpfs(
          3072,
          1024,
          CACHE_CHILD,
          (d) => join(d, "cache"),
          (mount) => [
            "--allow-read",
            `--allow-write=${mount}`,
            "--allow-ffi",
            "--allow-env=PREBUILDS_ONLY,ELECTRON_RUN_AS_NODE,npm_config_arch,npm_config_platform,LIBC,ARM_VERSION,MSGPACKR_NATIVE_ACCELERATION_DISABLED,LMDB_RESTORE",
            "--allow-sys=cpus,networkInterfaces,hostname",
          ],
        ),
      );
      if (!r) return;
      fig.wrong += Number(r.wrong);
      notes.push(`cache (documented flags): ${JSON.stringify(r)}`);
      assert.deepEqual(Object.keys(r.codes as object), ["CACHE_ERROR"]);
      assert.equal(r.wrong, 0);
      assert.equal(r.closed, true, "close() settles");
      assert.equal(r.after, 5, "writes succeed once space returns");
      assert.equal(r.reopenedWrite, true);
    },
  );
  await t.step("database on a full disk", async () => {
    const r = check(
      "database",
      await onTmpfs(3072, 1024, DB_CHILD, (d) => join(d, "data.db")),
    );
    if (!r) return;
    fig.lost += Number(r.lost);
    notes.push(`database: ${JSON.stringify(r)}`);
    assert.ok(Object.keys(r.codes as object).length > 0, "the disk filled");
    for (const code of Object.keys(r.codes as object)) {
      assert.match(code, /^[A-Z_]+$/, `typed error, got ${code}`);
    }
    assert.equal(r.lost, 0);
    assert.equal(r.after, 3);
    assert.equal(r.integrity, "ok");
  });
  await t.step("data layer (database and cache) on a full disk", async () => {
    const r = check(
      "data layer",
      await onTmpfs(4096, 1024, LAYER_CHILD, (d) => join(d, "layer")),
    );
    if (!r) return;
    fig.lost += Number(r.lost);
    notes.push(`data layer: ${JSON.stringify(r)}`);
    for (const code of Object.keys(r.codes as object)) {
      assert.match(code, /^[a-z:]+[A-Z_]+$/, `typed error, got ${code}`);
    }
    assert.equal(r.closed, true);
    assert.equal(r.lost, 0);
    assert.equal(r.after, 2);
  });
  await t.step(
    "read-only file system under the cache and the database",
    async () => {
      const mounted = await mountTmpfs(4096);
      if ("reason" in mounted) {
        notes.push(`read-only skipped (${mounted.reason})`);
        console.log(`skipped read-only: ${mounted.reason}`);
        return;
      }
      try {
        await withTemp(async (tmp) => {
          const src = `
import { openCache } from ${mod("cache/mod.ts")};
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const [dir, phase] = Deno.args;
const key = await importDataKey(new Uint8Array(32).fill(5));
const out = { phase };
const code = (e) => e?.code ?? e?.name;
if (phase === "create") {
  await Deno.mkdir(dir + "/db");
  const c = await openCache({ path: dir + "/cache", key, sweepIntervalMs: 0, defaultTtlMs: Infinity }); await c.set("a", 1); await c.close();
  const db = await openStorage(dir + "/db/data.db", { key, create: true }); await db.execute("CREATE TABLE t (x)"); await db.execute("INSERT INTO t VALUES (1)"); await db.close();
} else {
  try { const c = await openCache({ path: dir + "/cache", key, sweepIntervalMs: 0, defaultTtlMs: Infinity }); out.cacheA = c.get("a") ?? null; try { await c.set("b", 2); out.cacheWrite = "ok"; } catch (e) { out.cacheWrite = code(e); } await c.close(); } catch (e) { out.cacheOpen = code(e); }
  try { const db = await openStorage(dir + "/db/data.db", { key }); try { await db.execute("INSERT INTO t VALUES (2)"); out.dbWrite = "ok"; } catch (e) { out.dbWrite = code(e); } out.rows = (await db.execute("SELECT COUNT(*) AS n FROM t")).rows[0].n; await db.close(); } catch (e) { out.dbOpen = code(e); }
}
console.log(JSON.stringify(out));
`;
          const path = await script(tmp, "ro.ts", src);
          const remount = (mode: string) =>
            new Deno.Command("mount", {
              args: ["-o", `remount,${mode}`, mounted.dir],
            }).output();
          const results: Record<string, unknown>[] = [];
          for (
            const [phase, mode] of [["create", "rw"], ["ro", "ro"], [
              "rw",
              "rw",
            ]] as const
          ) {
            await remount(mode);
            const child = await runChild(path, [mounted.dir, phase], {
              timeoutMs: 60_000,
            });
            fig.runs++;
            if (phase === "ro") fig.faults++;
            if (aborted(child)) fig.aborts++;
            const r = jsonLines(child.stdout)[0];
            assert.ok(r, `${phase}: ${child.stderr.slice(-1500)}`);
            results.push(r);
          }
          notes.push(`read-only fs: ${JSON.stringify(results.slice(1))}`);
          const [, ro, rw] = results as Record<string, unknown>[];
          for (const k of ["cacheOpen", "cacheWrite", "dbOpen", "dbWrite"]) {
            if (ro![k] !== undefined) {
              assert.match(String(ro![k]), /^(ok|[A-Z_]+)$/, `${k} typed`);
            }
          }
          assert.equal(rw!.dbWrite, "ok", "the database writes again");
          assert.equal(rw!.cacheWrite, "ok", "the cache writes again");
        });
      } finally {
        await mounted.unmount();
      }
    },
  );
  await t.step("permission denied by Deno flags", async () => {
    await withTemp(async (tmp) => {
      const src = `
import { openCache } from ${mod("cache/mod.ts")};
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const out = {};
const key = await importDataKey(new Uint8Array(32).fill(5));
try { await openCache({ path: Deno.args[0] + "/c", key: new Uint8Array(32) }); out.cache = "opened"; } catch (e) { out.cache = e.code ?? e.name; }
try { await openStorage(Deno.args[0] + "/d.db", { key, create: true }); out.db = "opened"; } catch (e) { out.db = e.code ?? e.name; }
console.log(JSON.stringify(out));
`;
      const path = await script(tmp, "perm.ts", src);
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--config",
          join(ROOT, "deno.json"),
          "--allow-read",
          "--allow-ffi",
          "--allow-env",
          "--allow-sys",
          path,
          tmp,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      fig.runs++;
      fig.faults += 2;
      const r = jsonLines(new TextDecoder().decode(out.stdout))[0];
      assert.ok(r, new TextDecoder().decode(out.stderr));
      notes.push(`no --allow-write: ${JSON.stringify(r)}`);
      assert.equal(r.cache, "PERMISSION_DENIED");
      assert.equal(r.db, "PERMISSION_DENIED");
    });
  });
  fig.notes = notes.join("; ");
  await record(fig);
});
