// Reading helpers shared by list, show, search and export.
import type { ReadView } from "./_context.ts";
import type { Conversation, Message } from "../repositories/mod.ts";

/** Every conversation, newest first. */
export async function* allConversations(
  data: Pick<ReadView, "conversations">,
): AsyncGenerator<Conversation> {
  let cursor: string | undefined;
  do {
    const page = await data.conversations.listConversations({
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

/** Every message of a conversation, in order. */
export async function* allMessages(
  data: Pick<ReadView, "conversations">,
  id: string,
): AsyncGenerator<Message> {
  let cursor: string | undefined;
  do {
    const page = await data.conversations.listMessages(id, {
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

/** `2024-01-31 14:05` in UTC. */
export function shortDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}
