// Internal, for tests and benchmarks: deterministic clustered vectors
// (Gaussian clusters around non-zero-mean centres, like real embeddings)
// and exact top-k by cosine similarity.

/** A seeded generator of standard normal numbers (mulberry32 + Box-Muller). */
export function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  let spare: number | undefined;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * uniform();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

/** Clustered data: `centres` cluster centres and a point generator. */
export interface Clusters {
  readonly dims: number;
  /** The i-th point (deterministic in i). */
  point(i: number): Float32Array;
  /** A query near the centre of cluster `i % clusters` (not a data point). */
  query(i: number): Float32Array;
}

/** Gaussian clusters: centres N(0.3, 1), points centre + N(0, spread). */
export function clusters(
  dims: number,
  count: number,
  spread = 0.6,
  seed = 42,
): Clusters {
  const g = gaussian(seed);
  const centres = Array.from(
    { length: count },
    () => Float32Array.from({ length: dims }, () => 0.3 + g()),
  );
  const around = (c: Float32Array, gen: () => number): Float32Array => {
    const v = new Float32Array(dims);
    for (let j = 0; j < dims; j++) v[j] = c[j]! + spread * gen();
    return v;
  };
  return {
    dims,
    point: (i) => around(centres[i % count]!, gaussian(seed * 7919 + i + 1)),
    query: (i) =>
      around(centres[(i * 7) % count]!, gaussian(seed * 104729 + i + 1)),
  };
}

/** Exact top-k ids (as indexes) by cosine similarity, best first. */
export function exactTopK(
  data: readonly Float32Array[],
  norms: Float64Array,
  q: Float32Array,
  k: number,
): number[] {
  const d = q.length;
  let qn = 0;
  for (let j = 0; j < d; j++) qn += q[j]! * q[j]!;
  qn = Math.sqrt(qn);
  const best: { i: number; s: number }[] = [];
  let floor = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    let s = 0;
    for (let j = 0; j < d; j++) s += v[j]! * q[j]!;
    s /= norms[i]! * qn;
    if (best.length < k || s > floor) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.length = k;
      floor = best[best.length - 1]!.s;
    }
  }
  return best.map((b) => b.i);
}

/** The Euclidean norms of the vectors. */
export function norms(data: readonly Float32Array[]): Float64Array {
  return Float64Array.from(data, (v) => {
    let s = 0;
    for (let j = 0; j < v.length; j++) s += v[j]! * v[j]!;
    return Math.sqrt(s);
  });
}
