import assert from "node:assert/strict";
import {
  openUseLiteEmbedder,
  resolveUseLiteEmbedderOptions,
} from "./use_lite_embedder.ts";
import { rejectsWith } from "../../tests/_helpers.ts";

const dot = (a: Float32Array, b: Float32Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

Deno.test("resolveUseLiteEmbedderOptions() fills defaults and refuses bad values", () => {
  const d = resolveUseLiteEmbedderOptions();
  assert.ok(d.workers >= 1 && d.workers <= 2);
  assert.equal(d.batchSize, 32);
  assert.equal(d.maxTokens, 128);
  assert.equal(d.cacheSize, 1024);
  for (
    const bad of [
      { workers: -1 },
      { workers: 1.5 },
      { batchSize: 0 },
      { maxTokens: 0 },
      { cacheSize: -1 },
      { signal: "x" },
    ]
  ) {
    assert.throws(
      () => resolveUseLiteEmbedderOptions(bad as never),
      (e: unknown) => (e as { code?: string }).code === "INVALID_INPUT",
    );
  }
});

Deno.test("USE-lite on the calling thread embeds in order, normalised, blank texts as zero vectors", async () => {
  await using e = await openUseLiteEmbedder({ workers: 0, batchSize: 2 });
  assert.equal(e.id, "use-lite-512");
  assert.equal(e.dimensions, 512);
  const texts = [
    "The cat sleeps on the sofa",
    "",
    "A kitten is napping on the couch",
    "   ",
    "Quarterly tax return deadline for the company",
    "The cat sleeps on the sofa",
  ];
  const v = await e.embed(texts);
  assert.equal(v.length, texts.length);
  for (const i of [0, 2, 4, 5]) {
    assert.equal(v[i]!.length, 512);
    assert.ok(Math.abs(dot(v[i]!, v[i]!) - 1) < 1e-4);
  }
  assert.ok(v[1]!.every((x) => x === 0));
  assert.ok(v[3]!.every((x) => x === 0));
  assert.deepEqual(v[5], v[0]);
  assert.notEqual(v[5], v[0], "duplicates get their own arrays");
  assert.ok(dot(v[0]!, v[2]!) > dot(v[0]!, v[4]!));
  // Batching and sorting do not change a text's vector.
  const [alone] = await e.embed(["A kitten is napping on the couch"]);
  for (let i = 0; i < 512; i++) {
    assert.ok(Math.abs(alone![i]! - v[2]![i]!) < 1e-4);
  }
  assert.deepEqual(await e.embed([]), []);
});

Deno.test("USE-lite in two workers gives the same vectors as on the calling thread", async () => {
  await using inThread = await openUseLiteEmbedder({ workers: 0 });
  await using pooled = await openUseLiteEmbedder({ workers: 2, batchSize: 3 });
  const texts = Array.from(
    { length: 20 },
    (_, i) =>
      `Message number ${i} about ${i % 2 ? "holidays in Spain" : "the budget"}`,
  );
  const a = await inThread.embed(texts);
  const b = await pooled.embed(texts);
  for (let t = 0; t < texts.length; t++) {
    assert.ok(dot(a[t]!, b[t]!) > 0.9999, `text ${t}`);
  }
});

Deno.test("USE-lite embed() refuses bad input, honours abort and close", async () => {
  const e = await openUseLiteEmbedder({ workers: 1 });
  await rejectsWith(() => e.embed("text" as never), "INVALID_INPUT");
  await rejectsWith(() => e.embed([1] as never), "INVALID_INPUT");
  const ac = new AbortController();
  ac.abort();
  await rejectsWith(() => e.embed(["a"], { signal: ac.signal }), "ABORTED");
  const ac2 = new AbortController();
  const p = e.embed(
    Array.from({ length: 400 }, (_, i) => `text ${i} of a long list`),
    { signal: ac2.signal },
  );
  ac2.abort();
  await rejectsWith(() => p, "ABORTED");
  await e.close();
  await e.close();
  assert.equal(e.closed, true);
  await rejectsWith(() => e.embed(["a"]), "STORE_CLOSED");
});

Deno.test("openUseLiteEmbedder() rejects an aborted signal with ABORTED", async () => {
  const ac = new AbortController();
  ac.abort();
  await rejectsWith(
    () => openUseLiteEmbedder({ workers: 0, signal: ac.signal }),
    "ABORTED",
  );
});
