// Internal: checks a Deno permission before an operation that needs it.
import { AicoDataError } from "./errors.ts";

/**
 * Throws `PERMISSION_DENIED` naming `flag` unless `descriptor` is granted.
 * It never prompts.
 */
export async function requirePermission(
  descriptor: Deno.PermissionDescriptor,
  flag: string,
  action: string,
): Promise<void> {
  const status = await Deno.permissions.query(descriptor);
  if (status.state !== "granted") {
    throw new AicoDataError(
      "PERMISSION_DENIED",
      `Cannot ${action}: missing Deno permission, run with ${flag}`,
    );
  }
}
