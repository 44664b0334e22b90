import { writeReport } from "../../analytics/mod.ts";
import { CliError } from "../_errors.ts";
import type { Command } from "../_context.ts";

export const report: Command = {
  name: "report",
  summary:
    "an analytics report of your history (HTML, sealed unless --plaintext)",
  usage: "report [--html FILE] [--plaintext] [--json]",
  help: `Analyses your history in DuckDB (in memory) and prints a short summary:
activity, busiest hours, conversation lengths, response latency, top terms,
streaks and sessions.

  --html FILE   also write the report with its charts, one self-contained
                HTML file (no network request), sealed with your key
  --plaintext   write the HTML unencrypted (a warning is printed)
  --json        print the summary figures as JSON`,
  options: { html: { type: "string" }, plaintext: { type: "boolean" } },
  positionals: [0, 0],
  async run(ctx) {
    await using data = await ctx.open();
    const analytics = data.analytics;
    if (analytics === undefined) {
      throw new CliError(
        "analytics are disabled",
        "open without analytics: false",
      );
    }
    const built = await analytics.report();
    const out = ctx.values.html;
    if (typeof out === "string") {
      const plaintext = ctx.values.plaintext === true;
      if (plaintext) {
        ctx.note(
          "warning: this report is NOT encrypted: anyone who can read it reads your history's figures and top terms",
        );
      }
      try {
        await writeReport(
          out,
          built,
          plaintext ? { plaintext: true } : { key: data.key },
        );
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new CliError(`"${out}" exists`, "choose another --html file");
        }
        throw err;
      }
      ctx.note(`report written to ${out}${plaintext ? "" : " (sealed)"}`);
    }
    if (ctx.json) {
      ctx.printJson({ summary: built.summary });
    } else {
      ctx.print(built.summary);
    }
    return 0;
  },
};
