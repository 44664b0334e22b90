import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { deriveSyncKeys } from "./keys.ts";
import { manifestName, openManifest, sealManifest } from "./manifest.ts";
import {
  chainNext,
  GENESIS_CHAIN,
  openSegment,
  sealSegment,
  segmentName,
} from "./segment.ts";
import type { SyncChange } from "./types.ts";

const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
const otherKeys = await deriveSyncKeys(await importDataKey(generateDataKey()));

function messages(n: number, text = "hello"): SyncChange[] {
  return Array.from({ length: n }, (_, i) => ({
    op: "append" as const,
    table: "messages",
    key: `dev1/${i}`,
    hlc: `0000000003e8${i.toString(16).padStart(4, "0")}.dev1`,
    parent: { table: "conversations", key: "conv-secret-id" },
    value: { role: "user", content: `${text} ${i}` },
  }));
}

Deno.test("sealSegment() round-trips and chains segments", () => {
  const s1 = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(3),
  });
  const s2 = sealSegment(keys, {
    deviceId: "dev1",
    number: 2,
    prevChain: s1.chain,
    changes: messages(2),
  });
  assert.equal(s1.chain, chainNext(GENESIS_CHAIN, s1.digest));
  assert.equal(s1.name, segmentName(keys, "dev1", 1));
  const o1 = openSegment(keys, s1.bytes, { deviceId: "dev1", number: 1 });
  const o2 = openSegment(keys, s2.bytes, {
    deviceId: "dev1",
    number: 2,
    prevChain: o1.chain,
  });
  assert.deepEqual(o1.changes, messages(3));
  assert.deepEqual(o2.changes, messages(2));
  assert.equal(o2.chain, s2.chain);
});

Deno.test("openSegment() refuses every flipped byte with AUTH_FAILED", () => {
  const s = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(2),
  });
  for (let i = 0; i < s.bytes.length; i++) {
    const bad = s.bytes.slice();
    bad[i]! ^= 0x01;
    assert.throws(
      () => openSegment(keys, bad, { deviceId: "dev1", number: 1 }),
      { code: "AUTH_FAILED" },
      `byte ${i}`,
    );
  }
});

Deno.test("openSegment() refuses truncation, another place in the chain, another device or key", () => {
  const s1 = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(2),
  });
  const s2 = sealSegment(keys, {
    deviceId: "dev1",
    number: 2,
    prevChain: s1.chain,
    changes: messages(1),
  });
  const cases: [Uint8Array, Parameters<typeof openSegment>[2], typeof keys][] =
    [
      [s1.bytes.subarray(0, s1.bytes.length - 1), {
        deviceId: "dev1",
        number: 1,
      }, keys],
      [s1.bytes.subarray(0, 20), { deviceId: "dev1", number: 1 }, keys],
      [new Uint8Array(), { deviceId: "dev1", number: 1 }, keys],
      [s1.bytes, { deviceId: "dev1", number: 2, prevChain: s1.chain }, keys], // replayed as a later one
      [s2.bytes, { deviceId: "dev1", number: 2 }, keys], // wrong predecessor
      [s1.bytes, { deviceId: "dev2", number: 1 }, keys],
      [s1.bytes, { deviceId: "dev1", number: 1 }, otherKeys],
    ];
  for (const [bytes, ref, k] of cases) {
    assert.throws(() => openSegment(k, bytes, ref), { code: "AUTH_FAILED" });
  }
});

Deno.test("sealed segments leak no plaintext, table name or id, and are padded", () => {
  const marker = "MARKER-7f3a9c";
  const s = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(5, marker),
  });
  const text = new TextDecoder("latin1").decode(s.bytes);
  for (
    const needle of [marker, "messages", "conv-secret-id", "dev1", "content"]
  ) {
    assert.ok(!text.includes(needle), needle);
    assert.ok(!s.name.includes(needle), needle);
  }
  assert.match(s.name, /^s[0-9a-f]{64}$/);
  // Small segments of different content all take the minimum size.
  const a = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(1),
  });
  const b = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(4),
  });
  assert.equal(a.bytes.length, 512);
  assert.equal(b.bytes.length, 512);
  // Padmé: bounded overhead on a large one.
  const big = sealSegment(keys, {
    deviceId: "dev1",
    number: 1,
    changes: messages(2000).map((m) => ({
      ...m,
      value: { content: crypto.randomUUID() },
    })),
  });
  assert.ok(big.bytes.length > 50_000);
});

Deno.test("sealSegment() refuses malformed input with INVALID_INPUT", () => {
  const changes = messages(1);
  for (
    const bad of [
      { deviceId: "Dev 1", number: 1, changes },
      { deviceId: "dev1", number: 0, changes },
      { deviceId: "dev1", number: 1.5, changes },
      { deviceId: "dev1", number: 1, prevChain: "x", changes },
      { deviceId: "dev1", number: 1, changes: [] },
      { deviceId: "dev1", number: 1, changes: [{ op: "nope" }] },
    ]
  ) {
    assert.throws(() => sealSegment(keys, bad as never), {
      code: "INVALID_INPUT",
    });
  }
  assert.throws(
    () => sealSegment({ keyId: "x" }, { deviceId: "d", number: 1, changes }),
    { code: "INVALID_INPUT" },
  );
});

Deno.test("openManifest() refuses a manifest under another name, flipped bytes and another key", () => {
  const m = { deviceId: "dev1", head: 4, chain: "cd".repeat(32) };
  const sealed = sealManifest(keys, m);
  assert.equal(sealed.name, manifestName(keys, "dev1", 4));
  assert.deepEqual(openManifest(keys, sealed.name, sealed.bytes), m);
  assert.throws(
    () => openManifest(keys, manifestName(keys, "dev1", 5), sealed.bytes),
    { code: "AUTH_FAILED" },
  );
  assert.throws(() => openManifest(otherKeys, sealed.name, sealed.bytes), {
    code: "AUTH_FAILED",
  });
  for (let i = 0; i < sealed.bytes.length; i += 7) {
    const bad = sealed.bytes.slice();
    bad[i]! ^= 0x80;
    assert.throws(() => openManifest(keys, sealed.name, bad), {
      code: "AUTH_FAILED",
    });
  }
  assert.throws(() => openManifest(keys, "m-bad", sealed.bytes), {
    code: "INVALID_INPUT",
  });
  assert.throws(() => sealManifest(keys, { ...m, head: 0 }), {
    code: "INVALID_INPUT",
  });
  const text = new TextDecoder("latin1").decode(sealed.bytes);
  assert.ok(!text.includes("dev1"));
});
