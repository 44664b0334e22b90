// Internal, for tests: the deterministic "new embedder" of the reembed tests.

/** A 6-d vector for a document `doc <i>`: distinct directions per i. */
export function newVector(text: string): Float32Array {
  const i = Number(text.split(" ")[1]);
  return Float32Array.from(
    { length: 6 },
    (_, j) => Math.cos((i + 1) * (j + 2) * 0.37) + (j === i % 6 ? 3 : 0),
  );
}

/** The old 4-d vector of record i. */
export function oldVector(i: number): Float32Array {
  return Float32Array.from(
    { length: 4 },
    (_, j) => Math.sin((i + 1) * (j + 1) * 0.53) + (j === i % 4 ? 2 : 0),
  );
}
