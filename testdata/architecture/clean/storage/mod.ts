/**
 * Fixture: a folder entry. Comments and examples do not count:
 * import { x } from "../schema/mod.ts";
 *
 * ```ts
 * import { openStorage } from "../schema/mod.ts";
 * ```
 */
// import "../schema/mod.ts";
export const URL_LIKE = "http://example.org/import('libsql')";
export const PATTERN = /["'`]/;
export const TEMPLATE = `a ${"b"} import("lmdb")`;

/** Loads the engine. */
export async function open(): Promise<string> {
  const { openLocal } = await import("./_local.ts");
  return await openLocal();
}
