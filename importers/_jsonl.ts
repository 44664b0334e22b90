// Internal: JSON Lines (`{"conversation","role","content","ts"?,"title"?}`)
// read line by line into runs of one conversation.
import { createHash } from "node:crypto";
import { AicoDataError } from "../errors.ts";
import type { MessageRole } from "../repositories/mod.ts";
import type { ImportedConversation, ImportedMessage } from "./types.ts";

const ROLES = new Set(["system", "user", "assistant", "tool"]);
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** Lines of one conversation handed on at once. */
const RUN = 1000;

async function* lines(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  maxLineBytes: number,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pieces: Uint8Array[] = [];
  let size = 0;
  let lineNo = 0;
  const decode = (bytes: Uint8Array): string => {
    try {
      return decoder.decode(bytes);
    } catch (cause) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": line ${lineNo} is not valid UTF-8`,
        { cause },
      );
    }
  };
  const join = (): Uint8Array => {
    if (pieces.length === 1) return pieces[0]!;
    const out = new Uint8Array(size);
    let o = 0;
    for (const p of pieces) (out.set(p, o), o += p.length);
    return out;
  };
  for await (const chunk of chunks) {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      size += piece.length;
      if (size > maxLineBytes) {
        throw new AicoDataError(
          "IMPORT_INVALID",
          `Cannot import "${file}": line ${
            lineNo + 1
          } is longer than ${maxLineBytes} bytes`,
        );
      }
      if (nl < 0) {
        pieces.push(piece.slice());
        break;
      }
      pieces.push(piece);
      lineNo++;
      yield decode(join());
      pieces = [];
      size = 0;
      start = nl + 1;
    }
  }
  if (size > 0) {
    lineNo++;
    yield decode(join());
  }
}

/**
 * Reads JSON Lines into runs of consecutive lines of one conversation.
 *
 * Source keys are `jsonl:<conversation>:<n>:<hash>`: the line's position in
 * its conversation and a SHA-256 of its role, time and content, so the same
 * file (or the same file with lines appended) imports each line once.
 *
 * @param chunks The file's bytes.
 * @param file The file label for errors.
 * @param maxLineBytes The longest line accepted.
 * @returns The runs.
 * @throws {AicoDataError} `IMPORT_INVALID` naming the line and the field.
 */
export async function* readJsonLines(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  maxLineBytes: number,
): AsyncGenerator<ImportedConversation> {
  const positions = new Map<string, number>();
  let run: ImportedMessage[] = [];
  let current: string | undefined;
  let title: string | undefined;
  let lineNo = 0;
  const fail = (conversation: string, field: string, detail: string) =>
    new AicoDataError(
      "IMPORT_INVALID",
      `Cannot import "${file}": line ${lineNo}, conversation ${conversation}, field "${field}" ${detail}`,
    );
  const flush = (): ImportedConversation | undefined => {
    if (current === undefined) return undefined;
    const out: ImportedConversation = {
      sourceKey: `jsonl:${current}`,
      preferredId: current,
      ...(title === undefined ? {} : { title }),
      messages: run,
    };
    run = [];
    title = undefined;
    return out;
  };
  for await (const text of lines(chunks, file, maxLineBytes)) {
    lineNo++;
    if (text.trim().length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (cause) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": line ${lineNo} is not JSON`,
        { cause },
      );
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw fail("(none)", "(line)", "must be a JSON object");
    }
    const r = v as Record<string, unknown>;
    if (typeof r.conversation !== "string" || !ID_RE.test(r.conversation)) {
      throw fail(
        "(none)",
        "conversation",
        "must be 1 to 128 characters of [A-Za-z0-9_-]",
      );
    }
    const conv = r.conversation;
    const where = `"${conv}"`;
    if (typeof r.role !== "string" || !ROLES.has(r.role)) {
      throw fail(where, "role", "must be system, user, assistant or tool");
    }
    if (typeof r.content !== "string") {
      throw fail(where, "content", "must be a string");
    }
    if (
      r.ts !== undefined &&
      (typeof r.ts !== "number" || !Number.isSafeInteger(r.ts) || r.ts < 0)
    ) {
      throw fail(where, "ts", "must be a time in ms");
    }
    if (r.title !== undefined && typeof r.title !== "string") {
      throw fail(where, "title", "must be a string");
    }
    if (conv !== current || run.length >= RUN) {
      const out = flush();
      if (out !== undefined) yield out;
      current = conv;
    }
    if (title === undefined && typeof r.title === "string") title = r.title;
    const n = (positions.get(conv) ?? 0) + 1;
    positions.set(conv, n);
    const hash = createHash("sha256").update(
      `${r.role}\0${r.ts ?? ""}\0${r.content}`,
    ).digest("hex").slice(0, 32);
    run.push({
      sourceKey: `jsonl:${conv}:${n}:${hash}`,
      role: r.role as MessageRole,
      content: r.content,
      ...(typeof r.ts === "number" ? { createdAt: r.ts } : {}),
    });
  }
  const out = flush();
  if (out !== undefined) yield out;
}
