// Internal: reads entries of a ZIP file through its central directory (no
// whole-file read): stored and deflated entries, ZIP64 sizes and offsets,
// CRC-32 checked at the end of each entry.
import { crc32 } from "node:zlib";
import { AicoDataError } from "../errors.ts";

/** One entry of the central directory. */
export interface ZipEntry {
  /** The path inside the archive. */
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  /** The CRC-32 of the uncompressed bytes. */
  readonly crc: number;
  /** The compressed size. */
  readonly compressedSize: number;
  /** The uncompressed size. */
  readonly size: number;
  /** Where the local header starts. */
  readonly localOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const READ_CHUNK = 1 << 20;

function invalid(file: string, detail: string): AicoDataError {
  return new AicoDataError(
    "IMPORT_INVALID",
    `Cannot import "${file}": not a readable ZIP archive (${detail})`,
  );
}

async function readAt(
  f: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await f.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await f.read(out.subarray(got));
    if (n === null) break;
    got += n;
  }
  return out.subarray(0, got);
}

function u64(v: DataView, at: number): number {
  return Number(v.getBigUint64(at, true));
}

/**
 * Lists the entries of a ZIP file.
 *
 * @param f The open file.
 * @param file The file label for errors.
 * @returns The entries in central-directory order.
 * @throws {AicoDataError} `IMPORT_INVALID` when the archive is malformed.
 */
export async function listZipEntries(
  f: Deno.FsFile,
  file: string,
): Promise<ZipEntry[]> {
  const size = (await f.stat()).size;
  const tailLength = Math.min(size, 22 + 65535 + 20);
  const tail = await readAt(f, size - tailLength, tailLength);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw invalid(file, "no end of central directory");
  let count = tv.getUint16(at + 10, true);
  let cdSize = tv.getUint32(at + 12, true);
  let cdOffset = tv.getUint32(at + 16, true);
  if (
    (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) &&
    at >= 20 && tv.getUint32(at - 20, true) === ZIP64_LOCATOR
  ) {
    const eocd64 = await readAt(f, u64(tv, at - 20 + 8), 56);
    const v = new DataView(eocd64.buffer, eocd64.byteOffset, eocd64.length);
    if (eocd64.length < 56 || v.getUint32(0, true) !== ZIP64_EOCD) {
      throw invalid(file, "bad ZIP64 end of central directory");
    }
    count = u64(v, 32);
    cdSize = u64(v, 40);
    cdOffset = u64(v, 48);
  }
  if (cdOffset + cdSize > size) throw invalid(file, "truncated");
  const cd = await readAt(f, cdOffset, cdSize);
  const v = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const entries: ZipEntry[] = [];
  const names = new TextDecoder();
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || v.getUint32(p, true) !== CENTRAL) {
      throw invalid(file, "bad central directory");
    }
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let usize = v.getUint32(p + 24, true);
    const nameLength = v.getUint16(p + 28, true);
    const extraLength = v.getUint16(p + 30, true);
    const commentLength = v.getUint16(p + 32, true);
    let localOffset = v.getUint32(p + 42, true);
    const name = names.decode(cd.subarray(p + 46, p + 46 + nameLength));
    // ZIP64 extra field: the 64-bit values, in order, for the fields set to 0xffffffff.
    let e = p + 46 + nameLength;
    const end = e + extraLength;
    while (e + 4 <= end) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (usize === 0xffffffff) (usize = u64(v, q), q += 8);
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(v, q);
          q += 8;
        }
        if (localOffset === 0xffffffff) localOffset = u64(v, q);
      }
      e += 4 + len;
    }
    entries.push({
      name,
      method,
      crc,
      compressedSize,
      size: usize,
      localOffset,
    });
    p = end + commentLength;
  }
  return entries;
}

/**
 * Streams the uncompressed bytes of one entry; the CRC-32 is checked when the
 * entry ends.
 *
 * @param f The open file.
 * @param entry The entry.
 * @param file The file label for errors.
 * @returns The bytes, chunk by chunk.
 * @throws {AicoDataError} `IMPORT_INVALID` for an unsupported method, a bad
 *   local header, corrupt data or a CRC mismatch.
 */
export async function* readZipEntry(
  f: Deno.FsFile,
  entry: ZipEntry,
  file: string,
): AsyncGenerator<Uint8Array> {
  if (entry.method !== 0 && entry.method !== 8) {
    throw invalid(
      file,
      `entry "${entry.name}" uses compression method ${entry.method}`,
    );
  }
  const head = await readAt(f, entry.localOffset, 30);
  const hv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length < 30 || hv.getUint32(0, true) !== LOCAL) {
    throw invalid(file, `bad local header of "${entry.name}"`);
  }
  const start = entry.localOffset + 30 + hv.getUint16(26, true) +
    hv.getUint16(28, true);
  const total = entry.compressedSize;
  let offset = 0;
  const raw = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (offset >= total) {
        controller.close();
        return;
      }
      const chunk = await readAt(
        f,
        start + offset,
        Math.min(READ_CHUNK, total - offset),
      );
      if (chunk.length === 0) {
        controller.error(invalid(file, `"${entry.name}" is truncated`));
        return;
      }
      offset += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const body = entry.method === 8
    ? raw.pipeThrough(
      new DecompressionStream("deflate-raw") as unknown as TransformStream<
        Uint8Array,
        Uint8Array
      >,
    )
    : raw;
  let crc = 0;
  let size = 0;
  try {
    for await (const chunk of body) {
      crc = crc32(chunk, crc);
      size += chunk.length;
      yield chunk;
    }
  } catch (err) {
    if (err instanceof AicoDataError) throw err;
    throw new AicoDataError(
      "IMPORT_INVALID",
      `Cannot import "${file}": entry "${entry.name}" is corrupt`,
      { cause: err },
    );
  }
  if ((crc >>> 0) !== entry.crc || size !== entry.size) {
    throw invalid(file, `entry "${entry.name}" fails its CRC-32 check`);
  }
}
