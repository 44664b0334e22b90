/**
 * The Chroma vector store: {@linkcode openChromaVectorStore}, a
 * {@linkcode VectorStore} on a Chroma server (for example one started by
 * `startLocalChroma()`). The only file that imports `chromadb`, lazily.
 *
 * @module
 */

import { AicoDataError, isAicoDataError } from "../errors.ts";

/**
 * What the Chroma store needs of a sealer: `await key.sealer("vector-doc")`
 * has it.
 */
export interface DocumentSealer {
  /** Seals values, each bound to its context. */
  sealBatch(
    items: readonly {
      readonly plaintext: Uint8Array | string;
      readonly aad?: Uint8Array | string;
    }[],
  ): Promise<Uint8Array[]>;
  /** Opens one sealed text. */
  openText(sealed: Uint8Array, aad?: Uint8Array | string): Promise<string>;
}
import {
  checkCollectionName,
  checkDeleteTarget,
  checkDimensions,
  checkEmbedderId,
  checkMetric,
  checkQuery,
  checkRecords,
  checkSignal,
} from "./_validate.ts";
import { toChromaWhere, validateFilter } from "./filter.ts";
import type {
  CollectionInfo,
  Metadata,
  MetadataFilter,
  MetadataValue,
  VectorHit,
  VectorMetric,
  VectorQuery,
  VectorRecord,
  VectorStore,
} from "./types.ts";

/** Options of {@linkcode openChromaVectorStore}. */
export interface ChromaVectorStoreOptions {
  /** The server URL, for example `http://127.0.0.1:8000`. */
  readonly url: string;
  /** The collection name: 3 to 512 characters of `[a-zA-Z0-9._-]`. */
  readonly collection: string;
  /** The id of the embedder whose vectors the collection holds. */
  readonly embedderId: string;
  /** The vector size. */
  readonly dimensions: number;
  /** The metric (Chroma's `cosine`, `ip`, `l2`). @default {"cosine"} */
  readonly metric?: VectorMetric;
  /**
   * The sealer of documents: `await key.sealer("vector-doc")`. Documents
   * and non-filterable metadata are sealed with it before they leave.
   */
  readonly sealer: DocumentSealer;
  /**
   * The metadata fields sent to Chroma in plaintext, so that filters can use
   * them. Every other field travels sealed inside the document envelope
   * (returned in hits, not filterable: a filter naming it is
   * `INVALID_INPUT`).
   *
   * @default {[]}
   */
  readonly filterable?: readonly string[];
  /** Create the collection when missing; otherwise `NOT_FOUND`. @default {true} */
  readonly create?: boolean;
  /** Tenant. @default {"default_tenant"} */
  readonly tenant?: string;
  /** Database. @default {"default_database"} */
  readonly database?: string;
  /** Stops opening; rejects with `ABORTED`. */
  readonly signal?: AbortSignal;
}

// The subset of the chromadb SDK this adapter calls.
interface ChromaWhereLike {
  readonly [key: string]: unknown;
}
interface SdkCollection {
  metadata: Record<string, unknown> | undefined;
  count(): Promise<number>;
  upsert(args: {
    ids: string[];
    embeddings: number[][];
    metadatas: Record<string, MetadataValue>[];
    documents: string[];
  }): Promise<void>;
  get(args: {
    ids?: string[];
    where?: ChromaWhereLike;
    include: string[];
    limit?: number;
    offset?: number;
  }): Promise<{ ids: string[] }>;
  query(args: {
    queryEmbeddings: number[][];
    nResults: number;
    where?: ChromaWhereLike;
    include: string[];
  }): Promise<{
    ids: string[][];
    distances: (number | null)[][];
    metadatas: (Record<string, unknown> | null)[][];
    documents: (string | null)[][];
  }>;
  delete(args: { ids: string[] }): Promise<unknown>;
}
interface SdkClient {
  getOrCreateCollection(args: {
    name: string;
    metadata: Record<string, string | number>;
    configuration: { hnsw: { space: string } };
    embeddingFunction: null;
  }): Promise<SdkCollection>;
  getCollection(args: { name: string }): Promise<SdkCollection>;
}

const SPACE: Record<VectorMetric, string> = {
  cosine: "cosine",
  dot: "ip",
  l2: "l2",
};
const META_EMBEDDER = "aico_embedder_id";
const META_DIMENSIONS = "aico_dimensions";
const META_METRIC = "aico_metric";

/** Translates an SDK error at the adapter boundary. */
function translate(err: unknown, action: string): AicoDataError {
  if (isAicoDataError(err)) return err;
  const name = (err as { name?: string })?.name ?? "";
  const code = name === "ChromaConnectionError" ||
      (err instanceof TypeError && /fetch|connect/i.test(String(err.message)))
    ? "CONNECTION_FAILED"
    : name === "ChromaNotFoundError"
    ? "NOT_FOUND"
    : name === "ChromaValueError" || name === "InvalidArgumentError" ||
        name === "ChromaClientError"
    ? "INVALID_INPUT"
    : name === "ChromaUniqueError"
    ? "ALREADY_EXISTS"
    : "CONNECTION_FAILED";
  return new AicoDataError(
    code,
    `Cannot ${action}: Chroma failed: ${name || "error"}`,
    { cause: err },
  );
}

const enc = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

interface Envelope {
  /** The document. */
  readonly d?: string;
  /** The sealed (non-filterable) metadata. */
  readonly m?: Metadata;
}

class ChromaStore implements VectorStore {
  readonly info: CollectionInfo;
  #collection: SdkCollection;
  #sealer: DocumentSealer;
  #filterable: ReadonlySet<string>;
  #closed = false;

  constructor(
    info: CollectionInfo,
    collection: SdkCollection,
    sealer: DocumentSealer,
    filterable: ReadonlySet<string>,
  ) {
    this.info = info;
    this.#collection = collection;
    this.#sealer = sealer;
    this.#filterable = filterable;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #check(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: the vector store is closed`,
      );
    }
  }

  #aad(id: string): string {
    return `aico/chroma-doc|${this.info.name}|${id}`;
  }

  /** Validates a filter and refuses fields that are not filterable. */
  #where(filter: MetadataFilter | undefined, action: string) {
    if (filter === undefined) return undefined;
    validateFilter(filter);
    const visit = (node: Record<string, unknown>): void => {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$and" || key === "$or") {
          for (const child of value as Record<string, unknown>[]) visit(child);
        } else if (!this.#filterable.has(key)) {
          throw new AicoDataError(
            "INVALID_INPUT",
            `Cannot ${action}: metadata field "${key}" is not declared filterable`,
          );
        }
      }
    };
    visit(filter as Record<string, unknown>);
    return toChromaWhere(filter);
  }

  async upsert(records: readonly VectorRecord[]): Promise<void> {
    this.#check("upsert");
    const checked = checkRecords(records, this.info.dimensions);
    if (checked.length === 0) return;
    const metadatas: Record<string, MetadataValue>[] = [];
    const items = checked.map((r) => {
      const plain: Record<string, MetadataValue> = {};
      const sealed: Record<string, MetadataValue> = {};
      for (const [k, v] of Object.entries(r.metadata)) {
        if (this.#filterable.has(k)) plain[k] = v;
        else sealed[k] = v;
      }
      metadatas.push(plain);
      const env: Envelope = {
        ...(r.document === undefined ? {} : { d: r.document }),
        ...(Object.keys(sealed).length === 0 ? {} : { m: sealed }),
      };
      return {
        plaintext: enc.encode(JSON.stringify(env)),
        aad: this.#aad(r.id),
      };
    });
    const sealed = await this.#sealer.sealBatch(items);
    const documents = sealed.map(toBase64);
    try {
      for (let i = 0; i < checked.length; i += 1000) {
        const end = Math.min(checked.length, i + 1000);
        // Every record gets the field "aico" (Chroma refuses empty metadata).
        await this.#collection.upsert({
          ids: checked.slice(i, end).map((r) => r.id),
          embeddings: checked.slice(i, end).map((r) => Array.from(r.vector)),
          metadatas: metadatas.slice(i, end).map((m) => ({ aico: true, ...m })),
          documents: documents.slice(i, end),
        });
      }
    } catch (err) {
      throw translate(err, "upsert");
    }
  }

  async #open(
    id: string,
    doc: string | null | undefined,
  ): Promise<Envelope> {
    if (typeof doc !== "string") return {};
    const text = await this.#sealer.openText(fromBase64(doc), this.#aad(id));
    return JSON.parse(text) as Envelope;
  }

  async query(query: VectorQuery): Promise<VectorHit[]> {
    this.#check("query");
    const q = checkQuery(query, this.info.dimensions);
    const where = this.#where(q.filter, "query");
    let res;
    try {
      res = await this.#collection.query({
        queryEmbeddings: [Array.from(q.vector)],
        nResults: q.k,
        ...(where === undefined ? {} : { where }),
        include: ["metadatas", "distances", "documents"],
      });
    } catch (err) {
      throw translate(err, "query");
    }
    this.#check("query");
    const ids = res.ids[0] ?? [];
    const hits: VectorHit[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const d = res.distances[0]?.[i] ?? 0;
      const score = this.info.metric === "l2" ? -d : 1 - d;
      const env = await this.#open(id, res.documents[0]?.[i]);
      const plain = res.metadatas[0]?.[i] ?? {};
      const metadata: Record<string, MetadataValue> = {};
      for (const [k, v] of Object.entries(plain)) {
        if (this.#filterable.has(k)) metadata[k] = v as MetadataValue;
      }
      Object.assign(metadata, env.m ?? {});
      hits.push(
        q.includeDocuments && env.d !== undefined
          ? { id, score, metadata: Object.freeze(metadata), document: env.d }
          : { id, score, metadata: Object.freeze(metadata) },
      );
    }
    return hits;
  }

  async #idsOf(
    where: ReturnType<typeof toChromaWhere>,
    ids?: string[],
  ): Promise<string[]> {
    const out: string[] = [];
    const page = 10_000;
    for (let offset = 0;; offset += page) {
      const got = await this.#collection.get({
        ...(ids === undefined ? {} : { ids }),
        ...(where === undefined ? {} : { where }),
        include: [],
        limit: page,
        offset,
      });
      out.push(...got.ids);
      if (got.ids.length < page) return out;
    }
  }

  async delete(
    target: readonly string[] | { readonly filter: MetadataFilter },
  ): Promise<number> {
    this.#check("delete");
    const t = checkDeleteTarget(target);
    const where = "ids" in t ? undefined : this.#where(t.filter, "delete");
    try {
      const ids = "ids" in t
        ? (t.ids.length === 0 ? [] : await this.#idsOf(undefined, t.ids))
        : await this.#idsOf(where);
      for (let i = 0; i < ids.length; i += 1000) {
        await this.#collection.delete({ ids: ids.slice(i, i + 1000) });
      }
      return ids.length;
    } catch (err) {
      throw translate(err, "delete");
    }
  }

  async count(filter?: MetadataFilter): Promise<number> {
    this.#check("count");
    const where = this.#where(filter, "count");
    try {
      if (where === undefined) return await this.#collection.count();
      return (await this.#idsOf(where)).length;
    } catch (err) {
      throw translate(err, "count");
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens (or creates) a collection on a Chroma server as a
 * {@linkcode VectorStore}.
 *
 * @remarks
 * **What Chroma sees.** Chroma stores the vectors and the plaintext
 * metadata **unencrypted** in its data directory (vectors leak text:
 * inversion attacks recover much of a short sentence). Documents never
 * leave in plaintext: each record's Chroma document is
 * `base64(seal(JSON { d: document, m: non-filterable metadata }))`, sealed
 * with the `vector-doc` key and bound to the collection and id. Only the
 * fields listed in `filterable` travel in plaintext (as Chroma metadata);
 * the others are sealed in that envelope, returned in hits, and cannot be
 * filtered on. Every record also carries the plaintext field `aico: true`
 * (Chroma refuses empty metadata); it is not returned.
 *
 * Embeddings are always passed (`embeddingFunction: null`: Chroma's
 * default embedder would download a model). The collection's metadata
 * records embedder id, dimensions and metric. Scores: `1 - distance` for
 * cosine and dot, `-distance` (squared Euclidean) for l2.
 *
 * Permissions: `--allow-net` for the server.
 *
 * @param options The server, collection, embedder, sealer and filterable fields.
 * @returns The store.
 * @throws {AicoDataError} `EMBEDDER_MISMATCH` when the collection was made
 * by another embedder id, dimension or metric; `CONNECTION_FAILED` when the
 * server cannot be reached; `NOT_FOUND` (with `create: false`);
 * `INVALID_INPUT`; `ABORTED`.
 *
 * @example Against a local server
 * ```ts ignore
 * import { openChromaVectorStore, startLocalChroma } from "./mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 *
 * await using chroma = await startLocalChroma({ path: "./chroma-data" });
 * const key = await importDataKey(generateDataKey());
 * await using store = await openChromaVectorStore({
 *   url: chroma.url, collection: "memory", embedderId: "demo-3", dimensions: 3,
 *   sealer: await key.sealer("vector-doc"), filterable: ["role"],
 * });
 * await store.upsert([{ id: "a", vector: [1, 0, 0], metadata: { role: "user" }, document: "tea" }]);
 * ```
 */
export async function openChromaVectorStore(
  options: ChromaVectorStoreOptions,
): Promise<VectorStore> {
  const action = "open Chroma store";
  if (typeof options !== "object" || options === null) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: options must be an object`,
    );
  }
  let url: URL;
  try {
    url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw 0;
  } catch {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: url is not an http(s) URL`,
    );
  }
  const name = checkCollectionName(options.collection, action);
  const embedderId = checkEmbedderId(options.embedderId, action);
  const dimensions = checkDimensions(options.dimensions, action);
  const metric = checkMetric(options.metric ?? "cosine", action);
  const sealer = options.sealer;
  if (
    typeof sealer !== "object" || sealer === null ||
    typeof sealer.sealBatch !== "function"
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: sealer is not a Sealer`,
    );
  }
  const filterable = options.filterable ?? [];
  if (
    !Array.isArray(filterable) ||
    filterable.some((f) =>
      typeof f !== "string" || f.length === 0 || f.startsWith("$") ||
      f === "aico"
    )
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: filterable must list field names (not "aico")`,
    );
  }
  checkSignal(options.signal);
  const { ChromaClient } = await import("npm:chromadb@3.5.0");
  checkSignal(options.signal);
  let collection: SdkCollection;
  try {
    const client = new ChromaClient({
      host: url.hostname,
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      ssl: url.protocol === "https:",
      tenant: options.tenant ?? "default_tenant",
      database: options.database ?? "default_database",
    }) as unknown as SdkClient;
    collection = options.create === false
      ? await client.getCollection({ name })
      : await client.getOrCreateCollection({
        name,
        metadata: {
          [META_EMBEDDER]: embedderId,
          [META_DIMENSIONS]: dimensions,
          [META_METRIC]: metric,
        },
        configuration: { hnsw: { space: SPACE[metric] } },
        embeddingFunction: null,
      });
  } catch (err) {
    throw translate(err, action);
  }
  const meta = collection.metadata ?? {};
  if (
    meta[META_EMBEDDER] !== embedderId ||
    Number(meta[META_DIMENSIONS]) !== dimensions || meta[META_METRIC] !== metric
  ) {
    throw new AicoDataError(
      "EMBEDDER_MISMATCH",
      `Cannot ${action}: collection "${name}" holds vectors of embedder "${
        String(meta[META_EMBEDDER])
      }" (${String(meta[META_DIMENSIONS])} dimensions, ${
        String(meta[META_METRIC])
      }), not "${embedderId}" (${dimensions}, ${metric})`,
    );
  }
  return new ChromaStore(
    Object.freeze({ name, embedderId, dimensions, metric }),
    collection,
    sealer,
    new Set(filterable),
  );
}
