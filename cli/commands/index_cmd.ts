import { CliError } from "../_errors.ts";
import type { Command } from "../_context.ts";

export const index: Command = {
  name: "index",
  summary: "make the vectors of messages that have none yet (semantic search)",
  usage: "index [--json]",
  help: `Embeds every message waiting for its vector, newest first, with the
offline model (USE-lite). Resumable: Ctrl-C keeps what is done. Keyword
search works without it.`,
  positionals: [0, 0],
  async run(ctx) {
    await using data = await ctx.open();
    const memory = data.memory;
    if (memory === undefined) {
      throw new CliError("semantic memory is disabled", "open it with memory");
    }
    // The indexer first takes every change committed so far.
    await data.changes.drain({ signal: ctx.signal });
    const embedded = await memory.indexPending({ signal: ctx.signal });
    const status = await memory.status();
    if (ctx.json) {
      ctx.printJson({ embedded, status });
    } else {
      ctx.print(`embedded ${embedded} messages`);
      ctx.print(
        `indexed ${status.indexed}, with vectors ${status.embedded}, waiting ${status.pending}`,
      );
    }
    return 0;
  },
};
