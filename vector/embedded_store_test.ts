import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import type { DataKey } from "../crypto/mod.ts";
import { openStorage, type Storage } from "../storage/mod.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { coreSchema } from "../repositories/mod.ts";
import { runConformance } from "./_conformance.ts";
import { scanFor } from "../tests/_scan.ts";
import {
  openEmbeddedVectorStore,
  resolveEmbeddedVectorStoreOptions,
  vectorSchema,
} from "./embedded_store.ts";

async function withStorage(
  fn: (
    ctx: {
      storage: () => Storage;
      reopen: () => Promise<Storage>;
      dir: string;
      key: DataKey;
    },
  ) => Promise<void>,
): Promise<void> {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    let storage = await openStorage(`${dir}/user.db`, { key });
    try {
      await fn({
        storage: () => storage,
        reopen: async () => {
          await storage.close();
          storage = await openStorage(`${dir}/user.db`, { key });
          return storage;
        },
        dir,
        key,
      });
    } finally {
      await storage.close();
    }
  }, "aico_vec_");
}

Deno.test("the embedded store passes the conformance suite", async (t) => {
  await withStorage(async (ctx) => {
    const open = new Set<{ close(): Promise<void> }>();
    await runConformance(t, {
      async open(o) {
        const store = await openEmbeddedVectorStore(ctx.storage(), {
          name: o.collection,
          embedderId: o.embedderId,
          dimensions: o.dimensions,
          ...(o.metric === undefined ? {} : { metric: o.metric }),
        });
        open.add(store);
        return store;
      },
      async restart() {
        for (const s of open) await s.close();
        open.clear();
        await ctx.reopen();
      },
    });
  });
});

Deno.test("resolveEmbeddedVectorStoreOptions() fills defaults and refuses bad values", () => {
  const base = { name: "memory", embedderId: "m", dimensions: 4 };
  const o = resolveEmbeddedVectorStoreOptions(base);
  assert.deepEqual({ ...o }, {
    ...base,
    metric: "cosine",
    create: true,
    shortlist: 200,
    signal: undefined,
  });
  assert.ok(Object.isFrozen(o));
  const bad: unknown[] = [
    { ...base, name: "ab" },
    { ...base, name: "a b c" },
    { ...base, embedderId: "" },
    { ...base, dimensions: 0 },
    { ...base, dimensions: 2.5 },
    { ...base, metric: "hamming" },
    { ...base, shortlist: 1 },
    { ...base, create: "yes" },
    { ...base, signal: {} },
    null,
  ];
  for (const b of bad) {
    assert.throws(
      () => resolveEmbeddedVectorStoreOptions(b as typeof base),
      (e: unknown) => (e as { code?: string }).code === "INVALID_INPUT",
    );
  }
});

Deno.test("openEmbeddedVectorStore() with create: false gives NOT_FOUND and a second open gives BUSY", async () => {
  await withStorage(async (ctx) => {
    await rejectsWith(
      openEmbeddedVectorStore(ctx.storage(), {
        name: "nope",
        embedderId: "m",
        dimensions: 4,
        create: false,
      }),
      "NOT_FOUND",
    );
    await using _a = await openEmbeddedVectorStore(ctx.storage(), {
      name: "memory",
      embedderId: "m",
      dimensions: 4,
    });
    await rejectsWith(
      openEmbeddedVectorStore(ctx.storage(), {
        name: "memory",
        embedderId: "m",
        dimensions: 4,
      }),
      "BUSY",
    );
  });
});

Deno.test("the data folder holds no plaintext document, metadata or raw float vector", async () => {
  await withStorage(async (ctx) => {
    const marker = `MARKER-${crypto.randomUUID()}`;
    const vectors = Array.from(
      { length: 40 },
      (_, i) =>
        Float32Array.from(
          { length: 64 },
          (_, j) => Math.sin(i * 64 + j) * 3.7 + 0.01 * i,
        ),
    );
    {
      await using store = await openEmbeddedVectorStore(ctx.storage(), {
        name: "marker",
        embedderId: "m",
        dimensions: 64,
      });
      await store.upsert(vectors.map((v, i) => ({
        id: `${marker}-id-${i}`,
        vector: v,
        metadata: { note: `${marker} note ${i}` },
        document: `${marker} document ${i}`,
      })));
      await store.delete([`${marker}-id-0`]);
      const hits = await store.query({
        vector: vectors[5]!,
        k: 1,
        includeDocuments: true,
      });
      assert.equal(hits[0]?.document, `${marker} document 5`);
      // While open (WAL and all).
      const raw = vectors.map((v) => new Uint8Array(v.buffer.slice(0, 32)));
      const open = await scanFor(ctx.dir, [marker, ...raw]);
      assert.ok(open.files >= 1);
      for (const [k, n] of Object.entries(open.hits)) assert.equal(n, 0, k);
    }
    await ctx.storage().close();
    const raw = vectors.map((v) => new Uint8Array(v.buffer.slice(0, 32)));
    const closed = await scanFor(ctx.dir, [marker, ...raw]);
    for (const [k, n] of Object.entries(closed.hits)) assert.equal(n, 0, k);
    // The control: the scan finds a pattern that is there.
    await Deno.writeFile(`${ctx.dir}/control.bin`, raw[3]!);
    assert.equal((await scanFor(ctx.dir, [raw[3]!])).hits.bytes0, 1);
    await Deno.remove(`${ctx.dir}/control.bin`);
  });
});

Deno.test("the vector schema migrates beside the core schema, from the composition root or from open", async () => {
  await withStorage(async (ctx) => {
    {
      await using migrator = await openMigrator(
        ctx.storage(),
        createSchemaRegistry([coreSchema]),
      );
      await migrator.migrate();
    }
    // open() applies the vector schema to a database that has only core.
    {
      await using store = await openEmbeddedVectorStore(ctx.storage(), {
        name: "memory",
        embedderId: "m",
        dimensions: 2,
      });
      await store.upsert([{ id: "a", vector: [1, 0] }]);
    }
    // A registry of both, as the composition root builds it, has nothing pending.
    await using migrator = await openMigrator(
      ctx.storage(),
      createSchemaRegistry([coreSchema, vectorSchema]),
    );
    const plan = await migrator.plan();
    assert.deepEqual(plan.map((p) => [p.schema, p.pending.length]), [[
      "core",
      0,
    ], ["vector", 0]]);
    await using store = await openEmbeddedVectorStore(ctx.storage(), {
      name: "memory",
      embedderId: "m",
      dimensions: 2,
    });
    assert.equal(await store.count(), 1);
  });
});

/** Deterministic pseudo-random vectors around a few centres (non-zero mean). */
function lcgVectors(n: number, d: number, seed: number): Float32Array[] {
  let x = seed >>> 0;
  const r = () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const centres = Array.from(
    { length: 16 },
    () => Float32Array.from({ length: d }, () => r() + 0.3),
  );
  return Array.from({ length: n }, (_, i) => {
    const c = centres[i % 16]!;
    return Float32Array.from({ length: d }, (_, j) => c[j]! + 0.5 * r());
  });
}

Deno.test("a reopened large collection answers at once, the same as fully loaded, while its vectors load behind", async () => {
  await withStorage(async (ctx) => {
    const d = 64;
    const vectors = lcgVectors(11_000, d, 7);
    const queries = lcgVectors(20, d, 99);
    const opts = { name: "memory", embedderId: "m", dimensions: d };
    const expected: string[][] = [];
    {
      await using store = await openEmbeddedVectorStore(ctx.storage(), opts);
      // The centre is fixed at the second upsert: later segments keep codes.
      const batches: [number, number][] = [[0, 5000], [5000, 8000], [
        8000,
        11_000,
      ]];
      for (const [from, to] of batches) {
        await store.upsert(
          vectors.slice(from, to).map((v, j) => ({
            id: `r${from + j}`,
            vector: v,
            metadata: { even: (from + j) % 2 === 0 },
          })),
        );
      }
      for (const q of queries) {
        expected.push(
          (await store.query({ vector: q, k: 10 })).map((h) =>
            `${h.id}:${h.score.toFixed(5)}`
          ),
        );
      }
    }
    // Fixing the centre wrote the codes of the segments stored before it.
    const noCodes = await ctx.storage().execute(
      "SELECT count(*) AS n FROM vector_segments WHERE codes IS NULL",
    );
    assert.equal(Number(noCodes.rows[0]!.n), 0);
    const storage = await ctx.reopen();
    await using store = await openEmbeddedVectorStore(storage, opts);
    const state = await Promise.race([
      store.whenLoaded().then(() => "loaded"),
      Promise.resolve("loading"),
    ]);
    assert.equal(state, "loading", "open returns before every vector is read");
    // Metadata (parsed on first use) answers filters and hits.
    assert.equal(await store.count({ even: true }), 5500);
    const filtered = await store.query({
      vector: queries[0]!,
      k: 5,
      filter: { even: false },
    });
    assert.equal(filtered.length, 5);
    for (const h of filtered) {
      assert.equal(h.metadata.even, false);
      assert.equal(Number(h.id.slice(1)) % 2, 1);
    }
    // Queries at once give what the fully loaded index gave.
    for (let i = 0; i < queries.length; i++) {
      const hits = await store.query({ vector: queries[i]!, k: 10 });
      assert.deepEqual(
        hits.map((h) => `${h.id}:${h.score.toFixed(5)}`),
        expected[i],
      );
    }
    // Writes while loading: a delete, a replaced and a new record.
    await store.delete(["r10999", "r6000"]);
    await store.upsert([
      { id: "r9000", vector: queries[0]!, metadata: { even: true } },
      { id: "new", vector: queries[1]! },
    ]);
    await store.whenLoaded();
    assert.equal(await store.count(), 10_999);
    const [top0] = await store.query({ vector: queries[0]!, k: 1 });
    assert.equal(top0!.id, "r9000");
    assert.ok(top0!.score > 0.9999);
    const [top1] = await store.query({ vector: queries[1]!, k: 1 });
    assert.equal(top1!.id, "new");
    // The same answers as a store that read everything before its queries.
    const after: string[][] = [];
    for (const q of queries) {
      after.push(
        (await store.query({ vector: q, k: 10 })).map((h) =>
          `${h.id}:${h.score.toFixed(5)}`
        ),
      );
    }
    await store.close();
    // A store closed while its vectors load stops the load before close
    // returns (the caller may close the storage next).
    {
      const loading = await openEmbeddedVectorStore(storage, opts);
      let stopped = false;
      void loading.whenLoaded().then(() => stopped = true);
      await loading.close();
      await Promise.resolve();
      assert.ok(stopped, "the background load is over when close() returns");
    }
    await using again = await openEmbeddedVectorStore(storage, opts);
    await again.whenLoaded();
    for (let i = 0; i < queries.length; i++) {
      const hits = await again.query({ vector: queries[i]!, k: 10 });
      assert.deepEqual(
        hits.map((h) => `${h.id}:${h.score.toFixed(5)}`),
        after[i],
      );
    }
  });
});

Deno.test("vector schema 2 keeps the vectors apart and reverts to 1 with every record", async () => {
  await withStorage(async (ctx) => {
    const d = 16;
    const vectors = lcgVectors(300, d, 3);
    const opts = { name: "memory", embedderId: "m", dimensions: d };
    {
      await using store = await openEmbeddedVectorStore(ctx.storage(), opts);
      await store.upsert(vectors.map((v, i) => ({ id: `r${i}`, vector: v })));
    }
    const quantRows = await ctx.storage().execute(
      "SELECT count(*) AS n FROM vector_quant",
    );
    assert.equal(Number(quantRows.rows[0]!.n), 3, "300 records, 3 segments");
    {
      await using migrator = await openMigrator(
        ctx.storage(),
        createSchemaRegistry([vectorSchema]),
      );
      await migrator.migrateTo("vector", 1);
    }
    const gone = await ctx.storage().execute(
      "SELECT count(*) AS n FROM sqlite_master WHERE name = 'vector_quant'",
    );
    assert.equal(Number(gone.rows[0]!.n), 0);
    const v1 = await ctx.storage().execute(
      "SELECT typeof(ids) AS t, length(quant) AS q, n FROM vector_segments LIMIT 1",
    );
    assert.equal(v1.rows[0]!.t, "text");
    assert.equal(Number(v1.rows[0]!.q), Number(v1.rows[0]!.n) * (4 + 2 * d));
    // Open migrates up again; every record is found where it was.
    await using store = await openEmbeddedVectorStore(ctx.storage(), opts);
    assert.equal(await store.count(), 300);
    for (const i of [0, 150, 299]) {
      const [hit] = await store.query({ vector: vectors[i]!, k: 1 });
      assert.equal(hit!.id, `r${i}`);
    }
  });
});
