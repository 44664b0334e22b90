// Internal readers of result values with typed CORRUPT_VALUE failures.
import { AicoDataError } from "../errors.ts";
import type { Value } from "../storage/types.ts";

function corrupt(expected: string, v: Value | undefined): AicoDataError {
  return new AicoDataError(
    "CORRUPT_VALUE",
    `Cannot read row: expected ${expected}, got ${
      v === null ? "null" : typeof v
    }`,
  );
}

export function num(v: Value | undefined): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw corrupt("a number", v);
}

export function optNum(v: Value | undefined): number | undefined {
  return v === null || v === undefined ? undefined : num(v);
}

export function str(v: Value | undefined): string {
  if (typeof v === "string") return v;
  throw corrupt("text", v);
}

export function optStr(v: Value | undefined): string | undefined {
  return v === null || v === undefined ? undefined : str(v);
}

export function bytes(v: Value | undefined): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if ((v as unknown) instanceof ArrayBuffer) {
    return new Uint8Array(v as unknown as ArrayBuffer);
  }
  throw corrupt("a blob", v);
}

export function optBytes(v: Value | undefined): Uint8Array | undefined {
  return v === null || v === undefined ? undefined : bytes(v);
}

/**
 * Parses a stored JSON object; damage gives `CORRUPT_VALUE` naming the row
 * (`what`, for example `conversation "c1" metadata`), never a bare
 * `SyntaxError`.
 */
export function jsonObject(v: Value | undefined, what: string): unknown {
  const text = str(v);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot read row: ${what} is not valid JSON`,
      { cause: error },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot read row: ${what} is not a JSON object`,
    );
  }
  return parsed;
}
