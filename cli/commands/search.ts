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

/** How `search` finds messages. */
export type SearchMode = "hybrid" | "keyword" | "vector";

/**
 * THE search call of the CLI: the data layer's semantic memory (hybrid by
 * default: FTS5 keywords fused with vectors; messages not embedded yet are
 * found by keyword), or, on a read-only folder where the layer cannot open,
 * a scan of the opened content where every word must occur.
 */
export async function searchMessages(
  data: Pick<ReadView, "conversations" | "layer">,
  query: string,
  limit: number,
  signal: AbortSignal,
  mode: SearchMode = "hybrid",
): Promise<SearchHit[]> {
  if (data.layer !== undefined) {
    const hits = await data.layer.search(query, { k: limit, mode, signal });
    const titles = new Map<string, string | undefined>();
    const out: SearchHit[] = [];
    for (const h of hits) {
      if (!titles.has(h.conversationId)) {
        titles.set(
          h.conversationId,
          (await data.conversations.getConversation(h.conversationId)).title,
        );
      }
      const m = await data.conversations.getMessage(h.messageId);
      out.push({
        conversationId: h.conversationId,
        title: titles.get(h.conversationId),
        seq: m.seq,
        role: h.role,
        createdAt: h.createdAt,
        content: h.content,
      });
    }
    return out;
  }
  return await scanMessages(data, query, limit, signal);
}

async function scanMessages(
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
  summary: "find messages by meaning and keywords",
  usage: 'search "TEXT" [--mode hybrid|keyword|vector] [--limit N] [--json]',
  help: `Finds past messages by meaning and keywords (hybrid: keyword hits
fused with vector hits). Messages get their vectors from \`aico-data index\`;
until then they are found by keyword. On a read-only folder every word of
TEXT must occur.

  --mode M    hybrid (default), keyword or vector
  --limit N   at most N results (default 20)`,
  options: { limit: { type: "string" }, mode: { type: "string" } },
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
    const mode = (ctx.values.mode ?? "hybrid") as SearchMode;
    if (!["hybrid", "keyword", "vector"].includes(mode)) {
      throw new UsageError(
        "--mode must be hybrid, keyword or vector",
        "search",
      );
    }
    await using data = await ctx.openRead();
    const hits = await searchMessages(data, query, limit, ctx.signal, mode);
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
