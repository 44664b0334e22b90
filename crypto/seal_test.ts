import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { toHex } from "./_bytes.ts";
import { generateDataKey, importDataKey } from "./data_key.ts";
import { importSealingKey, MAX_SEALS_PER_KEY } from "./seal.ts";

const AAD = "messages|content|42|v1";

async function newSealer(options = {}) {
  return await importSealingKey(
    crypto.getRandomValues(new Uint8Array(32)),
    options,
  );
}

async function assertAuthFailed(p: Promise<unknown>): Promise<void> {
  let value: unknown = "no error";
  try {
    value = await p;
  } catch (err) {
    assert.ok(
      isAicoDataError(err, "AUTH_FAILED"),
      `expected AUTH_FAILED, got ${err}`,
    );
    return;
  }
  assert.fail(`expected AUTH_FAILED, the value opened to ${String(value)}`);
}

Deno.test("Sealer round-trips bytes, text, empty and large values", async () => {
  const s = await newSealer();
  for (
    const pt of [
      new Uint8Array(0),
      new Uint8Array([0]),
      crypto.getRandomValues(new Uint8Array(256)),
      new Uint8Array(1 << 20).fill(7),
    ]
  ) {
    const sealed = await s.seal(pt, AAD);
    assert.equal(sealed.length, pt.length + 29);
    assert.equal(sealed[0], 1);
    assert.deepEqual(await s.open(sealed, AAD), pt);
  }
  const text = "café 🌱 e\u0301 \u0000 end";
  assert.equal(await s.openText(await s.seal(text, AAD), AAD), text);
});

Deno.test("Sealer gives AUTH_FAILED for every flipped byte of a sealed value", async () => {
  const s = await newSealer();
  const sealed = await s.seal(crypto.getRandomValues(new Uint8Array(64)), AAD);
  for (let i = 0; i < sealed.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const bad = sealed.slice();
      bad[i]! ^= mask;
      await assertAuthFailed(s.open(bad, AAD));
    }
  }
});

Deno.test("Sealer gives AUTH_FAILED for a value truncated at each length or extended", async () => {
  const s = await newSealer();
  const sealed = await s.seal("truncate me, please", AAD);
  for (let n = 0; n < sealed.length; n++) {
    await assertAuthFailed(s.open(sealed.subarray(0, n), AAD));
  }
  const longer = new Uint8Array(sealed.length + 1);
  longer.set(sealed);
  await assertAuthFailed(s.open(longer, AAD));
});

Deno.test("Sealer gives AUTH_FAILED for changed, missing or added associated data", async () => {
  const s = await newSealer();
  const sealed = await s.seal("bound", AAD);
  await assertAuthFailed(s.open(sealed, "messages|content|43|v1"));
  await assertAuthFailed(s.open(sealed));
  await assertAuthFailed(s.open(sealed, ""));
  await assertAuthFailed(s.open(sealed, AAD + " "));
  const noAad = await s.seal("unbound");
  await assertAuthFailed(s.open(noAad, AAD));
  assert.equal(await s.openText(noAad), "unbound");
});

Deno.test("Sealer gives AUTH_FAILED under another key", async () => {
  const a = await newSealer();
  const b = await newSealer();
  await assertAuthFailed(b.open(await a.seal("x", AAD), AAD));
});

Deno.test("Sealer refuses a string with a lone surrogate with INVALID_INPUT", async () => {
  const s = await newSealer();
  await assert.rejects(s.seal("bad \uD800 text", AAD), {
    code: "INVALID_INPUT",
  });
  await assert.rejects(s.seal("ok", "bad \uDC00 aad"), {
    code: "INVALID_INPUT",
  });
  assert.equal(s.sealCount, 0);
});

Deno.test("Sealer.openText gives CORRUPT_VALUE for plaintext that is not UTF-8", async () => {
  const s = await newSealer();
  const sealed = await s.seal(new Uint8Array([0x41, 0xff, 0x42]), AAD);
  await assert.rejects(s.openText(sealed, AAD), { code: "CORRUPT_VALUE" });
});

Deno.test("importSealingKey refuses keys that are not 32 bytes", async () => {
  for (const n of [0, 16, 24, 31, 33, 64]) {
    await assert.rejects(importSealingKey(new Uint8Array(n)), {
      code: "INVALID_INPUT",
    });
  }
});

Deno.test("Sealer enforces its seal budget", async (t) => {
  await t.step("a single seal past the budget is refused", async () => {
    const s = await newSealer({ maxSeals: 3 });
    for (let i = 0; i < 3; i++) await s.seal("x", AAD);
    await assert.rejects(s.seal("x", AAD), { code: "NONCE_BUDGET_EXHAUSTED" });
    assert.equal(s.sealCount, 3);
  });
  await t.step(
    "a batch that would cross the budget seals nothing",
    async () => {
      const s = await newSealer({ maxSeals: 10 });
      await s.sealBatch(Array.from({ length: 8 }, () => ({ plaintext: "x" })));
      await assert.rejects(
        s.sealBatch(Array.from({ length: 3 }, () => ({ plaintext: "x" }))),
        { code: "NONCE_BUDGET_EXHAUSTED" },
      );
      assert.equal(s.sealCount, 8);
      await s.sealBatch([{ plaintext: "y" }, { plaintext: "z" }]);
      assert.equal(s.sealCount, 10);
    },
  );
  await t.step(
    "the default budget is NIST's 2^32 and counts from initialSealCount",
    async () => {
      const s = await newSealer({ initialSealCount: MAX_SEALS_PER_KEY - 1 });
      assert.equal(s.maxSeals, 2 ** 32);
      await s.seal("last", AAD);
      await assert.rejects(s.seal("one too many", AAD), {
        code: "NONCE_BUDGET_EXHAUSTED",
      });
    },
  );
  await t.step("a budget above 2^32 is refused", async () => {
    await assert.rejects(newSealer({ maxSeals: 2 ** 32 + 1 }), RangeError);
  });
});

Deno.test("Sealer batch API round-trips in order and fails as a whole on a bad value", async () => {
  const s = await newSealer();
  const items = Array.from({ length: 1000 }, (_, i) => ({
    plaintext: `message ${i}`,
    aad: `messages|content|${i}`,
  }));
  const sealed = await s.sealBatch(items);
  const opened = await s.openBatch(
    sealed.map((v, i) => ({ sealed: v, aad: items[i]!.aad })),
  );
  assert.deepEqual(
    opened.map((b) => new TextDecoder().decode(b)),
    items.map((i) => i.plaintext),
  );
  const swapped = sealed.map((v, i) => ({
    sealed: v,
    aad: items[(i + 1) % 1000]!.aad,
  }));
  await assertAuthFailed(s.openBatch(swapped));
});

Deno.test("10^6 seals produce no repeated nonce", async () => {
  const s = await newSealer();
  const seen = new Set<string>();
  const chunk = Array.from(
    { length: 50_000 },
    () => ({ plaintext: new Uint8Array(0) }),
  );
  for (let round = 0; round < 20; round++) {
    for (const v of await s.sealBatch(chunk)) {
      seen.add(toHex(v.subarray(1, 13)));
    }
  }
  assert.equal(s.sealCount, 1_000_000);
  assert.equal(seen.size, 1_000_000);
});

Deno.test("DataKey derives distinct purpose keys and one sealer per purpose", async () => {
  const dek = generateDataKey();
  const key = await importDataKey(dek);
  const again = await importDataKey(dek);
  assert.equal(key.keyId, again.keyId);
  const raws = await Promise.all(
    (["libsql-page", "field-aead", "cache", "vector-doc", "export"] as const)
      .map((p) => key.purposeKeyBytes(p)),
  );
  assert.equal(new Set(raws.map(toHex)).size, 5);
  assert.deepEqual(await again.purposeKeyBytes("cache"), raws[2]);
  assert.ok(!raws.some((r) => toHex(r) === toHex(dek)));
  const s1 = await key.sealer("field-aead");
  assert.equal(await key.sealer("field-aead"), s1);
  const sealed = await s1.seal("x", AAD);
  assert.equal(
    await (await again.sealer("field-aead")).openText(sealed, AAD),
    "x",
  );
  await assertAuthFailed((await key.sealer("vector-doc")).open(sealed, AAD));
  // deno-lint-ignore no-explicit-any
  await assert.rejects(key.sealer("libsql-page" as any), {
    code: "INVALID_INPUT",
  });
  await assert.rejects(importDataKey(new Uint8Array(16)), {
    code: "INVALID_INPUT",
  });
  assert.equal(JSON.stringify(key), JSON.stringify({ keyId: key.keyId }));
});
