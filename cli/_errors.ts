// deno-lint-ignore-file no-console
// The CLI's failures: usage errors (exit 2), interruption (exit 130), and one
// line for everything else (exit 1), with a hint on how to fix it.
import { type AicoDataErrorCode, isAicoDataError } from "../errors.ts";

/** A wrong command line: exit 2. */
export class UsageError extends Error {
  /** The command whose usage to point to. */
  readonly command: string | undefined;
  /**
   * @param message What is wrong.
   * @param command The command, for "see aico-data help <command>".
   */
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Ctrl-C (at a prompt or during work): exit 130. */
export class Interrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "Interrupted";
  }
}

/** A failure with its fix: exit 1. */
export class CliError extends Error {
  /** How to fix it. */
  readonly hint: string | undefined;
  /**
   * @param message What went wrong.
   * @param hint How to fix it.
   */
  constructor(message: string, hint?: string) {
    super(message);
    this.name = "CliError";
    this.hint = hint;
  }
}

const HINTS: Partial<Record<AicoDataErrorCode, string>> = {
  WRONG_KEY: "check the passphrase (or the --keyring entry) of this folder",
  AUTH_FAILED:
    "the data or key file was changed or damaged: run `aico-data doctor`",
  KEYRING_UNAVAILABLE:
    "install the OS keyring tool (Debian: apt-get install libsecret-tools) or unlock with the passphrase",
  LOCKED_OUT: "wait for the lockout to end",
  IMPORT_INVALID:
    "fix or re-download the export; nothing of this file was imported",
  MIGRATION_LOCKED: "another aico-data process is migrating; try again",
  BUSY: "another process is using the folder; try again",
  CORRUPT_STORE: "restore the folder from a backup (`aico-data restore`)",
  KEY_FILE_CORRUPT: "restore key.json from a backup",
  CACHE_ERROR:
    "a scoped --allow-read must include the npm folder (node_modules or the Deno cache)",
};

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Whether `err` is Deno's missing-permission error. */
function isNotCapable(err: unknown): err is Error {
  // NotCapable (Deno 2) and PermissionDenied raised by the permission system.
  const e = err as { name?: string } | null;
  return e !== null && typeof e === "object" &&
    (e.name === "NotCapable" ||
      (e.name === "PermissionDenied" &&
        /--allow-|permission/i.test(String((err as Error).message))));
}

function permissionLine(err: Error): string {
  const msg = oneLine(err.message);
  const npm = /node_modules|\.cache\/deno|\.npm|npm/.test(msg)
    ? "; a scoped --allow-read must include the npm folder (node_modules or the Deno cache)"
    : "";
  return `missing permission: ${msg}${npm}`;
}

/**
 * Prints one line for `err` on stderr (a stack trace only with `debug`) and
 * returns the exit code.
 */
export function reportFailure(err: unknown, debug: boolean): number {
  if (debug && err instanceof Error) console.error(err.stack);
  if (err instanceof Interrupted) {
    console.error("aico-data: interrupted");
    return 130;
  }
  if (err instanceof UsageError) {
    const see = err.command === undefined
      ? "aico-data --help"
      : `aico-data help ${err.command}`;
    console.error(`aico-data: ${oneLine(err.message)} (see \`${see}\`)`);
    return 2;
  }
  if (err instanceof CliError) {
    console.error(
      `aico-data: ${oneLine(err.message)}${
        err.hint === undefined ? "" : `: ${err.hint}`
      }`,
    );
    return 1;
  }
  if (isAicoDataError(err)) {
    // A permission failure underneath (e.g. loading a native module).
    for (let c: unknown = err.cause, i = 0; c !== undefined && i < 5; i++) {
      if (isNotCapable(c)) {
        console.error(
          `aico-data: ${oneLine(err.message)} [${err.code}]; ${
            permissionLine(c)
          }`,
        );
        return 1;
      }
      c = (c as { cause?: unknown } | null)?.cause;
    }
    const hint = HINTS[err.code];
    console.error(
      `aico-data: ${oneLine(err.message)} [${err.code}]${
        hint === undefined ? "" : `; ${hint}`
      }`,
    );
    return 1;
  }
  if (isNotCapable(err)) {
    console.error(`aico-data: ${permissionLine(err)}`);
    return 1;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    console.error(
      `aico-data: ${
        oneLine(err.message)
      }: the folder is not writable by you (read-only commands: status, list, show, search)`,
    );
    return 1;
  }
  if (err instanceof Deno.errors.NotADirectory) {
    console.error(
      `aico-data: ${oneLine(err.message)}: a path given as a folder is a file`,
    );
    return 1;
  }
  if (err instanceof Deno.errors.NotFound) {
    console.error(`aico-data: ${oneLine(err.message)}: check the path`);
    return 1;
  }
  const msg = err instanceof Error ? oneLine(err.message) : String(err);
  console.error(
    `aico-data: unexpected failure: ${msg}${
      debug ? "" : " (run with --debug for details)"
    }`,
  );
  return 1;
}
