/**
 * Exports of analytics results: CSV and the sealed export file format.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { PlainValue, QueryResult } from "./engine.ts";

/** The formats an export can hold. */
export type ExportFormat = "csv" | "arrow" | "parquet" | "html";

/**
 * The part of a data key that exports use (a `DataKey` from `crypto/` is
 * one): its fingerprint and its `export` sealer.
 */
export interface ExportKey {
  /** The key's non-secret fingerprint. */
  readonly keyId: string;
  /**
   * The sealer of a purpose.
   *
   * @param purpose Always `export` here.
   * @returns The sealer.
   */
  sealer(purpose: "export"): Promise<{
    seal(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
    open(sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  }>;
}

/** An opened sealed export. */
export interface OpenedExport {
  /** What the data is. */
  readonly format: ExportFormat;
  /** When it was sealed, ms since the epoch. */
  readonly createdAt: number;
  /** The plain bytes. */
  readonly data: Uint8Array;
}

const MAGIC = new Uint8Array([0x41, 0x49, 0x43, 0x4f, 0x45, 0x58, 0x50, 0x01]); // "AICOEXP" v1
const FORMATS: ReadonlySet<string> = new Set([
  "csv",
  "arrow",
  "parquet",
  "html",
]);
const MAX_HEADER = 4096;

function cell(v: PlainValue): string {
  if (v === null) return "";
  let s: string;
  if (v instanceof Date) s = v.toISOString();
  else if (typeof v === "string") s = v;
  else if (
    typeof v === "number" || typeof v === "bigint" || typeof v === "boolean"
  ) {
    s = String(v);
  } else if (v instanceof Uint8Array) {
    s = btoa(String.fromCharCode(...v));
  } else {
    s = JSON.stringify(v, (_k, x) => typeof x === "bigint" ? x.toString() : x);
  }
  return /[",\r\n]/.test(s) || s !== s.trim()
    ? `"${s.replaceAll('"', '""')}"`
    : s;
}

/**
 * A result as CSV (RFC 4180: header line, CRLF line ends, fields quoted
 * when needed). `NULL` is an empty field; `Date`s are ISO 8601 UTC; lists
 * and structs are JSON; blobs base64.
 *
 * @param result The result.
 * @returns The CSV text.
 *
 * @example A two-row CSV
 * ```ts
 * import { resultToCsv } from "./export.ts";
 * import assert from "node:assert/strict";
 *
 * const csv = resultToCsv({ columns: ["a", "b"], rows: [{ a: 1, b: "x,y" }, { a: null, b: "z" }] });
 * assert.equal(csv, 'a,b\r\n1,"x,y"\r\n,z\r\n');
 * ```
 */
export function resultToCsv(result: QueryResult): string {
  const lines = [result.columns.map((c) => cell(c)).join(",")];
  for (const row of result.rows) {
    lines.push(result.columns.map((c) => cell(row[c] ?? null)).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

/**
 * Seals bytes as an export file with the `export` purpose key.
 *
 * @remarks
 * File format (version 1), all integers big-endian:
 * `"AICOEXP" 0x01` (8 bytes) ‖ header length (uint32) ‖ header (UTF-8
 * JSON `{"v":1,"format":…,"keyId":…,"createdAt":…}`) ‖ sealed body. The
 * body is one sealed value of the `export` sealer
 * (`0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`, AES-256-GCM) whose AAD is the
 * magic followed by the header bytes, so the header cannot be altered.
 *
 * @param key The data key.
 * @param format What the bytes are.
 * @param data The plain bytes.
 * @returns The export file's bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for an unknown format.
 *
 * @example Round trip
 * ```ts
 * import { openSealedExport, sealExport } from "./export.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importDataKey(generateDataKey());
 * const file = await sealExport(key, "csv", new TextEncoder().encode("a\r\n1\r\n"));
 * const opened = await openSealedExport(key, file);
 * assert.equal(opened.format, "csv");
 * assert.equal(new TextDecoder().decode(opened.data), "a\r\n1\r\n");
 * ```
 */
export async function sealExport(
  key: ExportKey,
  format: ExportFormat,
  data: Uint8Array,
): Promise<Uint8Array> {
  if (!FORMATS.has(format)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot seal export: unknown format "${String(format)}"`,
    );
  }
  const header = new TextEncoder().encode(
    JSON.stringify({ v: 1, format, keyId: key.keyId, createdAt: Date.now() }),
  );
  const aad = new Uint8Array(MAGIC.length + header.length);
  aad.set(MAGIC);
  aad.set(header, MAGIC.length);
  const sealed = await (await key.sealer("export")).seal(data, aad);
  const out = new Uint8Array(12 + header.length + sealed.length);
  out.set(MAGIC);
  new DataView(out.buffer).setUint32(8, header.length);
  out.set(header, 12);
  out.set(sealed, 12 + header.length);
  return out;
}

/**
 * Tells whether bytes start like a sealed export file.
 *
 * @param bytes The file's bytes.
 * @returns `true` when the magic matches.
 *
 * @example Plain CSV is not sealed
 * ```ts
 * import { isSealedExport } from "./export.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isSealedExport(new TextEncoder().encode("a,b\r\n")), false);
 * ```
 */
export function isSealedExport(bytes: Uint8Array): boolean {
  return bytes.length >= 12 && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Opens a sealed export file.
 *
 * @param key The data key it was sealed with.
 * @param bytes The file's bytes.
 * @returns The format, time and plain bytes.
 * @throws {AicoDataError} `CORRUPT_VALUE` for a malformed file, `WRONG_KEY`
 *   when sealed with another key, `AUTH_FAILED` when altered.
 *
 * @example See {@linkcode sealExport}
 * ```ts
 * import { openSealedExport } from "./export.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importDataKey(generateDataKey());
 * await assert.rejects(() => openSealedExport(key, new Uint8Array(3)));
 * ```
 */
export async function openSealedExport(
  key: ExportKey,
  bytes: Uint8Array,
): Promise<OpenedExport> {
  const corrupt = (why: string) =>
    new AicoDataError("CORRUPT_VALUE", `Cannot open export: ${why}`);
  if (!(bytes instanceof Uint8Array) || !isSealedExport(bytes)) {
    throw corrupt("not a sealed export file");
  }
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .getUint32(8);
  if (len > MAX_HEADER || 12 + len >= bytes.length) {
    throw corrupt("bad header length");
  }
  const headerBytes = bytes.subarray(12, 12 + len);
  let header: {
    v?: unknown;
    format?: unknown;
    keyId?: unknown;
    createdAt?: unknown;
  };
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(headerBytes),
    );
  } catch (e) {
    throw new AicoDataError("CORRUPT_VALUE", "Cannot open export: bad header", {
      cause: e,
    });
  }
  if (
    header === null || typeof header !== "object" || header.v !== 1 ||
    typeof header.format !== "string" || !FORMATS.has(header.format) ||
    typeof header.createdAt !== "number"
  ) {
    throw corrupt("bad header");
  }
  if (header.keyId !== key.keyId) {
    throw new AicoDataError(
      "WRONG_KEY",
      "Cannot open export: it was sealed with another data key",
    );
  }
  const aad = new Uint8Array(MAGIC.length + len);
  aad.set(MAGIC);
  aad.set(headerBytes, MAGIC.length);
  const data = await (await key.sealer("export")).open(
    bytes.subarray(12 + len),
    aad,
  );
  return {
    format: header.format as ExportFormat,
    createdAt: header.createdAt,
    data,
  };
}
