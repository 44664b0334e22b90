// Internal: a streaming splitter for a top-level JSON array. It scans bytes
// (strings, escapes and nesting only), cuts out each element and hands its
// bytes to JSON.parse, so memory is bounded by the largest element, not the
// file.
import { AicoDataError } from "../errors.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Where the splitter is, for error messages. */
export interface ElementContext {
  /** The file label. */
  readonly file: string;
}

function invalid(file: string, detail: string): AicoDataError {
  return new AicoDataError(
    "IMPORT_INVALID",
    `Cannot import "${file}": ${detail}`,
  );
}

function concat(pieces: Uint8Array[], size: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of pieces) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Yields each element of a top-level JSON array, parsed, in order.
 *
 * @param chunks The file's bytes.
 * @param file The file label for errors.
 * @param maxElementBytes The largest element accepted.
 * @throws {AicoDataError} `IMPORT_INVALID` when the bytes are not a JSON
 *   array, an element is not valid JSON or UTF-8, or an element is too large.
 */
export async function* jsonArrayElements(
  chunks: AsyncIterable<Uint8Array>,
  file: string,
  maxElementBytes: number,
): AsyncGenerator<unknown> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  // 0: before "[", 1: before an element or "]", 2: in an element,
  // 3: after an element (expect "," or "]"), 4: after "]".
  let state = 0;
  let depth = 0;
  let inString = false;
  let escape = false;
  let pieces: Uint8Array[] = [];
  let size = 0;
  let index = 0;
  let first = true;
  const parse = (bytes: Uint8Array): unknown => {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch (cause) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": conversation ${index} is not valid UTF-8`,
        { cause },
      );
    }
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": conversation ${index} is not valid JSON`,
        { cause },
      );
    }
  };
  for await (const chunk of chunks) {
    let i = 0;
    const n = chunk.length;
    if (first && n > 0) {
      first = false;
      if (
        n >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf
      ) {
        i = 3;
      }
    }
    while (i < n) {
      if (state === 2) {
        const start = i;
        let done = false;
        while (i < n) {
          if (inString) {
            // Jump to the next quote (memchr), then decide from the run of
            // backslashes before it (and one carried from the last chunk).
            const q = chunk.indexOf(QUOTE, i);
            let j = (q < 0 ? n : q) - 1;
            let run = 0;
            while (j >= i && chunk[j] === BACKSLASH) (run++, j--);
            if (j < i && escape) run++;
            if (q < 0) {
              escape = run % 2 === 1;
              i = n;
              break;
            }
            escape = false;
            if (run % 2 === 0) inString = false;
            i = q + 1;
            continue;
          }
          const b = chunk[i++]!;
          if (b === QUOTE) inString = true;
          else if (b === OPEN_OBJ || b === OPEN_ARR) depth++;
          else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
            if (--depth === 0) {
              done = true;
              break;
            }
          }
        }
        const piece = chunk.subarray(start, i);
        size += piece.length;
        if (size > maxElementBytes) {
          throw invalid(
            file,
            `conversation ${index} is larger than ${maxElementBytes} bytes`,
          );
        }
        // Copy: the reader may reuse its buffer.
        pieces.push(done && pieces.length === 0 ? piece : piece.slice());
        if (done) {
          const value = parse(concat(pieces, size));
          pieces = [];
          size = 0;
          state = 3;
          yield value;
          index++;
        }
        continue;
      }
      const b = chunk[i]!;
      if (isSpace(b)) {
        i++;
        continue;
      }
      if (state === 0) {
        if (b !== OPEN_ARR) {
          throw invalid(file, "expected a JSON array of conversations");
        }
        state = 1;
        i++;
      } else if (state === 1 || state === 3) {
        if (b === CLOSE_ARR) {
          state = 4;
          i++;
        } else if (state === 3 && b === COMMA) {
          state = 1;
          i++;
        } else if (state === 1 && (b === OPEN_OBJ || b === OPEN_ARR)) {
          state = 2;
          depth = 0;
          inString = false;
          escape = false;
        } else {
          throw invalid(
            file,
            `conversation ${index} is not a JSON object`,
          );
        }
      } else {
        throw invalid(file, "unexpected data after the array");
      }
    }
  }
  if (state !== 4) {
    throw invalid(
      file,
      state === 0
        ? "the file is empty"
        : `the file ends inside conversation ${index}`,
    );
  }
}
