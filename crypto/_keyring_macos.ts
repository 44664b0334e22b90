// macOS Keychain backend through `security`. UNTESTED on a real Mac: the
// machine this was written on runs Linux; only the command construction is
// unit-tested (with a fake runner).

import { AicoDataError } from "../errors.ts";
import {
  checkName,
  checkSecret,
  decodeSecret,
  encodeSecret,
  type ToolCaller,
  toolCaller,
  type ToolResult,
  type ToolRunner,
} from "./_keyring_run.ts";
import type { KeyringBackend, ResolvedKeyringOptions } from "./keyring.ts";

const WHERE = "the macOS Keychain";

/** `security` exits with the low byte of errSecItemNotFound (-25300). */
const EXIT_ITEM_NOT_FOUND = 44;

function unavailable(action: string, result: ToolResult): AicoDataError {
  const detail = result.stderr.length > 0
    ? result.stderr
    : `"security" exited with code ${result.code}`;
  return new AicoDataError("KEYRING_UNAVAILABLE", `${action}: ${detail}`);
}

/**
 * A name as one double-quoted word of a `security -i` command line; quotes
 * and backslashes are refused rather than escaped.
 */
function quoted(what: string, value: string): string {
  if (/["\\]/.test(value)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring ${what} "${value}": quotes and backslashes are not allowed with the macOS Keychain`,
    );
  }
  return `"${value}"`;
}

export class MacosKeychain implements KeyringBackend {
  readonly kind = "macos-keychain" as const;
  readonly #options: ResolvedKeyringOptions;
  readonly #call: ToolCaller;

  constructor(options: ResolvedKeyringOptions, run: ToolRunner) {
    this.#options = options;
    this.#call = toolCaller(options.command, options.timeoutMs, run);
  }

  /** Throws `KEYRING_UNAVAILABLE` unless a default keychain exists. */
  async probe(): Promise<void> {
    const action = `Cannot reach ${WHERE}`;
    const result = await this.#call(action, ["default-keychain"]);
    result.stdout.fill(0);
    if (result.code !== 0) throw unavailable(action, result);
  }

  async get(account: string): Promise<Uint8Array | undefined> {
    checkName("account", account);
    const action = `Cannot read the key "${account}" from ${WHERE}`;
    const result = await this.#call(action, [
      "find-generic-password",
      "-s",
      this.#options.service,
      "-a",
      account,
      "-w",
    ]);
    try {
      if (result.code === 0) {
        return decodeSecret(new TextDecoder().decode(result.stdout), WHERE);
      }
    } finally {
      result.stdout.fill(0);
    }
    if (result.code === EXIT_ITEM_NOT_FOUND) return undefined;
    throw unavailable(action, result);
  }

  async set(account: string, secret: Uint8Array): Promise<void> {
    checkName("account", account);
    checkSecret(secret);
    const action = `Cannot store the key "${account}" in ${WHERE}`;
    // `security -i` reads the command from stdin: the secret stays out of argv.
    const head = new TextEncoder().encode(
      `add-generic-password -U -s ${
        quoted("service", this.#options.service)
      } -a ${quoted("account", account)} -l ${
        quoted("label", this.#options.label)
      } -w "`,
    );
    const b64 = encodeSecret(secret);
    const stdin = new Uint8Array(head.length + b64.length + 2);
    stdin.set(head, 0);
    stdin.set(b64, head.length);
    stdin.set([0x22, 0x0a], head.length + b64.length); // closing quote, newline
    b64.fill(0);
    try {
      const result = await this.#call(action, ["-i"], stdin);
      result.stdout.fill(0);
      // Interactive mode may exit 0 after a failed command: stderr tells.
      if (result.code !== 0 || result.stderr.length > 0) {
        throw unavailable(action, result);
      }
    } finally {
      stdin.fill(0);
    }
  }

  async delete(account: string): Promise<boolean> {
    checkName("account", account);
    const action = `Cannot delete the key "${account}" from ${WHERE}`;
    const result = await this.#call(action, [
      "delete-generic-password",
      "-s",
      this.#options.service,
      "-a",
      account,
    ]);
    result.stdout.fill(0);
    if (result.code === 0) return true;
    if (result.code === EXIT_ITEM_NOT_FOUND) return false;
    throw unavailable(action, result);
  }
}
