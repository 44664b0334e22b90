import assert from "node:assert/strict";
import { seeded, shuffle } from "../tests/_sync_random.ts";
import { formatHlc } from "./hlc.ts";
import {
  canonicalJson,
  checkSyncChange,
  compareVersions,
  createReplica,
  mergeRow,
} from "./merge.ts";
import type { RowRef, SyncChange } from "./types.ts";

function randomHlc(rand: () => number): string {
  return formatHlc({
    wall: 1000 + Math.floor(rand() * 4),
    counter: Math.floor(rand() * 3),
    node: ["a", "b", "c"][Math.floor(rand() * 3)]!,
  });
}

function randomVersion(rand: () => number, ref: RowRef): SyncChange {
  const r = rand();
  const hlc = randomHlc(rand);
  if (r < 0.15) return { op: "erase", ...ref, hlc };
  if (r < 0.35) return { op: "delete", ...ref, hlc };
  return {
    op: r < 0.5 ? "append" : "put",
    ...ref,
    hlc,
    value: { v: Math.floor(rand() * 3), tags: rand() < 0.5 ? ["x"] : [] },
  };
}

Deno.test("mergeRow() is commutative, associative and idempotent (10,000 random triples)", () => {
  const rand = seeded(42);
  const ref = { table: "config", key: "ui/theme" };
  for (let i = 0; i < 10_000; i++) {
    const a = randomVersion(rand, ref),
      b = randomVersion(rand, ref),
      c = randomVersion(rand, ref);
    assert.deepEqual(mergeRow(a, b), mergeRow(b, a));
    assert.deepEqual(mergeRow(mergeRow(a, b), c), mergeRow(a, mergeRow(b, c)));
    assert.deepEqual(mergeRow(a, a), a);
    assert.deepEqual(mergeRow(mergeRow(a, b), b), mergeRow(a, b));
    assert.equal(compareVersions(a, b) + compareVersions(b, a), 0);
  }
});

Deno.test("mergeRow() keeps the last writer, lets a tombstone beat older writes, and an erase beat everything", () => {
  const ref = { table: "config", key: "k" };
  const put = (hlc: string, v: number): SyncChange => ({
    op: "put",
    ...ref,
    hlc,
    value: { v },
  });
  const older = put("0000000003e80000.a", 1);
  const newer = put("0000000003e80001.a", 2);
  const otherDevice = put("0000000003e80001.b", 3);
  assert.equal(mergeRow(older, newer), newer);
  assert.equal(
    mergeRow(newer, otherDevice),
    otherDevice,
    "equal clocks: the device id breaks the tie",
  );
  const del: SyncChange = { op: "delete", ...ref, hlc: "0000000003e90000.a" };
  assert.equal(mergeRow(otherDevice, del), del);
  const after = put("0000000003ea0000.c", 4);
  assert.equal(
    mergeRow(del, after),
    after,
    "a later write after a delete wins",
  );
  const erase: SyncChange = { op: "erase", ...ref, hlc: "0000000000010000.a" };
  assert.equal(
    mergeRow(after, erase),
    erase,
    "an erase wins whatever its clock",
  );
  assert.throws(() => mergeRow(older, { ...newer, key: "other" }), {
    code: "INVALID_INPUT",
  });
});

Deno.test("createReplica() appends messages idempotently by id", () => {
  const r = createReplica();
  const m: SyncChange = {
    op: "append",
    table: "messages",
    key: "dev1/7",
    hlc: "0000000003e80000.dev1",
    parent: { table: "conversations", key: "c" },
    value: { text: "hello" },
  };
  assert.equal(r.apply([m, m]).changed, 1);
  assert.equal(r.apply([m]).changed, 0);
  assert.equal(r.rows("messages").length, 1);
});

interface Scenario {
  versions: SyncChange[];
}

function scenario(rand: () => number): Scenario {
  const versions: SyncChange[] = [];
  const users = ["u1", "u2"];
  const convs = ["c1", "c2", "c3", "c4"];
  for (const u of users) {
    versions.push({
      op: "put",
      table: "users",
      key: u,
      hlc: randomHlc(rand),
      value: { name: u },
    });
    if (rand() < 0.3) {
      versions.push({
        op: "erase",
        table: "users",
        key: u,
        hlc: randomHlc(rand),
      });
    }
  }
  for (const c of convs) {
    const parent = { table: "users", key: users[Math.floor(rand() * 2)]! };
    for (let i = 0; i < 2; i++) {
      versions.push({
        op: "put",
        table: "conversations",
        key: c,
        hlc: randomHlc(rand),
        parent,
        value: { title: `${c}-${i}` },
      });
    }
    if (rand() < 0.3) {
      versions.push({
        op: "erase",
        table: "conversations",
        key: c,
        hlc: randomHlc(rand),
      });
    }
  }
  for (let i = 0; i < 30; i++) {
    const c = convs[Math.floor(rand() * convs.length)]!;
    versions.push({
      op: "append",
      table: "messages",
      key: `m${i}`,
      hlc: randomHlc(rand),
      parent: { table: "conversations", key: c },
      value: { text: `message ${i}` },
    });
    if (rand() < 0.1) {
      versions.push({
        op: "erase",
        table: "messages",
        key: `m${i}`,
        hlc: randomHlc(rand),
      });
    }
  }
  for (const k of ["ui/theme", "ui/lang"]) {
    for (let i = 0; i < 3; i++) {
      versions.push(randomVersion(rand, { table: "config", key: k }));
    }
  }
  return { versions };
}

function canonicalState(versions: SyncChange[]): string {
  return versions.map((v) => canonicalJson(v as never)).sort().join("\n");
}

Deno.test("createReplica() converges whatever the order, duplication and batching of versions (200 seeds x 20 orders)", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rand = seeded(seed);
    const { versions } = scenario(rand);
    let hash: string | undefined;
    let live: string | undefined;
    for (let order = 0; order < 20; order++) {
      const r = createReplica();
      const shuffled = shuffle([
        ...versions,
        ...versions.filter(() => rand() < 0.2),
      ], rand);
      for (let i = 0; i < shuffled.length;) {
        const n = 1 + Math.floor(rand() * 5);
        r.apply(shuffled.slice(i, i + n));
        i += n;
      }
      const h = r.contentHash();
      const l = canonicalState(r.rows());
      if (hash === undefined) {
        hash = h;
        live = l;
        // Nothing live has an erased ancestor.
        for (const row of r.rows()) {
          let p = row.parent;
          while (p !== undefined) {
            const v = r.get(p.table, p.key);
            assert.notEqual(
              v?.op,
              "erase",
              `seed ${seed}: ${row.key} outlived ${p.key}`,
            );
            p = v !== undefined && (v.op === "put" || v.op === "append")
              ? v.parent
              : undefined;
          }
        }
      }
      assert.equal(h, hash, `seed ${seed} order ${order}`);
      assert.equal(l, live, `seed ${seed} order ${order}`);
    }
  }
});

Deno.test("createReplica() erases messages of an erased conversation whether they arrive before or after", () => {
  const conv = { table: "conversations", key: "c1" };
  const msg = (k: string, hlc: string): SyncChange => ({
    op: "append",
    table: "messages",
    key: k,
    hlc,
    parent: conv,
    value: { text: k },
  });
  const erase: SyncChange = { op: "erase", ...conv, hlc: "0000000003e80000.a" };
  const early = msg("b/1", "0000000003e70000.b");
  const late = msg("b/2", "0000000003f00000.b"); // appended after the erase, concurrently
  const r1 = createReplica([early, erase, late]);
  const r2 = createReplica([late, early, erase]);
  assert.equal(r1.rows().length, 0);
  assert.equal(r1.contentHash(), r2.contentHash());
  assert.equal(r1.get("messages", "b/2")?.op, "erase");
});

Deno.test("checkSyncChange() refuses malformed changes with INVALID_INPUT", () => {
  const ok = {
    op: "put",
    table: "config",
    key: "k",
    hlc: "0000000003e80000.a",
    value: {},
  };
  const bad: unknown[] = [
    null,
    { ...ok, op: "upsert" },
    { ...ok, table: "Config" },
    { ...ok, key: "" },
    { ...ok, key: "x".repeat(513) },
    { ...ok, hlc: "later" },
    { ...ok, value: [1] },
    { ...ok, value: { n: Infinity } },
    { ...ok, value: { d: new Date() } },
    { ...ok, value: { s: "\ud800" } },
    { ...ok, parent: { table: "conversations" } },
  ];
  for (const b of bad) {
    assert.throws(
      () => checkSyncChange(b),
      { code: "INVALID_INPUT" },
      JSON.stringify(b),
    );
  }
  assert.deepEqual(checkSyncChange({ ...ok, extra: 1 }), ok);
  const r = createReplica();
  assert.throws(() => r.apply([ok as SyncChange, bad[1] as SyncChange]), {
    code: "INVALID_INPUT",
  });
  assert.equal(r.versions().length, 0, "nothing of a refused batch is applied");
});
