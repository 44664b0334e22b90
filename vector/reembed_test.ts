import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { openEmbeddedVectorStore } from "./embedded_store.ts";
import { newVector, oldVector } from "./_reembed_fixture.ts";

const N = 200;
const OLD = { name: "memory", embedderId: "old-4", dimensions: 4 } as const;
const NEW = { name: "memory", embedderId: "new-6", dimensions: 6 } as const;
const newEmbedder = {
  id: "new-6",
  dimensions: 6,
  embed: (texts: readonly string[]) => Promise.resolve(texts.map(newVector)),
};

function seed() {
  return Array.from({ length: N }, (_, i) => ({
    id: `r${i}`,
    vector: oldVector(i),
    metadata: { n: i },
    document: `doc ${i}`,
  }));
}

Deno.test("reembed() killed with SIGKILL leaves the old collection whole and a rerun finishes it", async () => {
  await withDir(async (dir) => {
    const dek = generateDataKey();
    const key = await importDataKey(dek);
    const path = `${dir}/user.db`;
    {
      await using db = await openStorage(path, { key });
      await using store = await openEmbeddedVectorStore(db, OLD);
      await store.upsert(seed());
    }
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_reembed_child.ts", import.meta.url).href,
        path,
        Array.from(dek, (b) => b.toString(16).padStart(2, "0")).join(""),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let steps = 0;
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      steps += (dec.decode(chunk).match(/step/g) ?? []).length;
      if (steps >= 3) break;
    }
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
    assert.ok(steps >= 3);

    await using db = await openStorage(path, { key });
    {
      await using old = await openEmbeddedVectorStore(db, OLD);
      assert.equal(await old.count(), N);
      assert.equal(
        (await old.query({ vector: oldVector(7), k: 1 }))[0]?.id,
        "r7",
      );
      const shadow = await db.execute(
        "SELECT count(*) AS n FROM vector_collections WHERE state = 'shadow'",
      );
      assert.equal(Number(shadow.rows[0]!.n), 1);
    }
    await rejectsWith(openEmbeddedVectorStore(db, NEW), "EMBEDDER_MISMATCH");
    {
      await using store = await openEmbeddedVectorStore(db, OLD);
      const report = await store.reembed(newEmbedder, { batchSize: 50 });
      assert.equal(report.resumed, true);
      assert.equal(report.total, N);
      assert.ok(report.embedded < N, `embedded ${report.embedded}`);
      assert.deepEqual(store.info, { ...NEW, metric: "cosine" });
      assert.equal(await store.count(), N);
      const hit = (await store.query({
        vector: newVector("doc 42"),
        k: 1,
        includeDocuments: true,
      }))[0];
      assert.equal(hit?.id, "r42");
      assert.equal(hit?.document, "doc 42");
      assert.deepEqual(hit?.metadata, { n: 42 });
    }
    await rejectsWith(openEmbeddedVectorStore(db, OLD), "EMBEDDER_MISMATCH");
    await using again = await openEmbeddedVectorStore(db, NEW);
    assert.equal(await again.count(), N);
    const left = await db.execute(
      "SELECT count(*) AS n FROM vector_collections WHERE name = 'memory'",
    );
    assert.equal(Number(left.rows[0]!.n), 1);
  }, "aico_reembed_");
});

Deno.test("reembed() carries over upserts and deletes made while it runs, and an abort keeps the old collection", async () => {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/user.db`, { key });
    await using store = await openEmbeddedVectorStore(db, OLD);
    await store.upsert(seed());
    const ac = new AbortController();
    let calls = 0;
    await rejectsWith(
      store.reembed(
        newEmbedder.embed.length >= 0
          ? {
            ...newEmbedder,
            embed: (texts) => {
              if (++calls === 3) ac.abort();
              return newEmbedder.embed(texts);
            },
          }
          : newEmbedder,
        { batchSize: 20, signal: ac.signal },
      ),
      "ABORTED",
    );
    assert.deepEqual(store.info, { ...OLD, metric: "cosine" });
    assert.equal(await store.count(), N);
    calls = 0;
    const report = await store.reembed({
      ...newEmbedder,
      async embed(texts) {
        if (++calls === 1) {
          // Meanwhile: one record replaced (new document), one deleted, one added.
          await store.upsert([
            {
              id: "r150",
              vector: oldVector(150),
              metadata: { n: 150 },
              document: "doc 7",
            },
            {
              id: "added",
              vector: oldVector(3),
              metadata: { n: -1 },
              document: "doc 199",
            },
          ]);
          await store.delete(["r5"]);
        }
        return await newEmbedder.embed(texts);
      },
    }, { batchSize: 20 });
    assert.equal(report.resumed, true);
    assert.equal(report.total, N);
    assert.equal(store.info.embedderId, "new-6");
    assert.equal(await store.count(), N);
    const top = await store.query({ vector: newVector("doc 7"), k: 2 });
    assert.deepEqual(top.map((h) => h.id).sort(), ["r150", "r7"]);
    assert.equal(await store.count({ n: -1 }), 1);
    assert.equal(await store.count({ n: 5 }), 0);
    const again = await store.reembed(newEmbedder);
    assert.deepEqual(again, { embedded: 0, total: N, resumed: false });
  }, "aico_reembed_");
});

Deno.test("reembed() with an embedder refuses records without document and takes a function for them", async () => {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/user.db`, { key });
    await using store = await openEmbeddedVectorStore(db, OLD);
    await store.upsert([{ id: "a", vector: oldVector(1) }, {
      id: "b",
      vector: oldVector(2),
      document: "doc 2",
    }]);
    await rejectsWith(store.reembed(newEmbedder), "INVALID_INPUT");
    assert.equal(store.info.embedderId, "old-4");
    await rejectsWith(
      store.reembed(() => Promise.resolve([])),
      "INVALID_INPUT",
    );
    const report = await store.reembed(
      (items) =>
        Promise.resolve(items.map((it) => newVector(it.document ?? "doc 1"))),
      { embedderId: "new-6", dimensions: 6 },
    );
    assert.equal(report.total, 2);
    assert.equal(
      (await store.query({ vector: newVector("doc 1"), k: 1 }))[0]?.id,
      "a",
    );
  }, "aico_reembed_");
});
