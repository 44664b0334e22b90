// Internal: the in-memory index of the embedded vector store.
//
// Per record it keeps a sign-bit code (one bit per dimension, of the vector
// minus the collection's centre, padded to 64-bit words; in WebAssembly
// memory), an int16 copy of the vector with one float scale, the exact norm,
// the id, the database row and the metadata. A query computes the Hamming
// distance of its code to every code (the WebAssembly kernel), keeps the
// `shortlist` nearest codes (a counting selection over the small integer
// distances; with a filter, the nearest matching ones; from 50k records the
// 128-bit prefixes of the codes, kept contiguous, pick 8x as many first),
// scores those with the int16 copies and returns the best `k`. Memory per record: 2 × dimensions
// bytes (int16) + dimensions / 8 (code) + ~40 bytes plus id and metadata.
//
// The centre is the mean of (at most 8192 of) the (normalised, for cosine)
// vectors, so that codes are centred for real, non-zero-mean embeddings.
// Until the store fixes it (freeze(), from 4096 records on, persisted with
// the codes) it is recomputed, and every code with it, whenever the
// collection has doubled since the last time: amortised O(1) per insert.

import type { Metadata, VectorMetric } from "./types.ts";
import type { FilterPredicate } from "./filter.ts";
import { createKernel, type HammingKernel } from "./_kernel.ts";

/** A candidate for exact rescoring. */
export interface Candidate {
  readonly slot: number;
  readonly id: string;
  readonly metadata: Metadata;
  readonly row: number;
  readonly approx: number;
}

/** What the store keeps per record in memory. */
export interface IndexEntry {
  readonly id: string;
  readonly row: number;
  /** The exact Euclidean norm of the stored (raw) vector. */
  readonly norm: number;
  /** `scale` (float32, little-endian) followed by one int16 per dimension (little-endian). */
  readonly quant: Uint8Array;
  readonly metadata: Metadata;
}

const MIN_CENTRE_COUNT = 32;
/** From this size on, unfiltered queries scan 128-bit prefixes first. */
const TWO_STAGE_FROM = 50_000;

/** The bytes of one quantised vector of `d` dimensions. */
export function quantBytes(d: number): number {
  return 4 + 2 * d;
}

/**
 * Quantises `v × mul` (the unit vector for cosine): `[scale f32][int16 × d]`,
 * little-endian; each component within `scale / 2` of the original, that
 * is within 2^-16 of the largest component.
 */
export function quantize(v: Float32Array, mul = 1): Uint8Array {
  const d = v.length;
  let max = 0;
  for (let i = 0; i < d; i++) {
    const a = Math.abs(v[i]!);
    if (a > max) max = a;
  }
  const out = new Uint8Array(quantBytes(d));
  const scale = max / 32767;
  // Little-endian platforms only (x86-64, arm64). The int16 values of
  // `v × mul` are those of `v`; only the stored scale takes `mul`.
  new Float32Array(out.buffer, 0, 1)[0] = scale * mul;
  if (scale > 0) {
    const inv = 1 / scale;
    const q = new Int16Array(out.buffer, 4, d);
    for (let i = 0; i < d; i++) q[i] = Math.round(v[i]! * inv);
  }
  return out;
}

/**
 * How many nearest codes a query ranks by its int16 vectors: `base`, at
 * least `size / 500` (sign codes blur as a collection grows), `4 × k`, and
 * up to 1000 in collections of at most 25k records (sparse neighbourhoods,
 * where sign codes rank the far neighbours poorly, are cheap to widen
 * there); four times as many with a filter (it thins the neighbourhood).
 */
export function shortlistFor(
  size: number,
  base: number,
  k: number,
  filtered: boolean,
): number {
  const s = Math.max(base, Math.ceil(size / 500), 4 * k);
  const small = size <= 25_000 ? Math.min(size, 1000) : 0;
  return Math.max(filtered ? 4 * s : s, small);
}

/** The Euclidean norm. */
export function norm(v: Float32Array | readonly number[]): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/**
 * The metadata of a segment's records, parsed on first use (open leaves
 * them as the stored JSON: most are never needed before a filter or a hit).
 */
export interface LazyMetadata {
  /** The records' metadata, in segment order (parsed once). */
  get(): readonly Metadata[];
}

/** The in-memory index of one collection. */
export class VectorIndex {
  readonly dims: number;
  readonly metric: VectorMetric;
  readonly words: number;
  #kernel: HammingKernel;
  #cap = 0;
  #n = 0;
  #ids: string[] = [];
  #rows: number[] = [];
  /** Metadata by slot; `undefined` while it is still in `#lazy`. */
  #metas: (Metadata | undefined)[] = [];
  #lazy: (LazyMetadata | undefined)[] = [];
  #lazyAt: number[] = [];
  /** Slots whose metadata is still unparsed. */
  #lazyLeft = 0;
  /** Slot by id, built on first use (open does not need it). */
  #slots: Map<string, number> | undefined = new Map();

  get #slotOf(): Map<string, number> {
    if (this.#slots === undefined) {
      const m = new Map<string, number>();
      for (let s = 0; s < this.#n; s++) m.set(this.#ids[s]!, s);
      if (m.size !== this.#n) {
        throw new Error("an id appears twice in the segments");
      }
      this.#slots = m;
    }
    return this.#slots;
  }
  #quant = new Int16Array(0);
  /** 1 where the slot's int16 copy and scale are loaded (open loads them after the codes). */
  #ready = new Uint8Array(0);
  /** Slots whose int16 copy is not loaded yet. */
  #missing = 0;
  #scale = new Float32Array(0);
  #norm = new Float64Array(0);
  #centre: Float32Array;
  #centredAt = 0;
  #buffer: ArrayBuffer | undefined;
  #u8 = new Uint8Array(0);
  #u16 = new Uint16Array(0);
  #hist: Uint32Array;
  #qcode: Uint8Array;
  /** Scratch: centre minus vector, padded to whole code words with zeros. */
  #diff: Float32Array;
  #diffBits: Uint32Array;
  #scaleView = new Float32Array(1);
  #scaleBytes = new Uint8Array(this.#scaleView.buffer);

  /** Whether the centre is fixed (persisted codes stay valid). */
  #frozen = false;
  /** Whether the prefix region matches the codes. */
  #prefixValid = false;
  /** Slots loaded without a code (computed by finishLoad). */
  #pending: number[] = [];

  constructor(dims: number, metric: VectorMetric, centre?: Float32Array) {
    this.dims = dims;
    this.metric = metric;
    this.words = Math.ceil(dims / 64);
    this.#kernel = createKernel();
    this.#centre = new Float32Array(dims);
    if (centre !== undefined) {
      this.#centre.set(centre);
      this.#frozen = true;
    }
    this.#hist = new Uint32Array(this.words * 64 + 2);
    this.#qcode = new Uint8Array(this.words * 8);
    this.#diff = new Float32Array(this.words * 64);
    this.#diffBits = new Uint32Array(this.#diff.buffer);
    this.#grow(64);
  }

  get size(): number {
    return this.#n;
  }

  has(id: string): boolean {
    return this.#slotOf.has(id);
  }

  rowOf(id: string): number | undefined {
    const s = this.#slotOf.get(id);
    return s === undefined ? undefined : this.#rows[s];
  }

  setRow(id: string, row: number): void {
    const s = this.#slotOf.get(id);
    if (s !== undefined) this.#rows[s] = row;
  }

  ids(): string[] {
    return this.#ids.slice(0, this.#n);
  }

  /** The metadata of slot `s` (parsing its segment's on first use). */
  #meta(s: number): Metadata {
    const m = this.#metas[s];
    if (m !== undefined) return m;
    const v = this.#lazy[s]!.get()[this.#lazyAt[s]!]!;
    this.#metas[s] = v;
    this.#lazy[s] = undefined;
    this.#lazyLeft--;
    return v;
  }

  /** Every slot's metadata, parsed (for the scans of a filter). */
  #allMetas(): readonly Metadata[] {
    if (this.#lazyLeft > 0) {
      for (let s = 0; s < this.#n; s++) this.#meta(s);
    }
    return this.#metas as Metadata[];
  }

  metadataOf(id: string): Metadata | undefined {
    const s = this.#slotOf.get(id);
    return s === undefined ? undefined : this.#meta(s);
  }

  /** Ids and rows of the records whose metadata match. */
  matching(pred: FilterPredicate | undefined): { id: string; row: number }[] {
    const out: { id: string; row: number }[] = [];
    const metas = this.#allMetas();
    for (let s = 0; s < this.#n; s++) {
      if (pred === undefined || pred(metas[s]!)) {
        out.push({ id: this.#ids[s]!, row: this.#rows[s]! });
      }
    }
    return out;
  }

  /**
   * The sign-bit codes of records `ids` (in that order, concatenated), or
   * `undefined` when one is unknown or the centre is not fixed.
   */
  codesOf(ids: readonly string[]): Uint8Array | undefined {
    if (!this.#frozen) return undefined;
    this.#views();
    const b = this.#codeBytes();
    const out = new Uint8Array(ids.length * b);
    for (let i = 0; i < ids.length; i++) {
      const s = this.#slotOf.get(ids[i]!);
      if (s === undefined) return undefined;
      out.set(this.#u8.subarray(s * b, s * b + b), i * b);
    }
    return out;
  }

  count(pred: FilterPredicate | undefined): number {
    if (pred === undefined) return this.#n;
    let c = 0;
    const metas = this.#allMetas();
    for (let s = 0; s < this.#n; s++) if (pred(metas[s]!)) c++;
    return c;
  }

  #codeBytes(): number {
    return this.words * 8;
  }

  #queryOffset(): number {
    return this.#cap * this.#codeBytes();
  }

  #outOffset(): number {
    return this.#queryOffset() + this.#codeBytes();
  }

  #histOffset(): number {
    return (this.#outOffset() + this.#cap * 2 + 7) & ~7;
  }

  #destOffset(): number {
    return this.#histOffset() + this.#hist.length * 4;
  }

  /** 128-bit prefixes of the codes, contiguous (the first stage's scan). */
  #prefixOffset(): number {
    return this.#destOffset() + this.#cap * 4;
  }

  #dest2Offset(): number {
    return this.#prefixOffset() + this.#cap * 16;
  }

  #views(): void {
    const buf = this.#kernel.memory.buffer as ArrayBuffer;
    if (buf !== this.#buffer) {
      this.#buffer = buf;
      this.#u8 = new Uint8Array(buf);
      this.#u16 = new Uint16Array(buf);
    }
  }

  #grow(minCap: number): void {
    let cap = Math.max(64, this.#cap);
    while (cap < minCap) cap *= 2;
    if (cap === this.#cap) return;
    const need = cap * this.#codeBytes() + this.#codeBytes() + cap * 2 + 8 +
      this.#hist.length * 4 + cap * 4 + cap * 16 + cap * 4 + 64;
    const have = this.#kernel.memory.buffer.byteLength;
    if (need > have) {
      this.#kernel.memory.grow(Math.ceil((need - have) / 65536));
    }
    const quant = new Int16Array(cap * this.dims);
    quant.set(this.#quant.subarray(0, this.#n * this.dims));
    this.#quant = quant;
    const ready = new Uint8Array(cap);
    ready.set(this.#ready.subarray(0, this.#n));
    this.#ready = ready;
    const scale = new Float32Array(cap);
    scale.set(this.#scale.subarray(0, this.#n));
    this.#scale = scale;
    const nrm = new Float64Array(cap);
    nrm.set(this.#norm.subarray(0, this.#n));
    this.#norm = nrm;
    this.#cap = cap;
    this.#prefixValid = false;
    this.#views();
  }

  /** Writes the code of `v` (in quantised space) at byte offset `at`. */
  #encode(v: Float32Array, at: number): void {
    const u8 = this.#u8;
    const c = this.#centre;
    const d = this.dims;
    const bytes = this.#codeBytes();
    for (let b = 0; b < bytes; b++) {
      let byte = 0;
      const base = b * 8;
      for (let j = 0; j < 8; j++) {
        const i = base + j;
        if (i < d && v[i]! > c[i]!) byte |= 1 << j;
      }
      u8[at + b] = byte;
    }
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  /** The mean of (at most 8192 of) the records, not applied. */
  meanCentre(): Float32Array {
    const d = this.dims;
    const n = this.#n;
    const sum = new Float64Array(d);
    const q = this.#quant;
    const step = Math.max(1, Math.floor(n / 8192));
    let used = 0;
    for (let s = 0; s < n; s += step) {
      const sc = this.#scale[s]!;
      const base = s * d;
      for (let i = 0; i < d; i++) sum[i]! += q[base + i]! * sc;
      used++;
    }
    return Float32Array.from(sum, (x) => (used === 0 ? 0 : x / used));
  }

  /** Fixes the centre (codes are recomputed once, then never again). */
  freeze(centre: Float32Array): void {
    this.#centre.set(centre);
    this.#frozen = true;
    this.#centredAt = this.#n;
    this.#views();
    for (let s = 0; s < this.#n; s++) this.#encodeSlot(s);
  }

  /**
   * The code of a vector (`v × mul` in index space) under a centre (the
   * current one).
   */
  encodeVector(
    v: Float32Array,
    centre?: Float32Array,
    mul = 1,
  ): Uint8Array {
    const bytes = this.#codeBytes();
    const out = new Uint8Array(bytes);
    const c = centre ?? this.#centre;
    const diff = this.#diff;
    const bits = this.#diffBits;
    for (let i = 0; i < this.dims; i++) diff[i] = c[i]! - v[i]! * mul;
    // bit = 1 when the component exceeds the centre: the sign bit of diff.
    for (let b = 0; b < bytes; b++) {
      const i = b << 3;
      out[b] = (bits[i]! >>> 31) | ((bits[i + 1]! >>> 31) << 1) |
        ((bits[i + 2]! >>> 31) << 2) | ((bits[i + 3]! >>> 31) << 3) |
        ((bits[i + 4]! >>> 31) << 4) | ((bits[i + 5]! >>> 31) << 5) |
        ((bits[i + 6]! >>> 31) << 6) | ((bits[i + 7]! >>> 31) << 7);
    }
    return out;
  }

  #recentre(): void {
    // The mean of at most 8192 records spread over the collection.
    this.#centre.set(this.meanCentre());
    this.#centredAt = this.#n;
    this.#views();
    for (let s = 0; s < this.#n; s++) this.#encodeSlot(s);
  }

  /** Writes the code of slot `s` from its int16 copy (branch-free). */
  #encodeSlot(s: number): void {
    this.#prefixValid = false;
    const u8 = this.#u8;
    const c = this.#centre;
    const d = this.dims;
    const q = this.#quant;
    const sc = this.#scale[s]!;
    const base = s * d;
    const diff = this.#diff;
    const bits = this.#diffBits;
    for (let i = 0; i < d; i++) diff[i] = c[i]! - q[base + i]! * sc;
    // bit = 1 when the component exceeds the centre: the sign bit of diff.
    const at = s * this.#codeBytes();
    const bytes = this.#codeBytes();
    for (let b = 0; b < bytes; b++) {
      const i = b << 3;
      u8[at + b] = (bits[i]! >>> 31) | ((bits[i + 1]! >>> 31) << 1) |
        ((bits[i + 2]! >>> 31) << 2) | ((bits[i + 3]! >>> 31) << 3) |
        ((bits[i + 4]! >>> 31) << 4) | ((bits[i + 5]! >>> 31) << 5) |
        ((bits[i + 6]! >>> 31) << 6) | ((bits[i + 7]! >>> 31) << 7);
    }
  }

  /**
   * Adds or replaces one record. `deferCodes` skips the code (call
   * `finishLoad()` after a bulk load).
   */
  add(entry: IndexEntry, deferCodes = false, code?: Uint8Array | null): void {
    let slot = this.#slotOf.get(entry.id);
    if (slot === undefined) {
      slot = this.#n;
      if (slot >= this.#cap) this.#grow(slot + 1);
      this.#n++;
      this.#ids.push(entry.id);
      this.#rows.push(entry.row);
      this.#metas.push(entry.metadata);
      this.#lazy.push(undefined);
      this.#lazyAt.push(0);
      this.#slotOf.set(entry.id, slot);
    } else {
      this.#rows[slot] = entry.row;
      if (this.#metas[slot] === undefined) this.#lazyLeft--;
      this.#metas[slot] = entry.metadata;
      this.#lazy[slot] = undefined;
      // Replaced before its old vector was loaded: the new one is here.
      if (this.#ready[slot] === 0) this.#missing--;
    }
    const q = entry.quant;
    const sb = this.#scaleBytes;
    sb[0] = q[0]!;
    sb[1] = q[1]!;
    sb[2] = q[2]!;
    sb[3] = q[3]!;
    this.#scale[slot] = this.#scaleView[0]!;
    new Uint8Array(this.#quant.buffer, slot * this.dims * 2, this.dims * 2)
      .set(q.subarray(4, 4 + 2 * this.dims));
    this.#ready[slot] = 1;
    this.#norm[slot] = entry.norm;
    if (code !== null && code !== undefined && this.#frozen) {
      this.#views();
      this.#prefixValid = false;
      this.#u8.set(code, slot * this.#codeBytes());
      return;
    }
    if (deferCodes) {
      this.#pending.push(slot);
      return;
    }
    if (
      !this.#frozen && this.#n >= MIN_CENTRE_COUNT &&
      this.#n >= 2 * this.#centredAt
    ) {
      this.#recentre();
    } else {
      this.#views();
      this.#encodeSlot(slot);
    }
  }

  /** Makes room for `n` records at once (before a bulk load). */
  reserve(n: number): void {
    if (n > this.#cap) this.#grow(n);
  }

  /** Adds the records of one segment (a bulk load; call finishLoad() after). */
  addSegment(
    row: number,
    ids: readonly string[],
    norms: Float64Array,
    scales: Float32Array | null,
    q16: Uint8Array | null,
    metas: readonly Metadata[] | LazyMetadata,
    codes: Uint8Array | null,
  ): void {
    const k = ids.length;
    const first = this.#n;
    if (first + k > this.#cap) this.#grow(first + k);
    this.#slots = undefined;
    for (let i = 0; i < k; i++) {
      this.#ids.push(ids[i]!);
      this.#rows.push(row);
      if (Array.isArray(metas)) {
        this.#metas.push(metas[i]!);
        this.#lazy.push(undefined);
      } else {
        this.#metas.push(undefined);
        this.#lazy.push(metas as LazyMetadata);
        this.#lazyLeft++;
      }
      this.#lazyAt.push(i);
    }
    this.#n += k;
    this.#norm.set(norms, first);
    if (scales !== null && q16 !== null) {
      this.#scale.set(scales, first);
      new Uint8Array(
        this.#quant.buffer,
        first * this.dims * 2,
        k * this.dims * 2,
      ).set(q16);
      this.#ready.fill(1, first, first + k);
    } else {
      // Loaded later by fillSegment() (the codes suffice to shortlist).
      this.#ready.fill(0, first, first + k);
      this.#missing += k;
    }
    if (codes !== null && this.#frozen) {
      this.#views();
      this.#prefixValid = false;
      this.#u8.set(codes, first * this.#codeBytes());
    } else {
      for (let i = 0; i < k; i++) this.#pending.push(first + i);
    }
  }

  /** Computes the missing codes (and the centre, unless fixed) after a bulk load. */
  finishLoad(): void {
    if (this.#frozen) {
      this.#views();
      for (const s of this.#pending) this.#encodeSlot(s);
    } else {
      this.#recentre();
    }
    this.#pending = [];
  }

  /** Removes one record (the last one moves into its slot). */
  remove(id: string): boolean {
    const slot = this.#slotOf.get(id);
    if (slot === undefined) return false;
    const last = this.#n - 1;
    this.#slotOf.delete(id);
    if (this.#ready[slot] === 0) this.#missing--;
    if (this.#metas[slot] === undefined) this.#lazyLeft--;
    if (slot !== last) {
      const lastId = this.#ids[last]!;
      this.#ids[slot] = lastId;
      this.#rows[slot] = this.#rows[last]!;
      this.#metas[slot] = this.#metas[last];
      this.#lazy[slot] = this.#lazy[last];
      this.#lazyAt[slot] = this.#lazyAt[last]!;
      this.#slotOf.set(lastId, slot);
      const d = this.dims;
      this.#quant.copyWithin(slot * d, last * d, last * d + d);
      this.#ready[slot] = this.#ready[last]!;
      this.#scale[slot] = this.#scale[last]!;
      this.#norm[slot] = this.#norm[last]!;
      this.#views();
      const b = this.#codeBytes();
      this.#prefixValid = false;
      this.#u8.copyWithin(slot * b, last * b, last * b + b);
    }
    this.#ids.pop();
    this.#rows.pop();
    this.#metas.pop();
    this.#lazy.pop();
    this.#lazyAt.pop();
    this.#n--;
    return true;
  }

  /** Removes everything. */
  clear(): void {
    this.#n = 0;
    this.#missing = 0;
    this.#ids = [];
    this.#rows = [];
    this.#metas = [];
    this.#lazy = [];
    this.#lazyAt = [];
    this.#lazyLeft = 0;
    this.#slots = new Map();
    this.#centredAt = 0;
    this.#centre.fill(0);
  }

  /** How many records wait for their int16 copy (see fillSegment()). */
  get missing(): number {
    return this.#missing;
  }

  /**
   * Loads the int16 copies of segment `row`'s records (its ids and its
   * `quant` column as stored) into the slots still waiting for them; records
   * gone or moved to another segment since are skipped. Returns how many
   * were filled.
   */
  fillSegment(
    row: number,
    ids: readonly string[],
    scales: Float32Array,
    q16: Uint8Array,
  ): number {
    if (this.#missing === 0) return 0;
    const d = this.dims;
    const src = new Int16Array(
      q16.buffer,
      q16.byteOffset,
      q16.byteLength >>> 1,
    );
    let filled = 0;
    // Usually the segment's records still sit in consecutive slots, all
    // waiting: one copy.
    const first = this.#slotOf.get(ids[0]!);
    if (first !== undefined && first + ids.length <= this.#n) {
      let whole = true;
      for (let i = 0; i < ids.length && whole; i++) {
        const s = first + i;
        whole = this.#ids[s] === ids[i] && this.#rows[s] === row &&
          this.#ready[s] === 0;
      }
      if (whole) {
        this.#quant.set(src.subarray(0, ids.length * d), first * d);
        this.#scale.set(scales.subarray(0, ids.length), first);
        this.#ready.fill(1, first, first + ids.length);
        this.#missing -= ids.length;
        return ids.length;
      }
    }
    for (let i = 0; i < ids.length; i++) {
      const slot = this.#slotOf.get(ids[i]!);
      if (
        slot === undefined || this.#rows[slot] !== row ||
        this.#ready[slot] === 1
      ) continue;
      this.#quant.set(src.subarray(i * d, i * d + d), slot * d);
      this.#scale[slot] = scales[i]!;
      this.#ready[slot] = 1;
      this.#missing--;
      filled++;
    }
    return filled;
  }

  /**
   * The segments (rows) of the candidates a search for `q` would rescore
   * that still wait for their int16 copy.
   */
  unreadyRowsFor(
    q: Float32Array,
    shortlist: number,
    pred: FilterPredicate | undefined,
  ): number[] {
    if (this.#missing === 0 || this.#n === 0) return [];
    this.#views();
    const rows = new Set<number>();
    for (const slot of this.#shortlist(q, Math.min(shortlist, this.#n), pred)) {
      if (this.#ready[slot] === 0) rows.add(this.#rows[slot]!);
    }
    return [...rows];
  }

  /** The segments (rows) of every record still waiting for its int16 copy. */
  unreadyRows(): number[] {
    const rows = new Set<number>();
    if (this.#missing === 0) return [];
    for (let s = 0; s < this.#n; s++) {
      if (this.#ready[s] === 0) rows.add(this.#rows[s]!);
    }
    return [...rows];
  }

  /**
   * The best candidates for `q` (normalised for cosine), by the int16
   * approximation, best first: at most `keep`, chosen among the
   * `shortlist` nearest codes that match `pred`.
   */
  search(
    q: Float32Array,
    shortlist: number,
    keep: number,
    pred: FilterPredicate | undefined,
  ): Candidate[] {
    const n = this.#n;
    if (n === 0) return [];
    this.#views();
    const slots = this.#shortlist(q, Math.min(shortlist, n), pred);
    const d = this.dims;
    const quant = this.#quant;
    let qn2 = 0;
    for (let i = 0; i < d; i++) qn2 += q[i]! * q[i]!;
    const scored: Candidate[] = [];
    const ready = this.#ready;
    for (const slot of slots) {
      // Never ranked by a copy not loaded yet (the store loads them first).
      if (ready[slot] === 0) continue;
      const base = slot * d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let i = 0;
      for (; i + 4 <= d; i += 4) {
        s0 += quant[base + i]! * q[i]!;
        s1 += quant[base + i + 1]! * q[i + 1]!;
        s2 += quant[base + i + 2]! * q[i + 2]!;
        s3 += quant[base + i + 3]! * q[i + 3]!;
      }
      for (; i < d; i++) s0 += quant[base + i]! * q[i]!;
      const s = (s0 + s1 + s2 + s3) * this.#scale[slot]!;
      let approx = s;
      if (this.metric === "l2") {
        const nn = this.#norm[slot]!;
        approx = -(nn * nn - 2 * s + qn2);
      }
      scored.push({
        slot,
        id: this.#ids[slot]!,
        metadata: this.#meta(slot),
        row: this.#rows[slot]!,
        approx,
      });
    }
    scored.sort((a, b) => b.approx - a.approx);
    if (scored.length > keep) scored.length = keep;
    return scored;
  }

  /**
   * Large collections: the 128-bit prefixes of all codes (a quarter of the
   * bytes) pick `20 × want` candidates, their full codes the `want`.
   */
  #twoStage(q: Float32Array, want: number): number[] {
    const n = this.#n;
    const k = this.#kernel;
    const qo = this.#queryOffset();
    const oo = this.#outOffset();
    const ho = this.#histOffset();
    const po = this.#prefixOffset();
    const d1 = this.#destOffset();
    const d2 = this.#dest2Offset();
    if (!this.#prefixValid) {
      k.prefix(0, n, this.words, po);
      this.#prefixValid = true;
    }
    this.#encode(q, qo);
    const histLen = this.#hist.length;
    const hist = new Uint32Array(this.#buffer!, ho, histLen);
    // Stage 1: prefixes.
    const wide = Math.min(n, Math.max(8 * want, 1000));
    hist.fill(0, 0, 129);
    k.hamming128(po, n, qo, oo, ho);
    let cum = 0;
    let t = 0;
    while (cum + hist[t]! < wide) cum += hist[t++]!;
    const m = k.select(oo, n, t, wide - cum, d1);
    // Stage 2: full codes of those.
    hist.fill(0);
    k.hammingGather(0, d1, m, this.words, qo, oo, ho);
    cum = 0;
    t = 0;
    const w = Math.min(want, m);
    while (cum + hist[t]! < w) cum += hist[t++]!;
    const c = k.select(oo, m, t, w - cum, d2);
    const pos = new Uint32Array(this.#buffer!, d2, c);
    const idx = new Uint32Array(this.#buffer!, d1, m);
    const out = new Array<number>(c);
    for (let i = 0; i < c; i++) out[i] = idx[pos[i]!]!;
    return out;
  }

  #shortlist(
    q: Float32Array,
    want: number,
    pred: FilterPredicate | undefined,
  ): number[] {
    const n = this.#n;
    if (pred === undefined && n >= TWO_STAGE_FROM && this.words >= 4) {
      return this.#twoStage(q, want);
    }
    const qo = this.#queryOffset();
    const oo = this.#outOffset();
    const ho = this.#histOffset();
    this.#encode(q, qo);
    const hist = new Uint32Array(this.#buffer!, ho, this.#hist.length);
    hist.fill(0);
    if (this.words === 8) this.#kernel.hamming512(0, n, qo, oo, ho);
    else this.#kernel.hamming(0, n, this.words, qo, oo, ho);
    const dist = this.#u16.subarray(oo >>> 1, (oo >>> 1) + n);
    const out: number[] = [];
    if (pred === undefined) {
      let cum = 0;
      let t = 0;
      while (cum + hist[t]! < want) cum += hist[t++]!;
      const d = this.#destOffset();
      const c = this.#kernel.select(oo, n, t, want - cum, d);
      return Array.from(new Uint32Array(this.#buffer!, d, c));
    }
    // With a filter: a counting sort by distance, then the nearest matches.
    const start = new Uint32Array(hist.length + 1);
    for (let b = 0; b < hist.length; b++) start[b + 1] = start[b]! + hist[b]!;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[start[dist[i]!]!++] = i;
    const metas = this.#allMetas();
    for (let j = 0; j < n && out.length < want; j++) {
      const slot = order[j]!;
      if (pred(metas[slot]!)) out.push(slot);
    }
    return out;
  }
}
