// Internal: the option checks shared by the `resolveXxxOptions()`
// normalisers. Each throws INVALID_INPUT naming the option, in the form
// `Cannot <action>: "<name>" must be ...`. Not exported from the package.
import { AicoDataError } from "../errors.ts";

/** A safe integer >= `min`, or `fallback` when `undefined`. */
export function optionalInteger(
  action: string,
  name: string,
  value: unknown,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < min
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: "${name}" must be an integer >= ${min}`,
    );
  }
  return value;
}

/** A boolean, or `fallback` when `undefined`. */
export function optionalBoolean(
  action: string,
  name: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: "${name}" must be a boolean`,
    );
  }
  return value;
}

/** A non-empty string, or `undefined`. */
export function optionalString(
  action: string,
  name: string,
  value: unknown,
): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: "${name}" must be a non-empty string`,
    );
  }
  return value;
}

/** An options object (`undefined` stands for `{}`). */
export function optionsObject<T extends object>(
  action: string,
  options: T | undefined,
): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== "object") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: options must be an object`,
    );
  }
  return options;
}
