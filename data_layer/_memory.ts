// Internal: the `memory` row of the component table: semantic memory over
// the messages (FTS5 keyword index + vectors in the encrypted store), its
// indexer registered as a durable consumer of the change feed, and a lazy
// default embedder (USE-lite loads on the first embedding, never at open).
import type { Embedder, EmbedOptions, VectorStore } from "../vector/mod.ts";
import { AicoDataError } from "../errors.ts";
import { openEmbeddedVectorStore, vectorSchema } from "../vector/mod.ts";
import {
  openUseLiteEmbedder,
  USE_LITE_ID,
  type UseLiteEmbedderOptions,
} from "../vector/embedders/mod.ts";
import {
  memorySchema,
  openSemanticMemory,
  type SemanticMemory,
} from "../vector/memory/mod.ts";
import type { ConsumerRegistration } from "../changes/mod.ts";
import type { DataLayerComponent } from "./components.ts";

/** Options of the data layer's semantic memory (`DataLayerOptions.memory`). */
export interface DataLayerMemoryOptions {
  /**
   * The embedder (an Ollama server, an ONNX model folder, ...); its id and
   * dimension are recorded in the collection, and a later open with another
   * embedder re-queues every message for embedding.
   *
   * @default {USE-lite (512-d, offline), loaded on the first embedding}
   */
  readonly embedder?: Embedder;
  /**
   * Options of the default USE-lite embedder.
   *
   * @default {{}}
   */
  readonly useLite?: UseLiteEmbedderOptions;
  /**
   * Embed new messages in the background as they arrive; with `false`
   * messages enter the keyword index at once and wait for
   * `memory.indexPending()` for their vectors.
   *
   * @default {true}
   */
  readonly background?: boolean;
  /**
   * Where the vectors are kept instead of the embedded store (for example
   * a Chroma collection from `openChromaVectorStore()`, with `filterable`
   * including `conversationId`, `role`, `createdAt` and `messageId`). Its
   * collection must record the embedder's id and dimension. The caller
   * opens and closes it. `erase()` and retention delete from it through
   * the indexer, like from the embedded store; what the store's own files
   * keep after a delete is its own (see `docs/NOTES.md` for Chroma).
   *
   * @default {undefined} (the embedded store inside the encrypted file)
   */
  readonly store?: VectorStore;
}

/** The instance of the `memory` component. */
export interface MemoryComponent {
  /** The semantic memory. */
  readonly memory: SemanticMemory;
  /** Its indexer's registration on the feed. */
  readonly registration: ConsumerRegistration;
}

/** USE-lite behind the Embedder interface, opened on the first `embed`. */
function lazyUseLite(options: UseLiteEmbedderOptions): Embedder & {
  close(): Promise<void>;
} {
  let opened: ReturnType<typeof openUseLiteEmbedder> | undefined;
  return {
    id: USE_LITE_ID,
    dimensions: 512,
    async embed(texts: readonly string[], o?: EmbedOptions) {
      opened ??= openUseLiteEmbedder(options);
      return await (await opened).embed(texts, o);
    },
    async close() {
      if (opened === undefined) return;
      const e = await opened.catch(() => undefined);
      await e?.close();
    },
  };
}

/** The `memory` row (`false` disables it). */
export function memoryComponent(
  options: false | DataLayerMemoryOptions | undefined,
): DataLayerComponent<MemoryComponent & { release(): Promise<void> }> {
  return {
    name: "memory",
    schemas: options === false ? [] : [vectorSchema, memorySchema],
    async open(ctx) {
      if (options === false) return undefined;
      const o = options ?? {};
      // What this row opened, closed in reverse order (a given embedder is
      // the caller's to close).
      const opened: { close(): Promise<void> }[] = [];
      const release = async () => {
        for (const r of opened.reverse()) await r.close().catch(() => {});
      };
      try {
        const embedder = o.embedder ?? lazyUseLite(o.useLite ?? {});
        if (o.embedder === undefined) opened.push(embedder as Closable);
        let store: VectorStore;
        if (o.store !== undefined) {
          store = o.store;
          const info = store.info;
          if (
            info?.embedderId !== embedder.id ||
            info?.dimensions !== embedder.dimensions
          ) {
            throw new AicoDataError(
              "EMBEDDER_MISMATCH",
              `Cannot open memory: the vector store holds vectors of "${
                String(info?.embedderId)
              }" (${
                String(info?.dimensions)
              }-d), the embedder is "${embedder.id}" (${embedder.dimensions}-d)`,
            );
          }
        } else {
          store = await openEmbeddedVectorStore(ctx.storage, {
            name: "messages",
            embedderId: embedder.id,
            dimensions: embedder.dimensions,
            create: true,
          });
          opened.push(store);
        }
        const memory = await openSemanticMemory({
          storage: ctx.storage,
          embedder,
          store,
          ...(o.background === undefined ? {} : { background: o.background }),
        });
        opened.push(memory);
        const registration = await ctx.changes.register(memory.indexer);
        opened.push({ close: () => registration.stop() });
        return { memory, registration, release };
      } catch (err) {
        await release();
        throw err;
      }
    },
    close: (instance) => instance.release(),
  };
}

interface Closable {
  close(): Promise<void>;
}
