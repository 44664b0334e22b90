// Internal: aico-data's own export (`aico-data export`), plaintext
// (`aico-data-export`) or sealed (`aico-data-export-sealed`), read back.
import { AicoDataError } from "../errors.ts";
import type { MessageRole } from "../repositories/mod.ts";
import type { ImportedConversation, ImportedMessage, Unseal } from "./types.ts";
import { fieldError, obj, optString, type Where } from "./_fields.ts";

const ROLES = new Set(["system", "user", "assistant", "tool"]);
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
const HEAD = /^\s*\{\s*"format"\s*:\s*"aico-data-export(-sealed)?"/;

/** Whether the first bytes are an aico-data export. */
export function isAicoExport(head: string): boolean {
  return HEAD.test(head);
}

function time(v: unknown, where: Where, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw fieldError(where, field, "must be a time in ms");
  }
  return v;
}

/**
 * Reads a whole aico-data export (it is one JSON document; a sealed one is
 * one sealed value).
 *
 * Source keys: `aico:<conversation id>:<seq>`.
 */
export async function readAicoExport(
  bytes: Uint8Array,
  file: string,
  unseal: Unseal | undefined,
): Promise<ImportedConversation[]> {
  const where0: Where = { file, conversation: "(none)" };
  let doc: Record<string, unknown>;
  try {
    doc = obj(
      JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)),
      where0,
      "(file)",
    );
  } catch (cause) {
    if (cause instanceof AicoDataError) throw cause;
    throw new AicoDataError(
      "IMPORT_INVALID",
      `Cannot import "${file}": not valid JSON`,
      { cause },
    );
  }
  if (doc.format === "aico-data-export-sealed") {
    if (doc.contentType !== "application/json") {
      throw fieldError(
        where0,
        "contentType",
        "must be application/json (a Markdown export cannot be imported)",
      );
    }
    const keyId = optString(doc.keyId, where0, "keyId") ?? "";
    const sealed = optString(doc.sealed, where0, "sealed");
    if (sealed === undefined) throw fieldError(where0, "sealed", "is missing");
    if (unseal === undefined) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": it is a sealed export and no key was given to open it`,
      );
    }
    let raw: Uint8Array;
    try {
      raw = Uint8Array.fromBase64(sealed);
    } catch (cause) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": field "sealed" is not base64`,
        { cause },
      );
    }
    return await readAicoExport(await unseal(raw, keyId), file, undefined);
  }
  if (doc.format !== "aico-data-export" || doc.version !== 1) {
    throw fieldError(where0, "format", 'must be "aico-data-export" version 1');
  }
  const list = doc.conversations;
  if (!Array.isArray(list)) {
    throw fieldError(where0, "conversations", "must be an array");
  }
  return list.map((raw, index): ImportedConversation => {
    let where: Where = { file, conversation: `#${index}` };
    const c = obj(raw, where, "(conversation)");
    if (typeof c.id !== "string" || !ID_RE.test(c.id)) {
      throw fieldError(
        where,
        "id",
        "must be 1 to 128 characters of [A-Za-z0-9_-]",
      );
    }
    const id = c.id;
    where = { file, conversation: `#${index} "${id}"` };
    const title = optString(c.title, where, "title");
    const messages = c.messages;
    if (!Array.isArray(messages)) {
      throw fieldError(where, "messages", "must be an array");
    }
    return {
      sourceKey: `aico:${id}`,
      preferredId: id,
      ...(title === undefined ? {} : { title }),
      createdAt: time(c.createdAt, where, "createdAt"),
      updatedAt: time(c.updatedAt, where, "updatedAt"),
      messages: messages.map((rm, i): ImportedMessage => {
        const f = `messages[${i}]`;
        const m = obj(rm, where, f);
        if (typeof m.role !== "string" || !ROLES.has(m.role)) {
          throw fieldError(
            where,
            `${f}.role`,
            "must be system, user, assistant or tool",
          );
        }
        if (typeof m.content !== "string") {
          throw fieldError(where, `${f}.content`, "must be a string");
        }
        const seq = time(m.seq, where, `${f}.seq`);
        return {
          sourceKey: `aico:${id}:${seq}`,
          role: m.role as MessageRole,
          content: m.content,
          createdAt: time(m.createdAt, where, `${f}.createdAt`),
        };
      }),
    };
  });
}
