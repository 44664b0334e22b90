// Internal: the byte stream of an export file, plaintext or sealed in
// chunks, and the reader of a sealed one. The layout is documented in
// docs/EXPORT_FORMAT.md ("Sealed file").
import { AicoDataError } from "../errors.ts";
import type { Sealer } from "../crypto/mod.ts";

/** The `format` of a sealed export's header line. */
export const SEALED_FORMAT = "aico-data-export-sealed";
/** The layout version of a sealed export written here. */
export const SEALED_VERSION = 2;
/** Plaintext bytes per sealed chunk. */
export const CHUNK_BYTES = 65_536;

/** The header line of a sealed export (nothing in it is secret). */
export interface SealedHeader {
  readonly format: typeof SEALED_FORMAT;
  readonly version: typeof SEALED_VERSION;
  readonly keyId: string;
  readonly contentType: "application/json" | "text/markdown";
  readonly exportId: string;
  readonly chunkBytes: number;
  /** The folder's key file (the data key wrapped under the passphrase), when embedded. */
  readonly keyFile?: unknown;
}

/** The associated data of chunk `index`: binds header, position and end. */
export function chunkAad(
  h: Pick<SealedHeader, "exportId" | "keyId" | "contentType">,
  index: number,
  last: boolean,
): string {
  return `aico-data-export/v2\n${h.exportId}\n${h.keyId}\n${h.contentType}\n${index}\n${
    last ? "end" : "more"
  }`;
}

const encoder = new TextEncoder();

/**
 * A buffered writer of export text: plaintext bytes as they come, or sealed
 * chunks of {@linkcode CHUNK_BYTES}, one base64 line each, after a header
 * line. Memory holds one chunk.
 */
export class ExportSink {
  readonly #out: WritableStreamDefaultWriter<Uint8Array>;
  readonly #sealed: { sealer: Sealer; header: SealedHeader } | undefined;
  #parts: Uint8Array[] = [];
  #size = 0;
  #index = 0;
  /** Bytes written to the output. */
  bytes = 0;

  constructor(
    out: WritableStreamDefaultWriter<Uint8Array>,
    sealed: { sealer: Sealer; header: SealedHeader } | undefined,
  ) {
    this.#out = out;
    this.#sealed = sealed;
  }

  async start(): Promise<void> {
    if (this.#sealed !== undefined) {
      await this.#emit(
        encoder.encode(JSON.stringify(this.#sealed.header) + "\n"),
      );
    }
  }

  async #emit(bytes: Uint8Array): Promise<void> {
    await this.#out.write(bytes);
    this.bytes += bytes.length;
  }

  /** Appends text; flushes whole chunks. */
  async write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    this.#parts.push(bytes);
    this.#size += bytes.length;
    if (this.#size >= CHUNK_BYTES) await this.#flush(false);
  }

  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const p = this.#parts[0]!;
      const k = Math.min(p.length, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (k === p.length) this.#parts.shift();
      else this.#parts[0] = p.subarray(k);
    }
    this.#size -= n;
    return out;
  }

  async #flush(end: boolean): Promise<void> {
    if (this.#sealed === undefined) {
      if (this.#size > 0) await this.#emit(this.#take(this.#size));
      return;
    }
    const { sealer, header } = this.#sealed;
    while (this.#size >= CHUNK_BYTES || end) {
      const n = Math.min(this.#size, CHUNK_BYTES);
      const last = end && n === this.#size;
      const sealed = await sealer.seal(
        this.#take(n),
        chunkAad(header, this.#index++, last),
      );
      await this.#emit(encoder.encode(sealed.toBase64() + "\n"));
      if (last) return;
    }
  }

  /** Writes what is buffered (a sealed export: its final chunk). */
  async end(): Promise<void> {
    await this.#flush(true);
  }
}

function damaged(file: string, detail: string, cause?: unknown): AicoDataError {
  return new AicoDataError(
    "IMPORT_INVALID",
    `Cannot import "${file}": ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Whether the text starts like a sealed export of layout version 2. */
export function isSealedV2(head: string): boolean {
  return /^\s*\{\s*"format"\s*:\s*"aico-data-export-sealed"\s*,\s*"version"\s*:\s*2\b/
    .test(head);
}

/**
 * Parses the header line of a sealed export.
 *
 * @throws {AicoDataError} `IMPORT_INVALID` for a malformed header.
 */
export function readSealedHeader(text: string, file: string): {
  header: SealedHeader;
  body: string;
} {
  const nl = text.indexOf("\n");
  if (nl < 0) {
    throw damaged(file, "the sealed export has no chunks (truncated)");
  }
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(text.slice(0, nl));
  } catch (cause) {
    throw damaged(file, "its header line is not JSON", cause);
  }
  if (
    typeof h !== "object" || h === null || h.format !== SEALED_FORMAT ||
    h.version !== SEALED_VERSION
  ) {
    throw damaged(file, `not a "${SEALED_FORMAT}" version 2 file`);
  }
  if (typeof h.keyId !== "string" || !/^[0-9a-f]{32}$/.test(h.keyId)) {
    throw damaged(file, 'header field "keyId" must be 32 hex digits');
  }
  if (
    h.contentType !== "application/json" && h.contentType !== "text/markdown"
  ) {
    throw damaged(file, 'header field "contentType" is not known');
  }
  if (typeof h.exportId !== "string" || !/^[0-9a-f]{32}$/.test(h.exportId)) {
    throw damaged(file, 'header field "exportId" must be 32 hex digits');
  }
  if (h.chunkBytes !== CHUNK_BYTES) {
    throw damaged(file, `header field "chunkBytes" must be ${CHUNK_BYTES}`);
  }
  return {
    header: h as unknown as SealedHeader,
    body: text.slice(nl + 1),
  };
}

/**
 * Opens every chunk of a sealed export in order and returns the plaintext.
 * Nothing is returned unless every chunk opened and the last one is marked
 * as the end.
 *
 * @throws {AicoDataError} `AUTH_FAILED` for an edited, moved or foreign
 * chunk; `IMPORT_INVALID` for a truncated file or a malformed line.
 */
export async function openSealedBody(
  header: SealedHeader,
  body: string,
  sealer: Sealer,
  file: string,
): Promise<Uint8Array> {
  const lines = body.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) {
    throw damaged(file, "the sealed export has no chunks (truncated)");
  }
  if (!body.endsWith("\n")) {
    // Every chunk line ends with a newline: the file was cut inside one.
    throw damaged(file, "the sealed export is truncated (cut inside a chunk)");
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; i < lines.length; i++) {
    let raw: Uint8Array;
    try {
      raw = Uint8Array.fromBase64(lines[i]!);
    } catch (cause) {
      throw damaged(file, `chunk ${i} is not base64`, cause);
    }
    const last = i === lines.length - 1;
    let plain: Uint8Array;
    try {
      plain = await sealer.open(raw, chunkAad(header, i, last));
    } catch (err) {
      if (last && raw.length > 0) {
        // The file may end early: a chunk that opens as "more" means truncation.
        const more = await sealer.open(raw, chunkAad(header, i, false)).then(
          () => true,
          () => false,
        );
        if (more) {
          throw damaged(
            file,
            "the sealed export is truncated (no final chunk)",
          );
        }
      }
      throw new AicoDataError(
        "AUTH_FAILED",
        `Cannot import "${file}": chunk ${i} of the sealed export does not open (edited, reordered, or sealed with another key)`,
        { cause: err },
      );
    }
    parts.push(plain);
    size += plain.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
