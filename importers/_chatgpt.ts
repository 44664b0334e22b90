// Internal: one conversation of a ChatGPT `conversations.json` (the
// `mapping` tree) into ImportedConversation values. The rules are documented
// in importers/mod.ts.
import type { MessageRole } from "../repositories/mod.ts";
import type { ImportedConversation, ImportedMessage } from "./types.ts";
import {
  epochTime,
  fieldError,
  isObject,
  obj,
  optString,
  safeId,
  type Where,
} from "./_fields.ts";

interface Node {
  readonly id: string;
  readonly parent: string | undefined;
  readonly children: readonly string[];
  readonly message: Record<string, unknown> | undefined;
  /** The message's time in ms, when it has one. */
  readonly time: number | undefined;
}

/** Content types that are the model's own reasoning or hidden context: skipped. */
const SKIPPED_TYPES = new Set([
  "thoughts",
  "reasoning_recap",
  "user_editable_context",
  "model_editable_context",
]);
/** Content types of tool calls and their output: kept under role "tool". */
const TOOL_TYPES = new Set([
  "code",
  "execution_output",
  "tether_browsing_display",
  "tether_quote",
  "system_error",
]);

function textOf(
  content: Record<string, unknown>,
  where: Where,
  field: string,
): string {
  const parts = content.parts;
  if (parts !== undefined && parts !== null) {
    if (!Array.isArray(parts)) {
      throw fieldError(where, `${field}.parts`, "must be an array");
    }
    // Strings are text; objects are asset pointers (images, files, audio)
    // except transcripts, which carry their text.
    const texts: string[] = [];
    for (const p of parts) {
      if (typeof p === "string") {
        if (p.length > 0) texts.push(p);
      } else if (
        isObject(p) && p.content_type === "audio_transcription" &&
        typeof p.text === "string" && p.text.length > 0
      ) texts.push(p.text);
    }
    return texts.join("\n");
  }
  for (const key of ["text", "result"]) {
    const v = content[key];
    if (typeof v === "string") return v;
  }
  return "";
}

function readNodes(
  mapping: Record<string, unknown>,
  where: Where,
): Map<string, Node> {
  const nodes = new Map<string, Node>();
  for (const [id, raw] of Object.entries(mapping)) {
    const field = `mapping["${id}"]`;
    const n = obj(raw, where, field);
    const parent = optString(n.parent, where, `${field}.parent`);
    const children = n.children ?? [];
    if (
      !Array.isArray(children) || children.some((c) => typeof c !== "string")
    ) {
      throw fieldError(where, `${field}.children`, "must be an array of ids");
    }
    const message = n.message === null || n.message === undefined
      ? undefined
      : obj(n.message, where, `${field}.message`);
    const time = message === undefined
      ? undefined
      : epochTime(message.create_time, where, `${field}.message.create_time`);
    nodes.set(id, {
      id,
      parent,
      children: children as string[],
      message,
      time,
    });
  }
  return nodes;
}

function pathTo(
  nodes: Map<string, Node>,
  leaf: string,
  where: Where,
): Node[] {
  const path: Node[] = [];
  const seen = new Set<string>();
  let id: string | undefined = leaf;
  while (id !== undefined) {
    const node = nodes.get(id);
    if (node === undefined) {
      throw fieldError(
        where,
        `mapping["${id}"]`,
        "is missing (a parent link points to it)",
      );
    }
    if (seen.has(id)) {
      throw fieldError(where, `mapping["${id}"].parent`, "forms a cycle");
    }
    seen.add(id);
    path.push(node);
    id = node.parent;
  }
  return path.reverse();
}

/** A node's time, or its nearest ancestor's when it has none. */
function nodeTime(nodes: Map<string, Node>, node: Node): number {
  let n: Node | undefined = node;
  for (let hops = 0; n !== undefined && hops < nodes.size; hops++) {
    if (n.time !== undefined) return n.time;
    n = n.parent === undefined ? undefined : nodes.get(n.parent);
  }
  return -Infinity;
}

function leaves(nodes: Map<string, Node>): Node[] {
  return [...nodes.values()].filter((n) =>
    n.children.every((c) => !nodes.has(c))
  );
}

function toMessage(
  node: Node,
  where: Where,
  sourcePrefix: string,
): ImportedMessage | undefined {
  const m = node.message;
  if (m === undefined) return undefined;
  const field = `mapping["${node.id}"].message`;
  const metadata = m.metadata === undefined || m.metadata === null
    ? {}
    : obj(m.metadata, where, `${field}.metadata`);
  if (metadata.is_visually_hidden_from_conversation === true) return undefined;
  const author = obj(m.author, where, `${field}.author`);
  const role = optString(author.role, where, `${field}.author.role`);
  const content = m.content === undefined || m.content === null
    ? {}
    : obj(m.content, where, `${field}.content`);
  const type =
    optString(content.content_type, where, `${field}.content.content_type`) ??
      "text";
  if (SKIPPED_TYPES.has(type)) return undefined;
  let mapped: MessageRole;
  if (role === "user") mapped = "user";
  else if (role === "assistant") {
    mapped = TOOL_TYPES.has(type) ? "tool" : "assistant";
  } else if (role === "system") mapped = "system";
  else if (role === "tool") mapped = "tool";
  else {
    throw fieldError(
      where,
      `${field}.author.role`,
      `must be user, assistant, system or tool, got "${String(role)}"`,
    );
  }
  const text = textOf(content, where, `${field}.content`);
  if (text.trim().length === 0) return undefined;
  const createdAt = node.time;
  const model = optString(
    metadata.model_slug,
    where,
    `${field}.metadata.model_slug`,
  );
  return {
    sourceKey: `${sourcePrefix}:${node.id}`,
    role: mapped,
    content: text,
    ...(createdAt === undefined ? {} : { createdAt }),
    ...(model === undefined ? {} : { model }),
  };
}

/**
 * Reads one element of a ChatGPT `conversations.json`.
 *
 * @param value The parsed element.
 * @param file The file label.
 * @param index The element's position.
 * @param allBranches Also return every other branch as its own conversation.
 * @returns The conversation as the user last saw it, then other branches.
 */
export function readChatgptConversation(
  value: unknown,
  file: string,
  index: number,
  allBranches: boolean,
): ImportedConversation[] {
  let where: Where = { file, conversation: `#${index}` };
  const c = obj(value, where, "(conversation)");
  const id = optString(c.conversation_id, where, "conversation_id") ??
    optString(c.id, where, "id");
  if (id === undefined || id.length === 0) {
    throw fieldError(where, "id", "is missing");
  }
  where = { file, conversation: `#${index} "${id}"` };
  const title = optString(c.title, where, "title");
  const createdAt = epochTime(c.create_time, where, "create_time");
  const updatedAt = epochTime(c.update_time, where, "update_time");
  const nodes = readNodes(obj(c.mapping, where, "mapping"), where);
  const current = optString(c.current_node, where, "current_node");
  const known = current !== undefined && nodes.has(current);
  const all = known && !allBranches ? [] : leaves(nodes);
  let main: string | undefined;
  if (known) main = current;
  else {
    // No current node: the newest leaf (the latest in mapping order on a tie).
    let best: Node | undefined;
    for (const leaf of all) {
      if (
        best === undefined || nodeTime(nodes, leaf) >= nodeTime(nodes, best)
      ) best = leaf;
    }
    main = best?.id;
  }
  const branch = (
    leaf: string | undefined,
    key: string,
    suffix: string,
  ): ImportedConversation => {
    const path = leaf === undefined ? [] : pathTo(nodes, leaf, where);
    const messages: ImportedMessage[] = [];
    for (const node of path) {
      const m = toMessage(node, where, `chatgpt:${key}`);
      if (m !== undefined) messages.push(m);
    }
    const t = title === undefined ? undefined : `${title}${suffix}`;
    return {
      sourceKey: `chatgpt:${key}`,
      preferredId: safeId(key),
      ...(t === undefined ? {} : { title: t }),
      ...(createdAt === undefined ? {} : { createdAt }),
      ...(updatedAt === undefined ? {} : { updatedAt }),
      messages,
    };
  };
  const out = [branch(main, id, "")];
  if (allBranches) {
    let n = 1;
    for (const leaf of all) {
      if (leaf.id === main) continue;
      n++;
      out.push(branch(leaf.id, `${id}~${leaf.id}`, ` (branch ${n})`));
    }
  }
  return out;
}
