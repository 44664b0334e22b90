/**
 * An embedder backed by an OpenAI-compatible server (`POST /v1/embeddings`),
 * such as llama.cpp's server, LM Studio, vLLM or LocalAI.
 *
 * @module
 */
import { AicoDataError } from "../../errors.ts";
import {
  checkHttpOptions,
  HttpEmbedder,
  postJson,
  probeDimensions,
} from "./_http.ts";
import { invalid } from "./_common.ts";
import type { EmbedderHandle } from "./embedder_handle.ts";

/** Options of {@linkcode openOpenAICompatibleEmbedder}. */
export interface OpenAICompatibleEmbedderOptions {
  /**
   * The server root, for example `"http://127.0.0.1:8080"`; `/v1/embeddings`
   * is appended (a URL that ends in `/v1` is used as is).
   */
  readonly url: string;
  /** The model name the server expects. */
  readonly model: string;
  /**
   * Sent as `Authorization: Bearer <apiKey>`.
   *
   * @default {undefined}
   */
  readonly apiKey?: string;
  /**
   * The expected vector size; every answer is checked against it.
   *
   * @default {undefined} (learnt from a probe at open)
   */
  readonly dimensions?: number;
  /**
   * Texts per request.
   *
   * @default {64}
   */
  readonly batchSize?: number;
  /**
   * Milliseconds one request may take.
   *
   * @default {30000}
   */
  readonly timeoutMs?: number;
  /**
   * Stops the probe at open.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/**
 * Opens an embedder on an OpenAI-compatible server. Sends
 * `{ model, input: [texts], encoding_format: "float" }` and reads
 * `data[].embedding` in `data[].index` order. Embeds a probe text at open.
 * Vectors are L2-normalised; blank texts get the zero vector without a
 * request. The id is `"openai:<model>"`. The API key never appears in an
 * error message.
 *
 * Permissions: `--allow-net=<host:port>`.
 *
 * @param options See {@linkcode OpenAICompatibleEmbedderOptions}.
 * @returns The embedder.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options,
 * `CONNECTION_FAILED` when the server cannot be reached or times out,
 * `EMBEDDING_FAILED` for an error status or a malformed answer, `ABORTED`,
 * `PERMISSION_DENIED`.
 *
 * @example With a llama.cpp server
 * ```ts ignore
 * import { openOpenAICompatibleEmbedder } from "./openai_compatible_embedder.ts";
 * import assert from "node:assert/strict";
 *
 * await using e = await openOpenAICompatibleEmbedder({
 *   url: "http://127.0.0.1:8080",
 *   model: "bge-small-en-v1.5",
 * });
 * const [v] = await e.embed(["Hello"]);
 * assert.equal(v!.length, e.dimensions);
 * ```
 */
export async function openOpenAICompatibleEmbedder(
  options: OpenAICompatibleEmbedderOptions,
): Promise<EmbedderHandle> {
  const what = "open OpenAI-compatible embedder";
  const o = checkHttpOptions(options, what);
  const apiKey = options.apiKey;
  if (apiKey !== undefined && (typeof apiKey !== "string" || apiKey === "")) {
    throw invalid(what, '"apiKey" must be a non-empty string');
  }
  const base = new URL(o.url);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const endpoint = new URL(
    base.pathname.endsWith("/v1/") ? "embeddings" : "v1/embeddings",
    base,
  );
  const headers: Record<string, string> = apiKey
    ? { authorization: `Bearer ${apiKey}` }
    : {};
  const call = async (texts: readonly string[], signal?: AbortSignal) => {
    const body = await postJson(
      endpoint,
      { model: o.model, input: texts, encoding_format: "float" },
      headers,
      o.timeoutMs,
      signal,
      "embed with the OpenAI-compatible server",
    );
    const data = (body as { data?: unknown })?.data;
    if (!Array.isArray(data)) {
      throw new AicoDataError(
        "EMBEDDING_FAILED",
        'Cannot embed with the OpenAI-compatible server: the answer has no "data"',
      );
    }
    const out = new Array<unknown>(data.length);
    for (let i = 0; i < data.length; i++) {
      const item = data[i] as { index?: unknown; embedding?: unknown };
      const at = typeof item?.index === "number" ? item.index : i;
      if (!Number.isInteger(at) || at < 0 || at >= data.length || out[at]) {
        throw new AicoDataError(
          "EMBEDDING_FAILED",
          "Cannot embed with the OpenAI-compatible server: malformed indices",
        );
      }
      out[at] = item?.embedding;
    }
    return out;
  };
  const dims = await probeDimensions(call, o.dimensions, options.signal, what);
  return new HttpEmbedder(`openai:${o.model}`, dims, o.batchSize, call);
}
