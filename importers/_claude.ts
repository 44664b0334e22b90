// Internal: one conversation of a Claude `conversations.json` into an
// ImportedConversation. The rules are documented in importers/mod.ts.
import type { MessageRole } from "../repositories/mod.ts";
import type { ImportedConversation, ImportedMessage } from "./types.ts";
import {
  fieldError,
  isObject,
  isoTime,
  obj,
  optString,
  safeId,
  type Where,
} from "./_fields.ts";

function stringify(v: unknown): string {
  if (typeof v === "string") return v;
  try {
    return JSON.stringify(v) ?? "";
  } catch {
    return "";
  }
}

function toolResultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return stringify(content);
  return content.map((b) =>
    isObject(b) && typeof b.text === "string" ? b.text : ""
  ).filter((t) => t.length > 0).join("\n");
}

/**
 * Reads one element of a Claude `conversations.json`.
 *
 * @param value The parsed element.
 * @param file The file label.
 * @param index The element's position.
 * @returns The conversation.
 */
export function readClaudeConversation(
  value: unknown,
  file: string,
  index: number,
): ImportedConversation {
  let where: Where = { file, conversation: `#${index}` };
  const c = obj(value, where, "(conversation)");
  const id = optString(c.uuid, where, "uuid");
  if (id === undefined || id.length === 0) {
    throw fieldError(where, "uuid", "is missing");
  }
  where = { file, conversation: `#${index} "${id}"` };
  const name = optString(c.name, where, "name");
  const createdAt = isoTime(c.created_at, where, "created_at");
  const updatedAt = isoTime(c.updated_at, where, "updated_at");
  const list = c.chat_messages ?? [];
  if (!Array.isArray(list)) {
    throw fieldError(where, "chat_messages", "must be an array");
  }
  const messages: ImportedMessage[] = [];
  list.forEach((raw, i) => {
    const field = `chat_messages[${i}]`;
    const m = obj(raw, where, field);
    const uuid = optString(m.uuid, where, `${field}.uuid`);
    if (uuid === undefined) {
      throw fieldError(where, `${field}.uuid`, "is missing");
    }
    let role: MessageRole;
    if (m.sender === "human") role = "user";
    else if (m.sender === "assistant") role = "assistant";
    else {
      throw fieldError(
        where,
        `${field}.sender`,
        `must be "human" or "assistant", got "${String(m.sender)}"`,
      );
    }
    const at = isoTime(m.created_at, where, `${field}.created_at`);
    const key = `claude:${id}:${uuid}`;
    const push = (suffix: string, r: MessageRole, content: string) => {
      if (content.trim().length === 0) return;
      messages.push({
        sourceKey: `${key}:${suffix}`,
        role: r,
        content,
        ...(at === undefined ? {} : { createdAt: at }),
      });
    };
    // Attachments with extracted text come first: the user sent them with
    // the message. Files without text (images) are skipped.
    const attachments = m.attachments ?? [];
    if (!Array.isArray(attachments)) {
      throw fieldError(where, `${field}.attachments`, "must be an array");
    }
    attachments.forEach((a, k) => {
      const af = obj(a, where, `${field}.attachments[${k}]`);
      const text = optString(
        af.extracted_content,
        where,
        `${field}.attachments[${k}].extracted_content`,
      );
      const fileName = optString(
        af.file_name,
        where,
        `${field}.attachments[${k}].file_name`,
      ) ?? "attachment";
      if (text !== undefined) {
        push(`attachment${k}`, role, `[attachment: ${fileName}]\n${text}`);
      }
    });
    const content = m.content;
    if (content === undefined || content === null) {
      // Older exports: only the top-level text.
      push("text", role, optString(m.text, where, `${field}.text`) ?? "");
      return;
    }
    if (!Array.isArray(content)) {
      throw fieldError(where, `${field}.content`, "must be an array");
    }
    // Consecutive text blocks make one message; each tool_use and
    // tool_result block is a "tool" message in its place; thinking blocks
    // are the model's reasoning, not its answer: skipped.
    let text: string[] = [];
    let first = -1;
    const flush = () => {
      if (text.length > 0) push(String(first), role, text.join("\n\n"));
      text = [];
      first = -1;
    };
    content.forEach((b, k) => {
      const bf = `${field}.content[${k}]`;
      const block = obj(b, where, bf);
      const type = optString(block.type, where, `${bf}.type`);
      if (type === "text") {
        const t = optString(block.text, where, `${bf}.text`) ?? "";
        if (t.length > 0) {
          if (first < 0) first = k;
          text.push(t);
        }
      } else if (type === "tool_use") {
        flush();
        const toolName = optString(block.name, where, `${bf}.name`) ?? "tool";
        push(
          String(k),
          "tool",
          `tool_use ${toolName}: ${stringify(block.input)}`,
        );
      } else if (type === "tool_result") {
        flush();
        const toolName = optString(block.name, where, `${bf}.name`) ?? "tool";
        push(
          String(k),
          "tool",
          `tool_result ${toolName}: ${toolResultText(block.content)}`,
        );
      }
    });
    flush();
  });
  return {
    sourceKey: `claude:${id}`,
    preferredId: safeId(id),
    ...(name === undefined || name.length === 0 ? {} : { title: name }),
    ...(createdAt === undefined ? {} : { createdAt }),
    ...(updatedAt === undefined ? {} : { updatedAt }),
    messages,
  };
}
