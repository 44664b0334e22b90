// deno-lint-ignore-file no-console
// `deno task test:reliability`: runs every scenario, then prints the figures
// table. Exits non-zero when a scenario failed or a must-be-0 column is not 0.
import { join } from "node:path";
import type { Figures } from "./_harness.ts";

const here = new URL(".", import.meta.url).pathname;
const figuresDir = await Deno.makeTempDir({ prefix: "aico_figures_" });
const filter = Deno.args[0];
const test = await new Deno.Command(Deno.execPath(), {
  args: [
    "test",
    "-A",
    "--config",
    join(here, "../../deno.json"),
    ...(filter ? ["--filter", filter] : []),
    here,
  ],
  env: { AICO_RELIABILITY_FIGURES: figuresDir, NO_COLOR: "1" },
  stdout: "inherit",
  stderr: "inherit",
}).output();

const rows: Figures[] = [];
for await (const e of Deno.readDir(figuresDir)) {
  rows.push(JSON.parse(await Deno.readTextFile(join(figuresDir, e.name))));
}
await Deno.remove(figuresDir, { recursive: true });
rows.sort((a, b) => a.test.localeCompare(b.test));
const cols = [
  "test",
  "runs",
  "faults",
  "lost",
  "wrong",
  "aborts",
  "plaintext",
] as const;
const head = [
  "test",
  "runs",
  "faults injected",
  "acked writes lost",
  "wrong values silent",
  "aborts",
  "plaintext found",
];
const table = [head, ...rows.map((r) => cols.map((c) => String(r[c])))];
const widths = head.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
const fmt = (r: string[]) =>
  "| " + r.map((c, i) =>
    i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)
  ).join(" | ") + " |";
console.log("\n== reliability figures");
console.log(fmt(table[0]!));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const r of table.slice(1)) console.log(fmt(r));
for (const r of rows) if (r.notes) console.log(`- ${r.test}: ${r.notes}`);
const bad = rows.filter((r) => r.lost + r.wrong + r.aborts + r.plaintext > 0);
console.log(
  `${rows.length} scenarios reported, ${bad.length} with a non-zero must-be-0 column; deno test exit ${test.code}`,
);
Deno.exit(test.code !== 0 || bad.length > 0 ? 1 : 0);
