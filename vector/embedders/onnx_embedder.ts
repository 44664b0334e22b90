/**
 * An embedder running a user-supplied ONNX sentence-embedding model folder
 * (for example an export of all-MiniLM-L6-v2, bge-small or
 * multilingual-e5-small) offline through `@huggingface/transformers`.
 *
 * @module
 */
import { AicoDataError } from "../../errors.ts";
import type { EmbedOptions } from "../types.ts";
import {
  checkTexts,
  closedError,
  intOption,
  invalid,
  raceAbort,
  throwIfAborted,
} from "./_common.ts";
import type { EmbedderHandle } from "./embedder_handle.ts";

/** Options of {@linkcode openOnnxEmbedder}. */
export interface OnnxEmbedderOptions {
  /**
   * The model folder: `config.json`, `tokenizer.json` (and
   * `tokenizer_config.json`), `onnx/model.onnx` (or the file of `dtype`,
   * e.g. `onnx/model_quantized.onnx` for `"q8"`), as exported with
   * Optimum / `transformers.js` conversion scripts.
   */
  readonly modelPath: string;
  /**
   * How token vectors become one vector: `"mean"` (sentence-transformers
   * models such as MiniLM, e5) or `"cls"` (the first token, e.g. bge).
   *
   * @default {"mean"}
   */
  readonly pooling?: "mean" | "cls";
  /**
   * The weights file variant.
   *
   * @default {"fp32"}
   */
  readonly dtype?: "fp32" | "fp16" | "q8" | "int8" | "uint8" | "q4";
  /**
   * Texts per model call.
   *
   * @default {32}
   */
  readonly batchSize?: number;
  /**
   * A prefix put before every text (e5 models want `"query: "` or
   * `"passage: "`).
   *
   * @default {""}
   */
  readonly prefix?: string;
  /**
   * The embedder id recorded in collections.
   *
   * @default {"onnx:<folder name>"}
   */
  readonly id?: string;
  /**
   * Stops loading.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

const WHAT = "open ONNX embedder";

type Extractor = (
  texts: string[],
  options: { pooling: "mean" | "cls"; normalize: boolean },
) => Promise<{ dims: number[]; data: ArrayLike<number>; dispose?(): void }>;

class OnnxEmbedder implements EmbedderHandle {
  readonly id: string;
  readonly dimensions: number;
  #run: Extractor | undefined;
  #pooling: "mean" | "cls";
  #batchSize: number;
  #prefix: string;
  #dispose: () => Promise<void>;

  constructor(
    id: string,
    dimensions: number,
    run: Extractor,
    pooling: "mean" | "cls",
    batchSize: number,
    prefix: string,
    dispose: () => Promise<void>,
  ) {
    this.id = id;
    this.dimensions = dimensions;
    this.#run = run;
    this.#pooling = pooling;
    this.#batchSize = batchSize;
    this.#prefix = prefix;
    this.#dispose = dispose;
  }

  get closed(): boolean {
    return this.#run === undefined;
  }

  async embed(
    texts: readonly string[],
    options: EmbedOptions = {},
  ): Promise<Float32Array[]> {
    const what = "embed";
    if (this.#run === undefined) throw closedError(what);
    checkTexts(texts, what);
    const signal = options?.signal;
    const out = new Array<Float32Array>(texts.length);
    const todo: number[] = [];
    texts.forEach((t, i) => {
      if (t.trim() === "") out[i] = new Float32Array(this.dimensions);
      else todo.push(i);
    });
    for (let s = 0; s < todo.length; s += this.#batchSize) {
      throwIfAborted(signal, what);
      const run = this.#run;
      if (run === undefined) throw closedError(what);
      const idx = todo.slice(s, s + this.#batchSize);
      const vectors = await raceAbort(
        embedBatch(
          run,
          idx.map((i) => this.#prefix + texts[i]!),
          this.#pooling,
          this.dimensions,
        ),
        signal,
        what,
      );
      idx.forEach((i, j) => (out[i] = vectors[j]!));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#run === undefined) return;
    this.#run = undefined;
    await this.#dispose().catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function embedBatch(
  run: Extractor,
  texts: string[],
  pooling: "mean" | "cls",
  dims: number | undefined,
): Promise<Float32Array[]> {
  let t;
  try {
    t = await run(texts, { pooling, normalize: true });
  } catch (e) {
    throw new AicoDataError(
      "EMBEDDING_FAILED",
      "Cannot embed: the ONNX model failed",
      {
        cause: e,
      },
    );
  }
  const [n, d] = t.dims;
  if (
    t.dims.length !== 2 || n !== texts.length ||
    (dims !== undefined && d !== dims)
  ) {
    throw new AicoDataError(
      "EMBEDDING_FAILED",
      `Cannot embed: the ONNX model answered shape [${t.dims.join(", ")}]`,
    );
  }
  const data = Float32Array.from(t.data);
  t.dispose?.();
  const out: Float32Array[] = [];
  for (let i = 0; i < n!; i++) {
    const v = data.slice(i * d!, (i + 1) * d!);
    if (!v.every(Number.isFinite)) {
      throw new AicoDataError(
        "EMBEDDING_FAILED",
        "Cannot embed: the ONNX model answered non-finite values",
      );
    }
    out.push(v);
  }
  return out;
}

/**
 * Opens an embedder on a local ONNX model folder, offline: it sets
 * `env.allowRemoteModels = false` and `env.localModelPath` to the folder's
 * parent in `@huggingface/transformers` (a process-wide setting of that
 * library), so no model hub is ever asked. Vectors are pooled (`pooling`)
 * and L2-normalised; blank texts get the zero vector without running the
 * model. The dimension is read from a probe embedding at open.
 *
 * Permissions: `--allow-read` (the folder and the package),
 * `--allow-ffi` (onnxruntime-node), `--allow-env`, `--allow-sys`.
 *
 * @param options See {@linkcode OnnxEmbedderOptions}.
 * @returns The embedder; close it to release the ONNX session.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options, `NOT_FOUND`
 * when the folder lacks `config.json`, `EMBEDDING_FAILED` when the model
 * cannot be loaded or run, `ABORTED`.
 *
 * @example A local MiniLM export
 * ```ts ignore
 * import { openOnnxEmbedder } from "./onnx_embedder.ts";
 * import assert from "node:assert/strict";
 *
 * await using e = await openOnnxEmbedder({ modelPath: "./models/all-MiniLM-L6-v2" });
 * const [v] = await e.embed(["Hello"]);
 * assert.equal(v!.length, 384);
 * ```
 */
export async function openOnnxEmbedder(
  options: OnnxEmbedderOptions,
): Promise<EmbedderHandle> {
  if (typeof options !== "object" || options === null) {
    throw invalid(WHAT, "options must be an object");
  }
  const o = options;
  if (typeof o.modelPath !== "string" || o.modelPath.trim() === "") {
    throw invalid(WHAT, '"modelPath" must be a folder path');
  }
  const pooling = o.pooling ?? "mean";
  if (pooling !== "mean" && pooling !== "cls") {
    throw invalid(WHAT, '"pooling" must be "mean" or "cls"');
  }
  const dtype = o.dtype ?? "fp32";
  if (!["fp32", "fp16", "q8", "int8", "uint8", "q4"].includes(dtype)) {
    throw invalid(WHAT, '"dtype" is not a known weights variant');
  }
  const batchSize = intOption(o.batchSize, "batchSize", WHAT, 1, 4096, 32);
  const prefix = o.prefix ?? "";
  if (typeof prefix !== "string") {
    throw invalid(WHAT, '"prefix" must be a string');
  }
  const path = o.modelPath.replace(/\/+$/, "");
  const cut = path.lastIndexOf("/");
  const parent = cut < 0 ? "./" : path.slice(0, cut + 1);
  const name = path.slice(cut + 1);
  const id = o.id ?? `onnx:${name}`;
  if (typeof id !== "string" || id === "" || id.length > 256) {
    throw invalid(WHAT, '"id" must be a string of 1 to 256 characters');
  }
  throwIfAborted(o.signal, WHAT);
  try {
    await Deno.stat(`${path}/config.json`);
  } catch (e) {
    throw new AicoDataError(
      "NOT_FOUND",
      `Cannot ${WHAT}: no config.json in "${path}"`,
      { cause: e },
    );
  }
  let hf;
  try {
    hf = await import("npm:@huggingface/transformers@4.3.1");
  } catch (e) {
    throw new AicoDataError(
      "EMBEDDING_FAILED",
      `Cannot ${WHAT}: @huggingface/transformers failed to load`,
      {
        cause: e,
      },
    );
  }
  hf.env.allowRemoteModels = false;
  hf.env.allowLocalModels = true;
  hf.env.localModelPath = parent;
  let pipe;
  try {
    pipe = await raceAbort(
      hf.pipeline("feature-extraction", name, { dtype, device: "cpu" }),
      o.signal,
      WHAT,
    );
  } catch (e) {
    if (e instanceof AicoDataError) throw e;
    throw new AicoDataError(
      "EMBEDDING_FAILED",
      `Cannot ${WHAT}: the model in "${path}" failed to load`,
      {
        cause: e,
      },
    );
  }
  const run = pipe as unknown as Extractor;
  const dispose = () =>
    (pipe as unknown as { dispose(): Promise<void> }).dispose();
  try {
    const [probe] = await embedBatch(
      run,
      ["dimension probe"],
      pooling,
      undefined,
    );
    return new OnnxEmbedder(
      id,
      probe!.length,
      run,
      pooling,
      batchSize,
      prefix,
      dispose,
    );
  } catch (e) {
    await dispose().catch(() => {});
    throw e;
  }
}
