// Internal helpers of the keyring backends: running a keyring tool as a child
// process, validating names, and encoding secrets. Never exported from mod.ts.

import { AicoDataError } from "../errors.ts";

/** What a finished tool run produced. `stdout` may hold a secret: zero it. */
export interface ToolResult {
  /** The exit code (non-zero also when killed by a signal). */
  readonly code: number;
  /** Raw standard output; the caller fills it with zeros after use. */
  readonly stdout: Uint8Array;
  /** Standard error, already sanitised by {@linkcode sanitizeToolText}. */
  readonly stderr: string;
}

/** One tool invocation; `stdin` carries secrets so that they never go in argv. */
export interface ToolRequest {
  readonly command: string;
  readonly args: readonly string[];
  readonly stdin?: Uint8Array;
  readonly timeoutMs: number;
  /** Context for error messages, e.g. `Cannot store the key in the Secret Service`. */
  readonly action: string;
}

/** Runs a tool; the real one spawns a process, tests may pass a fake. */
export type ToolRunner = (request: ToolRequest) => Promise<ToolResult>;

/** A runner bound to one tool and its timeout. */
export type ToolCaller = (
  action: string,
  args: readonly string[],
  stdin?: Uint8Array,
) => Promise<ToolResult>;

/** Binds `run` to `command` and `timeoutMs`. */
export function toolCaller(
  command: string,
  timeoutMs: number,
  run: ToolRunner,
): ToolCaller {
  return (action, args, stdin) =>
    run({
      command,
      args,
      ...(stdin === undefined ? {} : { stdin }),
      timeoutMs,
      action,
    });
}

const MAX_STDERR_CHARS = 200;

/**
 * Makes tool output safe for an error message: keeps the first non-empty
 * line, removes every run of 16 or more base64/base64url/hex characters
 * (where key material would show) and caps the length.
 */
export function sanitizeToolText(text: string): string {
  const line =
    text.split(/\r?\n/).map((l) => l.trim()).find((l) => l.length > 0) ?? "";
  // deno-lint-ignore no-control-regex
  const clean = line.replace(/[\u0000-\u001f\u007f]/g, " ")
    .replace(/[A-Za-z0-9+/=_-]{16,}/g, "[redacted]");
  return clean.length > MAX_STDERR_CHARS
    ? `${clean.slice(0, MAX_STDERR_CHARS)}...`
    : clean;
}

/** Throws `PERMISSION_DENIED` naming `--allow-run=<command>` unless granted. */
export async function requireRunPermission(
  command: string,
  action: string,
): Promise<void> {
  const status = await Deno.permissions.query({ name: "run", command });
  if (status.state !== "granted") {
    throw new AicoDataError(
      "PERMISSION_DENIED",
      `${action}: missing permission to run "${command}", add --allow-run=${command}`,
    );
  }
}

/**
 * The real runner: spawns `command` with `args`, writes `stdin` (if any) and
 * closes it, kills the child after `timeoutMs` (a locked keyring may wait
 * for an unlock prompt forever). Failures become typed errors that never
 * contain stdin or stdout.
 */
export const runTool: ToolRunner = async (request) => {
  const { command, args, stdin, timeoutMs, action } = request;
  await requireRunPermission(command, action);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command, {
        args: [...args],
        stdin: stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        signal: controller.signal,
      }).spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new AicoDataError(
          "KEYRING_UNAVAILABLE",
          `${action}: the tool "${command}" is not installed`,
          { cause: err },
        );
      }
      if (
        err instanceof Deno.errors.NotCapable ||
        err instanceof Deno.errors.PermissionDenied
      ) {
        throw new AicoDataError(
          "PERMISSION_DENIED",
          `${action}: cannot run "${command}", add --allow-run=${command}`,
          { cause: err },
        );
      }
      throw new AicoDataError(
        "KEYRING_UNAVAILABLE",
        `${action}: cannot start "${command}"`,
        { cause: err },
      );
    }
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(stdin);
        await writer.close();
      } catch {
        // The tool exited without reading everything: its exit code tells why.
        await writer.abort().catch(() => {});
      }
    }
    const output = await child.output();
    if (timedOut) {
      output.stdout.fill(0);
      throw new AicoDataError(
        "KEYRING_UNAVAILABLE",
        `${action}: "${command}" did not answer within ${timeoutMs} ms (the keyring may be locked and waiting for an unlock prompt)`,
      );
    }
    return {
      code: output.success ? 0 : (output.code === 0 ? 1 : output.code),
      stdout: output.stdout,
      stderr: sanitizeToolText(new TextDecoder().decode(output.stderr)),
    };
  } finally {
    clearTimeout(timer);
  }
};

/** Whether `value` contains an ASCII control character. */
export function hasControlChar(value: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\u0000-\u001f\u007f]/.test(value);
}

/**
 * Checks a service, account or label: 1 to 255 characters, no control
 * characters, not starting with `-` (the tools would read it as an option).
 */
export function checkName(what: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring ${what}: expected a string, got ${typeof value}`,
    );
  }
  if (value.length === 0 || value.length > 255) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring ${what}: expected 1 to 255 characters, got ${value.length}`,
    );
  }
  if (hasControlChar(value)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring ${what}: control characters are not allowed`,
    );
  }
  if (value.startsWith("-")) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring ${what} "${value}": must not start with "-"`,
    );
  }
  return value;
}

/** The largest secret a backend stores (a data key is 32 bytes). */
export const MAX_SECRET_BYTES = 4096;

/** Checks a secret to store; the message never shows its bytes. */
export function checkSecret(secret: unknown): Uint8Array {
  if (!(secret instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Invalid keyring secret: expected a Uint8Array",
    );
  }
  if (secret.length === 0 || secret.length > MAX_SECRET_BYTES) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Invalid keyring secret: expected 1 to ${MAX_SECRET_BYTES} bytes, got ${secret.length}`,
    );
  }
  return secret;
}

/** Standard padded base64 of `secret` as ASCII bytes (for a tool's stdin). */
export function encodeSecret(secret: Uint8Array): Uint8Array {
  return new TextEncoder().encode(secret.toBase64());
}

/**
 * Decodes stored base64 text (surrounding whitespace allowed). Malformed or
 * empty data is `CORRUPT_VALUE`; the message names only `where`, never the
 * data, and keeps no cause (a decoder message could quote its input).
 */
export function decodeSecret(text: string, where: string): Uint8Array {
  const trimmed = text.trim();
  let bytes: Uint8Array | undefined;
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    try {
      bytes = Uint8Array.fromBase64(trimmed, {
        alphabet: "base64",
        lastChunkHandling: "strict",
      });
    } catch {
      bytes = undefined;
    }
  }
  if (bytes === undefined || bytes.length === 0) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot read the key from ${where}: the stored value is not valid base64`,
    );
  }
  return bytes;
}
