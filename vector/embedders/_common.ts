// Internal: input checks, abort handling and small helpers shared by the
// embedders of this folder.
import { AicoDataError } from "../../errors.ts";

/** Most texts one `embed()` call accepts. */
export const MAX_EMBED_TEXTS = 100_000;

export function invalid(what: string, detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot ${what}: ${detail}`);
}

/** Checks the `texts` argument of `embed()`. */
export function checkTexts(texts: unknown, what: string): readonly string[] {
  if (!Array.isArray(texts)) throw invalid(what, "expected an array of texts");
  if (texts.length > MAX_EMBED_TEXTS) {
    throw invalid(what, `at most ${MAX_EMBED_TEXTS} texts per call`);
  }
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== "string") {
      throw invalid(what, `text ${i} is not a string`);
    }
  }
  return texts as readonly string[];
}

export function abortedError(what: string, signal: AbortSignal): AicoDataError {
  return new AicoDataError("ABORTED", `Cannot ${what}: aborted`, {
    cause: signal.reason,
  });
}

export function throwIfAborted(
  signal: AbortSignal | undefined,
  what: string,
): void {
  if (signal?.aborted) throw abortedError(what, signal);
}

/** Rejects with `ABORTED` as soon as `signal` aborts (the work may go on). */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortedError(what, signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(what, signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then((v) => {
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    }, (e) => {
      signal.removeEventListener("abort", onAbort);
      reject(e);
    });
  });
}

export function closedError(what: string): AicoDataError {
  return new AicoDataError(
    "STORE_CLOSED",
    `Cannot ${what}: the embedder is closed`,
  );
}

/** Checks an optional positive integer option. */
export function intOption(
  value: unknown,
  name: string,
  what: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw invalid(what, `"${name}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A small least-recently-used map. */
export class Lru<V> {
  #max: number;
  #map = new Map<string, V>();
  constructor(max: number) {
    this.#max = max;
  }
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    if (this.#max === 0) return;
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) {
      this.#map.delete(this.#map.keys().next().value!);
    }
  }
  clear(): void {
    this.#map.clear();
  }
}
