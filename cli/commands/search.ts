import type { ReadView } from "../_context.ts";
import { allConversations, allMessages, shortDate } from "../_read.ts";
import { UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";

/** One search result. */
export interface SearchHit {
  readonly conversationId: string;
  readonly title: string | undefined;
  readonly seq: number;
  readonly role: string;
  readonly createdAt: number;
  readonly content: string;
}

/**
 * THE search call of the CLI (one function, so that it can be switched to
 * the semantic / hybrid search): for now a keyword search over the opened
 * content, every word must occur (case-insensitive), newest conversations
 * first.
 */
export async function searchMessages(
  data: Pick<ReadView, "conversations">,
  query: string,
  limit: number,
  signal: AbortSignal,
): Promise<SearchHit[]> {
  const words = query.toLocaleLowerCase().split(/\s+/).filter((w) =>
    w.length > 0
  );
  const hits: SearchHit[] = [];
  for await (const c of allConversations(data)) {
    for await (const m of allMessages(data, c.id)) {
      signal.throwIfAborted();
      const text = m.content.toLocaleLowerCase();
      if (words.every((w) => text.includes(w))) {
        hits.push({
          conversationId: c.id,
          title: c.title,
          seq: m.seq,
          role: m.role,
          createdAt: m.createdAt,
          content: m.content,
        });
        if (hits.length >= limit) return hits;
      }
    }
  }
  return hits;
}

function snippet(text: string, word: string): string {
  const flat = text.replace(/\s+/g, " ");
  const at = Math.max(0, flat.toLocaleLowerCase().indexOf(word) - 40);
  const cut = flat.slice(at, at + 120);
  return `${at > 0 ? "…" : ""}${cut}${at + 120 < flat.length ? "…" : ""}`;
}

export const search: Command = {
  name: "search",
  summary: "find messages containing words",
  usage: 'search "TEXT" [--limit N] [--json]',
  help: `Finds messages that contain every word of TEXT (case-insensitive).

  --limit N   at most N results (default 20)`,
  options: { limit: { type: "string" } },
  positionals: [1, 1],
  async run(ctx) {
    const query = ctx.positionals[0]!;
    if (query.trim().length === 0) {
      throw new UsageError("the search text is empty", "search");
    }
    const limit = ctx.values.limit === undefined
      ? 20
      : Number(ctx.values.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      throw new UsageError("--limit must be a whole number above 0", "search");
    }
    await using data = await ctx.openRead();
    const hits = await searchMessages(data, query, limit, ctx.signal);
    if (ctx.json) {
      ctx.printJson(hits);
      return 0;
    }
    const first = query.toLocaleLowerCase().split(/\s+/).find((w) => w) ?? "";
    for (const h of hits) {
      ctx.print(
        `${h.conversationId}  ${shortDate(h.createdAt)}  ${
          h.title ?? "(untitled)"
        }`,
      );
      ctx.print(`  ${h.role}: ${snippet(h.content, first)}`);
    }
    if (hits.length === 0) ctx.note("no matches");
    return 0;
  },
};
