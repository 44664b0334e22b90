// Import benchmark, ours next to the baseline in the same run, each in its
// own child process (so that its peak RSS is its own):
//
// - ours: importers/ on a generated ChatGPT-format export of 200k messages
//   (2,000 conversations of 100), streamed, one transaction, source ids kept.
//   Goal: >= 30k messages/s and peak RSS < 256 MiB, whatever the file size
//   (also run on half and on twice the file: the peak must not grow with
//   it; the three peaks are printed together at the end).
// - baseline: the previous CLI import of the same messages as JSON Lines
//   (whole-file read, split, grouped in memory, one append per conversation).
//
//   deno bench -A bench/import_bench.ts          (AICO_IMPORT_BENCH_MESSAGES=N to shrink)
import { fileURLToPath } from "node:url";
import { writeChatgptExport } from "../testdata/exports/generate.ts";

const PER = 100;
const MESSAGES = Number(Deno.env.get("AICO_IMPORT_BENCH_MESSAGES") ?? 200_000);
const CHILD = fileURLToPath(new URL("./_import_child.ts", import.meta.url));

const dir = await Deno.makeTempDir({ prefix: "aico_import_bench_" });
const big = `${dir}/conversations.json`;
const half = `${dir}/half.json`;
const double = `${dir}/double.json`;
const jsonl = `${dir}/messages.jsonl`;
const bigBytes = await writeChatgptExport(big, MESSAGES / PER, PER);
await writeChatgptExport(half, MESSAGES / PER / 2, PER);
await writeChatgptExport(double, (MESSAGES / PER) * 2, PER);
{
  // The same messages as JSON Lines for the baseline.
  const f = await Deno.open(jsonl, {
    write: true,
    create: true,
    truncate: true,
  });
  const enc = new TextEncoder();
  for (let c = 0; c < MESSAGES / PER; c++) {
    const lines: string[] = [];
    for (let k = 0; k < PER; k++) {
      lines.push(JSON.stringify({
        conversation: `bench-${c}`,
        role: k % 2 === 0 ? "user" : "assistant",
        content:
          `Message ${k} of conversation ${c}: some words so that a message has a realistic length for a chat.`,
        ts: 1_700_000_000_000 + c * 1_000_000 + k * 1000,
      }));
    }
    await f.write(enc.encode(lines.join("\n") + "\n"));
  }
  f.close();
}

/** Peak RSS (MiB) of each streaming import, by message count. */
const peaks = new Map<number, number[]>();

async function child(mode: string, file: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, mode, file],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${mode} import failed`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  if (mode === "stream") {
    const list = peaks.get(r.messages) ?? [];
    list.push(r.peakRssMiB);
    peaks.set(r.messages, list);
  }
  // deno-lint-ignore no-console
  console.log(
    `  ${mode} ${file.split("/").pop()}: ${r.messages} messages, ${
      Math.round(r.messages / r.seconds)
    } messages/s, peak RSS ${r.peakRssMiB.toFixed(0)} MiB`,
  );
}

// deno-lint-ignore no-console
console.log(
  `import bench: ${MESSAGES} messages, ChatGPT export ${
    (bigBytes / 2 ** 20).toFixed(0)
  } MiB`,
);

Deno.bench({
  name: "import ChatGPT export (importers/, streaming, one transaction)",
  group: "import",
  n: 1,
  warmup: 0,
  async fn() {
    await child("stream", big);
  },
});

Deno.bench({
  name: "import half of it (peak RSS must not grow with size)",
  group: "import-size",
  n: 1,
  warmup: 0,
  async fn() {
    await child("stream", half);
  },
});

Deno.bench({
  name: "import twice as much (peak RSS must not grow with size)",
  group: "import-size",
  n: 1,
  warmup: 0,
  async fn() {
    await child("stream", double);
  },
});

Deno.bench({
  name: "baseline: previous CLI import of the same messages as JSON Lines",
  group: "import",
  baseline: true,
  n: 1,
  warmup: 0,
  async fn() {
    await child("baseline", jsonl);
  },
});

globalThis.addEventListener("unload", () => {
  const line = [...peaks].sort((a, b) => a[0] - b[0]).map(([n, list]) =>
    `${n} messages: ${Math.max(...list).toFixed(0)} MiB`
  ).join(", ");
  // deno-lint-ignore no-console
  console.log(`import peak RSS (highest of the runs; goal < 256 MiB): ${line}`);
  Deno.removeSync(dir, { recursive: true });
});
