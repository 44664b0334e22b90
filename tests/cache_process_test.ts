/**
 * Cache reliability with real processes: a writer killed with SIGKILL in the
 * middle of writes, and the permission check of a process without flags.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openCache } from "../cache/mod.ts";

const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const CACHE_MOD = new URL("../cache/mod.ts", import.meta.url).href;

const KEY_HEX = "7a".repeat(16) + "00ff".repeat(8);
const keyBytes = (): Uint8Array =>
  Uint8Array.from(KEY_HEX.match(/../g)!, (h) => parseInt(h, 16));

/** The child: writes batches forever, printing each committed batch number. */
const WRITER = `
import { openCache } from ${JSON.stringify(CACHE_MOD)};
const [dir, hex] = Deno.args;
const key = Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
const cache = await openCache({ path: dir, key, defaultTtlMs: Infinity, sweepIntervalMs: 0 });
const start = Number(Deno.env.get("START") ?? "0");
const blob = "v".repeat(2000);
for (let batch = start; ; batch++) {
  const entries = [];
  for (let i = 0; i < 50; i++) entries.push(["b" + batch + ":" + i, { batch, i, blob }]);
  await cache.setMany(entries);
  // Churn: overwrite and delete older keys too, so pages are freed and reused.
  if (batch > start + 2) await cache.invalidate("b" + (batch - 3) + ":1");
  console.log("committed " + batch);
}
`;

async function runAndKill(
  script: string,
  dir: string,
  start: number,
  batches: number,
): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, script, dir, KEY_HEX],
    env: { START: String(start) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let last = -1;
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    while (last < start + batches) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^committed (\d+)$/.exec(line);
        if (m) last = Number(m[1]);
      }
    }
  } finally {
    child.kill("SIGKILL");
    await reader.cancel().catch(() => {});
    const status = await child.status;
    const err = await new Response(child.stderr).text();
    assert.equal(status.signal, "SIGKILL", `writer ended early: ${err}`);
  }
  return last;
}

Deno.test("a writer killed with SIGKILL leaves a cache that opens empty and answers", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "aico_cache_kill_" });
  try {
    const script = join(dir, "writer.ts");
    await Deno.writeTextFile(script, WRITER);
    const cacheDir = join(dir, "cache");
    let start = 0;
    for (let round = 0; round < 3; round++) {
      await t.step(`round ${round + 1}`, async () => {
        const last = await runAndKill(script, cacheDir, start, 15 + round * 10);
        assert.ok(
          last >= start,
          "the writer committed batches before the kill",
        );
        await using cache = await openCache({
          path: cacheDir,
          key: keyBytes(),
          defaultTtlMs: Infinity,
          sweepIntervalMs: 0,
        });
        // A crashed writer leaves no clean-close record: the file is not
        // trusted and the cache starts empty (it is disposable). Every
        // answer is a miss, never a wrong value.
        assert.equal(cache.stats().entries, 0);
        for (let batch = start; batch <= last; batch++) {
          assert.equal(cache.get(`b${batch}:0`), undefined, `batch ${batch}`);
        }
        // And it takes new writes.
        await cache.set("after-kill", round);
        assert.equal(cache.get("after-kill"), round);
        assert.equal(cache.stats().corruptEntries, 0);
        start = last + 1;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openCache() without --allow-ffi gives PERMISSION_DENIED naming the flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aico_cache_perm_" });
  try {
    const script = join(dir, "perm.ts");
    await Deno.writeTextFile(
      script,
      `
import { openCache } from ${JSON.stringify(CACHE_MOD)};
try {
  await openCache({ path: Deno.args[0], key: new Uint8Array(32) });
  console.log("opened");
} catch (e) {
  console.log(JSON.stringify({ code: e.code, message: e.message }));
}
`,
    );
    const cacheDir = join(dir, "cache");
    const run = async (flags: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--config", CONFIG, ...flags, script, cacheDir],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout).trim();
    };
    const noFfi = JSON.parse(
      await run([`--allow-read`, `--allow-write=${dir}`]),
    );
    assert.equal(noFfi.code, "PERMISSION_DENIED");
    assert.match(noFfi.message, /--allow-ffi/);
    const noEnv = JSON.parse(
      await run([`--allow-read`, `--allow-write=${dir}`, "--allow-ffi"]),
    );
    assert.equal(noEnv.code, "PERMISSION_DENIED");
    assert.match(noEnv.message, /--allow-env=PREBUILDS_ONLY/);
    // The documented flags are enough.
    const enough = await run([
      `--allow-read`,
      `--allow-write=${cacheDir}`,
      "--allow-ffi",
      "--allow-env=PREBUILDS_ONLY,ELECTRON_RUN_AS_NODE,npm_config_arch,npm_config_platform,LIBC,ARM_VERSION,MSGPACKR_NATIVE_ACCELERATION_DISABLED,LMDB_RESTORE",
      "--allow-sys=cpus,networkInterfaces,hostname",
    ]);
    assert.equal(enough, "opened");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cache file damaged inside LMDB's pages is emptied at open", async () => {
  // Run in a child: LMDB trusts its file, so a failure here must not take the
  // test runner down with it.
  const dir = await Deno.makeTempDir({ prefix: "aico_cache_damage_" });
  try {
    const script = join(dir, "damage.ts");
    await Deno.writeTextFile(
      script,
      `
import { openCache } from ${JSON.stringify(CACHE_MOD)};
const [dir] = Deno.args;
const key = new Uint8Array(32).fill(4);
const opts = { path: dir, key, sweepIntervalMs: 0, defaultTtlMs: Infinity };
{
  await using c = await openCache(opts);
  await c.setMany(Array.from({ length: 2000 }, (_, i) => ["k" + i, { i, s: "x".repeat(50) }]));
}
const file = await Deno.readFile(dir + "/cache.mdb");
for (let i = 8192; i < file.length; i += 997) file[i] ^= 0xff; // keep the meta pages
await Deno.writeFile(dir + "/cache.mdb", file);
await using c = await openCache(opts);
const entries = c.stats().entries;
await c.set("new", 1);
console.log(JSON.stringify({ entries, k5: c.get("k5") ?? null, fresh: c.get("new") }));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, script, join(dir, "cache")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(
      out.code,
      0,
      `child failed: ${new TextDecoder().decode(out.stderr)}`,
    );
    const result = JSON.parse(new TextDecoder().decode(out.stdout).trim());
    assert.deepEqual(result, { entries: 0, k5: null, fresh: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two processes share an open cache; the last to close keeps it for the next open", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aico_cache_share_" });
  try {
    const script = join(dir, "share.ts");
    await Deno.writeTextFile(
      script,
      `
import { openCache } from ${JSON.stringify(CACHE_MOD)};
const [dir, role] = Deno.args;
const c = await openCache({ path: dir, key: new Uint8Array(32).fill(6), sweepIntervalMs: 0, defaultTtlMs: Infinity });
if (role === "a") {
  await c.set("from-a", 1);
  console.log("ready");
  // Stay open until stdin closes.
  for await (const _ of Deno.stdin.readable) break;
  console.log(JSON.stringify({ fromB: c.get("from-b") ?? null }));
} else {
  await c.set("from-b", 2);
  console.log(JSON.stringify({ fromA: c.get("from-a") ?? null }));
}
await c.close();
`,
    );
    const cacheDir = join(dir, "cache");
    const a = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, script, cacheDir, "a"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = a.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const b = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, script, cacheDir, "b"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
    // B opened while A held the cache: it trusted the live file.
    assert.deepEqual(JSON.parse(new TextDecoder().decode(b.stdout)), {
      fromA: 1,
    });
    await a.stdin.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert.equal((await a.status).code, 0);
    await a.stderr.cancel();
    assert.deepEqual(JSON.parse(out.split("\n")[1]!), { fromB: 2 });
    // A closed last and wrote the clean-close record: both entries stay.
    await using cache = await openCache({
      path: cacheDir,
      key: new Uint8Array(32).fill(6),
      sweepIntervalMs: 0,
    });
    assert.equal(cache.get("from-a"), 1);
    assert.equal(cache.get("from-b"), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
