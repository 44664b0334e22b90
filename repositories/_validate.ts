// Internal input validation shared by the repositories. Every check throws
// INVALID_INPUT before anything is written.
import { decodeText, utf8Length } from "../_internal/utf8.ts";
import { AicoDataError } from "../errors.ts";

// The one decodeText of the toolkit (CORRUPT_VALUE on invalid UTF-8).
export { decodeText };

/** A JSON value as stored by the repositories. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

export function invalid(what: string, detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot ${what}: ${detail}`);
}

function preview(value: unknown): string {
  const s = typeof value === "string" ? value : String(typeof value);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A string of [min, max] UTF-16 code units, without lone surrogates. */
export function checkString(
  value: unknown,
  name: string,
  what: string,
  max: number,
  min = 1,
): string {
  if (typeof value !== "string") {
    throw invalid(what, `"${name}" must be a string, got ${typeof value}`);
  }
  if (value.length < min || value.length > max) {
    throw invalid(
      what,
      `"${name}" must be ${min} to ${max} characters long, got ${value.length}`,
    );
  }
  if (LONE_SURROGATE.test(value)) {
    throw invalid(
      what,
      `"${name}" must be well-formed Unicode (lone surrogate)`,
    );
  }
  return value;
}

/**
 * A well-formed string of at most `maxBytes` bytes as UTF-8 (and at least
 * `min` code units).
 */
export function checkText(
  value: unknown,
  name: string,
  what: string,
  maxBytes: number,
  min = 1,
): string {
  // UTF-8 never takes fewer bytes than UTF-16 code units: the cheap length
  // check first, the byte count only when it could matter.
  const text = checkString(value, name, what, maxBytes, min);
  if (text.length * 3 > maxBytes && utf8Length(text) > maxBytes) {
    throw invalid(what, `"${name}" is larger than ${maxBytes} bytes`);
  }
  return text;
}

const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** An identifier: 1 to 128 characters of `[A-Za-z0-9_-]`. */
export function checkId(value: unknown, name: string, what: string): string {
  if (typeof value !== "string" || !ID_RE.test(value)) {
    throw invalid(
      what,
      `"${name}" must be 1 to 128 characters of [A-Za-z0-9_-], got "${
        preview(value)
      }"`,
    );
  }
  return value;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,255}$/;

/** A namespace or key: 1 to 256 characters of `[A-Za-z0-9_.:@-]`, not starting with punctuation. */
export function checkName(value: unknown, name: string, what: string): string {
  if (typeof value !== "string" || !NAME_RE.test(value)) {
    throw invalid(
      what,
      `"${name}" must be 1 to 256 characters of [A-Za-z0-9_.:@-] (starting with a letter or digit), got "${
        preview(value)
      }"`,
    );
  }
  return value;
}

/** A millisecond timestamp: a safe non-negative integer. */
export function checkTimestamp(
  value: unknown,
  name: string,
  what: string,
): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(
      what,
      `"${name}" must be a non-negative integer (ms), got ${
        preview(String(value))
      }`,
    );
  }
  return value;
}

/** An integer in [min, max]. */
export function checkInt(
  value: unknown,
  name: string,
  what: string,
  min: number,
  max: number,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw invalid(
      what,
      `"${name}" must be an integer in [${min}, ${max}], got ${
        preview(String(value))
      }`,
    );
  }
  return value;
}

/** Maximum nesting depth of a stored JSON value. */
export const MAX_JSON_DEPTH = 64;

function checkJsonValue(
  value: unknown,
  depth: number,
  seen: Set<object>,
  what: string,
  name: string,
): void {
  if (depth > MAX_JSON_DEPTH) {
    throw invalid(what, `"${name}" nests deeper than ${MAX_JSON_DEPTH}`);
  }
  switch (typeof value) {
    case "string":
      if (LONE_SURROGATE.test(value)) {
        throw invalid(what, `"${name}" holds a string with a lone surrogate`);
      }
      return;
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw invalid(what, `"${name}" holds a non-finite number`);
      }
      return;
    case "object": {
      if (value === null) return;
      if (seen.has(value)) throw invalid(what, `"${name}" is circular`);
      seen.add(value);
      if (Array.isArray(value)) {
        for (const v of value) checkJsonValue(v, depth + 1, seen, what, name);
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw invalid(what, `"${name}" holds a non-plain object`);
        }
        for (const k of Object.keys(value)) {
          if (LONE_SURROGATE.test(k)) {
            throw invalid(what, `"${name}" holds a key with a lone surrogate`);
          }
          checkJsonValue(
            (value as Record<string, unknown>)[k],
            depth + 1,
            seen,
            what,
            name,
          );
        }
      }
      seen.delete(value);
      return;
    }
    default:
      throw invalid(
        what,
        `"${name}" holds a value of type ${typeof value}, not JSON`,
      );
  }
}

/**
 * Checks that a value is plain JSON (no undefined, functions, bigints,
 * NaN, class instances, cycles) and serialises it within `maxBytes`.
 */
export function toJson(
  value: unknown,
  name: string,
  what: string,
  maxBytes: number,
): string {
  checkJsonValue(value, 0, new Set(), what, name);
  const text = JSON.stringify(value);
  // UTF-16 length is a cheap lower bound; count bytes only near the limit.
  if (
    text.length > maxBytes ||
    (text.length * 3 > maxBytes && utf8Length(text) > maxBytes)
  ) {
    throw invalid(what, `"${name}" is larger than ${maxBytes} bytes as JSON`);
  }
  return text;
}

/** Checks a JSON object (not an array nor a scalar). */
export function toJsonObject(
  value: unknown,
  name: string,
  what: string,
  maxBytes: number,
): string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(what, `"${name}" must be a plain object`);
  }
  return toJson(value, name, what, maxBytes);
}

/** An options object or undefined. */
export function checkObject(
  value: unknown,
  name: string,
  what: string,
): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(what, `"${name}" must be an object`);
  }
  return value as Record<string, unknown>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeText(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Encodes a keyset cursor as opaque base64url text. */
export function encodeCursor(parts: readonly (string | number)[]): string {
  const bytes = encoder.encode(JSON.stringify(parts));
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes a cursor made by {@linkcode encodeCursor} with the given shape. */
export function decodeCursor(
  cursor: unknown,
  shape: readonly ("string" | "number")[],
  what: string,
): (string | number)[] {
  if (
    typeof cursor !== "string" || cursor.length > 1024 ||
    !/^[A-Za-z0-9_-]*$/.test(cursor)
  ) {
    throw invalid(what, '"cursor" is malformed');
  }
  let parts: unknown;
  try {
    const bin = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    parts = JSON.parse(
      decoder.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))),
    );
  } catch {
    throw invalid(what, '"cursor" is malformed');
  }
  if (
    !Array.isArray(parts) || parts.length !== shape.length ||
    !parts.every((p, i) =>
      typeof p === shape[i] &&
      (typeof p !== "number" || Number.isSafeInteger(p))
    )
  ) {
    throw invalid(what, '"cursor" is malformed');
  }
  return parts as (string | number)[];
}

/** A page size in [1, max]. */
export function checkLimit(
  value: unknown,
  what: string,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  return checkInt(value, "limit", what, 1, max);
}

/** Refuses a sparse array (a hole would reach the store as a bare TypeError). */
export function checkDense(list: readonly unknown[], what: string): void {
  for (let i = 0; i < list.length; i++) {
    if (!(i in list)) {
      throw invalid(what, `item ${i} is missing (a sparse array)`);
    }
  }
}
