// Internal: checks Deno permissions before an operation that needs them, so a
// missing one is a typed error naming the flag instead of a prompt or a
// NotCapable deep inside a driver.
import { AicoDataError } from "../errors.ts";

/**
 * Throws `PERMISSION_DENIED` naming `flag` unless `descriptor` is granted.
 * It never prompts.
 *
 * @param descriptor The permission needed.
 * @param flag The command-line flag that grants it, e.g. `--allow-ffi`.
 * @param action What cannot be done without it, e.g. `open cache`.
 */
export function requirePermission(
  descriptor: Deno.PermissionDescriptor,
  flag: string,
  action: string,
): void {
  if (Deno.permissions.querySync(descriptor).state !== "granted") {
    throw new AicoDataError(
      "PERMISSION_DENIED",
      `Cannot ${action}: missing Deno permission, run with ${flag}`,
    );
  }
}
