// Internal: rank fusion, recency decay and maximal marginal relevance.

/** One ranked list with its weight in the fusion. */
export interface RankedList {
  readonly ids: readonly number[];
  readonly weight: number;
}

/**
 * Weighted reciprocal rank fusion: score(id) = sum over lists of
 * weight / (k + rank), rank counted from 1.
 */
export function fuseRanks(
  lists: readonly RankedList[],
  k: number,
): Map<number, number> {
  const scores = new Map<number, number>();
  for (const list of lists) {
    list.ids.forEach((id, i) => {
      scores.set(id, (scores.get(id) ?? 0) + list.weight / (k + i + 1));
    });
  }
  return scores;
}

/** The multiplier of a score for an item of age `ageMs`. */
export function recencyFactor(
  ageMs: number,
  halfLifeMs: number,
  weight: number,
): number {
  const decay = Math.pow(0.5, Math.max(0, ageMs) / halfLifeMs);
  return 1 - weight + weight * decay;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : s / Math.sqrt(na * nb);
}

/**
 * Maximal marginal relevance: picks `k` of the candidates (best first),
 * each maximising lambda * relevance - (1 - lambda) * (max similarity to
 * those picked). Relevance is the candidate's score scaled to [0, 1].
 * Returns indices into `candidates`.
 */
export function selectMmr(
  scores: readonly number[],
  vectors: readonly Float32Array[],
  k: number,
  lambda: number,
): number[] {
  const n = scores.length;
  const max = Math.max(...scores), min = Math.min(...scores);
  const rel = scores.map((s) => max === min ? 1 : (s - min) / (max - min));
  const picked: number[] = [];
  const left = new Set(Array.from({ length: n }, (_, i) => i));
  while (picked.length < k && left.size > 0) {
    let best = -1, bestValue = -Infinity;
    for (const i of left) {
      let sim = 0;
      for (const j of picked) {
        sim = Math.max(sim, cosine(vectors[i]!, vectors[j]!));
      }
      const v = lambda * rel[i]! - (1 - lambda) * sim;
      if (v > bestValue) {
        bestValue = v;
        best = i;
      }
    }
    picked.push(best);
    left.delete(best);
  }
  return picked;
}
