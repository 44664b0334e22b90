// Scenario 7: at least 1,000 mutated key files, sealed values and key
// records (the `.aico` sidecar of a database): no crash, no hang over 5 s,
// a typed error for everything that is not the original. Chat-export files:
// the importers do not exist on this branch; IMPORTER_HOOK below is where
// their mutated inputs go once they do.
import assert from "node:assert/strict";
import { mod, record, runChild, script, withTemp } from "./_harness.ts";
import { sweepCases } from "./_sweep.ts";

const COUNTS = { keyfile: 300, sealed: 500, sidecar: 250 } as const;
/** Mutation kinds for chat-export files, once `importers/` exists. */
export const IMPORTER_HOOK: readonly string[] = [];

const CHILD = `
import { readKeyFileInfo, unlockKeys, importDataKey } from ${
  mod("crypto/mod.ts")
};
import { openStorage } from ${mod("storage/mod.ts")};
import { isAicoDataError } from ${mod("errors.ts")};
const [dir, list] = Deno.args;
const PW = "fuzz fuzz fuzz";
const base = {
  keyfile: await Deno.readFile(dir + "/key.json"),
  sidecar: await Deno.readFile(dir + "/data.db.aico"),
};
const key = await importDataKey(new Uint8Array(32).fill(41));
const sealer = await key.sealer("field-aead");
const plain = new TextEncoder().encode("a secret value to seal");
const sealed = await sealer.seal(plain, "messages/content/7");
// A small deterministic PRNG per case.
const rng = (seed) => () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const HOSTILE = [null, -1, 0, 2 ** 40, 1e308, "x", "", [], {}, true, "A".repeat(100000), { a: { b: {} } }];
function mutateBytes(bytes, r) {
  const b = bytes.slice();
  const k = Math.floor(r() * 6);
  const at = Math.floor(r() * b.length);
  if (k === 0) { b[at] ^= 1 << Math.floor(r() * 8); return b; }
  if (k === 1) return b.slice(0, at);
  if (k === 2) { const out = new Uint8Array(b.length + 1); out.set(b.subarray(0, at)); out[at] = Math.floor(r() * 256); out.set(b.subarray(at), at + 1); return out; }
  if (k === 3) { const out = new Uint8Array(b.length - 1 < 0 ? 0 : b.length - 1); out.set(b.subarray(0, at)); out.set(b.subarray(at + 1), at); return out; }
  if (k === 4) { b[at] = Math.floor(r() * 256); b[(at * 7) % b.length] = Math.floor(r() * 256); return b; }
  return b.slice(0, Math.max(0, b.length - 1 - Math.floor(r() * 16)));
}
function mutateJson(bytes, r) {
  let doc;
  try { doc = JSON.parse(new TextDecoder().decode(bytes)); } catch { return mutateBytes(bytes, r); }
  const paths = [];
  const walk = (v, p) => { paths.push(p); if (v && typeof v === "object") for (const k of Object.keys(v)) walk(v[k], [...p, k]); };
  walk(doc, []);
  const p = paths[1 + Math.floor(r() * (paths.length - 1))] ?? [];
  const value = HOSTILE[Math.floor(r() * HOSTILE.length)];
  if (p.length === 0) doc = value;
  else { let o = doc; for (const k of p.slice(0, -1)) o = o[k]; if (r() < 0.15) delete o[p.at(-1)]; else o[p.at(-1)] = value; }
  return new TextEncoder().encode(JSON.stringify(doc));
}
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
console.log(JSON.stringify({ ready: true }));
for (const item of list.split("\\u0001")) {
  const [kind, n] = item.split(":");
  const r = rng(Number(n) * 7919 + kind.length);
  let outcome = "typed", detail = "";
  try {
    if (kind === "keyfile") {
      const m = Number(n) % 2 ? mutateJson(base.keyfile, r) : mutateBytes(base.keyfile, r);
      const path = dir + "/work-key.json";
      await Deno.writeFile(path, m);
      await readKeyFileInfo(path);
      const keys = await unlockKeys(path, PW);
      outcome = keys.current.keyId === Deno.env.get("KEY_ID") ? "accepted" : "wrong";
    } else if (kind === "sealed") {
      const m = mutateBytes(sealed, r);
      if (same(m, sealed)) { outcome = "identical"; }
      else { const out = await sealer.open(m, "messages/content/7"); outcome = same(out, plain) ? "wrong-accepted" : "wrong"; }
    } else if (kind === "sidecar") {
      const m = Number(n) % 2 ? mutateJson(base.sidecar, r) : mutateBytes(base.sidecar, r);
      await Deno.copyFile(dir + "/data.db", dir + "/work.db");
      await Deno.writeFile(dir + "/work.db.aico", m);
      const db = await openStorage(dir + "/work.db", { key: await importDataKey(new Uint8Array(32).fill(42)) });
      const rows = (await db.execute("SELECT v FROM t")).rows;
      await db.close();
      outcome = rows.length === 1 && rows[0].v === "kept" ? "accepted" : "wrong";
    }
  } catch (e) {
    outcome = isAicoDataError(e) ? "typed" : "untyped";
    detail = isAicoDataError(e) ? e.code : String(e?.name) + ": " + String(e?.message).slice(0, 100);
  }
  console.log(JSON.stringify({ item, outcome, detail }));
}
`;

const SEED = `
import { createKeyFile, importDataKey } from ${mod("crypto/mod.ts")};
import { openStorage } from ${mod("storage/mod.ts")};
const [dir] = Deno.args;
const k = await createKeyFile(dir + "/key.json", "fuzz fuzz fuzz", { kdf: { memoryKiB: 19456, iterations: 2 } });
const db = await openStorage(dir + "/data.db", { key: await importDataKey(new Uint8Array(32).fill(42)), create: true });
await db.execute("CREATE TABLE t (v TEXT)");
await db.execute("INSERT INTO t VALUES ('kept')");
await db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
await db.close();
console.log(k.keyId);
`;

Deno.test("fuzzed key files, sealed values and key records give typed errors, no crash and no hang over 5 s", async () => {
  await withTemp(async (dir) => {
    const seed = await runChild(await script(dir, "seed.ts", SEED), [dir]);
    assert.equal(seed.code, 0, seed.stderr);
    const keyId = seed.stdout.trim();
    const items: string[] = [];
    for (const [kind, n] of Object.entries(COUNTS)) {
      for (let i = 0; i < n; i++) items.push(`${kind}:${i}`);
    }
    const path = await script(dir, "fuzz.ts", CHILD);
    // KEY_ID lets the child tell a harmless mutation (whitespace) from a wrong key.
    Deno.env.set("KEY_ID", keyId);
    const r = await sweepCases(path, [dir], items, {
      batch: 120,
      stallMs: 5000,
    });
    Deno.env.delete("KEY_ID");
    const by: Record<string, number> = {};
    const bad: string[] = [];
    for (const l of r.lines) {
      const k = `${l.item.split(":")[0]}:${l.outcome}${
        l.outcome === "typed" ? `:${l.detail}` : ""
      }`;
      by[k] = (by[k] ?? 0) + 1;
      if (/wrong|untyped/.test(l.outcome)) {
        bad.push(`${l.item} ${l.outcome} ${l.detail ?? ""}`);
      }
    }
    const hangs = r.crashed.filter((c) => c.why.startsWith("hang"));
    const aborts = r.crashed.filter((c) => !c.why.startsWith("hang"));
    await record({
      test: "07 fuzzing (key files, sealed values, key records)",
      runs: r.runs,
      faults: items.length,
      lost: 0,
      wrong: bad.length,
      aborts: aborts.length + hangs.length,
      plaintext: 0,
      notes: `outcomes ${JSON.stringify(by)}; hangs>5s ${hangs.length}${
        hangs.length
          ? ` [${hangs.slice(0, 3).map((h) => h.item).join(",")}]`
          : ""
      }; aborts ${aborts.length}${
        aborts.length
          ? ` [${
            aborts.slice(0, 3).map((a) => `${a.item} ${a.why}`).join(" | ")
          }]`
          : ""
      }${
        bad.length ? `; e.g. ${bad.slice(0, 5).join(" | ")}` : ""
      }; chat exports: no importers on this branch (IMPORTER_HOOK)`,
    });
    assert.ok(items.length >= 1000);
    assert.deepEqual(hangs, []);
    assert.deepEqual(aborts, []);
    assert.deepEqual(bad, []);
  });
});
