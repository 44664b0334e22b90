/**
 * OS keyring backends behind one {@linkcode KeyringBackend} interface, so that
 * a data key (DEK) can be unlocked without a passphrase:
 *
 * | kind | store | Deno permissions |
 * |---|---|---|
 * | `"secret-service"` | Linux Secret Service (GNOME Keyring, KWallet) through `secret-tool` | `--allow-run=secret-tool` |
 * | `"macos-keychain"` | macOS login Keychain through `security` (untested here) | `--allow-run=security` |
 * | `"env"` | a base64 environment variable, read-only, for headless use | `--allow-env=AICO_DATA_KEY` |
 * | `"none"` | nothing is stored | none |
 *
 * A locked, missing or unreachable keyring is `KEYRING_UNAVAILABLE`: a backend
 * never falls back silently to a weaker store, and {@linkcode openKeyring}
 * picks `env` or `none` only when asked by name.
 *
 * @remarks
 * Wire format: the secret bytes are stored as standard padded base64 text,
 * because the tools handle text. Stored text that is not valid base64 (or
 * empty) is reported as `CORRUPT_VALUE` when read: the keyring works, the
 * value in it is damaged. Secrets reach the tools over stdin, never argv;
 * buffers that held them are zeroed after use. Error messages never contain
 * secret bytes in any encoding: tool stderr is reduced to one line with every
 * run of 16 or more base64/hex characters redacted.
 *
 * @example Reading a key from an environment variable
 * ```ts
 * import { envKeyring } from "./keyring.ts";
 * import assert from "node:assert/strict";
 *
 * Deno.env.set("AICO_DATA_KEY_DEMO", new Uint8Array(32).fill(7).toBase64());
 * const keyring = envKeyring({ variable: "AICO_DATA_KEY_DEMO" });
 * const key = await keyring.get("default");
 * assert.deepEqual(key, new Uint8Array(32).fill(7));
 * Deno.env.delete("AICO_DATA_KEY_DEMO");
 * ```
 *
 * @module
 */

import { requirePermission } from "../_internal/permissions.ts";
import { settle } from "./_settle.ts";
import { AicoDataError } from "../errors.ts";
import {
  checkName,
  checkSecret,
  decodeSecret,
  hasControlChar,
  runTool,
} from "./_keyring_run.ts";
import { MacosKeychain } from "./_keyring_macos.ts";
import { SecretServiceKeyring } from "./_keyring_secret_service.ts";

/** The kinds of {@linkcode KeyringBackend}. */
export type KeyringKind = "secret-service" | "macos-keychain" | "env" | "none";

/**
 * Where a secret such as a data key is kept outside the store, by account
 * name. Accounts are 1 to 255 characters without control characters, not
 * starting with `-`; secrets are 1 to 4096 bytes.
 */
export interface KeyringBackend {
  /** Which store this is. */
  readonly kind: KeyringKind;
  /**
   * Reads the secret of `account`.
   *
   * @param account The account name, e.g. a store id.
   * @returns The secret bytes, or `undefined` when no such item exists.
   * @throws {AicoDataError} `KEYRING_UNAVAILABLE` when the keyring is locked,
   * missing or does not answer; `CORRUPT_VALUE` when the stored text is not
   * base64; `PERMISSION_DENIED` naming the missing flag; `INVALID_INPUT` for
   * a bad account.
   */
  get(account: string): Promise<Uint8Array | undefined>;
  /**
   * Stores (or replaces) the secret of `account`.
   *
   * @param account The account name.
   * @param secret The secret bytes (1 to 4096).
   * @throws {AicoDataError} `KEYRING_UNAVAILABLE` when the keyring is locked,
   * missing, read-only (`env`, `none`) or refuses; `PERMISSION_DENIED`;
   * `INVALID_INPUT` for a bad account or secret.
   */
  set(account: string, secret: Uint8Array): Promise<void>;
  /**
   * Deletes the secret of `account`.
   *
   * @param account The account name.
   * @returns `true` when an item was deleted, `false` when none existed.
   * @throws {AicoDataError} `KEYRING_UNAVAILABLE` when the keyring is locked,
   * missing, read-only (`env`) or refuses; `PERMISSION_DENIED`;
   * `INVALID_INPUT` for a bad account.
   */
  delete(account: string): Promise<boolean>;
}

/** Options of the keyring factories; each backend reads the fields it uses. */
export interface KeyringOptions {
  /**
   * The service name the items are filed under (`service` attribute of the
   * Secret Service, `-s` of the Keychain).
   *
   * @default {"aico-data"}
   */
  readonly service?: string;
  /**
   * The label keyring user interfaces show for an item.
   *
   * @default {"@aico/data key"}
   */
  readonly label?: string;
  /**
   * The tool to run: a name looked up in `PATH` or a path. Grant
   * `--allow-run` for exactly this value. Unused by `env` and `none`.
   *
   * @default {"secret-tool"} for `secret-service`, `"security"` for `macos-keychain`
   */
  readonly command?: string;
  /**
   * How long one tool run may take before it is killed and the call fails
   * with `KEYRING_UNAVAILABLE` (a locked keyring may wait for an unlock
   * prompt that never comes). Raise it when a person types the password.
   *
   * @default {10000}
   */
  readonly timeoutMs?: number;
  /**
   * The environment variable the `env` backend reads (base64 of the secret).
   *
   * @default {"AICO_DATA_KEY"}
   */
  readonly variable?: string;
}

/** {@linkcode KeyringOptions} with every default applied (frozen). */
export interface ResolvedKeyringOptions {
  /** See {@linkcode KeyringOptions.service}. */
  readonly service: string;
  /** See {@linkcode KeyringOptions.label}. */
  readonly label: string;
  /** See {@linkcode KeyringOptions.command}; `""` for `env` and `none`. */
  readonly command: string;
  /** See {@linkcode KeyringOptions.timeoutMs}. */
  readonly timeoutMs: number;
  /** See {@linkcode KeyringOptions.variable}. */
  readonly variable: string;
}

const KINDS: readonly KeyringKind[] = [
  "secret-service",
  "macos-keychain",
  "env",
  "none",
];

const DEFAULT_COMMANDS: Readonly<Record<KeyringKind, string>> = {
  "secret-service": "secret-tool",
  "macos-keychain": "security",
  "env": "",
  "none": "",
};

const MAX_TIMEOUT_MS = 3_600_000;

/**
 * Applies the defaults to keyring options and validates them. Pure: no I/O.
 *
 * @param kind The backend the options are for (the default `command`
 * depends on it).
 * @param options The options given by the caller.
 * @returns The frozen, complete options.
 * @throws {AicoDataError} `INVALID_INPUT` for an unknown kind, a bad service
 * or label (empty, over 255 characters, control characters, leading `-`),
 * an empty command, a timeout that is not an integer from 1 to 3600000 ms, or
 * a variable name that is not `[A-Za-z_][A-Za-z0-9_]*`.
 *
 * @example Defaults and overrides
 * ```ts
 * import { resolveKeyringOptions } from "./keyring.ts";
 * import assert from "node:assert/strict";
 *
 * const options = resolveKeyringOptions("secret-service", { timeoutMs: 2000 });
 * assert.equal(options.service, "aico-data");
 * assert.equal(options.command, "secret-tool");
 * assert.equal(options.timeoutMs, 2000);
 * assert.ok(Object.isFrozen(options));
 * ```
 */
export function resolveKeyringOptions(
  kind: KeyringKind,
  options: KeyringOptions = {},
): ResolvedKeyringOptions {
  if (!KINDS.includes(kind)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring kind "${String(kind)}": expected one of ${
        KINDS.join(", ")
      }`,
    );
  }
  const service = checkName("service", options.service ?? "aico-data");
  const label = checkName("label", options.label ?? "@aico/data key");
  const command = options.command ?? DEFAULT_COMMANDS[kind];
  if (
    typeof command !== "string" || (kind !== "env" && kind !== "none" &&
      (command.length === 0 || hasControlChar(command)))
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Invalid keyring command: expected a non-empty tool name or path",
    );
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (
    !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring timeout ${
        String(timeoutMs)
      }: expected an integer from 1 to ${MAX_TIMEOUT_MS} ms`,
    );
  }
  const variable = options.variable ?? "AICO_DATA_KEY";
  if (
    typeof variable !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring variable "${
        String(variable)
      }": expected letters, digits and "_", not starting with a digit`,
    );
  }
  return Object.freeze({ service, label, command, timeoutMs, variable });
}

/**
 * The Linux Secret Service (GNOME Keyring, KWallet, KeePassXC) through
 * `secret-tool` from libsecret-tools. Items carry the attributes
 * `service=<service>` and `account=<account>`.
 *
 * Needs `--allow-run=secret-tool` (or the `command` given) and a D-Bus
 * session bus (`DBUS_SESSION_BUS_ADDRESS` in the environment the tool
 * inherits). Every call runs the tool once or twice.
 *
 * @remarks
 * The secret goes to `secret-tool store` over stdin. Attributes of locked
 * items stay visible on the Secret Service, so `get()` and `delete()` report
 * "absent" only when no item exists at all; an item in a locked collection
 * gives `KEYRING_UNAVAILABLE`. A desktop may show an unlock prompt: the call
 * waits up to `timeoutMs`.
 *
 * @param options The service name, label, tool and timeout.
 * @returns The backend (no I/O happens until it is used).
 * @throws {AicoDataError} `INVALID_INPUT` for bad options (see
 * {@linkcode resolveKeyringOptions}).
 *
 * @example A missing tool is KEYRING_UNAVAILABLE, never a fallback
 * ```ts
 * import { secretServiceKeyring } from "./keyring.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const keyring = secretServiceKeyring({ command: "no-such-secret-tool" });
 * assert.equal(keyring.kind, "secret-service");
 * await assert.rejects(
 *   keyring.get("default"),
 *   (err) => isAicoDataError(err, "KEYRING_UNAVAILABLE"),
 * );
 * ```
 *
 * @example Storing a data key (needs a running, unlocked Secret Service)
 * ```ts ignore
 * import { secretServiceKeyring } from "./keyring.ts";
 *
 * const keyring = secretServiceKeyring();
 * await keyring.set("my-store", crypto.getRandomValues(new Uint8Array(32)));
 * const key = await keyring.get("my-store"); // Uint8Array(32)
 * ```
 */
export function secretServiceKeyring(
  options?: KeyringOptions,
): KeyringBackend {
  return new SecretServiceKeyring(
    resolveKeyringOptions("secret-service", options),
    runTool,
  );
}

/**
 * The macOS login Keychain through `/usr/bin/security` (generic passwords
 * with `-s <service> -a <account>`). Needs `--allow-run=security`.
 *
 * UNTESTED on a real Mac: only the command construction is unit-tested. The
 * secret is written with `security -i`, which reads the
 * `add-generic-password` command from stdin, so it never appears in argv.
 * Service, account and label must not contain `"` or `\`.
 *
 * @param options The service name, label, tool and timeout.
 * @returns The backend (no I/O happens until it is used).
 * @throws {AicoDataError} `INVALID_INPUT` for bad options (see
 * {@linkcode resolveKeyringOptions}).
 *
 * @example A missing tool is KEYRING_UNAVAILABLE
 * ```ts
 * import { macosKeychain } from "./keyring.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const keyring = macosKeychain({ command: "no-such-security-tool" });
 * assert.equal(keyring.kind, "macos-keychain");
 * await assert.rejects(
 *   keyring.delete("default"),
 *   (err) => isAicoDataError(err, "KEYRING_UNAVAILABLE"),
 * );
 * ```
 */
export function macosKeychain(options?: KeyringOptions): KeyringBackend {
  return new MacosKeychain(
    resolveKeyringOptions("macos-keychain", options),
    runTool,
  );
}

class EnvKeyring implements KeyringBackend {
  readonly kind = "env" as const;
  readonly #variable: string;

  constructor(variable: string) {
    this.#variable = variable;
  }

  get(account: string): Promise<Uint8Array | undefined> {
    return settle(() => {
      checkName("account", account);
      requirePermission(
        { name: "env", variable: this.#variable },
        `--allow-env=${this.#variable}`,
        "read the key from the environment",
      );
      const text = Deno.env.get(this.#variable);
      if (text === undefined || text.trim().length === 0) return undefined;
      return decodeSecret(text, `the environment variable "${this.#variable}"`);
    });
  }

  set(account: string, secret: Uint8Array): Promise<void> {
    return settle(() => {
      checkName("account", account);
      checkSecret(secret);
      throw new AicoDataError(
        "KEYRING_UNAVAILABLE",
        `Cannot store the key "${account}": the environment variable "${this.#variable}" is read-only`,
      );
    });
  }

  delete(account: string): Promise<boolean> {
    return settle(() => {
      checkName("account", account);
      throw new AicoDataError(
        "KEYRING_UNAVAILABLE",
        `Cannot delete the key "${account}": the environment variable "${this.#variable}" is read-only`,
      );
    });
  }
}

/**
 * A read-only keyring that takes the secret from an environment variable
 * holding its standard base64 (for servers and CI without an OS keyring).
 * Every account reads the same variable. Needs `--allow-env=<variable>`
 * (default `--allow-env=AICO_DATA_KEY`).
 *
 * @remarks
 * An unset or blank variable reads as `undefined`; text that is not valid
 * padded base64 is `CORRUPT_VALUE`. `set()` and `delete()` always fail with
 * `KEYRING_UNAVAILABLE`: a process cannot persist its environment. An
 * environment variable is visible to the process and its children: prefer
 * an OS keyring or a key file where one is available.
 *
 * @param options `variable`: the variable to read.
 * @returns The backend.
 * @throws {AicoDataError} `INVALID_INPUT` for a bad variable name.
 *
 * @example Headless use
 * ```ts
 * import { envKeyring } from "./keyring.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const keyring = envKeyring({ variable: "AICO_DATA_KEY_EXAMPLE" });
 * assert.equal(await keyring.get("default"), undefined); // unset
 * Deno.env.set("AICO_DATA_KEY_EXAMPLE", "AAECAw==");
 * assert.deepEqual(await keyring.get("default"), new Uint8Array([0, 1, 2, 3]));
 * await assert.rejects(
 *   keyring.set("default", new Uint8Array(32)),
 *   (err) => isAicoDataError(err, "KEYRING_UNAVAILABLE"),
 * );
 * Deno.env.delete("AICO_DATA_KEY_EXAMPLE");
 * ```
 */
export function envKeyring(options?: KeyringOptions): KeyringBackend {
  return new EnvKeyring(resolveKeyringOptions("env", options).variable);
}

class NoKeyring implements KeyringBackend {
  readonly kind = "none" as const;

  get(account: string): Promise<Uint8Array | undefined> {
    return settle(() => {
      checkName("account", account);
      return undefined;
    });
  }

  set(account: string, secret: Uint8Array): Promise<void> {
    return settle(() => {
      checkName("account", account);
      checkSecret(secret);
      throw new AicoDataError(
        "KEYRING_UNAVAILABLE",
        `Cannot store the key "${account}": no keyring is configured`,
      );
    });
  }

  delete(account: string): Promise<boolean> {
    return settle(() => {
      checkName("account", account);
      return false;
    });
  }
}

/**
 * The explicit "no keyring" choice: nothing is stored, every `get()` is
 * `undefined` (the caller then asks for the passphrase), `set()` fails with
 * `KEYRING_UNAVAILABLE`, `delete()` is `false`. Needs no permission.
 *
 * @returns The backend.
 *
 * @example Nothing is kept
 * ```ts
 * import { noKeyring } from "./keyring.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const keyring = noKeyring();
 * assert.equal(await keyring.get("default"), undefined);
 * await assert.rejects(
 *   keyring.set("default", new Uint8Array(32)),
 *   (err) => isAicoDataError(err, "KEYRING_UNAVAILABLE"),
 * );
 * assert.equal(await keyring.delete("default"), false);
 * ```
 */
export function noKeyring(): KeyringBackend {
  return new NoKeyring();
}

/**
 * Opens a keyring backend. `"auto"` picks the Secret Service on Linux when
 * `secret-tool` runs and the service answers, the Keychain on macOS, and
 * otherwise fails: `env` and `none` are used only when asked for by name.
 * The OS keyring is probed once (Secret Service: a search that matches
 * nothing; Keychain: `security default-keychain`), so an unreachable bus or
 * a missing tool fails here already rather than at first use.
 *
 * Permissions: `--allow-run=secret-tool` (Linux) or `--allow-run=security`
 * (macOS) for `"auto"`; see each backend.
 *
 * @param kind `"auto"` or a {@linkcode KeyringKind}.
 * @param options Options for the backend.
 * @returns The backend.
 * @throws {AicoDataError} `KEYRING_UNAVAILABLE` when no OS keyring is
 * available (unsupported OS, tool missing, no session bus);
 * `PERMISSION_DENIED` naming the flag; `INVALID_INPUT` for a bad kind or
 * options.
 *
 * @example Choosing explicitly
 * ```ts
 * import { openKeyring } from "./keyring.ts";
 * import assert from "node:assert/strict";
 *
 * const keyring = await openKeyring("none");
 * assert.equal(keyring.kind, "none");
 * ```
 *
 * @example Auto never falls back to a weaker store
 * ```ts
 * import { openKeyring } from "./keyring.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * try {
 *   const keyring = await openKeyring("auto", { command: "no-such-tool" });
 *   assert.fail(`unexpected ${keyring.kind}`);
 * } catch (err) {
 *   assert.ok(isAicoDataError(err, "KEYRING_UNAVAILABLE"));
 * }
 * ```
 */
export async function openKeyring(
  kind: "auto" | KeyringKind,
  options?: KeyringOptions,
): Promise<KeyringBackend> {
  switch (kind) {
    case "auto": {
      const os = Deno.build.os;
      if (os === "darwin") return await openKeyring("macos-keychain", options);
      if (os !== "linux") {
        throw new AicoDataError(
          "KEYRING_UNAVAILABLE",
          `Cannot open an OS keyring: none is supported on "${os}", choose "env" or "none" explicitly`,
        );
      }
      return await openKeyring("secret-service", options);
    }
    case "secret-service": {
      const keyring = new SecretServiceKeyring(
        resolveKeyringOptions("secret-service", options),
        runTool,
      );
      await keyring.probe();
      return keyring;
    }
    case "macos-keychain": {
      const keyring = new MacosKeychain(
        resolveKeyringOptions("macos-keychain", options),
        runTool,
      );
      await keyring.probe();
      return keyring;
    }
    case "env":
      return envKeyring(options);
    case "none":
      return noKeyring();
    default:
      throw new AicoDataError(
        "INVALID_INPUT",
        `Invalid keyring kind "${String(kind)}": expected "auto" or one of ${
          KINDS.join(", ")
        }`,
      );
  }
}
