// Runs the CLI in a subprocess as a user would (tests only).
import { fileURLToPath } from "node:url";

/** The CLI entry point. */
export const MAIN: string = fileURLToPath(
  new URL("../cli/main.ts", import.meta.url),
);
/** The export fixtures. */
export const EXPORTS: string = fileURLToPath(
  new URL("../testdata/exports/", import.meta.url),
);
/** The flags the README gives for the CLI. */
export const README_FLAGS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];
/** A passphrase for tests. */
export const PASSPHRASE = "correct horse battery staple 7";
/**
 * The `init` flags of test folders: the lowest Argon2id cost accepted
 * without --allow-weak-kdf (19 MiB, t=2), so that test runs stay fast.
 */
export const TEST_KDF_FLAGS: readonly string[] = [
  "--kdf-memory",
  "19",
  "--kdf-iterations",
  "2",
];

/** `args` with {@linkcode TEST_KDF_FLAGS} after an `init` command. */
export function withTestKdf(args: readonly string[]): string[] {
  return args[0] === "init"
    ? ["init", ...TEST_KDF_FLAGS, ...args.slice(1)]
    : [...args];
}

/** What a run printed. */
export interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Options of {@linkcode cli}. */
export interface CliOptions {
  readonly env?: Record<string, string>;
  readonly flags?: readonly string[];
  readonly stdin?: string | Uint8Array;
  /** `init` with {@linkcode TEST_KDF_FLAGS} (default true). */
  readonly weakKdf?: boolean;
}

/** Runs `aico-data ARGS` with the README's flags and returns its output. */
export async function cli(
  args: readonly string[],
  options: CliOptions = {},
): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.flags ?? README_FLAGS),
      MAIN,
      ...(options.weakKdf === false ? args : withTestKdf(args)),
    ],
    env: { NO_COLOR: "1", ...options.env },
    clearEnv: false,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(
      typeof options.stdin === "string"
        ? new TextEncoder().encode(options.stdin)
        : options.stdin,
    );
    await w.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    out: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
}

/** Asserts a failure is one line on stderr, without a stack trace. */
export function oneLine(r: Run): string {
  const lines = r.err.trim().split("\n");
  if (lines.length !== 1 || /^\s+at /m.test(r.err)) {
    throw new Error(`expected one line on stderr, got:\n${r.err}`);
  }
  return lines[0]!;
}
