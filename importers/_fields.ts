// Internal: field readers shared by the format parsers; every failure is an
// IMPORT_INVALID naming the file, the conversation and the field.
import { AicoDataError } from "../errors.ts";

/** Where a parser is: file, conversation (index and id). */
export interface Where {
  readonly file: string;
  readonly conversation: string;
}

/** An `IMPORT_INVALID` error naming file, conversation and field. */
export function fieldError(
  where: Where,
  field: string,
  detail: string,
): AicoDataError {
  return new AicoDataError(
    "IMPORT_INVALID",
    `Cannot import "${where.file}": conversation ${where.conversation}, field "${field}" ${detail}`,
  );
}

/** A plain object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Requires an object. */
export function obj(
  v: unknown,
  where: Where,
  field: string,
): Record<string, unknown> {
  if (!isObject(v)) throw fieldError(where, field, "must be an object");
  return v;
}

/** An optional string (null or absent gives undefined). */
export function optString(
  v: unknown,
  where: Where,
  field: string,
): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw fieldError(where, field, "must be a string");
  return v;
}

/** Seconds (float or integer) or ms since the epoch; null or absent gives undefined. */
export function epochTime(
  v: unknown,
  where: Where,
  field: string,
): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw fieldError(where, field, "must be a time in seconds or null");
  }
  // Above 1e11 the value can only be milliseconds (year 5138 in seconds).
  return Math.round(v > 1e11 ? v : v * 1000);
}

/** An ISO 8601 time; null or absent gives undefined. */
export function isoTime(
  v: unknown,
  where: Where,
  field: string,
): number | undefined {
  if (v === undefined || v === null) return undefined;
  const t = typeof v === "string" ? Date.parse(v) : NaN;
  if (!Number.isFinite(t) || t < 0) {
    throw fieldError(where, field, "must be an ISO 8601 time");
  }
  return t;
}

const ID_CHARS = /[^A-Za-z0-9_-]/g;

/** An id the repositories accept, made from a source id. */
export function safeId(source: string): string {
  const id = source.replace(ID_CHARS, "_").slice(0, 128);
  return id.length === 0 ? "_" : id;
}
