// The OS keyring for the CLI: a missing tool is reported as missing (with
// the package to install), not as a missing permission.
import { join } from "node:path";
import { type KeyringBackend, openKeyring } from "../crypto/mod.ts";
import { CliError } from "./_errors.ts";

/** Where `tool` is on PATH, or undefined (also when PATH is unreadable). */
export function findOnPath(tool: string): string | undefined {
  let path: string | undefined;
  try {
    path = Deno.env.get("PATH");
  } catch {
    return undefined;
  }
  const sep = Deno.build.os === "windows" ? ";" : ":";
  for (const d of (path ?? "").split(sep)) {
    if (d === "") continue;
    try {
      if (Deno.statSync(join(d, tool)).isFile) return join(d, tool);
    } catch {
      // not there, or not readable
    }
  }
  return undefined;
}

/** Opens the OS keyring after checking that its tool is installed. */
export async function openOsKeyring(): Promise<KeyringBackend> {
  const os = Deno.build.os;
  const tool = os === "darwin"
    ? "security"
    : os === "linux"
    ? "secret-tool"
    : undefined;
  let pathReadable = true;
  try {
    Deno.env.get("PATH");
  } catch {
    pathReadable = false;
  }
  if (tool !== undefined && pathReadable && findOnPath(tool) === undefined) {
    throw new CliError(
      `The OS keyring tool "${tool}" is not installed`,
      os === "linux"
        ? "install it (Debian/Ubuntu: apt-get install libsecret-tools) or unlock with the passphrase"
        : "unlock with the passphrase",
    );
  }
  return await openKeyring("auto");
}
