// Fixture: the one adapter of the SDK, loaded inside the function.
import type Database from "libsql";
import { SHARED } from "../_internal/shared.ts";

export type Db = InstanceType<typeof Database>;

/** Opens the driver lazily. */
export async function openLocal(): Promise<string> {
  const { default: Driver } = await import("libsql");
  return `${typeof Driver}${SHARED}`;
}
