import { allMessages, shortDate } from "../_read.ts";
import type { Command } from "../_context.ts";

export const show: Command = {
  name: "show",
  summary: "print one conversation",
  usage: "show ID [--json]",
  help: `Prints the messages of the conversation ID (from \`aico-data list\`).`,
  positionals: [1, 1],
  async run(ctx) {
    const id = ctx.positionals[0]!;
    await using data = await ctx.openRead();
    const c = await data.conversations.getConversation(id);
    const messages = [];
    for await (const m of allMessages(data, id)) messages.push(m);
    if (ctx.json) {
      ctx.printJson({
        id: c.id,
        title: c.title ?? null,
        createdAt: c.createdAt,
        updatedAt: c.updatedAt,
        messages: messages.map((m) => ({
          seq: m.seq,
          role: m.role,
          content: m.content,
          createdAt: m.createdAt,
        })),
      });
      return 0;
    }
    ctx.print(`# ${c.title ?? "(untitled)"}  [${c.id}]`);
    for (const m of messages) {
      ctx.print("");
      ctx.print(`${m.role} · ${shortDate(m.createdAt)}`);
      ctx.print(m.content);
    }
    return 0;
  },
};
