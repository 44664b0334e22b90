/**
 * The LMDB cache against raw lmdb-js with the same encryption setting and the
 * same (default) durability, in the same run. Goal: `get` and batched `set`
 * at most 1.5x raw.
 *
 * - get: 10,000 profile-like objects; each iteration reads 1,000 keys
 *   (`Namespace.get` vs `RootDatabase.get`).
 * - batched set: 1,000 entries per iteration (`setMany` vs one
 *   `transaction()` of `put`s).
 *
 * Deno reports mean, min and p75 (no median): compare the ratios of the same
 * run, preferably min and p75 on a busy machine.
 *
 * Run: `deno bench --allow-all bench/cache_bench.ts`
 */
import { open } from "lmdb";
import { join } from "node:path";
import { openCache } from "../cache/mod.ts";
import { lmdbKeyString } from "../cache/_key.ts";

const ENTRIES = 10_000;
const BATCH = 1_000;
const keyBytes = crypto.getRandomValues(new Uint8Array(32));
const dir = await Deno.makeTempDir({ prefix: "aico_cache_bench_" });

const value = (i: number) => ({
  name: `user ${i}`,
  n: i,
  tags: ["a", "b", "c"],
  updatedAt: 1_700_000_000_000 + i,
});
const keys = Array.from({ length: ENTRIES }, (_, i) => `profile-${i}`);

// Ours.
const cache = await openCache({
  path: join(dir, "ours"),
  key: keyBytes,
  defaultTtlMs: Infinity,
  maxEntries: Infinity,
  maxBytes: Infinity,
  sweepIntervalMs: 0,
});
const profiles = cache.namespace("profile");
for (let i = 0; i < ENTRIES; i += 1_000) {
  await profiles.setMany(
    keys.slice(i, i + 1_000).map((k, j) => [k, value(i + j)]),
  );
}

// Raw lmdb-js, same encryption, same (default) durability settings.
await Deno.mkdir(join(dir, "raw"));
const raw = open<unknown, string>({
  path: join(dir, "raw", "raw.mdb"),
  encryptionKey: lmdbKeyString(keyBytes),
});
for (let i = 0; i < ENTRIES; i += 1_000) {
  await raw.transaction(() => {
    for (let j = i; j < i + 1_000; j++) raw.put(keys[j]!, value(j));
  });
}

// Each iteration reads GETS keys (one get is ~1 µs, too close to the timer's
// resolution on a shared machine); time per get = time per iteration / GETS.
const GETS = 1_000;
let r = 0;
let o = 0;
/** Keeps results alive so that reads are not optimised away. */
export let sink: unknown;

Deno.bench({
  name: `raw lmdb-js get x${GETS} (encrypted)`,
  group: "get",
  baseline: true,
  fn: () => {
    for (let i = 0; i < GETS; i++) sink = raw.get(keys[r++ % ENTRIES]!);
  },
});

Deno.bench({
  name: `cache get x${GETS} (encrypted)`,
  group: "get",
  fn: () => {
    for (let i = 0; i < GETS; i++) sink = profiles.get(keys[o++ % ENTRIES]!);
  },
});

let rawBatch = 0;
let ourBatch = 0;
const batchValue = value(7);

Deno.bench({
  name: `raw lmdb-js batched put x${BATCH} (encrypted)`,
  group: "batched set",
  baseline: true,
  fn: async () => {
    const base = (rawBatch++ % (ENTRIES / BATCH)) * BATCH;
    await raw.transaction(() => {
      for (let i = 0; i < BATCH; i++) raw.put(keys[base + i]!, batchValue);
    });
  },
});

Deno.bench({
  name: `cache setMany x${BATCH} (encrypted)`,
  group: "batched set",
  fn: async () => {
    const base = (ourBatch++ % (ENTRIES / BATCH)) * BATCH;
    const entries: [string, unknown][] = [];
    for (let i = 0; i < BATCH; i++) entries.push([keys[base + i]!, batchValue]);
    await profiles.setMany(entries);
  },
});

globalThis.addEventListener("unload", () => {
  // Deno.bench gives no teardown hook: remove the temp dir synchronously.
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // Nothing more to do at exit.
  }
});
