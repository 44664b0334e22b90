// Internal: the segment rows of the embedded vector store (see _schema.ts)
// and the SQL that reads and rewrites them.

import { AicoDataError } from "../errors.ts";
import type { Transaction, Value } from "../storage/mod.ts";
import type { Metadata } from "./types.ts";
import { type LazyMetadata, quantBytes } from "./_index.ts";

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
  /** The sign-bit code under the collection's fixed centre, if any. */
  readonly code: Uint8Array | null;
}

function packCodes(records: readonly SegmentRecord[]): Uint8Array | null {
  if (records.length === 0 || records.some((r) => r.code === null)) return null;
  const len = records[0]!.code!.length;
  const out = new Uint8Array(records.length * len);
  records.forEach((r, i) => out.set(r.code!, i * len));
  return out;
}

const EMPTY: Metadata = Object.freeze({});
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A JSON cell of a segment row: ids and metadata are BLOBs of UTF-8 JSON
 * (since schema version 2: a TEXT column would be read through the
 * storage's text guard, several times slower per byte).
 */
export function jsonCell(v: Value | undefined): unknown {
  const text = v instanceof Uint8Array ? decoder.decode(v) : String(v);
  return JSON.parse(text);
}

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

/** The columns of a segment row (but sid and cid). */
function pack(records: readonly SegmentRecord[], dims: number) {
  const n = records.length;
  const norms = new Float64Array(n);
  // Layout: n float32 scales, then n blocks of `dims` int16 (little-endian).
  const quant = new Uint8Array(n * quantBytes(dims));
  const ids: string[] = [];
  const metas: string[] = [];
  const qb = 2 * dims;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    ids.push(r.id);
    norms[i] = r.norm;
    quant.set(r.quant.subarray(0, 4), 4 * i);
    quant.set(r.quant.subarray(4, 4 + qb), 4 * n + i * qb);
    metas.push(r.metaText ?? "null");
  }
  return [
    n,
    encoder.encode(JSON.stringify(ids)),
    new Uint8Array(norms.buffer),
    quant,
    encoder.encode(`[${metas.join(",")}]`),
    packCodes(records),
  ] as const;
}

/** Inserts records as one new segment of collection `cid`; returns its sid. */
export async function insertSegment(
  tx: Transaction,
  cid: number,
  records: readonly SegmentRecord[],
  dims: number,
): Promise<number> {
  const [n, ids, norms, quant, metas, codes] = pack(records, dims);
  const res = await tx.execute(
    "INSERT INTO vector_segments (cid, n, ids, norms, metadata, codes) VALUES (?, ?, ?, ?, ?, ?)",
    [cid, n, ids, norms, metas, codes],
  );
  const sid = Number(res.lastInsertRowid);
  await tx.execute("INSERT INTO vector_quant (sid, quant) VALUES (?, ?)", [
    sid,
    quant,
  ]);
  return sid;
}

/** The decoded columns of a segment row. */
export interface CompactSegment {
  readonly ids: string[];
  readonly norms: Float64Array;
  /** The n float32 scales. */
  readonly scales: Float32Array;
  /** The n × dims int16 values, as bytes (little-endian). */
  readonly q16: Uint8Array;
  readonly metas: Metadata[];
  readonly codes: Uint8Array | null;
}

/** Decodes a segment row. */
export function decodeCompact(
  row: Record<string, Value>,
  dims: number,
): CompactSegment {
  const n = num(row.n);
  let ids: unknown;
  let metas: unknown;
  try {
    ids = jsonCell(row.ids);
    metas = jsonCell(row.metadata);
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
  const codes = row.codes;
  const codeLen = Math.ceil(dims / 64) * 8;
  if (
    codes !== null && codes !== undefined &&
    (!(codes instanceof Uint8Array) || codes.length !== n * codeLen)
  ) {
    throw damaged(`segment ${String(row.sid)} has inconsistent codes`);
  }
  return {
    ids: ids as string[],
    norms: new Float64Array(normBytes.slice().buffer),
    scales: new Float32Array(quant.slice(0, 4 * n).buffer),
    q16: quant.subarray(4 * n),
    metas: (metas as (Metadata | null)[]).map((m) =>
      m === null ? EMPTY : Object.freeze(m)
    ),
    codes: codes instanceof Uint8Array ? codes : null,
  };
}

/** Reads a whole segment as records. */
export async function readSegment(
  tx: Transaction,
  sid: number,
  dims: number,
): Promise<SegmentRecord[]> {
  const { rows } = await tx.execute(
    "SELECT s.sid, s.n, s.ids, s.norms, q.quant, s.metadata, s.codes FROM vector_segments s JOIN vector_quant q ON q.sid = s.sid WHERE s.sid = ?",
    [sid],
  );
  const row = rows[0];
  if (row === undefined) return [];
  const c = decodeCompact(row, dims);
  const cb = Math.ceil(dims / 64) * 8;
  const qb = 2 * dims;
  const scaleBytes = new Uint8Array(c.scales.buffer);
  return c.ids.map((id, i) => {
    const m = c.metas[i]!;
    let metaText: string | null = null;
    for (const _ in m) {
      metaText = JSON.stringify(m);
      break;
    }
    const quant = new Uint8Array(quantBytes(dims));
    quant.set(scaleBytes.subarray(4 * i, 4 * i + 4));
    quant.set(c.q16.subarray(i * qb, (i + 1) * qb), 4);
    return {
      id,
      norm: c.norms[i]!,
      quant,
      metaText,
      metadata: m,
      code: c.codes === null ? null : c.codes.subarray(i * cb, (i + 1) * cb),
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
  await deleteSegment(tx, sid);
  if (kept.length > 0) {
    // Same sid, so that the in-memory index stays right.
    const [n, ids, norms, quant, metas, codes] = pack(kept, dims);
    await tx.execute(
      "INSERT INTO vector_segments (sid, cid, n, ids, norms, metadata, codes) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [sid, cid, n, ids, norms, metas, codes],
    );
    await tx.execute("INSERT INTO vector_quant (sid, quant) VALUES (?, ?)", [
      sid,
      quant,
    ]);
  }
  return kept;
}

/** Deletes one segment (its row and its vectors). */
export async function deleteSegment(
  tx: Transaction,
  sid: number,
): Promise<void> {
  await tx.execute("DELETE FROM vector_quant WHERE sid = ?", [sid]);
  await tx.execute("DELETE FROM vector_segments WHERE sid = ?", [sid]);
}

/** The decoded compact columns of a segment row (no vectors). */
export interface SegmentHead {
  readonly ids: string[];
  readonly norms: Float64Array;
  /** Parsed on first use (throws `CORRUPT_STORE` then when damaged). */
  readonly metas: LazyMetadata;
  readonly codes: Uint8Array | null;
}

/** Decodes the compact columns of a segment row (sid, n, ids, norms, metadata, codes). */
export function decodeHead(
  row: Record<string, Value>,
  dims: number,
): SegmentHead {
  const n = num(row.n);
  const sid = String(row.sid);
  let ids: unknown;
  try {
    ids = jsonCell(row.ids);
  } catch (err) {
    throw new AicoDataError(
      "CORRUPT_STORE",
      "Cannot read vector segment: bad JSON",
      { cause: err },
    );
  }
  const normBytes = row.norms;
  const metaCell = row.metadata;
  if (
    !Array.isArray(ids) || ids.length !== n ||
    !(normBytes instanceof Uint8Array) || normBytes.length !== 8 * n ||
    !(metaCell instanceof Uint8Array || typeof metaCell === "string")
  ) {
    throw damaged(`segment ${sid} has inconsistent sizes`);
  }
  const codes = row.codes;
  const codeLen = Math.ceil(dims / 64) * 8;
  if (
    codes !== null && codes !== undefined &&
    (!(codes instanceof Uint8Array) || codes.length !== n * codeLen)
  ) {
    throw damaged(`segment ${sid} has inconsistent codes`);
  }
  const aligned = normBytes.byteOffset % 8 === 0
    ? normBytes
    : normBytes.slice();
  let parsed: Metadata[] | undefined;
  return {
    ids: ids as string[],
    norms: new Float64Array(aligned.buffer, aligned.byteOffset, n),
    metas: {
      get(): readonly Metadata[] {
        if (parsed !== undefined) return parsed;
        let metas: unknown;
        try {
          metas = jsonCell(metaCell);
        } catch (err) {
          throw new AicoDataError(
            "CORRUPT_STORE",
            "Cannot read vector segment: bad JSON",
            { cause: err },
          );
        }
        if (!Array.isArray(metas) || metas.length !== n) {
          throw damaged(`segment ${sid} has inconsistent metadata`);
        }
        parsed = (metas as (Metadata | null)[]).map((m) =>
          m === null ? EMPTY : Object.freeze(m)
        );
        return parsed;
      },
    },
    codes: codes instanceof Uint8Array ? codes : null,
  };
}

/** The vectors of a segment of `n` records: scales and int16 values. */
export function decodeQuant(
  quant: Value | undefined,
  n: number,
  dims: number,
  sid: number,
): { scales: Float32Array; q16: Uint8Array } {
  if (!(quant instanceof Uint8Array) || quant.length !== n * quantBytes(dims)) {
    throw damaged(`segment ${sid} has inconsistent vectors`);
  }
  return {
    scales: new Float32Array(quant.slice(0, 4 * n).buffer),
    q16: quant.subarray(4 * n),
  };
}
