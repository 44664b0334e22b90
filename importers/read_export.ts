/**
 * `readExport()`: streams the conversations of a ChatGPT or Claude export
 * (`conversations.json` or the `.zip`) or of a JSON Lines file, without
 * storing anything.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { ImportedConversation, ImportFormat, Unseal } from "./types.ts";
import { jsonArrayElements } from "./_json_stream.ts";
import { listZipEntries, readZipEntry } from "./_zip.ts";
import { readChatgptConversation } from "./_chatgpt.ts";
import { readClaudeConversation } from "./_claude.ts";
import { readJsonLines } from "./_jsonl.ts";
import { isObject } from "./_fields.ts";
import { isAicoExport, readAicoExport } from "./_aico.ts";

/** Options of {@linkcode readExport}. */
export interface ReadExportOptions {
  /**
   * The format; detected from the bytes when absent (a ZIP archive, a JSON
   * array whose first conversation has `mapping` (ChatGPT) or
   * `chat_messages` (Claude), or JSON Lines).
   *
   * @default {undefined}
   */
  readonly format?: ImportFormat;
  /**
   * ChatGPT: also read every branch other than the one the user last saw,
   * each as its own conversation (`<title> (branch N)`).
   *
   * @default {false}
   */
  readonly allBranches?: boolean;
  /**
   * The bytes to read when the path is `-` (standard input).
   *
   * @default {Deno.stdin.readable}
   */
  readonly stdin?: ReadableStream<Uint8Array>;
  /**
   * The largest conversation (or JSON line) accepted, in bytes: this bounds
   * the memory of a read.
   *
   * @default {268435456} (256 MiB)
   */
  readonly maxConversationBytes?: number;
  /**
   * Stops the read with the signal's reason.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
  /**
   * Called with the format once it is known.
   *
   * @default {undefined}
   */
  readonly onFormat?: (format: ImportFormat) => void;
  /**
   * Opens a sealed aico-data export (`aico-data export` without
   * `--plaintext`): given the sealed bytes and the key id it names, returns
   * the plaintext.
   *
   * @default {undefined} (a sealed export is refused)
   */
  readonly unseal?: Unseal;
}

const FORMATS: readonly ImportFormat[] = ["chatgpt", "claude", "jsonl", "aico"];
const CHUNK = 1 << 20;

function readChunk(f: Deno.FsFile): Promise<Uint8Array | null> {
  const buf = new Uint8Array(CHUNK);
  const read = f.read(buf).then((n) => n === null ? null : buf.subarray(0, n));
  // Marked handled: a read left pending when the import stops (and the file
  // closes) must not become an unhandled rejection; an awaited one still throws.
  read.catch(() => {});
  return read;
}

/** The file in chunks, the next one read while the current one is parsed. */
async function* fileChunks(f: Deno.FsFile): AsyncGenerator<Uint8Array> {
  let next = readChunk(f);
  while (true) {
    const chunk = await next;
    if (chunk === null) return;
    next = readChunk(f);
    yield chunk;
  }
}

async function* prepend(
  first: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (first.length > 0) yield first;
  while (true) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

async function* guarded<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal | undefined,
): AsyncGenerator<T> {
  for await (const v of source) {
    signal?.throwIfAborted();
    yield v;
  }
}

function firstByte(bytes: Uint8Array): number | undefined {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return b;
  }
  return undefined;
}

async function* fromArray(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  o: ReadExportOptions,
  max: number,
): AsyncGenerator<ImportedConversation> {
  let format = o.format;
  let index = 0;
  for await (const element of jsonArrayElements(chunks, file, max)) {
    if (format === undefined) {
      format = isObject(element) && "chat_messages" in element
        ? "claude"
        : "chatgpt";
      o.onFormat?.(format);
    }
    if (format === "claude") {
      yield readClaudeConversation(element, file, index);
    } else {
      yield* readChatgptConversation(
        element,
        file,
        index,
        o.allBranches === true,
      );
    }
    index++;
  }
  if (format === undefined) o.onFormat?.(o.format ?? "chatgpt");
}

/**
 * Streams the conversations of an export file, in file order. Memory stays
 * bounded by the largest conversation whatever the file size: JSON is split
 * element by element, ZIP archives are read through their central directory
 * and inflated as a stream (`DecompressionStream("deflate-raw")`), JSON Lines
 * line by line.
 *
 * Permissions: `--allow-read` on the file.
 *
 * @param path The file, or `-` for standard input (not for ZIP archives).
 * @param options See {@linkcode ReadExportOptions}.
 * @returns The conversations (JSON Lines: runs of lines of one conversation).
 * @throws {AicoDataError} `IMPORT_INVALID` naming the file, the conversation
 *   and the field; `NOT_FOUND` for a missing file; `INVALID_INPUT` for a bad
 *   option.
 *
 * @example Reading a ChatGPT export
 * ```ts
 * import { readExport } from "./read_export.ts";
 * import assert from "node:assert/strict";
 *
 * const file = await Deno.makeTempFile({ suffix: ".json" });
 * try {
 *   await Deno.writeTextFile(file, JSON.stringify([{
 *     id: "c1",
 *     title: "Tea",
 *     current_node: "b",
 *     mapping: {
 *       a: { id: "a", parent: null, children: ["b"], message: {
 *         id: "a", author: { role: "user" }, create_time: 1700000000.5,
 *         content: { content_type: "text", parts: ["Green or black?"] } } },
 *       b: { id: "b", parent: "a", children: [], message: {
 *         id: "b", author: { role: "assistant" }, create_time: 1700000001,
 *         metadata: { model_slug: "gpt-4o" },
 *         content: { content_type: "text", parts: ["Green."] } } },
 *     },
 *   }]));
 *   const all = [];
 *   for await (const c of readExport(file)) all.push(c);
 *   assert.equal(all[0]?.title, "Tea");
 *   assert.deepEqual(all[0]?.messages.map((m) => m.content), ["Green or black?", "Green."]);
 *   assert.equal(all[0]?.messages[0]?.createdAt, 1700000000500);
 *   assert.equal(all[0]?.messages[1]?.model, "gpt-4o");
 * } finally {
 *   await Deno.remove(file);
 * }
 * ```
 */
export async function* readExport(
  path: string,
  options: ReadExportOptions = {},
): AsyncGenerator<ImportedConversation> {
  const o = options;
  if (o.format !== undefined && !FORMATS.includes(o.format)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot read export: format must be one of ${FORMATS.join(", ")}, got "${
        String(o.format)
      }"`,
    );
  }
  const max = o.maxConversationBytes ?? 256 * 1024 * 1024;
  const file = path === "-" ? "(stdin)" : path;
  o.signal?.throwIfAborted();
  if (path === "-") {
    const reader = (o.stdin ?? Deno.stdin.readable)[Symbol.asyncIterator]();
    // Look at the first non-empty chunk to detect the format.
    let first: Uint8Array = new Uint8Array(0);
    while (first.length === 0) {
      const r = await reader.next();
      if (r.done) break;
      first = r.value;
    }
    if (first[0] === 0x50 && first[1] === 0x4b) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": a ZIP archive cannot be read from standard input (save it to a file first)`,
      );
    }
    const chunks = guarded(prepend(first, reader), o.signal);
    if (
      o.format === "aico" ||
      (o.format === undefined &&
        isAicoExport(new TextDecoder().decode(first.subarray(0, 256))))
    ) {
      yield* fromAico(chunks, file, o, max);
      return;
    }
    yield* fromBytes(chunks, firstByte(first), file, o, max);
    return;
  }
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot import "${file}": no such file`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    if ((await f.stat()).isDirectory) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot import "${file}": it is a folder (pass conversations.json or the export's .zip)`,
      );
    }
    const head = new Uint8Array(4096);
    const n = (await f.read(head)) ?? 0;
    await f.seek(0, Deno.SeekMode.Start);
    if (n >= 2 && head[0] === 0x50 && head[1] === 0x4b) {
      const entries = await listZipEntries(f, file);
      const json = entries
        .filter((e) => /(^|\/)conversations\.json$/.test(e.name))
        .sort((a, b) => a.name.length - b.name.length)[0];
      if (json === undefined) {
        throw new AicoDataError(
          "IMPORT_INVALID",
          `Cannot import "${file}": the archive holds no conversations.json`,
        );
      }
      const label = `${file}:${json.name}`;
      yield* fromArray(
        guarded(readZipEntry(f, json, label), o.signal),
        label,
        o,
        max,
      );
      return;
    }
    if (
      o.format === "aico" ||
      (o.format === undefined &&
        isAicoExport(
          new TextDecoder().decode(head.subarray(0, Math.min(n, 256))),
        ))
    ) {
      yield* fromAico(guarded(fileChunks(f), o.signal), file, o, max);
      return;
    }
    yield* fromBytes(
      guarded(fileChunks(f), o.signal),
      firstByte(head.subarray(0, n)),
      file,
      o,
      max,
    );
  } finally {
    f.close();
  }
}

/** An aico-data export is one JSON document (a sealed one, one sealed value): read whole, up to `max` bytes. */
async function* fromAico(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  o: ReadExportOptions,
  max: number,
): AsyncGenerator<ImportedConversation> {
  o.onFormat?.("aico");
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const c of chunks) {
    size += c.length;
    if (size > max) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": an aico-data export larger than ${max} bytes`,
      );
    }
    parts.push(c.slice());
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) (bytes.set(p, at), at += p.length);
  yield* await readAicoExport(bytes, file, o.unseal);
}

async function* fromBytes(
  chunks: AsyncIterable<Uint8Array>,
  first: number | undefined,
  file: string,
  o: ReadExportOptions,
  max: number,
): AsyncGenerator<ImportedConversation> {
  const format = o.format ?? (first === 0x7b ? "jsonl" : undefined);
  if (format === "jsonl") {
    o.onFormat?.("jsonl");
    yield* readJsonLines(chunks, file, max);
    return;
  }
  yield* fromArray(chunks, file, o, max);
}
