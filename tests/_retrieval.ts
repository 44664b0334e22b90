// Internal, for tests and benches: the labelled retrieval set of
// testdata/retrieval/ and its evaluation (recall@5, MRR@10).
import { fileURLToPath } from "node:url";
import type { Storage } from "../storage/mod.ts";
import { createConversationRepository } from "../repositories/mod.ts";
import type {
  SearchOptions,
  SemanticMemory,
} from "../vector/memory/semantic_memory.ts";

export interface SetConversation {
  readonly id: string;
  readonly title: string;
  readonly messages: { role: "user" | "assistant"; content: string }[];
}

export interface SetQuery {
  readonly id: string;
  readonly kind: string;
  readonly relevant: readonly string[];
  readonly text: string;
}

export interface RetrievalSet {
  readonly conversations: SetConversation[];
  readonly queries: SetQuery[];
}

const DIR = fileURLToPath(new URL("../testdata/retrieval/", import.meta.url));

/** Reads the set (conversations_*.txt and queries.txt). */
export async function loadRetrievalSet(): Promise<RetrievalSet> {
  const conversations: SetConversation[] = [];
  const files = [...Deno.readDirSync(DIR)].map((e) => e.name)
    .filter((n) => /^conversations_\d+\.txt$/.test(n)).sort();
  for (const f of files) {
    let cur: SetConversation | undefined;
    for (const line of (await Deno.readTextFile(DIR + f)).split("\n")) {
      const head = /^## (\S+) \| (.*)$/.exec(line);
      if (head) {
        cur = { id: head[1]!, title: head[2]!, messages: [] };
        conversations.push(cur);
        continue;
      }
      const msg = /^([ua]): (.*)$/.exec(line);
      if (msg && cur) {
        cur.messages.push({
          role: msg[1] === "u" ? "user" : "assistant",
          content: msg[2]!,
        });
      }
    }
  }
  const queries: SetQuery[] = [];
  for (
    const line of (await Deno.readTextFile(DIR + "queries.txt")).split("\n")
  ) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const [id, kind, rel, text] = line.split(" | ");
    queries.push({
      id: id!,
      kind: kind!,
      relevant: rel!.split(","),
      text: text!,
    });
  }
  return { conversations, queries };
}

/**
 * Writes the set's conversations into a store (through the repository);
 * messages are one hour apart, the oldest first. Returns "conv:index" ->
 * message id.
 */
export async function writeRetrievalSet(
  storage: Storage,
  set: RetrievalSet,
): Promise<Map<string, number>> {
  const repo = createConversationRepository(storage);
  const ids = new Map<string, number>();
  let t = Date.UTC(2025, 0, 1);
  for (const c of set.conversations) {
    await repo.createConversation({ id: c.id, title: c.title });
    const r = await repo.appendMessages(
      c.id,
      c.messages.map((m) => ({ ...m, createdAt: t += 3_600_000 })),
    );
    c.messages.forEach((_, i) => ids.set(`${c.id}:${i + 1}`, r.firstId + i));
  }
  return ids;
}

export interface Scores {
  readonly recallAt5: number;
  readonly mrrAt10: number;
  readonly n: number;
}

export interface Evaluation {
  readonly overall: Scores;
  readonly byKind: Record<string, Scores>;
}

/** Runs every query and scores the first 10 hits. */
export async function evaluate(
  memory: SemanticMemory,
  set: RetrievalSet,
  ids: Map<string, number>,
  options: SearchOptions,
): Promise<Evaluation> {
  const per: { kind: string; recall: number; rr: number }[] = [];
  for (const q of set.queries) {
    const rel = new Set(q.relevant.map((r) => {
      const id = ids.get(r);
      if (id === undefined) throw new Error(`unknown label ${r} in ${q.id}`);
      return id;
    }));
    const hits = await memory.search(q.text, { ...options, k: 10 });
    const top = hits.map((h) => h.messageId);
    const found = top.slice(0, 5).filter((id) => rel.has(id)).length;
    const first = top.findIndex((id) => rel.has(id));
    per.push({
      kind: q.kind,
      recall: found / rel.size,
      rr: first < 0 ? 0 : 1 / (first + 1),
    });
  }
  const score = (xs: typeof per): Scores => ({
    recallAt5: xs.reduce((s, x) => s + x.recall, 0) / xs.length,
    mrrAt10: xs.reduce((s, x) => s + x.rr, 0) / xs.length,
    n: xs.length,
  });
  const byKind: Record<string, Scores> = {};
  for (const kind of new Set(per.map((p) => p.kind))) {
    byKind[kind] = score(per.filter((p) => p.kind === kind));
  }
  return { overall: score(per), byKind };
}

/** One line per mode: recall@5 and MRR@10, overall and by kind. */
export function formatEvaluation(name: string, e: Evaluation): string {
  const f = (s: Scores) =>
    `R@5 ${s.recallAt5.toFixed(3)} MRR@10 ${s.mrrAt10.toFixed(3)}`;
  const kinds = Object.entries(e.byKind).map(([k, s]) =>
    `${k}(${s.n}) ${s.recallAt5.toFixed(2)}`
  ).join("  ");
  return `${name.padEnd(8)} ${f(e.overall)}  | ${kinds}`;
}
