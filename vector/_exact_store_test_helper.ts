// Test-only: an in-memory exact-scan VectorStore (cosine), so that semantic
// memory can be tested before the embedded libSQL store lands beside it. Not
// exported; the lead switches the tests to the real store at merge.
import { AicoDataError } from "../errors.ts";
import type {
  CollectionInfo,
  FieldFilter,
  Metadata,
  MetadataFilter,
  MetadataValue,
  VectorHit,
  VectorQuery,
  VectorRecord,
  VectorStore,
} from "./types.ts";

function matches(m: Metadata, f: MetadataFilter): boolean {
  for (const [key, cond] of Object.entries(f)) {
    if (key === "$and") {
      if (!(cond as MetadataFilter[]).every((g) => matches(m, g))) return false;
    } else if (key === "$or") {
      if (!(cond as MetadataFilter[]).some((g) => matches(m, g))) return false;
    } else if (!field(m[key], cond as FieldFilter)) return false;
  }
  return true;
}

function field(v: MetadataValue | undefined, c: FieldFilter): boolean {
  if (typeof c !== "object") return v === c;
  const [op, x] = Object.entries(c)[0]!;
  switch (op) {
    case "$eq":
      return v === x;
    case "$ne":
      return v !== x;
    case "$gt":
      return typeof v === "number" && v > (x as number);
    case "$gte":
      return typeof v === "number" && v >= (x as number);
    case "$lt":
      return typeof v === "number" && v < (x as number);
    case "$lte":
      return typeof v === "number" && v <= (x as number);
    case "$in":
      return (x as MetadataValue[]).includes(v as MetadataValue);
    case "$nin":
      return !(x as MetadataValue[]).includes(v as MetadataValue);
  }
  throw new AicoDataError("INVALID_INPUT", `Cannot filter: unknown "${op}"`);
}

interface Row {
  vector: Float32Array;
  metadata: Metadata;
  document?: string;
}

export function openExactStore(info: CollectionInfo): VectorStore {
  const rows = new Map<string, Row>();
  let closed = false;
  const guard = () => {
    if (closed) {
      throw new AicoDataError("STORE_CLOSED", "Cannot use store: closed");
    }
  };
  const unit = (v: Float32Array | readonly number[]) => {
    if (v.length !== info.dimensions) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot use vector: wrong dimension",
      );
    }
    const f = Float32Array.from(v);
    let s = 0;
    for (const x of f) {
      if (!Number.isFinite(x)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot use vector: not finite",
        );
      }
      s += x * x;
    }
    const n = Math.sqrt(s) || 1;
    for (let i = 0; i < f.length; i++) f[i] = f[i]! / n;
    return f;
  };
  return {
    info,
    get closed() {
      return closed;
    },
    upsert(records: readonly VectorRecord[]) {
      guard();
      const checked = records.map((r) => ({ id: r.id, v: unit(r.vector), r }));
      for (const { id, v, r } of checked) {
        rows.set(id, {
          vector: v,
          metadata: r.metadata ?? {},
          ...(r.document === undefined ? {} : { document: r.document }),
        });
      }
      return Promise.resolve();
    },
    query(q: VectorQuery): Promise<VectorHit[]> {
      guard();
      if (!Number.isInteger(q.k) || q.k < 1 || q.k > 10_000) {
        throw new AicoDataError("INVALID_INPUT", "Cannot query: bad k");
      }
      const v = unit(q.vector);
      const hits: VectorHit[] = [];
      for (const [id, r] of rows) {
        if (q.filter && !matches(r.metadata, q.filter)) continue;
        let s = 0;
        for (let i = 0; i < v.length; i++) s += v[i]! * r.vector[i]!;
        hits.push({
          id,
          score: s,
          metadata: r.metadata,
          ...(q.includeDocuments && r.document !== undefined
            ? { document: r.document }
            : {}),
        });
      }
      hits.sort((a, b) => b.score - a.score);
      return Promise.resolve(hits.slice(0, q.k));
    },
    delete(target) {
      guard();
      let n = 0;
      if (Array.isArray(target)) {
        for (const id of target as readonly string[]) if (rows.delete(id)) n++;
      } else {
        const f = (target as { filter: MetadataFilter }).filter;
        for (const [id, r] of [...rows]) {
          if (matches(r.metadata, f)) {
            rows.delete(id);
            n++;
          }
        }
      }
      return Promise.resolve(n);
    },
    count(filter?: MetadataFilter) {
      guard();
      let n = 0;
      for (const r of rows.values()) {
        if (!filter || matches(r.metadata, filter)) n++;
      }
      return Promise.resolve(n);
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
    [Symbol.asyncDispose]() {
      closed = true;
      return Promise.resolve();
    },
  };
}
