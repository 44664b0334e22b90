// Internal, for tests: the conformance suite every VectorStore backend
// passes (vector/embedded_store_test.ts, vector/chroma_store_test.ts).
import assert from "node:assert/strict";
import { type AicoDataErrorCode, isAicoDataError } from "../errors.ts";
import type {
  Metadata,
  MetadataFilter,
  VectorMetric,
  VectorRecord,
  VectorStore,
} from "./types.ts";

/** What the suite needs from a backend. */
export interface ConformanceBackend {
  /**
   * Opens (or creates) a collection. Metadata fields `role`, `n`, `flag`
   * and `tag` must be filterable; `secret` must not be needed in filters.
   */
  open(options: {
    readonly collection: string;
    readonly embedderId: string;
    readonly dimensions: number;
    readonly metric?: VectorMetric;
  }): Promise<VectorStore>;
  /** Closes and reopens whatever holds the data (database, server). */
  restart(): Promise<void>;
}

async function rejects(
  work: () => Promise<unknown>,
  code: AicoDataErrorCode,
): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(isAicoDataError(err), `expected AicoDataError, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

const D = 8;
const ROLES = ["user", "assistant", "system"] as const;

/** A deterministic unit-ish vector for record i (distinct directions). */
function vec(i: number, dims = D): Float32Array {
  const v = new Float32Array(dims);
  for (let j = 0; j < dims; j++) {
    v[j] = Math.sin((i + 1) * (j + 1) * 0.7) + (j === i % dims ? 2 : 0);
  }
  return v;
}

function records(n: number): VectorRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    vector: vec(i),
    metadata: {
      role: ROLES[i % 3]!,
      n: i,
      flag: i % 2 === 0,
      tag: `t${i % 4}`,
      secret: `s${i}`,
    },
    document: `document ${i}`,
  }));
}

function expected(n: number, pred: (m: Metadata) => boolean): string[] {
  return records(n).filter((r) => pred(r.metadata!)).map((r) => r.id).sort();
}

async function ids(
  store: VectorStore,
  filter: MetadataFilter,
): Promise<string[]> {
  const hits = await store.query({ vector: vec(0), k: 100, filter });
  return hits.map((h) => h.id).sort();
}

/**
 * Runs the shared cases as steps of `t`.
 *
 * @param t The test context.
 * @param backend The backend under test.
 */
export async function runConformance(
  t: Deno.TestContext,
  backend: ConformanceBackend,
): Promise<void> {
  let serial = 0;
  const open = (
    extra: Partial<
      { embedderId: string; dimensions: number; metric: VectorMetric }
    > = {},
    collection?: string,
  ) =>
    backend.open({
      collection: collection ?? `conf-${++serial}`,
      embedderId: extra.embedderId ?? "conformance-8",
      dimensions: extra.dimensions ?? D,
      ...(extra.metric === undefined ? {} : { metric: extra.metric }),
    });

  await t.step("upsert, query, count and delete hold", async () => {
    await using store = await open();
    assert.equal(await store.count(), 0);
    assert.deepEqual(await store.query({ vector: vec(0), k: 3 }), []);
    await store.upsert(records(12));
    assert.equal(await store.count(), 12);
    for (const i of [0, 5, 11]) {
      const hits = await store.query({ vector: vec(i), k: 3 });
      assert.equal(hits.length, 3);
      assert.equal(hits[0]!.id, `r${i}`);
      assert.ok(Math.abs(hits[0]!.score - 1) < 0.02, `score ${hits[0]!.score}`);
      assert.ok(hits[0]!.score >= hits[1]!.score);
      assert.ok(hits[1]!.score >= hits[2]!.score);
      assert.equal(hits[0]!.document, undefined);
      assert.deepEqual(hits[0]!.metadata, records(12)[i]!.metadata);
    }
    assert.equal(await store.delete(["r0", "r1", "nope"]), 2);
    assert.equal(await store.count(), 10);
    const hits = await store.query({ vector: vec(0), k: 20 });
    assert.equal(hits.length, 10);
    assert.ok(!hits.some((h) => h.id === "r0" || h.id === "r1"));
    assert.equal(await store.delete([]), 0);
    assert.equal(await store.delete({ filter: { role: "system" } }), 4);
    assert.equal(await store.count(), 6);
    assert.equal(await store.count({ role: "system" }), 0);
  });

  await t.step(
    "every filter operator and nested $and/$or select the right records",
    async () => {
      await using store = await open();
      await store.upsert(records(12));
      const cases: [MetadataFilter, (m: Metadata) => boolean][] = [
        [{ role: "user" }, (m) => m.role === "user"],
        [{ role: { $eq: "assistant" } }, (m) => m.role === "assistant"],
        [{ role: { $ne: "assistant" } }, (m) => m.role !== "assistant"],
        [{ n: { $gt: 6 } }, (m) => (m.n as number) > 6],
        [{ n: { $gte: 6 } }, (m) => (m.n as number) >= 6],
        [{ n: { $lt: 3 } }, (m) => (m.n as number) < 3],
        [{ n: { $lte: 3 } }, (m) => (m.n as number) <= 3],
        [{ n: 4 }, (m) => m.n === 4],
        [{ flag: true }, (m) => m.flag === true],
        [{ flag: { $ne: true } }, (m) => m.flag !== true],
        [
          { tag: { $in: ["t1", "t3"] } },
          (m) => m.tag === "t1" || m.tag === "t3",
        ],
        [
          { tag: { $nin: ["t1", "t3"] } },
          (m) => m.tag !== "t1" && m.tag !== "t3",
        ],
        [{ n: { $in: [1, 2, 99] } }, (m) => m.n === 1 || m.n === 2],
        [
          { role: "user", flag: true },
          (m) => m.role === "user" && m.flag === true,
        ],
        [
          { $and: [{ n: { $gte: 2 } }, { n: { $lt: 9 } }] },
          (m) => (m.n as number) >= 2 && (m.n as number) < 9,
        ],
        [
          { $or: [{ role: "system" }, { n: { $lt: 2 } }] },
          (m) => m.role === "system" || (m.n as number) < 2,
        ],
        [
          {
            $and: [
              { $or: [{ role: "user" }, { role: "system" }] },
              { $or: [{ flag: true }, { n: { $gt: 9 } }] },
            ],
          },
          (m) =>
            (m.role === "user" || m.role === "system") &&
            (m.flag === true || (m.n as number) > 9),
        ],
        [
          { $or: [{ $and: [{ tag: "t0" }, { n: { $gt: 0 } }] }, { n: 1 }] },
          (m) => (m.tag === "t0" && (m.n as number) > 0) || m.n === 1,
        ],
        [{ role: "nobody" }, () => false],
        [{ n: { $gt: 100 } }, () => false],
      ];
      for (const [filter, pred] of cases) {
        const want = expected(12, pred);
        assert.deepEqual(
          await ids(store, filter),
          want,
          JSON.stringify(filter),
        );
        assert.equal(
          await store.count(filter),
          want.length,
          JSON.stringify(filter),
        );
      }
    },
  );

  await t.step(
    "a record without the field matches only $ne and $nin",
    async () => {
      await using store = await open();
      await store.upsert([
        { id: "with", vector: vec(1), metadata: { role: "user", tag: "t1" } },
        { id: "bare", vector: vec(2), metadata: { role: "user" } },
      ]);
      assert.deepEqual(await ids(store, { tag: { $ne: "t1" } }), ["bare"]);
      assert.deepEqual(await ids(store, { tag: { $nin: ["t1"] } }), ["bare"]);
      assert.deepEqual(await ids(store, { tag: { $ne: "t2" } }), [
        "bare",
        "with",
      ]);
      assert.deepEqual(await ids(store, { tag: { $in: ["t1", "t2"] } }), [
        "with",
      ]);
      assert.deepEqual(await ids(store, { n: { $lt: 100 } }), []);
      assert.deepEqual(await ids(store, { tag: "t1" }), ["with"]);
    },
  );

  await t.step("an upsert with a known id replaces the record", async () => {
    await using store = await open();
    await store.upsert(records(5));
    await store.upsert([{
      id: "r2",
      vector: vec(7),
      metadata: { role: "system", n: 70, flag: false, tag: "t9", secret: "x" },
    }]);
    assert.equal(await store.count(), 5);
    const hits = await store.query({
      vector: vec(7),
      k: 1,
      includeDocuments: true,
    });
    assert.equal(hits[0]!.id, "r2");
    assert.equal(hits[0]!.metadata.n, 70);
    assert.equal(hits[0]!.metadata.secret, "x");
    assert.equal(hits[0]!.document, undefined);
    assert.equal(await store.count({ tag: "t9" }), 1);
    assert.equal(await store.count({ n: 2 }), 0);
  });

  await t.step("includeDocuments returns the stored documents", async () => {
    await using store = await open();
    await store.upsert([
      ...records(3),
      { id: "plain", vector: vec(9), metadata: { n: 9 } },
    ]);
    const hits = await store.query({
      vector: vec(1),
      k: 4,
      includeDocuments: true,
    });
    assert.equal(hits.length, 4);
    for (const h of hits) {
      if (h.id === "plain") assert.equal(h.document, undefined);
      else assert.equal(h.document, `document ${h.id.slice(1)}`);
    }
    const without = await store.query({ vector: vec(1), k: 4 });
    assert.ok(without.every((h) => !("document" in h)));
  });

  await t.step("records persist across a reopen", async () => {
    const name = `conf-persist-${++serial}`;
    {
      await using store = await open({}, name);
      await store.upsert(records(20));
      await store.delete(["r3"]);
    }
    await backend.restart();
    await using store = await open({}, name);
    assert.equal(await store.count(), 19);
    const hits = await store.query({
      vector: vec(4),
      k: 2,
      includeDocuments: true,
    });
    assert.equal(hits[0]!.id, "r4");
    assert.equal(hits[0]!.document, "document 4");
    assert.deepEqual(hits[0]!.metadata, records(20)[4]!.metadata);
    assert.equal(await store.count({ role: "user" }), 6);
  });

  await t.step(
    "bad input is refused with INVALID_INPUT and changes nothing",
    async () => {
      await using store = await open();
      await store.upsert(records(6));
      const before = await store.query({ vector: vec(2), k: 6 });
      const bad: unknown[][] = [
        [{ id: "x", vector: [1, 2, 3] }],
        [{ id: "x", vector: [...vec(1).slice(0, 7), Number.NaN] }],
        [{ id: "x", vector: [...vec(1).slice(0, 7), Infinity] }],
        [{ id: "x", vector: [...vec(1).slice(0, 7), 1e39] }],
        [{ id: "", vector: vec(1) }],
        [{ id: "x".repeat(513), vector: vec(1) }],
        [{ id: 5, vector: vec(1) }],
        [{ id: "ok", vector: vec(1) }, { id: "ok", vector: vec(2) }],
        [{ id: "x", vector: vec(1), metadata: { a: { b: 1 } } }],
        [{ id: "x", vector: vec(1), metadata: { a: Number.NaN } }],
        [{ id: "x", vector: vec(1), metadata: { $a: 1 } }],
        [{ id: "x", vector: vec(1), document: 5 }],
        [{ id: "good", vector: vec(1) }, { id: "bad", vector: [1] }],
      ];
      for (const recs of bad) {
        await rejects(
          () => store.upsert(recs as VectorRecord[]),
          "INVALID_INPUT",
        );
      }
      await rejects(
        () => store.upsert("x" as unknown as VectorRecord[]),
        "INVALID_INPUT",
      );
      for (const k of [0, -1, 1.5, 10_001, Number.NaN]) {
        await rejects(
          () => store.query({ vector: vec(1), k }),
          "INVALID_INPUT",
        );
      }
      await rejects(
        () => store.query({ vector: [1, 2], k: 1 }),
        "INVALID_INPUT",
      );
      await rejects(
        () =>
          store.query({ vector: [...vec(1).slice(0, 7), Number.NaN], k: 1 }),
        "INVALID_INPUT",
      );
      const malformed: unknown[] = [
        { n: { $gt: "a" } },
        { $and: [] },
        { $or: {} },
        { n: { $foo: 1 } },
        { n: { $in: [] } },
        { n: { $in: [{}] } },
        { n: { $gt: 1, $lt: 5 } },
        { n: null },
        { n: [1] },
        { $not: { n: 1 } },
        [],
        "n",
        { n: { $eq: Number.NaN } },
      ];
      for (const filter of malformed) {
        await rejects(
          () =>
            store.query({
              vector: vec(1),
              k: 3,
              filter: filter as MetadataFilter,
            }),
          "INVALID_INPUT",
        );
        await rejects(
          () => store.count(filter as MetadataFilter),
          "INVALID_INPUT",
        );
        await rejects(
          () => store.delete({ filter: filter as MetadataFilter }),
          "INVALID_INPUT",
        );
      }
      await rejects(() => store.delete([""]), "INVALID_INPUT");
      await rejects(
        () => store.delete("r1" as unknown as string[]),
        "INVALID_INPUT",
      );
      assert.equal(await store.count(), 6);
      assert.deepEqual(await store.query({ vector: vec(2), k: 6 }), before);
    },
  );

  await t.step("a huge k returns every record, nearest first", async () => {
    await using store = await open();
    await store.upsert(records(9));
    const hits = await store.query({ vector: vec(3), k: 10_000 });
    assert.equal(hits.length, 9);
    assert.equal(hits[0]!.id, "r3");
    for (let i = 1; i < hits.length; i++) {
      assert.ok(hits[i - 1]!.score >= hits[i]!.score - 1e-3);
    }
  });

  await t.step("l2 and dot collections rank the nearest first", async () => {
    for (const metric of ["l2", "dot"] as const) {
      await using store = await open({ metric });
      assert.equal(store.info.metric, metric);
      await store.upsert(records(6));
      const hits = await store.query({ vector: vec(4), k: 6 });
      assert.equal(hits.length, 6);
      if (metric === "l2") {
        assert.equal(hits[0]!.id, "r4");
        assert.ok(
          Math.abs(hits[0]!.score) < 0.05,
          `l2 score ${hits[0]!.score}`,
        );
      }
      for (let i = 1; i < hits.length; i++) {
        assert.ok(hits[i - 1]!.score >= hits[i]!.score - 1e-2);
      }
    }
  });

  await t.step(
    "another embedder id or dimension gives EMBEDDER_MISMATCH",
    async () => {
      const name = `conf-mismatch-${++serial}`;
      {
        await using store = await open({}, name);
        assert.deepEqual(store.info, {
          name,
          embedderId: "conformance-8",
          dimensions: D,
          metric: "cosine",
        });
        await store.upsert(records(2));
      }
      await rejects(
        () => open({ embedderId: "other-model" }, name),
        "EMBEDDER_MISMATCH",
      );
      await rejects(() => open({ dimensions: 16 }, name), "EMBEDDER_MISMATCH");
      await rejects(() => open({ metric: "l2" }, name), "EMBEDDER_MISMATCH");
      await using store = await open({}, name);
      assert.equal(await store.count(), 2);
    },
  );

  await t.step(
    "close is safe twice and later calls fail with STORE_CLOSED",
    async () => {
      const store = await open();
      await store.upsert(records(2));
      assert.equal(store.closed, false);
      await store.close();
      await store.close();
      await store[Symbol.asyncDispose]();
      assert.equal(store.closed, true);
      await rejects(() => store.upsert(records(1)), "STORE_CLOSED");
      await rejects(
        () => store.query({ vector: vec(0), k: 1 }),
        "STORE_CLOSED",
      );
      await rejects(() => store.delete(["r0"]), "STORE_CLOSED");
      await rejects(() => store.count(), "STORE_CLOSED");
    },
  );
}
