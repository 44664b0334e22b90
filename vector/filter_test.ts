import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import {
  compileFilter,
  MAX_FILTER_DEPTH,
  toChromaWhere,
  validateFilter,
  validateMetadata,
} from "./filter.ts";
import type { MetadataFilter } from "./types.ts";

const invalid = (e: unknown) => isAicoDataError(e, "INVALID_INPUT");

Deno.test("compileFilter() evaluates every operator with Chroma's semantics", () => {
  const m = { s: "a", n: 5, b: true };
  const table: [MetadataFilter, boolean][] = [
    [{}, true],
    [{ s: "a" }, true],
    [{ s: "b" }, false],
    [{ n: 5 }, true],
    [{ n: "5" }, false],
    [{ b: true }, true],
    [{ b: 1 }, false],
    [{ s: { $eq: "a" } }, true],
    [{ s: { $ne: "a" } }, false],
    [{ missing: { $ne: "a" } }, true],
    [{ missing: { $eq: "a" } }, false],
    [{ n: { $gt: 4 } }, true],
    [{ n: { $gt: 5 } }, false],
    [{ n: { $gte: 5 } }, true],
    [{ n: { $lt: 5 } }, false],
    [{ n: { $lte: 5 } }, true],
    [{ s: { $gt: 1 } }, false],
    [{ missing: { $lt: 10 } }, false],
    [{ s: { $in: ["x", "a"] } }, true],
    [{ s: { $in: ["x"] } }, false],
    [{ s: { $nin: ["x"] } }, true],
    [{ s: { $nin: ["a"] } }, false],
    [{ missing: { $nin: ["a"] } }, true],
    [{ missing: { $in: ["a"] } }, false],
    [{ s: "a", n: 6 }, false],
    [{ s: "a", n: 5 }, true],
    [{ $and: [{ s: "a" }, { n: { $gt: 1 } }] }, true],
    [{ $and: [{ s: "a" }, { n: { $gt: 9 } }] }, false],
    [{ $or: [{ s: "z" }, { n: { $gt: 1 } }] }, true],
    [{ $or: [{ s: "z" }, { n: { $gt: 9 } }] }, false],
    [{
      $or: [{ $and: [{ s: "a" }, { b: false }] }, {
        $and: [{ n: 5 }, { b: true }],
      }],
    }, true],
  ];
  for (const [filter, want] of table) {
    assert.equal(compileFilter(filter)(m), want, JSON.stringify(filter));
  }
});

Deno.test("validateFilter() refuses malformed filters with INVALID_INPUT", () => {
  let deep: Record<string, unknown> = { n: 1 };
  for (let i = 0; i <= MAX_FILTER_DEPTH; i++) deep = { $and: [deep] };
  const bad: unknown[] = [
    null,
    undefined,
    "x",
    5,
    [],
    { $and: [] },
    { $or: [] },
    { $and: {} },
    { $and: [5] },
    { $not: { n: 1 } },
    { n: { $foo: 1 } },
    { n: { $gt: "1" } },
    { n: { $gt: Number.NaN } },
    { n: { $lt: Infinity } },
    { n: { $eq: null } },
    { n: { $eq: {} } },
    { n: { $in: [] } },
    { n: { $in: 5 } },
    { n: { $nin: [[1]] } },
    { n: { $gt: 1, $lt: 3 } },
    { n: {} },
    { n: null },
    { n: [1] },
    { "": 1 },
    { ["x".repeat(300)]: 1 },
    deep,
    { n: { $in: Array.from({ length: 2000 }, (_, i) => i) } },
    new Map(),
  ];
  for (const f of bad) {
    assert.throws(
      () => validateFilter(f),
      invalid,
      JSON.stringify(f)?.slice(0, 60),
    );
  }
});

Deno.test("toChromaWhere() makes implicit $and explicit and unwraps single-child lists", () => {
  assert.deepEqual(toChromaWhere({ a: 1 }), { a: { $eq: 1 } });
  assert.deepEqual(toChromaWhere({ a: 1, b: { $gt: 2 } }), {
    $and: [{ a: { $eq: 1 } }, { b: { $gt: 2 } }],
  });
  assert.deepEqual(toChromaWhere({ $and: [{ a: 1 }] }), { a: { $eq: 1 } });
  assert.deepEqual(
    toChromaWhere({ $or: [{ a: 1, b: 2 }, { c: { $in: [1] } }] }),
    {
      $or: [{ $and: [{ a: { $eq: 1 } }, { b: { $eq: 2 } }] }, {
        c: { $in: [1] },
      }],
    },
  );
  assert.equal(toChromaWhere({}), undefined);
  assert.equal(toChromaWhere({ $or: [{}] }), undefined);
  assert.deepEqual(toChromaWhere({ $and: [{}, { a: true }] }), {
    a: { $eq: true },
  });
});

Deno.test("validateMetadata() accepts flat values and refuses everything else", () => {
  assert.deepEqual(validateMetadata(undefined, "upsert"), {});
  const ok = validateMetadata({ s: "x", n: 1.5, b: false }, "upsert");
  assert.ok(Object.isFrozen(ok));
  for (
    const bad of [
      null,
      [],
      "x",
      { a: null },
      { a: {} },
      { a: [1] },
      { a: Infinity },
      { $a: 1 },
      { "": 1 },
      { a: "\ud800" },
    ]
  ) {
    assert.throws(
      () => validateMetadata(bad, "upsert"),
      invalid,
      JSON.stringify(bad),
    );
  }
});
