// Internal: what both engine adapters share (settings, error translation,
// plain-value rules, the close guard).
import { AicoDataError } from "../errors.ts";
import type { PlainValue } from "./engine.ts";

/**
 * Statements run on every connection before anything else: no extension
 * install or autoload (else DuckDB goes to the network), no file or network
 * access, then the configuration is locked so that no query can undo it.
 */
export const LOCKDOWN: readonly string[] = Object.freeze([
  "SET autoinstall_known_extensions = false",
  "SET arrow_lossless_conversion = true",
  "SET autoload_known_extensions = false",
  "SET enable_external_access = false",
  "SET allow_community_extensions = false",
  "SET lock_configuration = true",
]);

const TABLE_NAME = /^[a-z_][a-z0-9_]*$/;

export function checkTableName(table: string): void {
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot load table: name "${String(table)}" must match [a-z_][a-z0-9_]*`,
    );
  }
}

export function sqlError(action: string, e: unknown): AicoDataError {
  if (e instanceof AicoDataError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new AicoDataError("SQL_ERROR", `Cannot ${action}: ${msg}`, {
    cause: e,
  });
}

export function closedError(action: string): AicoDataError {
  return new AicoDataError(
    "STORE_CLOSED",
    `Cannot ${action}: the analytics engine is closed`,
  );
}

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** A bigint as a number when exactly representable, else kept as bigint. */
export function plainInteger(v: bigint): number | bigint {
  return v <= MAX && v >= -MAX ? Number(v) : v;
}

/** Quotes an identifier for DuckDB. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export type { PlainValue };
