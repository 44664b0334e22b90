/**
 * The handle the embedders of this folder return.
 *
 * @module
 */
import type { Embedder } from "../types.ts";

/** An embedder that owns resources (workers, a session), closable with `await using`. */
export interface EmbedderHandle extends Embedder, AsyncDisposable {
  /** Whether `close()` ran; `embed()` then rejects with `STORE_CLOSED`. */
  readonly closed: boolean;
  /** Releases what the embedder holds; safe to call twice. */
  close(): Promise<void>;
}
