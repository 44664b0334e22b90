// deno-lint-ignore-file no-console
// Shared by the reliability scenarios: child processes, fault figures, the
// table. Not part of the package.
import { countOccurrences } from "../_helpers.ts";
import { join } from "node:path";

/** The repository root (ends with `/`). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
const CONFIG = join(ROOT, "deno.json");

/** A module of the toolkit as an import specifier for a child script. */
export function mod(path: string): string {
  return JSON.stringify(new URL(path, `file://${ROOT}`).href);
}

/** The figures of one scenario: one row of the table. */
export interface Figures {
  /** The scenario name. */
  test: string;
  /** Runs (child processes or rounds). */
  runs: number;
  /** Faults injected (kills, flips, mutations, hostile inputs...). */
  faults: number;
  /** Acknowledged writes missing afterwards (must be 0). */
  lost: number;
  /** Wrong or missing values returned without a typed error (must be 0). */
  wrong: number;
  /** Processes that ended by a signal or native abort (must be 0). */
  aborts: number;
  /** Occurrences of a plaintext marker or secret found (must be 0). */
  plaintext: number;
  /** What else was measured, or why a part was skipped. */
  notes?: string;
}

/** Writes a scenario's figures where the runner collects them (and prints them). */
export async function record(f: Figures): Promise<void> {
  const dir = Deno.env.get("AICO_RELIABILITY_FIGURES");
  const line = JSON.stringify(f);
  console.log(`figures: ${line}`);
  if (dir === undefined) return;
  await Deno.mkdir(dir, { recursive: true });
  const slug = f.test.replace(/[^A-Za-z0-9]+/g, "_").toLowerCase();
  await Deno.writeTextFile(join(dir, `${slug}.json`), line + "\n");
}

/** What a child process did. */
export interface ChildResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Whether a child ended abnormally by itself: a signal it was not sent by
 * us, or glibc/Rust abort-style exit codes (134 SIGABRT, 135 SIGBUS, 139
 * SIGSEGV as seen through a shell).
 */
export function aborted(r: ChildResult): boolean {
  if (r.timedOut) return false;
  if (r.signal !== null && r.signal !== "SIGKILL") return true;
  return r.code === 134 || r.code === 135 || r.code === 139 ||
    /panicked at|fatal runtime error|malloc\(\)|double free|corrupted/i.test(
      r.stderr,
    );
}

/** Writes a child script into `dir` and returns its path. */
export async function script(
  dir: string,
  name: string,
  source: string,
): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, source);
  return path;
}

/** Runs `deno run -A <script> ...args`, killed after `timeoutMs`. */
export async function runChild(
  path: string,
  args: readonly string[] = [],
  options: {
    timeoutMs?: number;
    env?: Record<string, string>;
    /** Permission flags instead of `-A`. */
    flags?: readonly string[];
  } = {},
): Promise<ChildResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.flags ?? ["-A"]),
      "--config",
      CONFIG,
      path,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...(options.env ?? {}) },
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, options.timeoutMs ?? 60_000);
  try {
    const out = await child.output();
    return {
      code: out.code,
      signal: out.signal,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The JSON lines a child printed (other lines ignored). */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  const out: T[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A torn last line of a killed child.
    }
  }
  return out;
}

/** Counts occurrences of `needle` in every file under `dir` (recursively). */
export async function countInTree(
  dir: string,
  needles: readonly Uint8Array[],
): Promise<{ count: number; files: string[] }> {
  let count = 0;
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(p);
        } catch {
          continue; // Vanished (a -shm or -journal removed meanwhile).
        }
        files.push(p);
        for (const n of needles) count += countOccurrences(bytes, n);
      }
    }
  };
  await walk(dir);
  return { count, files };
}

/** Mounts a tmpfs of `sizeKiB` at a new folder, or says why it cannot. */
export async function mountTmpfs(
  sizeKiB: number,
): Promise<{ dir: string; unmount: () => Promise<void> } | { reason: string }> {
  const dir = await Deno.makeTempDir({ prefix: "aico_tmpfs_" });
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0700`, "tmpfs", dir],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => ({
    success: false,
    stderr: new TextEncoder().encode(String(e)),
  }));
  if (!out.success) {
    await Deno.remove(dir).catch(() => {});
    return {
      reason: `cannot mount a tmpfs: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    };
  }
  return {
    dir,
    unmount: async () => {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir).catch(() => {});
    },
  };
}

/** A fresh temp folder, removed after `fn`. */
export async function withTemp<T>(
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "aico_rel_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
