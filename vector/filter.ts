/**
 * Metadata filters in Chroma's `where` language, for both vector stores:
 * {@linkcode validateFilter} checks a filter, {@linkcode compileFilter}
 * turns it into a predicate (the embedded store), {@linkcode toChromaWhere}
 * into the form Chroma's server accepts (the Chroma store), and
 * {@linkcode validateMetadata} checks record metadata.
 *
 * Grammar: `{ field: value }` (equality), `{ field: { $op: operand } }` with
 * `$eq $ne` (string, number or boolean), `$gt $gte $lt $lte` (number),
 * `$in $nin` (a non-empty list of strings, numbers or booleans),
 * `{ $and: [f, ...] }`, `{ $or: [f, ...] }` (non-empty lists of filters);
 * several fields in one object are an implicit `$and`. An empty object
 * `{}` matches everything.
 *
 * Semantics: a comparison never matches across types (`5` is not `"5"`,
 * `1` is not `true`); `$gt`-style comparisons match numbers only; a record
 * without the field matches only `$ne` and `$nin` (as in Chroma).
 *
 * @module
 */

import { AicoDataError } from "../errors.ts";
import type {
  FieldFilter,
  Metadata,
  MetadataFilter,
  MetadataValue,
} from "./types.ts";

/** The largest number of nodes (fields, operands) a filter may have. */
export const MAX_FILTER_NODES = 1000;
/** The largest nesting depth of `$and` / `$or`. */
export const MAX_FILTER_DEPTH = 32;
/** The longest metadata key, in characters. */
export const MAX_METADATA_KEY_LENGTH = 256;
/** The largest number of metadata fields of one record. */
export const MAX_METADATA_FIELDS = 256;
/** The longest metadata string value, in characters. */
export const MAX_METADATA_STRING_LENGTH = 16_384;

const COMPARISONS = new Set(["$gt", "$gte", "$lt", "$lte"]);
const EQUALITIES = new Set(["$eq", "$ne"]);
const LISTS = new Set(["$in", "$nin"]);

function bad(message: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Invalid filter: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return false;
  }
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isValue(value: unknown): value is MetadataValue {
  return typeof value === "string" || typeof value === "boolean" ||
    (typeof value === "number" && Number.isFinite(value));
}

function checkField(name: string): void {
  if (name.length === 0 || name.length > MAX_METADATA_KEY_LENGTH) {
    throw bad(
      `field name of length ${name.length} is not 1 to ${MAX_METADATA_KEY_LENGTH}`,
    );
  }
  if (name.startsWith("$")) throw bad(`unknown operator "${name}"`);
  if (!name.isWellFormed()) throw bad("a field name is not well-formed UTF-16");
}

interface Budget {
  nodes: number;
}

function count(budget: Budget): void {
  if (++budget.nodes > MAX_FILTER_NODES) {
    throw bad(`more than ${MAX_FILTER_NODES} nodes`);
  }
}

function checkFieldFilter(name: string, ff: unknown, budget: Budget): void {
  count(budget);
  if (isValue(ff)) return;
  if (!isPlainObject(ff)) {
    throw bad(
      `the condition on "${name}" is not a value or an operator object`,
    );
  }
  const ops = Object.keys(ff);
  if (ops.length !== 1) {
    throw bad(`the condition on "${name}" must have exactly one operator`);
  }
  const op = ops[0]!;
  const operand = ff[op];
  if (EQUALITIES.has(op)) {
    if (!isValue(operand)) {
      throw bad(
        `"${op}" on "${name}" needs a string, finite number or boolean`,
      );
    }
  } else if (COMPARISONS.has(op)) {
    if (typeof operand !== "number" || !Number.isFinite(operand)) {
      throw bad(`"${op}" on "${name}" needs a finite number`);
    }
  } else if (LISTS.has(op)) {
    if (!Array.isArray(operand) || operand.length === 0) {
      throw bad(`"${op}" on "${name}" needs a non-empty list`);
    }
    for (const v of operand) {
      count(budget);
      if (!isValue(v)) {
        throw bad(
          `"${op}" on "${name}" lists a value that is not a string, finite number or boolean`,
        );
      }
    }
  } else {
    throw bad(`unknown operator "${op}" on "${name}"`);
  }
}

function checkNode(node: unknown, depth: number, budget: Budget): void {
  if (depth > MAX_FILTER_DEPTH) {
    throw bad(`nested deeper than ${MAX_FILTER_DEPTH}`);
  }
  if (!isPlainObject(node)) throw bad("a filter must be a plain object");
  count(budget);
  for (const [key, value] of Object.entries(node)) {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(value) || value.length === 0) {
        throw bad(`"${key}" needs a non-empty list of filters`);
      }
      for (const child of value) checkNode(child, depth + 1, budget);
    } else {
      checkField(key);
      checkFieldFilter(key, value, budget);
    }
  }
}

/**
 * Checks a metadata filter.
 *
 * @param filter The filter (untrusted input).
 * @returns The filter, typed.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed filter: an unknown
 * operator, a wrong operand type, an empty `$and`/`$or`/`$in`, a non-finite
 * number, more than {@linkcode MAX_FILTER_NODES} nodes or
 * {@linkcode MAX_FILTER_DEPTH} levels.
 *
 * @example A valid and an invalid filter
 * ```ts
 * import { validateFilter } from "./filter.ts";
 * import assert from "node:assert/strict";
 *
 * validateFilter({ $or: [{ role: "user" }, { year: { $gte: 2024 } }] });
 * assert.throws(() => validateFilter({ year: { $gt: "2024" } }));
 * ```
 */
export function validateFilter(filter: unknown): MetadataFilter {
  checkNode(filter, 0, { nodes: 0 });
  return filter as MetadataFilter;
}

/** A compiled filter: whether one record's metadata matches. */
export type FilterPredicate = (metadata: Metadata) => boolean;

function compileField(name: string, ff: FieldFilter): FilterPredicate {
  if (typeof ff !== "object") return (m) => m[name] === ff;
  const [op, operand] = Object.entries(ff)[0] as [string, unknown];
  switch (op) {
    case "$eq":
      return (m) => m[name] === operand;
    case "$ne":
      return (m) => m[name] !== operand;
    case "$gt":
      return (m) => {
        const v = m[name];
        return typeof v === "number" && v > (operand as number);
      };
    case "$gte":
      return (m) => {
        const v = m[name];
        return typeof v === "number" && v >= (operand as number);
      };
    case "$lt":
      return (m) => {
        const v = m[name];
        return typeof v === "number" && v < (operand as number);
      };
    case "$lte":
      return (m) => {
        const v = m[name];
        return typeof v === "number" && v <= (operand as number);
      };
    case "$in": {
      const set = new Set(operand as MetadataValue[]);
      return (m) => {
        const v = m[name];
        return v !== undefined && set.has(v);
      };
    }
    default: {
      const set = new Set(operand as MetadataValue[]);
      return (m) => {
        const v = m[name];
        return v === undefined || !set.has(v);
      };
    }
  }
}

function all(preds: FilterPredicate[]): FilterPredicate {
  if (preds.length === 1) return preds[0]!;
  return (m) => {
    for (const p of preds) if (!p(m)) return false;
    return true;
  };
}

function compileNode(node: Record<string, unknown>): FilterPredicate {
  const preds: FilterPredicate[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === "$and") {
      preds.push(all((value as Record<string, unknown>[]).map(compileNode)));
    } else if (key === "$or") {
      const alts = (value as Record<string, unknown>[]).map(compileNode);
      preds.push((m) => {
        for (const p of alts) if (p(m)) return true;
        return false;
      });
    } else {
      preds.push(compileField(key, value as FieldFilter));
    }
  }
  return preds.length === 0 ? () => true : all(preds);
}

/**
 * Validates a filter and compiles it into a predicate over metadata.
 *
 * @param filter The filter.
 * @returns A function telling whether a record's metadata matches.
 * @throws {AicoDataError} `INVALID_INPUT` as {@linkcode validateFilter}.
 *
 * @example Evaluating a filter
 * ```ts
 * import { compileFilter } from "./filter.ts";
 * import assert from "node:assert/strict";
 *
 * const match = compileFilter({ role: { $in: ["user", "assistant"] }, year: { $lt: 2025 } });
 * assert.equal(match({ role: "user", year: 2024 }), true);
 * assert.equal(match({ role: "system", year: 2024 }), false);
 * assert.equal(match({ role: "user" }), false);
 * ```
 */
export function compileFilter(filter: unknown): FilterPredicate {
  return compileNode(validateFilter(filter) as Record<string, unknown>);
}

/** A filter in the strict form Chroma's server accepts. */
export type ChromaWhere = Record<string, unknown>;

function toChromaNode(node: Record<string, unknown>): ChromaWhere | undefined {
  const parts: ChromaWhere[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === "$and" || key === "$or") {
      const children = (value as Record<string, unknown>[])
        .map(toChromaNode)
        .filter((c): c is ChromaWhere => c !== undefined);
      if (children.length === 0) {
        // Every child matched everything.
        if (key === "$or") return undefined;
        continue;
      }
      parts.push(children.length === 1 ? children[0]! : { [key]: children });
    } else {
      parts.push({
        [key]: typeof value === "object" ? { ...value } : { $eq: value },
      });
    }
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0]! : { $and: parts };
}

/**
 * Validates a filter and rewrites it in the strict form Chroma's server
 * accepts: one key per object (implicit `$and` made explicit), `$and`/`$or`
 * of a single filter unwrapped, bare values as `$eq`.
 *
 * @param filter The filter.
 * @returns The Chroma `where` object, or `undefined` when it matches
 * everything.
 * @throws {AicoDataError} `INVALID_INPUT` as {@linkcode validateFilter}.
 *
 * @example Implicit `$and` made explicit
 * ```ts
 * import { toChromaWhere } from "./filter.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(toChromaWhere({ role: "user", year: { $gt: 2020 } }), {
 *   $and: [{ role: { $eq: "user" } }, { year: { $gt: 2020 } }],
 * });
 * assert.equal(toChromaWhere({}), undefined);
 * ```
 */
export function toChromaWhere(filter: unknown): ChromaWhere | undefined {
  return toChromaNode(validateFilter(filter) as Record<string, unknown>);
}

/**
 * Checks the metadata of one record: a plain object of at most
 * {@linkcode MAX_METADATA_FIELDS} fields, keys of 1 to
 * {@linkcode MAX_METADATA_KEY_LENGTH} characters not starting with `$`,
 * values strings (at most {@linkcode MAX_METADATA_STRING_LENGTH}
 * characters, well-formed), finite numbers or booleans.
 *
 * @param metadata The metadata (untrusted), or `undefined` for none.
 * @param action What the caller does, for the message (`"upsert"`).
 * @returns A frozen copy.
 * @throws {AicoDataError} `INVALID_INPUT` for anything else.
 *
 * @example Valid and invalid metadata
 * ```ts
 * import { validateMetadata } from "./filter.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(validateMetadata({ role: "user", n: 1 }, "upsert"), { role: "user", n: 1 });
 * assert.throws(() => validateMetadata({ n: NaN }, "upsert"));
 * ```
 */
export function validateMetadata(metadata: unknown, action: string): Metadata {
  if (metadata === undefined) return Object.freeze({});
  if (!isPlainObject(metadata)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: metadata must be a plain object`,
    );
  }
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_FIELDS) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: more than ${MAX_METADATA_FIELDS} metadata fields`,
    );
  }
  const out: Record<string, MetadataValue> = {};
  for (const [key, value] of entries) {
    if (
      key.length === 0 || key.length > MAX_METADATA_KEY_LENGTH ||
      key.startsWith("$") || !key.isWellFormed()
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot ${action}: metadata key of length ${key.length} is empty, too long, starts with "$" or is not well-formed`,
      );
    }
    if (
      !isValue(value) ||
      (typeof value === "string" &&
        (value.length > MAX_METADATA_STRING_LENGTH || !value.isWellFormed()))
    ) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot ${action}: metadata "${key}" is not a string (well-formed, at most ${MAX_METADATA_STRING_LENGTH} characters), finite number or boolean`,
      );
    }
    out[key] = value;
  }
  return Object.freeze(out);
}
