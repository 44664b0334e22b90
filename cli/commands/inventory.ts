import type { Command } from "../_context.ts";
import { shortDate } from "../_read.ts";

function size(n: number | undefined): string {
  if (n === undefined) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export const inventory: Command = {
  name: "inventory",
  summary:
    "what is stored: per store and table rows, bytes, times, sealed columns",
  usage: "inventory [--json]",
  help:
    `Lists what the folder keeps: per store (libSQL, cache, vector, analytics)
and per table the rows, bytes (dbstat), oldest and newest times, the sealed
columns, which stores hold vectors and copies of text, and every file's size.`,
  positionals: [0, 0],
  async run(ctx) {
    await using data = await ctx.open();
    const inv = await data.inventory();
    if (ctx.json) {
      ctx.printJson(inv);
      return 0;
    }
    for (const s of inv.stores) {
      const flags = [
        s.encrypted ? "encrypted" : "not encrypted",
        ...(s.vectors ? ["vectors"] : []),
        ...(s.textCopies ? ["copies of text"] : []),
      ].join(", ");
      ctx.print(
        `${s.name} (${s.location}; ${flags}): ${s.holds}${
          s.entries === undefined ? "" : `; ${s.entries} entries`
        }`,
      );
      for (const t of s.tables ?? []) {
        const span = t.oldest === undefined
          ? ""
          : `  ${shortDate(t.oldest)} .. ${shortDate(t.newest ?? t.oldest)}`;
        const sealed = t.sealedColumns.length === 0
          ? ""
          : `  sealed: ${t.sealedColumns.join(", ")}`;
        ctx.print(
          `  ${t.name.padEnd(22)} ${String(t.rows).padStart(9)} rows ${
            size(t.bytes).padStart(10)
          }${span}${sealed}${t.textCopy ? "  (copy of text)" : ""}${
            t.vectors ? "  (vectors)" : ""
          }`,
        );
      }
    }
    ctx.print("files:");
    for (const f of inv.files) {
      ctx.print(`  ${f.path.padEnd(30)} ${size(f.bytes).padStart(10)}`);
    }
    ctx.print(`  ${"total".padEnd(30)} ${size(inv.totalBytes).padStart(10)}`);
    return 0;
  },
};
