// Internal: checks shared by the sync targets.
import { AicoDataError } from "../errors.ts";
import { SYNC_OBJECT_NAME } from "./types.ts";

/** Throws INVALID_INPUT unless `name` is a well-formed object name. */
export function checkName(name: unknown, action: string): string {
  if (typeof name !== "string" || !SYNC_OBJECT_NAME.test(name)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: malformed object name "${String(name).slice(0, 80)}"`,
    );
  }
  return name;
}

/** Throws INVALID_INPUT unless `bytes` is a Uint8Array. */
export function checkBytes(bytes: unknown, action: string): Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: expected a Uint8Array`,
    );
  }
  return bytes;
}

/** Throws INVALID_INPUT unless `prefix` is a string of name characters. */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || !/^[a-z0-9._-]{0,200}$/.test(prefix)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot list objects: malformed prefix",
    );
  }
  return prefix;
}

/** The STORE_CLOSED error of a target. */
export function closedError(action: string): AicoDataError {
  return new AicoDataError(
    "STORE_CLOSED",
    `Cannot ${action}: the sync target is closed`,
  );
}
