import assert from "node:assert/strict";
import { clusters, exactTopK, norms } from "./_clustered_test_data.ts";
import { quantize, shortlistFor, VectorIndex } from "./_index.ts";

Deno.test("the two-stage scan of large collections keeps recall@10 >= 0.95 and agrees with removals", () => {
  const N = 60_000;
  const D = 512;
  const data = clusters(D, 600);
  const points = Array.from({ length: N }, (_, i) => data.point(i));
  const ns = norms(points);
  const index = new VectorIndex(D, "cosine");
  for (let i = 0; i < N; i++) {
    index.add({
      id: `m${i}`,
      row: 0,
      norm: ns[i]!,
      quant: quantize(points[i]!, 1 / ns[i]!),
      metadata: {},
    }, true);
  }
  index.finishLoad();
  const unit = (q: Float32Array) => {
    const n = Math.hypot(...q);
    return q.map((x) => x / n);
  };
  let found = 0;
  const Q = 30;
  for (let i = 0; i < Q; i++) {
    const q = data.query(i);
    const want = new Set(exactTopK(points, ns, q, 10).map((j) => `m${j}`));
    const hits = index.search(
      unit(q),
      shortlistFor(N, 200, 10, false),
      10,
      undefined,
    );
    assert.equal(hits.length, 10);
    found += hits.filter((h) => want.has(h.id)).length;
  }
  assert.ok(found / (Q * 10) >= 0.95, `recall@10 ${found / (Q * 10)}`);
  // Removed records never come back (the prefix copy follows the codes).
  const q = unit(data.query(0));
  const first = index.search(q, 200, 10, undefined);
  for (const h of first) index.remove(h.id);
  const again = index.search(q, 200, 10, undefined);
  const removed = new Set(first.map((h) => h.id));
  assert.ok(again.every((h) => !removed.has(h.id)));
  assert.equal(index.size, N - 10);
});
