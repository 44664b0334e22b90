// Internal: reads messages (content opened through the core schema's sealed
// column) with their neighbours, and builds the texts semantic memory indexes.
import type { SealedColumn, Storage } from "../../storage/mod.ts";
import type { InValue } from "../../storage/types.ts";
import { coreSchema } from "../../repositories/core_schema.ts";
import { AicoDataError } from "../../errors.ts";

/** A message as the index sees it. */
export interface IndexedMessage {
  readonly id: number;
  readonly conversationId: string;
  readonly seq: number;
  readonly role: string;
  readonly createdAt: number;
  readonly content: string;
}

/** What is embedded and indexed of each message. */
export type ContextMode = "message" | "pair" | "window";

const decoder = new TextDecoder("utf-8", { fatal: true });
const CHUNK = 200;

export function contentColumn(storage: Storage): SealedColumn {
  const spec = coreSchema.sealedColumns.find((c) =>
    c.table === "messages" && c.column === "content"
  );
  return storage.sealedColumn("messages", "content", {
    schemaVersion: spec?.schemaVersion ?? 1,
  });
}

async function openRows(
  column: SealedColumn,
  rows: readonly Record<string, unknown>[],
): Promise<IndexedMessage[]> {
  const plain = await column.openBatch(rows.map((r) => ({
    rowKey: Number(r.id),
    sealed: r.content as Uint8Array,
  })));
  return rows.map((r, i) => {
    let content: string;
    try {
      content = decoder.decode(plain[i]!);
    } catch (e) {
      throw new AicoDataError(
        "CORRUPT_VALUE",
        "Cannot read message: content is not UTF-8",
        {
          cause: e,
        },
      );
    }
    return {
      id: Number(r.id),
      conversationId: String(r.conversation_id),
      seq: Number(r.seq),
      role: String(r.role),
      createdAt: Number(r.created_at),
      content,
    };
  });
}

const COLUMNS = "id, conversation_id, seq, role, content, created_at";

/** Reads messages by id; missing ids (deleted) are absent from the map. */
export async function readMessages(
  storage: Storage,
  column: SealedColumn,
  ids: readonly number[],
): Promise<Map<number, IndexedMessage>> {
  const out = new Map<number, IndexedMessage>();
  for (let s = 0; s < ids.length; s += CHUNK) {
    const part = ids.slice(s, s + CHUNK);
    const rs = await storage.execute({
      sql: `SELECT ${COLUMNS} FROM messages WHERE id IN (${
        part.map(() => "?").join(", ")
      })`,
      args: part,
    });
    for (const m of await openRows(column, rs.rows)) out.set(m.id, m);
  }
  return out;
}

/** Reads the messages at (conversation, seq) positions. */
export async function readPositions(
  storage: Storage,
  column: SealedColumn,
  positions: readonly (readonly [string, number])[],
): Promise<Map<string, IndexedMessage>> {
  const out = new Map<string, IndexedMessage>();
  for (let s = 0; s < positions.length; s += CHUNK) {
    const part = positions.slice(s, s + CHUNK);
    const args: InValue[] = [];
    for (const [c, q] of part) args.push(c, q);
    const rs = await storage.execute({
      sql:
        `SELECT ${COLUMNS} FROM messages WHERE (conversation_id, seq) IN (VALUES ${
          part.map(() => "(?, ?)").join(", ")
        })`,
      args,
    });
    for (const m of await openRows(column, rs.rows)) {
      out.set(`${m.conversationId}\u0000${m.seq}`, m);
    }
  }
  return out;
}

/** A message with its neighbours in the conversation. */
export interface MessageInContext {
  readonly message: IndexedMessage;
  readonly previous: IndexedMessage | undefined;
  readonly next: IndexedMessage | undefined;
}

/** Loads the neighbours (seq - 1, seq + 1) of the given messages. */
export async function withNeighbours(
  storage: Storage,
  column: SealedColumn,
  messages: readonly IndexedMessage[],
): Promise<MessageInContext[]> {
  const key = (c: string, s: number) => `${c}\u0000${s}`;
  const known = new Map<string, IndexedMessage>();
  for (const m of messages) known.set(key(m.conversationId, m.seq), m);
  const want: [string, number][] = [];
  for (const m of messages) {
    for (const s of [m.seq - 1, m.seq + 1]) {
      if (s >= 1 && !known.has(key(m.conversationId, s))) {
        want.push([m.conversationId, s]);
        known.set(key(m.conversationId, s), undefined as never);
      }
    }
  }
  const read = await readPositions(storage, column, want);
  for (const [k, m] of read) known.set(k, m);
  return messages.map((m) => ({
    message: m,
    previous: known.get(key(m.conversationId, m.seq - 1)),
    next: known.get(key(m.conversationId, m.seq + 1)),
  }));
}

/** Longest neighbour text taken into a context, in characters. */
const NEIGHBOUR_CHARS = 600;

function cut(text: string): string {
  return text.length > NEIGHBOUR_CHARS ? text.slice(0, NEIGHBOUR_CHARS) : text;
}

/**
 * The neighbour text of a message: for "pair", the question before an
 * answer or the answer after a question (a user message with the assistant
 * reply that follows it, an assistant message with the user message before
 * it); for "window" both neighbours; for "message" nothing.
 */
export function neighbourText(m: MessageInContext, mode: ContextMode): string {
  if (mode === "message") return "";
  if (mode === "window") {
    return [m.previous?.content, m.next?.content].filter((t) => t).map((t) =>
      cut(t!)
    )
      .join("\n");
  }
  const other = m.message.role === "assistant" ? m.previous : m.next;
  return other ? cut(other.content) : "";
}

/** The text embedded for a message in context. */
export function contextText(m: MessageInContext, mode: ContextMode): string {
  if (mode === "window") {
    return [m.previous?.content, m.message.content, m.next?.content]
      .filter((t) => t).map((t) => cut(t!)).join("\n");
  }
  const n = neighbourText(m, mode);
  if (n === "") return m.message.content;
  return m.message.role === "assistant"
    ? `${n}\n${m.message.content}`
    : `${m.message.content}\n${n}`;
}
