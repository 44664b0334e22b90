// Linux Secret Service backend through `secret-tool` (libsecret-tools).

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

const WHERE = "the Secret Service";

/** An attribute pair that never matches an item: used to probe the service. */
const PROBE_ARGS = ["search", "aico-data-probe", "none"] as const;

function unavailable(action: string, result: ToolResult): AicoDataError {
  const detail = result.stderr.length > 0
    ? result.stderr
    : `"secret-tool" exited with code ${result.code}`;
  return new AicoDataError("KEYRING_UNAVAILABLE", `${action}: ${detail}`);
}

/**
 * Whether `secret-tool search` output lists at least one item. Items are
 * listed (without their secret) even when their collection is locked.
 */
function listsItem(stdout: Uint8Array): boolean {
  const text = new TextDecoder().decode(stdout);
  return /^\[[^\]\n]+\]$/m.test(text);
}

export class SecretServiceKeyring implements KeyringBackend {
  readonly kind = "secret-service" as const;
  readonly #options: ResolvedKeyringOptions;
  readonly #call: ToolCaller;

  constructor(options: ResolvedKeyringOptions, run: ToolRunner) {
    this.#options = options;
    this.#call = toolCaller(options.command, options.timeoutMs, run);
  }

  #attributes(account: string): string[] {
    return ["service", this.#options.service, "account", account];
  }

  /**
   * After `lookup` or `clear` failed: returns when no item for `account`
   * exists (the service answers and lists none); throws `KEYRING_UNAVAILABLE`
   * when the service does not answer or the item exists but could not be
   * used (its collection is locked). Attributes of locked items stay
   * searchable, so "absent" is never reported for a locked item.
   */
  async #failUnlessAbsent(
    action: string,
    account: string,
    first: ToolResult,
  ): Promise<void> {
    const result = await this.#call(action, [
      "search",
      "--all",
      ...this.#attributes(account),
    ]);
    let exists: boolean;
    try {
      if (result.code !== 0) {
        throw unavailable(action, first.stderr.length > 0 ? first : result);
      }
      exists = listsItem(result.stdout);
    } finally {
      result.stdout.fill(0);
    }
    if (exists) {
      throw new AicoDataError(
        "KEYRING_UNAVAILABLE",
        `${action}: the keyring is locked${
          first.stderr.length > 0 ? ` (${first.stderr})` : ""
        }`,
      );
    }
  }

  /** Throws `KEYRING_UNAVAILABLE` unless the Secret Service answers. */
  async probe(): Promise<void> {
    const action = `Cannot reach ${WHERE}`;
    const result = await this.#call(action, PROBE_ARGS);
    result.stdout.fill(0);
    if (result.code !== 0) throw unavailable(action, result);
  }

  async get(account: string): Promise<Uint8Array | undefined> {
    checkName("account", account);
    const action = `Cannot read the key "${account}" from ${WHERE}`;
    const result = await this.#call(action, [
      "lookup",
      ...this.#attributes(account),
    ]);
    try {
      if (result.code === 0) {
        return decodeSecret(new TextDecoder().decode(result.stdout), WHERE);
      }
    } finally {
      result.stdout.fill(0);
    }
    // lookup exits 1 both for "no such item" and for a locked item: ask again.
    await this.#failUnlessAbsent(action, account, result);
    return undefined;
  }

  async set(account: string, secret: Uint8Array): Promise<void> {
    checkName("account", account);
    checkSecret(secret);
    const action = `Cannot store the key "${account}" in ${WHERE}`;
    const stdin = encodeSecret(secret);
    try {
      const result = await this.#call(action, [
        "store",
        `--label=${this.#options.label}`,
        ...this.#attributes(account),
      ], stdin);
      result.stdout.fill(0);
      if (result.code !== 0) throw unavailable(action, result);
    } finally {
      stdin.fill(0);
    }
  }

  async delete(account: string): Promise<boolean> {
    checkName("account", account);
    const action = `Cannot delete the key "${account}" from ${WHERE}`;
    const result = await this.#call(action, [
      "clear",
      ...this.#attributes(account),
    ]);
    result.stdout.fill(0);
    if (result.code === 0) return true;
    // clear exits 1 both for "no such item" and for a locked item: ask again.
    await this.#failUnlessAbsent(action, account, result);
    return false;
  }
}
