import { allConversations, shortDate } from "../_read.ts";
import { UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";

export const list: Command = {
  name: "list",
  summary: "list conversations: id, date, message count, title",
  usage: "list [--limit N] [--json]",
  help: `Lists the stored conversations, most recently updated first.

  --limit N   at most N conversations`,
  options: { limit: { type: "string" } },
  positionals: [0, 0],
  async run(ctx) {
    const limit = ctx.values.limit === undefined
      ? Infinity
      : Number(ctx.values.limit);
    if (!(limit >= 0) || !Number.isInteger(limit) && limit !== Infinity) {
      throw new UsageError("--limit must be a whole number", "list");
    }
    await using data = await ctx.openRead();
    const rows = [];
    for await (const c of allConversations(data)) {
      if (rows.length >= limit) break;
      rows.push(c);
    }
    if (ctx.json) {
      ctx.printJson(rows.map((c) => ({
        id: c.id,
        title: c.title ?? null,
        createdAt: c.createdAt,
        updatedAt: c.updatedAt,
        messageCount: c.messageCount,
      })));
      return 0;
    }
    for (const c of rows) {
      ctx.print(
        `${c.id}  ${shortDate(c.updatedAt)}  ${
          String(c.messageCount).padStart(5)
        }  ${c.title ?? "(untitled)"}`,
      );
    }
    if (rows.length === 0) {
      ctx.note("no conversations yet: try `aico-data import FILE`");
    }
    return 0;
  },
};
