// Internal: the HTTP machinery shared by the Ollama and OpenAI-compatible
// embedders: option checks, one POST with timeout and abort, response checks.
import { AicoDataError } from "../../errors.ts";
import type { EmbedOptions } from "../types.ts";
import {
  abortedError,
  checkTexts,
  closedError,
  intOption,
  invalid,
  throwIfAborted,
} from "./_common.ts";

export interface HttpEmbedderConfig {
  readonly url: URL;
  readonly model: string;
  readonly dimensions: number | undefined;
  readonly batchSize: number;
  readonly timeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
}

export function checkHttpOptions(
  options: unknown,
  what: string,
): {
  url: URL;
  model: string;
  dimensions: number | undefined;
  batchSize: number;
  timeoutMs: number;
} {
  if (typeof options !== "object" || options === null) {
    throw invalid(what, "options must be an object");
  }
  const o = options as Record<string, unknown>;
  let url: URL;
  try {
    url = new URL(String(o.url));
  } catch {
    throw invalid(what, '"url" must be an http or https URL');
  }
  if (
    typeof o.url !== "string" ||
    (url.protocol !== "http:" && url.protocol !== "https:")
  ) {
    throw invalid(what, '"url" must be an http or https URL');
  }
  if (
    typeof o.model !== "string" || o.model.length === 0 ||
    o.model.length > 256
  ) {
    throw invalid(what, '"model" must be a string of 1 to 256 characters');
  }
  return {
    url,
    model: o.model,
    dimensions: o.dimensions === undefined
      ? undefined
      : intOption(o.dimensions, "dimensions", what, 1, 65536, 0),
    batchSize: intOption(o.batchSize, "batchSize", what, 1, 4096, 64),
    timeoutMs: intOption(o.timeoutMs, "timeoutMs", what, 1, 3_600_000, 30_000),
  };
}

/** POSTs JSON; maps network errors, timeouts, statuses and bad JSON. */
export async function postJson(
  url: URL,
  body: unknown,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  what: string,
): Promise<unknown> {
  throwIfAborted(signal, what);
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: both,
    });
  } catch (e) {
    throw mapFetchError(e, signal, timeout, timeoutMs, url, what);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw mapFetchError(e, signal, timeout, timeoutMs, url, what);
  }
  if (!res.ok) {
    throw new AicoDataError(
      "EMBEDDING_FAILED",
      `Cannot ${what}: the server answered status ${res.status}`,
      { cause: text.slice(0, 500) },
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new AicoDataError(
      "EMBEDDING_FAILED",
      `Cannot ${what}: the server answered malformed JSON`,
      { cause: e },
    );
  }
}

function mapFetchError(
  e: unknown,
  signal: AbortSignal | undefined,
  timeout: AbortSignal,
  timeoutMs: number,
  url: URL,
  what: string,
): AicoDataError {
  if (signal?.aborted) return abortedError(what, signal);
  if (timeout.aborted) {
    return new AicoDataError(
      "CONNECTION_FAILED",
      `Cannot ${what}: "${url.origin}" did not answer within ${timeoutMs} ms`,
      { cause: e },
    );
  }
  if (
    e instanceof Deno.errors.NotCapable ||
    e instanceof Deno.errors.PermissionDenied
  ) {
    return new AicoDataError(
      "PERMISSION_DENIED",
      `Cannot ${what}: add --allow-net=${url.host}`,
      { cause: e },
    );
  }
  return new AicoDataError(
    "CONNECTION_FAILED",
    `Cannot ${what}: "${url.origin}" cannot be reached`,
    { cause: e },
  );
}

/** Checks that `value` is an array of `n` vectors of `dims` finite numbers. */
export function checkVectors(
  value: unknown,
  n: number,
  dims: number | undefined,
  what: string,
): Float32Array[] {
  const fail = (detail: string) =>
    new AicoDataError("EMBEDDING_FAILED", `Cannot ${what}: ${detail}`);
  if (!Array.isArray(value) || value.length !== n) {
    throw fail(`expected ${n} vectors from the server`);
  }
  const out: Float32Array[] = [];
  for (const v of value) {
    if (!Array.isArray(v) || v.length === 0) {
      throw fail("the server answered a malformed vector");
    }
    const d = dims ?? v.length;
    if (v.length !== d) {
      throw fail(`the server answered ${v.length} dimensions, expected ${d}`);
    }
    const f = new Float32Array(d);
    for (let i = 0; i < d; i++) {
      const x = v[i];
      if (typeof x !== "number" || !Number.isFinite(x)) {
        throw fail("the server answered a non-finite component");
      }
      f[i] = x;
    }
    let s = 0;
    for (let i = 0; i < d; i++) s += f[i]! * f[i]!;
    const norm = Math.sqrt(s);
    if (norm > 0) { for (let i = 0; i < d; i++) f[i] = f[i]! / norm; }
    out.push(f);
  }
  return out;
}

/** Asks the server for a batch; `request` builds the body, `read` the vectors. */
export type BatchCall = (
  texts: readonly string[],
  signal: AbortSignal | undefined,
) => Promise<unknown>;

/** The shared embedder over one `BatchCall`. */
export class HttpEmbedder {
  readonly id: string;
  #dimensions: number;
  #batchSize: number;
  #call: BatchCall;
  #closed = false;

  constructor(
    id: string,
    dimensions: number,
    batchSize: number,
    call: BatchCall,
  ) {
    this.id = id;
    this.#dimensions = dimensions;
    this.#batchSize = batchSize;
    this.#call = call;
  }

  get dimensions(): number {
    return this.#dimensions;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async embed(
    texts: readonly string[],
    options: EmbedOptions = {},
  ): Promise<Float32Array[]> {
    const what = "embed";
    if (this.#closed) throw closedError(what);
    checkTexts(texts, what);
    const signal = options?.signal;
    throwIfAborted(signal, what);
    const out = new Array<Float32Array>(texts.length);
    const todo: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      if (texts[i]!.trim() === "") out[i] = new Float32Array(this.#dimensions);
      else todo.push(i);
    }
    for (let s = 0; s < todo.length; s += this.#batchSize) {
      const idx = todo.slice(s, s + this.#batchSize);
      const raw = await this.#call(idx.map((i) => texts[i]!), signal);
      const vectors = checkVectors(raw, idx.length, this.#dimensions, what);
      for (let j = 0; j < idx.length; j++) out[idx[j]!] = vectors[j]!;
    }
    return out;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Embeds a probe text to learn the dimension when it was not given. */
export async function probeDimensions(
  call: BatchCall,
  given: number | undefined,
  signal: AbortSignal | undefined,
  what: string,
): Promise<number> {
  const raw = await call(["dimension probe"], signal);
  const [v] = checkVectors(raw, 1, given, what);
  return v!.length;
}
