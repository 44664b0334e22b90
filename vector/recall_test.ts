import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { withDir } from "../tests/_helpers.ts";
import { clusters, exactTopK, norms } from "./_clustered_test_data.ts";
import { openEmbeddedVectorStore } from "./embedded_store.ts";

Deno.test("the embedded index reaches recall@10 >= 0.95 against exact search on 20k clustered 512-d vectors", async () => {
  await withDir(async (dir) => {
    const N = 20_000;
    const data = clusters(512, 200);
    const points = Array.from({ length: N }, (_, i) => data.point(i));
    const ns = norms(points);
    await using db = await openStorage(`${dir}/user.db`, {
      key: await importDataKey(generateDataKey()),
    });
    {
      await using store = await openEmbeddedVectorStore(db, {
        name: "recall",
        embedderId: "synthetic",
        dimensions: 512,
      });
      for (let i = 0; i < N; i += 5000) {
        await store.upsert(
          points.slice(i, i + 5000).map((vector, j) => ({
            id: String(i + j),
            vector,
            metadata: { half: Math.floor((i + j) / 200) % 2 },
          })),
        );
      }
    }
    // After a reopen, so that the index is the one rebuilt from the database.
    await using store = await openEmbeddedVectorStore(db, {
      name: "recall",
      embedderId: "synthetic",
      dimensions: 512,
    });
    let found = 0;
    let filteredFound = 0;
    const Q = 40;
    for (let qi = 0; qi < Q; qi++) {
      const q = data.query(qi);
      const exact = exactTopK(points, ns, q, 10).map(String);
      const hits = await store.query({ vector: q, k: 10 });
      const got = new Set(hits.map((h) => h.id));
      found += exact.filter((id) => got.has(id)).length;
      // With a filter, against exact search on the matching records only.
      const half = qi % 2;
      const even = points.map((_, i) => i).filter((i) =>
        Math.floor(i / 200) % 2 === half
      );
      const exactF = exactTopK(
        even.map((i) => points[i]!),
        Float64Array.from(even, (i) => ns[i]!),
        q,
        10,
      ).map((j) => String(even[j]!));
      const hitsF = await store.query({ vector: q, k: 10, filter: { half } });
      const gotF = new Set(hitsF.map((h) => h.id));
      filteredFound += exactF.filter((id) => gotF.has(id)).length;
      const exactScore = hits[0]!.score;
      assert.ok(exactScore <= 1 + 1e-6);
    }
    const recall = found / (Q * 10);
    const recallF = filteredFound / (Q * 10);
    assert.ok(recall >= 0.95, `recall@10 ${recall}`);
    assert.ok(recallF >= 0.95, `filtered recall@10 ${recallF}`);
  }, "aico_recall_");
});
