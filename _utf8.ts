// Internal: UTF-8 helpers shared by the modules. Not exported from the package.

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
