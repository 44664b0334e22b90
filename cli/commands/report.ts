import { UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";

export const report: Command = {
  name: "report",
  summary: "an analytics report of your history (not available yet)",
  usage: "report [--out FILE]",
  help: "Builds the analytics report. Not available in this build yet.",
  options: { out: { type: "string" } },
  positionals: [0, 0],
  run() {
    return Promise.reject(
      new UsageError(
        "report is not available yet in this build (it needs the analytics module)",
        "report",
      ),
    );
  },
};
