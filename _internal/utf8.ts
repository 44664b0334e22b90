// Internal: UTF-8 helpers shared by the modules. Not exported from the package.
import { AicoDataError } from "../errors.ts";

/**
 * The UTF-8 length of a string in bytes, without encoding it. A surrogate pair
 * counts 4 bytes.
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes stored UTF-8 bytes (a BOM is kept as U+FEFF), or throws
 * `CORRUPT_VALUE` when they are not valid UTF-8.
 *
 * @param bytes The stored bytes.
 * @param what What cannot be done otherwise, e.g. `read column "body"`.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  try {
    return fatalDecoder.decode(bytes);
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot ${what}: the stored text is not valid UTF-8`,
      { cause },
    );
  }
}
