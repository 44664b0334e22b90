// Internal: input checks shared by both vector stores, so that both refuse
// the same inputs with the same codes before anything is stored.

import { AicoDataError } from "../errors.ts";
import {
  compileFilter,
  type FilterPredicate,
  validateMetadata,
} from "./filter.ts";
import type {
  Metadata,
  MetadataFilter,
  VectorMetric,
  VectorQuery,
  VectorRecord,
} from "./types.ts";

/** The longest record id, in characters. */
export const MAX_ID_LENGTH = 512;
/** The largest `k` of a query. */
export const MAX_K = 10_000;
/** The largest number of records of one upsert. */
export const MAX_BATCH = 100_000;
/** The longest document, in characters. */
export const MAX_DOCUMENT_LENGTH = 1_000_000;
/** The largest vector size. */
export const MAX_DIMENSIONS = 16_384;

const NAME = /^[a-zA-Z0-9._-]{3,512}$/;
const METRICS: readonly VectorMetric[] = ["cosine", "dot", "l2"];

function invalid(message: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", message);
}

/** Checks a collection name: 3 to 512 characters of `[a-zA-Z0-9._-]`. */
export function checkCollectionName(name: unknown, action: string): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw invalid(
      `Cannot ${action}: collection name "${
        String(name).slice(0, 80)
      }" is not 3 to 512 characters of [a-zA-Z0-9._-]`,
    );
  }
  return name;
}

/** Checks an embedder id: 1 to 512 well-formed characters. */
export function checkEmbedderId(id: unknown, action: string): string {
  if (
    typeof id !== "string" || id.length === 0 || id.length > 512 ||
    !id.isWellFormed()
  ) {
    throw invalid(`Cannot ${action}: embedderId is not 1 to 512 characters`);
  }
  return id;
}

/** Checks a vector size. */
export function checkDimensions(d: unknown, action: string): number {
  if (
    typeof d !== "number" || !Number.isSafeInteger(d) || d < 1 ||
    d > MAX_DIMENSIONS
  ) {
    throw invalid(
      `Cannot ${action}: dimensions "${
        String(d)
      }" is not an integer from 1 to ${MAX_DIMENSIONS}`,
    );
  }
  return d;
}

/** Checks a metric. */
export function checkMetric(m: unknown, action: string): VectorMetric {
  if (!METRICS.includes(m as VectorMetric)) {
    throw invalid(
      `Cannot ${action}: metric "${String(m)}" is not "cosine", "dot" or "l2"`,
    );
  }
  return m as VectorMetric;
}

/** Checks a record id. */
export function checkId(id: unknown, action: string): string {
  if (
    typeof id !== "string" || id.length === 0 || id.length > MAX_ID_LENGTH ||
    !id.isWellFormed()
  ) {
    throw invalid(
      `Cannot ${action}: an id is not a well-formed string of 1 to ${MAX_ID_LENGTH} characters`,
    );
  }
  return id;
}

/** Checks a vector and copies it into a new `Float32Array`. */
export function checkVector(
  v: unknown,
  dims: number,
  action: string,
): Float32Array {
  if (!(v instanceof Float32Array) && !Array.isArray(v)) {
    throw invalid(
      `Cannot ${action}: a vector is not a Float32Array or an array`,
    );
  }
  const arr = v as ArrayLike<unknown>;
  if (arr.length !== dims) {
    throw invalid(
      `Cannot ${action}: a vector has ${arr.length} components, expected ${dims}`,
    );
  }
  if (v instanceof Float32Array) {
    const out = v.slice();
    for (let i = 0; i < dims; i++) {
      if (!Number.isFinite(out[i]!)) {
        throw invalid(
          `Cannot ${action}: vector component ${i} is not a finite number`,
        );
      }
    }
    return out;
  }
  const out = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    const x = arr[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw invalid(
        `Cannot ${action}: vector component ${i} is not a finite number`,
      );
    }
    out[i] = x;
    if (!Number.isFinite(out[i]!)) {
      throw invalid(
        `Cannot ${action}: vector component ${i} overflows float32`,
      );
    }
  }
  return out;
}

/** A record after the checks. */
export interface CheckedRecord {
  readonly id: string;
  readonly vector: Float32Array;
  readonly metadata: Metadata;
  readonly document: string | undefined;
}

/** Checks every record of an upsert (all before any is stored). */
export function checkRecords(
  records: unknown,
  dims: number,
): CheckedRecord[] {
  const action = "upsert";
  if (!Array.isArray(records)) {
    throw invalid("Cannot upsert: records must be an array");
  }
  if (records.length > MAX_BATCH) {
    throw invalid(`Cannot upsert: more than ${MAX_BATCH} records in one call`);
  }
  const seen = new Set<string>();
  const out: CheckedRecord[] = [];
  for (const r of records as unknown[]) {
    if (typeof r !== "object" || r === null) {
      throw invalid("Cannot upsert: a record is not an object");
    }
    const rec = r as Partial<VectorRecord>;
    const id = checkId(rec.id, action);
    if (seen.has(id)) {
      throw invalid(`Cannot upsert: id "${id}" appears twice in one call`);
    }
    seen.add(id);
    const vector = checkVector(rec.vector, dims, action);
    const metadata = validateMetadata(rec.metadata, action);
    const document = rec.document;
    if (
      document !== undefined &&
      (typeof document !== "string" || document.length > MAX_DOCUMENT_LENGTH ||
        !document.isWellFormed())
    ) {
      throw invalid(
        `Cannot upsert: the document of "${id}" is not a well-formed string of at most ${MAX_DOCUMENT_LENGTH} characters`,
      );
    }
    out.push({ id, vector, metadata, document });
  }
  return out;
}

/** A query after the checks. */
export interface CheckedQuery {
  readonly vector: Float32Array;
  readonly k: number;
  readonly filter: MetadataFilter | undefined;
  readonly predicate: FilterPredicate | undefined;
  readonly includeDocuments: boolean;
}

/** Checks a query. */
export function checkQuery(query: unknown, dims: number): CheckedQuery {
  const action = "query";
  if (typeof query !== "object" || query === null) {
    throw invalid("Cannot query: the query is not an object");
  }
  const q = query as Partial<VectorQuery>;
  const vector = checkVector(q.vector, dims, action);
  const k = q.k;
  if (typeof k !== "number" || !Number.isSafeInteger(k) || k < 1 || k > MAX_K) {
    throw invalid(
      `Cannot query: k "${String(k)}" is not an integer from 1 to ${MAX_K}`,
    );
  }
  const includeDocuments = q.includeDocuments ?? false;
  if (typeof includeDocuments !== "boolean") {
    throw invalid("Cannot query: includeDocuments is not a boolean");
  }
  const predicate = q.filter === undefined
    ? undefined
    : compileFilter(q.filter);
  return { vector, k, filter: q.filter, predicate, includeDocuments };
}

/** Checks the target of a delete. */
export function checkDeleteTarget(
  target: unknown,
): { ids: string[] } | { filter: MetadataFilter; predicate: FilterPredicate } {
  if (Array.isArray(target)) {
    if (target.length > MAX_BATCH) {
      throw invalid(`Cannot delete: more than ${MAX_BATCH} ids in one call`);
    }
    return { ids: [...new Set(target.map((id) => checkId(id, "delete")))] };
  }
  if (
    typeof target === "object" && target !== null &&
    "filter" in target && Object.keys(target).length === 1
  ) {
    const filter = (target as { filter: MetadataFilter }).filter;
    return { filter, predicate: compileFilter(filter) };
  }
  throw invalid("Cannot delete: expected an array of ids or { filter }");
}

/** Throws `ABORTED` (the signal's reason as cause) when the signal fired. */
export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AicoDataError("ABORTED", "Operation aborted", {
      cause: signal.reason,
    });
  }
}
