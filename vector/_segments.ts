// Internal: the segment rows of the embedded vector store (see _schema.ts)
// and the SQL that reads and rewrites them.

import { AicoDataError } from "../errors.ts";
import type { Transaction, Value } from "../storage/mod.ts";
import type { Metadata } from "./types.ts";
import { quantBytes } from "./_index.ts";

/** The most records one segment holds. */
export const SEGMENT_MAX = 128;
/** Segments with fewer records than this are merged when many pile up. */
export const SMALL_SEGMENT = 32;

/** One record as stored in a segment. */
export interface SegmentRecord {
  readonly id: string;
  readonly norm: number;
  /** float32 scale + int16 × dimensions. */
  readonly quant: Uint8Array;
  /** The metadata as JSON, `null` when empty. */
  readonly metaText: string | null;
  readonly metadata: Metadata;
  /** float32 × dimensions, little-endian. */
  readonly vector: Uint8Array;
}

const EMPTY: Metadata = Object.freeze({});

/** The numeric value of an integer column. */
export function num(v: Value | undefined): number {
  return Number(v);
}

function damaged(what: string): AicoDataError {
  return new AicoDataError(
    "CORRUPT_STORE",
    `Cannot read vector segment: ${what}`,
  );
}

/** Inserts records as one new segment of collection `cid`; returns its sid. */
export async function insertSegment(
  tx: Transaction,
  cid: number,
  records: readonly SegmentRecord[],
  dims: number,
): Promise<number> {
  const n = records.length;
  const norms = new Float64Array(n);
  const quant = new Uint8Array(n * quantBytes(dims));
  const vectors = new Uint8Array(n * 4 * dims);
  const ids: string[] = [];
  const metas: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    ids.push(r.id);
    norms[i] = r.norm;
    quant.set(r.quant, i * quantBytes(dims));
    vectors.set(r.vector, i * 4 * dims);
    metas.push(r.metaText ?? "null");
  }
  const res = await tx.execute(
    "INSERT INTO vector_segments (cid, n, ids, norms, quant, metadata, vectors) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [
      cid,
      n,
      JSON.stringify(ids),
      new Uint8Array(norms.buffer),
      quant,
      `[${metas.join(",")}]`,
      vectors,
    ],
  );
  return Number(res.lastInsertRowid);
}

/** Decodes the compact part of a segment row (no vectors). */
export function decodeCompact(
  row: Record<string, Value>,
  dims: number,
): {
  ids: string[];
  norms: Float64Array;
  quant: Uint8Array;
  metas: Metadata[];
} {
  const n = num(row.n);
  let ids: unknown;
  let metas: unknown;
  try {
    ids = JSON.parse(String(row.ids));
    metas = JSON.parse(String(row.metadata));
  } catch (err) {
    throw new AicoDataError(
      "CORRUPT_STORE",
      "Cannot read vector segment: bad JSON",
      { cause: err },
    );
  }
  const normBytes = row.norms;
  const quant = row.quant;
  if (
    !Array.isArray(ids) || ids.length !== n || !Array.isArray(metas) ||
    metas.length !== n || !(normBytes instanceof Uint8Array) ||
    normBytes.length !== 8 * n || !(quant instanceof Uint8Array) ||
    quant.length !== n * quantBytes(dims)
  ) {
    throw damaged(`segment ${String(row.sid)} has inconsistent sizes`);
  }
  const norms = new Float64Array(
    normBytes.buffer.slice(
      normBytes.byteOffset,
      normBytes.byteOffset + normBytes.byteLength,
    ),
  );
  return {
    ids: ids as string[],
    norms,
    quant,
    metas: (metas as (Metadata | null)[]).map((m) =>
      m === null ? EMPTY : Object.freeze(m)
    ),
  };
}

/** Reads a whole segment (vectors included) as records. */
export async function readSegment(
  tx: Transaction,
  sid: number,
  dims: number,
): Promise<SegmentRecord[]> {
  const { rows } = await tx.execute(
    "SELECT sid, n, ids, norms, quant, metadata, vectors FROM vector_segments WHERE sid = ?",
    [sid],
  );
  const row = rows[0];
  if (row === undefined) return [];
  const c = decodeCompact(row, dims);
  const vectors = row.vectors;
  if (
    !(vectors instanceof Uint8Array) ||
    vectors.length !== c.ids.length * 4 * dims
  ) {
    throw damaged(`segment ${sid} has inconsistent vectors`);
  }
  const qb = quantBytes(dims);
  return c.ids.map((id, i) => {
    const m = c.metas[i]!;
    let metaText: string | null = null;
    for (const _ in m) {
      metaText = JSON.stringify(m);
      break;
    }
    return {
      id,
      norm: c.norms[i]!,
      quant: c.quant.subarray(i * qb, (i + 1) * qb),
      metaText,
      metadata: m,
      vector: vectors.subarray(i * 4 * dims, (i + 1) * 4 * dims),
    };
  });
}

/**
 * Removes records from a segment by rewriting it (or deleting it when
 * nothing stays). Returns the records kept.
 */
export async function removeFromSegment(
  tx: Transaction,
  cid: number,
  sid: number,
  drop: ReadonlySet<string>,
  dims: number,
): Promise<SegmentRecord[]> {
  const all = await readSegment(tx, sid, dims);
  const kept = all.filter((r) => !drop.has(r.id));
  await tx.execute("DELETE FROM vector_segments WHERE sid = ?", [sid]);
  if (kept.length > 0) {
    // Same sid, so that the in-memory index stays right.
    const n = kept.length;
    const norms = new Float64Array(n);
    const quant = new Uint8Array(n * quantBytes(dims));
    const vectors = new Uint8Array(n * 4 * dims);
    kept.forEach((r, i) => {
      norms[i] = r.norm;
      quant.set(r.quant, i * quantBytes(dims));
      vectors.set(r.vector, i * 4 * dims);
    });
    await tx.execute(
      "INSERT INTO vector_segments (sid, cid, n, ids, norms, quant, metadata, vectors) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      [
        sid,
        cid,
        n,
        JSON.stringify(kept.map((r) => r.id)),
        new Uint8Array(norms.buffer),
        quant,
        `[${kept.map((r) => r.metaText ?? "null").join(",")}]`,
        vectors,
      ],
    );
  }
  return kept;
}
