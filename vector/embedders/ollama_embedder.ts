/**
 * An embedder backed by a local Ollama server (`POST /api/embed`).
 *
 * @module
 */
import type { EmbedderHandle } from "./embedder_handle.ts";
import { AicoDataError } from "../../errors.ts";
import {
  checkHttpOptions,
  HttpEmbedder,
  postJson,
  probeDimensions,
} from "./_http.ts";

/** Options of {@linkcode openOllamaEmbedder}. */
export interface OllamaEmbedderOptions {
  /** The server, for example `"http://127.0.0.1:11434"`. */
  readonly url: string;
  /** The model name, for example `"nomic-embed-text"` or `"bge-m3"`. */
  readonly model: string;
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
 * Opens an embedder on a local Ollama server. Sends
 * `{ model, input: [texts] }` to `<url>/api/embed` and reads `embeddings`.
 * It embeds a probe text at open, to check the server and learn (or check)
 * the dimension. Vectors are L2-normalised; blank texts get the zero vector
 * without a request. The id is `"ollama:<model>"`.
 *
 * Permissions: `--allow-net=<host:port>`.
 *
 * @param options See {@linkcode OllamaEmbedderOptions}.
 * @returns The embedder.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options,
 * `CONNECTION_FAILED` when the server cannot be reached or times out,
 * `EMBEDDING_FAILED` for an error status or a malformed answer (wrong count,
 * wrong dimension, non-finite values), `ABORTED`, `PERMISSION_DENIED`.
 *
 * @example With a local Ollama
 * ```ts ignore
 * import { openOllamaEmbedder } from "./ollama_embedder.ts";
 * import assert from "node:assert/strict";
 *
 * await using e = await openOllamaEmbedder({
 *   url: "http://127.0.0.1:11434",
 *   model: "nomic-embed-text",
 * });
 * const [v] = await e.embed(["Hello"]);
 * assert.equal(v!.length, e.dimensions);
 * ```
 */
export async function openOllamaEmbedder(
  options: OllamaEmbedderOptions,
): Promise<EmbedderHandle> {
  const what = "open Ollama embedder";
  const o = checkHttpOptions(options, what);
  const endpoint = new URL("api/embed", withSlash(o.url));
  const call = async (texts: readonly string[], signal?: AbortSignal) => {
    const body = await postJson(
      endpoint,
      { model: o.model, input: texts },
      {},
      o.timeoutMs,
      signal,
      "embed with Ollama",
    );
    const embeddings = (body as { embeddings?: unknown })?.embeddings;
    if (!Array.isArray(embeddings)) {
      throw new AicoDataError(
        "EMBEDDING_FAILED",
        'Cannot embed with Ollama: the answer has no "embeddings"',
      );
    }
    return embeddings;
  };
  const dims = await probeDimensions(call, o.dimensions, options.signal, what);
  return new HttpEmbedder(`ollama:${o.model}`, dims, o.batchSize, call);
}

function withSlash(url: URL): URL {
  const u = new URL(url);
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  return u;
}
