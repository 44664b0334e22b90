// Helpers shared by the tests. Not part of the package.
import assert from "node:assert/strict";
import { type AicoDataErrorCode, isAicoDataError } from "../errors.ts";

/** Runs `fn` with a new temporary folder, removed afterwards. */
export async function withDir<T>(
  fn: (dir: string) => Promise<T>,
  prefix = "aico_test_",
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that a promise (or a function's result) rejects with an AicoDataError of `code`. */
export async function rejectsWith(
  work: Promise<unknown> | (() => unknown),
  code: AicoDataErrorCode | string,
): Promise<void> {
  await assert.rejects(
    async () => await (typeof work === "function" ? work() : work),
    (err: unknown) => {
      assert.ok(
        isAicoDataError(err),
        `expected AicoDataError, got ${String(err)}`,
      );
      assert.equal(err.code, code);
      return true;
    },
  );
}

/** How often `needle` occurs in `hay` (marker scans of files). */
export function countOccurrences(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return 0;
  let n = 0;
  const first = needle[0]!;
  outer: for (
    let i = hay.indexOf(first);
    i !== -1 && i <= hay.length - needle.length;
    i = hay.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) continue outer;
    }
    n++;
  }
  return n;
}
