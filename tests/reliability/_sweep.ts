// A child that works through a list of named cases and prints one JSON line
// per case; the parent restarts it after the case that crashed or hung.
import { join } from "node:path";
import { aborted, ROOT } from "./_harness.ts";

/** One case's result line. */
export interface CaseLine {
  item: string;
  outcome: string;
  detail?: string;
}

/** What a sweep over the cases found. */
export interface SweepResult {
  runs: number;
  lines: CaseLine[];
  crashed: { item: string; why: string }[];
}

/**
 * Runs `script args... <comma list>` until every item has a line; an item
 * with no line after `stallMs` (a hang) or during which the child died (an
 * abort) is recorded in `crashed` and skipped.
 */
export async function sweepCases(
  path: string,
  args: readonly string[],
  items: readonly string[],
  options: { batch?: number; stallMs?: number } = {},
): Promise<SweepResult> {
  const batch = options.batch ?? 50;
  const stallMs = options.stallMs ?? 5000;
  const result: SweepResult = { runs: 0, lines: [], crashed: [] };
  let i = 0;
  while (i < items.length) {
    const chunk = items.slice(i, i + batch);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        join(ROOT, "deno.json"),
        path,
        ...args,
        chunk.join("\u0001"),
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    result.runs++;
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let buf = "";
    let done = 0;
    let hung = false;
    // The first item also pays the child's start-up.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // Gone.
        }
      }, ms);
    };
    arm(stallMs + 20_000);
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += value;
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      for (const l of parts) {
        if (!l.startsWith("{")) continue;
        let m: CaseLine & { ready?: boolean };
        try {
          m = JSON.parse(l);
        } catch {
          continue;
        }
        if (m.ready) {
          arm(stallMs);
          continue;
        }
        if (m.item === undefined) continue;
        result.lines.push(m);
        done++;
        arm(stallMs);
      }
    }
    clearTimeout(timer);
    const status = await child.status;
    const err = await stderr;
    i += done;
    if (done < chunk.length) {
      const item = chunk[done]!;
      const r = {
        code: status.code,
        signal: status.signal,
        stdout: "",
        stderr: err,
        timedOut: hung,
      };
      const why = hung
        ? `hang over ${stallMs} ms`
        : `${aborted(r) ? "abort" : "exit"} ${status.code}${
          status.signal ? ` ${status.signal}` : ""
        }: ${err.trim().split("\n").slice(-1)[0]?.slice(0, 160) ?? ""}`;
      result.crashed.push({ item, why });
      i++;
    }
  }
  return result;
}
