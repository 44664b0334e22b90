/**
 * `openDataLayer()`: the whole data layer of a companion app, composed from
 * an ordered table of components.
 *
 * @module
 */
import { AicoDataError, isAicoDataError } from "../errors.ts";
import {
  beginKeyRotation,
  cancelKeyRotation,
  changePassphrase,
  completeKeyRotation,
  type DataKey,
  type KdfOptions,
  type KeyringBackend,
  readKeyFileInfo,
  unlockDataKeys,
  type UnlockResult,
} from "../crypto/mod.ts";
import {
  type LocalStorage,
  openRotatingStorage,
  storageNamesKey,
  type VerifyReport,
} from "../storage/mod.ts";
import {
  createSchemaRegistry,
  type MigrationStepReport,
  type Migrator,
  openMigrator,
  type SchemaDefinition,
  type SchemaRegistry,
} from "../schema/mod.ts";
import {
  type ChangeFeed,
  type ChangeFeedOptions,
  changesSchema,
  openChangeFeed,
} from "../changes/mod.ts";
import {
  type AuditLog,
  type AuditVerifyReport,
  type ConfigRepository,
  type ConversationRepository,
  coreSchema,
  createConfigRepository,
  createConversationRepository,
  createLogPersistence,
  createLogRepository,
  createPluginStateRepository,
  createUserService,
  type LogPersistence,
  type LogRepository,
  type Message,
  type PluginStateRepository,
  type UserService,
} from "../repositories/mod.ts";
import { createMessageBus, type MessageBus } from "../bus/mod.ts";
import type { Cache, CacheOptions } from "../cache/mod.ts";
import type { ComponentContext, DataLayerComponent } from "./components.ts";
import { ComponentSet } from "./_component_set.ts";
import { routeReads, subscribeRouting } from "./_routing.ts";
import { auditComponent, auditQuietly, notePendingFailure } from "./_audit.ts";
import {
  type DataLayerMemoryOptions,
  type MemoryComponent,
  memoryComponent,
} from "./_memory.ts";
import type {
  MemoryHit,
  RelatedOptions,
  SearchOptions,
  SemanticMemory,
} from "../vector/memory/mod.ts";

import {
  analyticsComponent,
  type DataLayerAnalyticsOptions,
} from "./_analytics.ts";
import type { Analytics } from "../analytics/mod.ts";
import {
  type DataLayerSyncOptions,
  type DataSync,
  syncComponent,
  type SyncRunReport,
} from "./_sync.ts";

export type { DataLayerSyncOptions, DataSync, SyncRunReport };
import type {
  EraseOptions,
  EraseReport,
  EraseScope,
  RetentionPolicy,
} from "./erase.ts";
import { Eraser } from "./_erase.ts";
import {
  applyRetention,
  type ResolvedRetention,
  resolveRetention,
  scheduleRetention,
} from "./_retention.ts";
import {
  type ExportOptions,
  type ExportReport,
  type ImportExportOptions,
  type ImportExportReport,
  resolveExportOptions,
  writeExport,
} from "./export.ts";
import { readExportDocument, restoreDocument } from "./_restore.ts";
import { type Inventory, takeInventory } from "./inventory.ts";
import { requirePermission } from "../_internal/permissions.ts";
import { PRIVATE_FILE_MODE } from "../_internal/fs.ts";

export type { DataLayerAnalyticsOptions, DataLayerMemoryOptions };

/** File names inside a data layer's folder. */
export const DATA_LAYER_FILES: Readonly<
  { keyFile: string; database: string; cache: string }
> = Object.freeze({ keyFile: "key.json", database: "data.db", cache: "cache" });

/** Options of {@linkcode openDataLayer}. */
export interface DataLayerOptions {
  /**
   * The passphrase of the key file. Needed to create the folder, and to open
   * it unless `keyring` holds the key.
   *
   * @default {undefined}
   */
  readonly passphrase?: string;
  /**
   * An OS keyring that holds the data key (see `rememberInKeyring()`); tried
   * before the passphrase.
   *
   * @default {undefined}
   */
  readonly keyring?: KeyringBackend;
  /**
   * Create the folder, key file and database when they do not exist.
   *
   * @default {false}
   */
  readonly create?: boolean;
  /**
   * Argon2id settings for a new key file.
   *
   * @default {{}} (64 MiB, t=3, p=1)
   */
  readonly kdf?: KdfOptions;
  /**
   * Plugin schemas to migrate after the core schema.
   *
   * @default {[]}
   */
  readonly plugins?: readonly SchemaDefinition[];
  /**
   * Open the encrypted LMDB session cache in `<dir>/cache` (its options
   * except `path` and `key`), or `false` for none.
   *
   * @default {{}}
   */
  readonly cache?: false | Omit<CacheOptions, "path" | "key">;
  /**
   * Options of the change feed (its bus is the layer's bus).
   *
   * @default {{}}
   */
  readonly changes?: Omit<ChangeFeedOptions, "bus">;
  /**
   * Semantic memory over the messages (keyword index and vectors inside the
   * encrypted store, its indexer a durable consumer of the feed), or
   * `false` for none. The default embedder (USE-lite, offline) loads on the
   * first embedding, not at open.
   *
   * @default {{}}
   */
  readonly memory?: false | DataLayerMemoryOptions;
  /**
   * Conversation analytics in DuckDB (in memory, fed from the store by a
   * durable consumer of the feed; nothing loads before the first call), or
   * `false` for none.
   *
   * @default {{}}
   */
  readonly analytics?: false | DataLayerAnalyticsOptions;
  /**
   * More components, opened after the built-in ones in this order (the
   * vector and analytics components join here) and closed before them.
   *
   * @default {[]}
   */
  readonly components?: readonly DataLayerComponent[];
  /**
   * End-to-end encrypted sync with the user's other devices (opt-in): the
   * device journal in `<dir>/sync`, a durable feed consumer staging every
   * committed change of the core tables, and `DataLayer.sync.run()`.
   *
   * @default {undefined} (no sync)
   */
  readonly sync?: false | DataLayerSyncOptions;
  /**
   * A retention policy: messages and logs older than a number of days are
   * erased at open and then on an unref'd schedule, through the same path
   * as {@linkcode DataLayer.erase} (see {@linkcode RetentionPolicy}).
   *
   * @default {undefined} (everything is kept)
   */
  readonly retention?: RetentionPolicy;
}

/** Options of {@linkcode DataLayer.rotateKey}. */
export interface RotateKeyOptions {
  /**
   * Stops the rotation before it starts re-encrypting (once the store is
   * being re-encrypted, it finishes: a half-rotated store is never left).
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** The composed data layer returned by {@linkcode openDataLayer}. */
export interface DataLayer extends AsyncDisposable {
  /** The folder. */
  readonly dir: string;
  /** The current data key. */
  readonly key: DataKey;
  /** The encrypted libSQL store. */
  readonly storage: LocalStorage;
  /** The schema migrator (every component's schemas and the plugins'). */
  readonly migrator: Migrator;
  /** Every registered schema, with the sealed columns rotation re-seals. */
  readonly registry: SchemaRegistry;
  /** What the last `migrate()` at open applied. */
  readonly applied: readonly MigrationStepReport[];
  /** The in-process message bus (`log.<level>`, `data.changed.<table>`). */
  readonly bus: MessageBus;
  /**
   * The durable change feed: repositories record their changes in it;
   * consumers (vector indexer, analytics refresher) register on it.
   */
  readonly changes: ChangeFeed;
  /** Logs; `log.<level>` bus events are persisted here in batches. */
  readonly logs: LogRepository;
  /** Log persistence from the bus. */
  readonly logPersistence: LogPersistence;
  /** Users, profiles, PINs and passwords (`getUser` read through the cache). */
  readonly users: UserService;
  /** Namespaced configuration (`get` read through the cache). */
  readonly config: ConfigRepository;
  /** Plugin metadata and state. */
  readonly plugins: PluginStateRepository;
  /**
   * Conversations and their sealed messages (`recentMessages` read through
   * the cache).
   */
  readonly conversations: ConversationRepository;
  /** The session cache, unless disabled (a new one after `rotateKey()`). */
  readonly cache: Cache | undefined;
  /** Whether {@linkcode DataLayer.close} ran. */
  readonly closed: boolean;
  /**
   * The recent context of a conversation: its newest `n` messages, oldest
   * first, served from the cache and kept fresh by the change feed.
   *
   * @param conversationId The conversation.
   * @param n How many, 1 to 1000.
   * @returns The messages.
   * @throws {AicoDataError} `INVALID_INPUT`, `STORE_CLOSED`.
   */
  recentMessages(conversationId: string, n: number): Promise<Message[]>;
  /**
   * The instance of a component of the table, by name (`"storage"`,
   * `"bus"`, `"cache"`, `"changes"`, `"repositories"`, `"logs"`, and the
   * rows of `options.components`).
   *
   * @param name The component's name.
   * @returns Its instance (`undefined` for a disabled one).
   * @throws {AicoDataError} `INVALID_INPUT` for an unknown name.
   */
  component<T>(name: string): T;
  /**
   * Rotates the data key: a new DEK is written to the key file's pending
   * slot, the database is re-encrypted (`PRAGMA rekey`) and every sealed
   * column declared by a registered schema (core, feed, components,
   * plugins) re-sealed, the key file keeps only the new key, and the
   * components holding key material (the cache) reopen under it. A crash at
   * any step leaves a folder that opens with {@linkcode openDataLayer} with
   * exactly one key and loses nothing; a rotation refused before anything
   * changed (`BUSY`: another connection is open) leaves the key file as it
   * was.
   *
   * @param passphrase The key file's passphrase.
   * @param options `signal` stops it before re-encryption starts.
   * @returns The new key's fingerprint.
   * @throws {AicoDataError} `STORE_CLOSED`, `WRONG_KEY`, `BUSY`; the
   * signal's reason.
   */
  rotateKey(passphrase: string, options?: RotateKeyOptions): Promise<string>;
  /**
   * The audit trail: security events (unlock, failed unlock, key rotation,
   * passphrase change, backup, export, erase, restore, retention), sealed
   * and hash-chained in the store.
   */
  readonly audit: AuditLog;
  /**
   * Analytics over the user's history (activity, heatmap, latency, top
   * terms, sessions, error rates, SQL, sealed exports, the HTML report):
   * aggregate queries go here. `undefined` when disabled.
   */
  readonly analytics: Analytics | undefined;
  /** The semantic memory, unless disabled (`memory: false`). */
  readonly memory: SemanticMemory | undefined;
  /**
   * Finds past messages by meaning and keywords (hybrid by default: FTS5
   * bm25 fused with vector hits); messages not embedded yet are found by
   * their keywords. Similarity queries go here, never to the cache.
   *
   * @param text The query.
   * @param options `k`, `filter`, `mode`, `mmr`, `recency`, `signal`.
   * @returns Hits with message ids, scores and opened content.
   * @throws {AicoDataError} `INVALID_INPUT` for a blank text, bad `k` or
   * filter; `NOT_FOUND` when memory is disabled; `STORE_CLOSED`.
   */
  search(text: string, options?: SearchOptions): Promise<MemoryHit[]>;
  /**
   * Messages of other conversations similar to a message (by id) or to a
   * conversation (by id).
   *
   * @param target A message id (number) or a conversation id (string).
   * @param options `k`.
   * @returns The hits, most similar first.
   * @throws {AicoDataError} as {@linkcode DataLayer.search}.
   */
  related(
    target: number | string,
    options?: RelatedOptions,
  ): Promise<MemoryHit[]>;
  /**
   * Changes the key file's passphrase: the data key is re-wrapped, nothing
   * else is touched (Argon2id settings as the key file's).
   *
   * @param oldPassphrase The current passphrase.
   * @param newPassphrase The new one.
   * @returns When the key file is replaced (atomically) and the change audited.
   * @throws {AicoDataError} `WRONG_KEY` for a wrong current passphrase,
   * `INVALID_INPUT` for an empty new one, `STORE_CLOSED`.
   */
  changePassphrase(oldPassphrase: string, newPassphrase: string): Promise<void>;
  /**
   * Checks the store (`PRAGMA integrity_check`, the key record) and the
   * audit trail (every row opens, the hash chain is unbroken).
   *
   * @param options `signal` stops the check.
   * @returns Both reports and their verdict.
   * @throws {AicoDataError} `STORE_CLOSED`, `ABORTED`.
   */
  verify(options?: { readonly signal?: AbortSignal }): Promise<{
    readonly ok: boolean;
    readonly storage: VerifyReport;
    readonly audit: AuditVerifyReport;
  }>;
  /**
   * Device sync, when opened with `sync` (else `undefined`): `run()`
   * stages, pushes and pulls.
   */
  readonly sync: DataSync | undefined;
  /**
   * Erases a message, a conversation, a user (with their conversations and
   * credentials) or everything, from every store of the folder, and
   * resolves only once it is gone everywhere:
   *
   * - the database rows, with `PRAGMA secure_delete` in effect (freed cells
   *   and pages are zeroed), then the WAL checkpointed with `TRUNCATE`, so
   *   no old page stays in `data.db` or `data.db-wal`;
   * - the keyword index and the vectors, by draining the memory indexer,
   *   then FTS5 `optimize` (the contentless index keeps a deleted row's
   *   tokens behind a tombstone until its segments are merged);
   * - the analytics copy, by draining its refresher;
   * - the LMDB cache: closed, its file overwritten with zeros and removed,
   *   reopened empty (lmdb-js leaves freed pages' ciphertext in the file);
   * - the change-feed rows about the erased rows, once every consumer is
   *   past them;
   * - for `{ all: true }`: also logs, configuration and plugin state, and
   *   the OS keyring's copies of the data key.
   *
   * One message keeps its conversation's numbering: its `seq` is recorded
   * as a gap (position only), so `listMessages` still proves that nothing
   * else is missing. The erase is audited as `erase` with its kind and
   * counts only. The audit trail itself is kept, also by `{ all: true }`:
   * it holds no content, and a trail that vanished could not be told from
   * one an attacker removed. Backups and copies made earlier are not
   * reached (the CLI lists the backups it made).
   *
   * @param scope `{ message: id }`, `{ conversation: id }`, `{ user: id }`
   * or `{ all: true }`.
   * @param options `keyring` for `{ all: true }`.
   * @returns The counts, and what could not be reached.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed scope,
   * `STORE_CLOSED`.
   *
   * @example Erasing a conversation
   * ```ts
   * import { openDataLayer } from "./mod.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * try {
   *   const kdf = { memoryKiB: 19456, iterations: 2 };
   *   await using data = await openDataLayer(dir, { passphrase: "pw", create: true, kdf, analytics: false });
   *   const chat = await data.conversations.createConversation({ title: "Secrets" });
   *   await data.conversations.appendMessage(chat.id, { role: "user", content: "my bank PIN is 4711" });
   *   const report = await data.erase({ conversation: chat.id });
   *   assert.equal(report.messages, 1);
   *   assert.deepEqual(await data.search("PIN", { mode: "keyword" }), []);
   *   assert.equal((await data.conversations.listConversations()).items.length, 0);
   * } finally {
   *   await Deno.remove(dir, { recursive: true });
   * }
   * ```
   */
  erase(scope: EraseScope, options?: EraseOptions): Promise<EraseReport>;
  /**
   * Applies the layer's retention policy now (it also runs at open and on
   * its schedule), through the erase path; audited as `retention`.
   *
   * @returns The counts (all 0 without a policy).
   * @throws {AicoDataError} `STORE_CLOSED`.
   *
   * @example Tool output older than a week goes
   * ```ts
   * import { openDataLayer } from "./mod.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * try {
   *   const kdf = { memoryKiB: 19456, iterations: 2 };
   *   const now = Date.UTC(2026, 5, 1);
   *   await using data = await openDataLayer(dir, {
   *     passphrase: "pw", create: true, kdf, memory: false, analytics: false,
   *     retention: { messages: { olderThanDays: 7, roles: ["tool"] }, now: () => now },
   *   });
   *   const chat = await data.conversations.createConversation();
   *   await data.conversations.appendMessages(chat.id, [
   *     { role: "tool", content: "old output", createdAt: now - 8 * 86_400_000 },
   *     { role: "user", content: "old question", createdAt: now - 8 * 86_400_000 },
   *   ]);
   *   assert.equal((await data.applyRetention()).messages, 1);
   *   const { items } = await data.conversations.listMessages(chat.id);
   *   assert.deepEqual(items.map((m) => m.content), ["old question"]);
   * } finally {
   *   await Deno.remove(dir, { recursive: true });
   * }
   * ```
   */
  applyRetention(): Promise<EraseReport>;
  /**
   * Exports the user's data as the documented `aico-data-export` JSON
   * format (version 2, `docs/EXPORT_FORMAT.md`: users' profiles without
   * PIN or password hashes, configuration, plugins and their state,
   * conversations, messages with roles, times, models and source ids) or
   * as Markdown for reading. Sealed by default with the `export` purpose
   * key in 64 KiB chunks, the folder's key file embedded so that the
   * passphrase alone opens it elsewhere; plaintext only with
   * `plaintext: true`. The file streams: memory holds a page of messages
   * and one chunk, whatever the size. An `export` event (scope, format,
   * sealed, counts; never content) enters the audit trail.
   *
   * @param to A new file (created with mode 0600; an existing file is
   * refused) or a stream (closed at the end, aborted on failure).
   * @param options Scope, format, `plaintext`, `embedKeyFile`, `signal`.
   * @returns The counts written.
   * @throws {AicoDataError} `INVALID_INPUT`, `ALREADY_EXISTS` for an
   * existing file, `NOT_FOUND` for an unknown user or conversation,
   * `PERMISSION_DENIED` (needs `--allow-write` on the file),
   * `STORE_CLOSED`; the signal's reason (a file target is removed).
   *
   * @example Export sealed, read it back in another folder by the passphrase
   * ```ts
   * import { openDataLayer } from "./mod.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * try {
   *   const kdf = { memoryKiB: 19456, iterations: 2 }; // the defaults are stronger
   *   {
   *     await using data = await openDataLayer(`${dir}/a`, { passphrase: "pw", create: true, kdf });
   *     const chat = await data.conversations.createConversation({ title: "Tea" });
   *     await data.conversations.appendMessage(chat.id, { role: "user", content: "I like green tea" });
   *     const report = await data.exportData(`${dir}/export.aico`);
   *     assert.equal(report.sealed, true);
   *     assert.equal(report.messages, 1);
   *   }
   *   assert.ok(!(await Deno.readTextFile(`${dir}/export.aico`)).includes("green tea"));
   *   await using other = await openDataLayer(`${dir}/b`, { passphrase: "other", create: true, kdf });
   *   const back = await other.importExport(`${dir}/export.aico`, { passphrase: "pw" });
   *   assert.equal(back.messagesAdded, 1);
   *   const [chat] = (await other.conversations.listConversations()).items;
   *   assert.equal((await other.conversations.listMessages(chat!.id)).items[0]?.content, "I like green tea");
   * } finally {
   *   await Deno.remove(dir, { recursive: true });
   * }
   * ```
   */
  exportData(
    to: string | WritableStream<Uint8Array>,
    options?: ExportOptions,
  ): Promise<ExportReport>;
  /**
   * Reads an export of {@linkcode DataLayer.exportData} (JSON, plaintext or
   * sealed) back, in one transaction: users, configuration, plugins and
   * their state, conversations and messages with their times. What the
   * store holds already (same id or key, messages up to a conversation's
   * last seq) is kept as it is. A sealed export opens with this folder's
   * key, else with `keyFile` or its embedded key file and the passphrase.
   * Every chunk is checked before anything is written: a damaged or
   * truncated file stores nothing. A `restore` event enters the audit trail.
   *
   * @param file The export file.
   * @param options Passphrase, key file, fallback user, signal.
   * @returns The counts stored.
   * @throws {AicoDataError} `WRONG_KEY` for a wrong passphrase or key,
   * `AUTH_FAILED` for an edited chunk, `IMPORT_INVALID` for a truncated
   * or malformed file (naming the field), `NOT_FOUND`, `STORE_CLOSED`.
   */
  importExport(
    file: string,
    options?: ImportExportOptions,
  ): Promise<ImportExportReport>;
  /**
   * What the folder keeps: per store and table the rows, bytes (`dbstat`),
   * oldest and newest times, sealed columns, which stores hold vectors and
   * copies of text, and every file's size.
   *
   * @returns The inventory.
   * @throws {AicoDataError} `STORE_CLOSED`.
   *
   * @example Counting what is kept
   * ```ts
   * import { openDataLayer } from "./mod.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * try {
   *   const kdf = { memoryKiB: 19456, iterations: 2 }; // the defaults are stronger
   *   await using data = await openDataLayer(dir, { passphrase: "pw", create: true, kdf });
   *   const chat = await data.conversations.createConversation();
   *   await data.conversations.appendMessage(chat.id, { role: "user", content: "hi" });
   *   const inv = await data.inventory();
   *   const messages = inv.stores[0]!.tables!.find((t) => t.name === "messages")!;
   *   assert.equal(messages.rows, 1);
   *   assert.deepEqual(messages.sealedColumns, ["content"]);
   * } finally {
   *   await Deno.remove(dir, { recursive: true });
   * }
   * ```
   */
  inventory(): Promise<Inventory>;
  /** Flushes logs and closes every component in reverse order; safe to call twice. */
  close(): Promise<void>;
}

/** The instance of the `repositories` component. */
export interface CoreRepositories {
  /** Users (not routed). */
  readonly users: UserService;
  /** Configuration (not routed). */
  readonly config: ConfigRepository;
  /** Plugins. */
  readonly plugins: PluginStateRepository;
  /** Conversations (not routed). */
  readonly conversations: ConversationRepository;
}

/** The instance of the `logs` component. */
export interface LogComponent {
  /** The log repository. */
  readonly logs: LogRepository;
  /** Its persistence from the bus. */
  readonly persistence: LogPersistence;
}

/**
 * The built-in rows, in open order: `storage` (opens the store under the
 * key that holds it, then migrates every row's schemas), `bus`, `cache`
 * (subscribed to invalidation before the feed replays), `changes`,
 * `repositories`, `logs`.
 */
function builtInComponents(
  dir: string,
  options: DataLayerOptions,
  keys: UnlockResult,
  setKey: (key: DataKey) => void,
  migrated: (m: Migrator, applied: MigrationStepReport[]) => void,
): DataLayerComponent[] {
  const storage: DataLayerComponent<LocalStorage> = {
    name: "storage",
    schemas: [],
    async open(ctx) {
      const dbPath = `${dir}/${DATA_LAYER_FILES.database}`;
      const opened = await openRotatingStorage(dbPath, keys);
      if (
        keys.pending !== undefined && opened.key === keys.pending &&
        options.passphrase !== undefined
      ) {
        // The database finished an interrupted rotation: so does the key file.
        await completeKeyRotation(
          `${dir}/${DATA_LAYER_FILES.keyFile}`,
          options.passphrase,
        );
      }
      setKey(opened.key);
      try {
        const migrator = await openMigrator(opened.storage, ctx.registry);
        migrated(migrator, await migrator.migrate());
      } catch (err) {
        await opened.storage.close().catch(() => {});
        throw err;
      }
      return opened.storage;
    },
    close: (s) => s.close(),
  };
  const bus: DataLayerComponent<MessageBus> = {
    name: "bus",
    schemas: [],
    open: () => Promise.resolve(createMessageBus()),
    close: (b) => b.close(),
  };
  const openCacheFor = async (ctx: ComponentContext): Promise<Cache> => {
    const { openCache } = await import("../cache/mod.ts");
    const cache = await openCache({
      ...(options.cache === false ? {} : options.cache),
      path: `${dir}/${DATA_LAYER_FILES.cache}`,
      key: ctx.key,
    });
    try {
      subscribeRouting(cache, ctx.bus);
    } catch (err) {
      await cache.close();
      throw err;
    }
    return cache;
  };
  const cache: DataLayerComponent<Cache> = {
    name: "cache",
    schemas: [],
    open: (ctx) =>
      options.cache === false ? Promise.resolve(undefined) : openCacheFor(ctx),
    close: (c) => c.close(),
    async rotated(old, ctx) {
      // The cache is disposable: under the new key it opens empty.
      await old.close();
      return await openCacheFor(ctx);
    },
    async erased(old, ctx, unreached) {
      // Invalidation alone leaves the entries' encrypted pages in LMDB's
      // free list: the file is zeroed and removed, and the cache reopens.
      await old.clear().catch(() => 0);
      await old.close();
      const { wipeClosedCache } = await import("../cache/mod.ts");
      if (!await wipeClosedCache(`${dir}/${DATA_LAYER_FILES.cache}`)) {
        unreached(
          "another process has the cache open: its entries were invalidated, but LMDB's free pages may keep their encrypted bytes until reused",
        );
      }
      return await openCacheFor(ctx);
    },
  };
  const changes: DataLayerComponent<ChangeFeed> = {
    name: "changes",
    schemas: [changesSchema],
    open: (ctx) =>
      openChangeFeed(ctx.storage, {
        ...options.changes,
        bus: ctx.bus,
        signal: options.changes?.signal === undefined
          ? ctx.signal
          : AbortSignal.any([ctx.signal, options.changes.signal]),
      }),
    close: (f) => f.close(),
  };
  const repositories: DataLayerComponent<CoreRepositories> = {
    name: "repositories",
    schemas: [coreSchema],
    open(ctx) {
      const o = { changes: ctx.changes };
      return Promise.resolve({
        users: createUserService(ctx.storage, o),
        config: createConfigRepository(ctx.storage, o),
        plugins: createPluginStateRepository(ctx.storage, o),
        conversations: createConversationRepository(ctx.storage, o),
      });
    },
    close: () => Promise.resolve(),
  };
  const logs: DataLayerComponent<LogComponent> = {
    name: "logs",
    schemas: [],
    open(ctx) {
      const repo = createLogRepository(ctx.storage);
      return Promise.resolve({
        logs: repo,
        persistence: createLogPersistence(ctx.bus, repo),
      });
    },
    close: (l) => l.persistence.close(),
  };
  return [
    storage,
    bus,
    cache,
    changes,
    repositories,
    logs,
    auditComponent(keys.method),
    memoryComponent(options.memory),
    analyticsComponent(options.analytics),
    syncComponent(options.sync),
  ];
}

class DataLayerImpl implements DataLayer {
  readonly dir: string;
  readonly #set: ComponentSet;
  readonly #abort: AbortController;
  readonly #state: {
    key: DataKey;
    migrator: Migrator;
    applied: MigrationStepReport[];
    extra?: readonly string[];
  };
  readonly #routed: ReturnType<typeof routeReads>;
  #closed = false;
  #rotating: Promise<string> | undefined;
  readonly #eraser: Eraser;
  readonly #retention: ResolvedRetention | undefined;
  #schedule: { stop(): void } | undefined;

  constructor(
    dir: string,
    set: ComponentSet,
    abort: AbortController,
    state: {
      key: DataKey;
      migrator: Migrator;
      applied: MigrationStepReport[];
      extra?: readonly string[];
    },
    options: DataLayerOptions,
    retention: ResolvedRetention | undefined,
  ) {
    this.dir = dir;
    this.#set = set;
    this.#abort = abort;
    this.#state = state;
    const repos = set.get<CoreRepositories>("repositories");
    this.#routed = routeReads(repos, () => set.get<Cache | undefined>("cache"));
    this.#retention = retention;
    this.#eraser = new Eraser({
      storage: () => set.get<LocalStorage>("storage"),
      changes: () => set.get<ChangeFeed>("changes"),
      audit: () => set.get<AuditLog>("audit"),
      conversations: () =>
        set.get<CoreRepositories>("repositories").conversations,
      users: () => set.get<CoreRepositories>("repositories").users,
      logPersistence: () => set.get<LogComponent>("logs").persistence,
      erasedHooks: () => set.erased(),
      keyFile: `${dir}/${DATA_LAYER_FILES.keyFile}`,
      keyring: options.keyring,
    });
  }

  /** At open: applies the retention policy once, then on its schedule. */
  async startRetention(): Promise<void> {
    const policy = this.#retention;
    if (policy === undefined) return;
    await this.applyRetention();
    this.#schedule = scheduleRetention(policy.intervalMs, async () => {
      if (!this.#closed) await this.applyRetention();
    }, (err) => {
      if (this.#closed) return;
      try {
        this.bus.publish("log.warn", {
          module: "aico.retention",
          message: `Cannot apply retention: ${
            isAicoDataError(err) ? err.code : "ERROR"
          }`,
        });
      } catch {
        // The bus is closing: nothing to report to.
      }
    });
  }

  erase(scope: EraseScope, options: EraseOptions = {}): Promise<EraseReport> {
    try {
      this.#guard("erase");
    } catch (err) {
      return Promise.reject(err);
    }
    // A running key rotation replaces the cache: erase after it.
    const rotating = this.#rotating;
    if (rotating === undefined) {
      return this.#eraser.erase(scope, options.keyring);
    }
    return rotating.catch(() => {}).then(() => {
      this.#guard("erase");
      return this.#eraser.erase(scope, options.keyring);
    });
  }

  applyRetention(): Promise<EraseReport> {
    try {
      this.#guard("apply retention");
    } catch (err) {
      return Promise.reject(err);
    }
    const policy = this.#retention;
    return policy === undefined
      ? this.#eraser.run("retention", () => Promise.resolve())
      : applyRetention(
        this.#eraser,
        policy,
        () => this.storage,
        () => this.#set.get<CoreRepositories>("repositories").conversations,
      );
  }

  get key(): DataKey {
    return this.#state.key;
  }
  get storage(): LocalStorage {
    return this.#set.get<LocalStorage>("storage");
  }
  get migrator(): Migrator {
    return this.#state.migrator;
  }
  get registry(): SchemaRegistry {
    return this.#set.context.registry;
  }
  get applied(): readonly MigrationStepReport[] {
    return this.#state.applied;
  }
  get bus(): MessageBus {
    return this.#set.get<MessageBus>("bus");
  }
  get changes(): ChangeFeed {
    return this.#set.get<ChangeFeed>("changes");
  }
  get logs(): LogRepository {
    return this.#set.get<LogComponent>("logs").logs;
  }
  get logPersistence(): LogPersistence {
    return this.#set.get<LogComponent>("logs").persistence;
  }
  get users(): UserService {
    return this.#routed.users;
  }
  get config(): ConfigRepository {
    return this.#routed.config;
  }
  get plugins(): PluginStateRepository {
    return this.#set.get<CoreRepositories>("repositories").plugins;
  }
  get conversations(): ConversationRepository {
    return this.#routed.conversations;
  }
  get cache(): Cache | undefined {
    return this.#set.get<Cache | undefined>("cache");
  }
  get audit(): AuditLog {
    return this.#set.get<AuditLog>("audit");
  }
  get analytics(): Analytics | undefined {
    return this.#set.get<Analytics | undefined>("analytics");
  }
  get sync(): DataSync | undefined {
    return this.#set.get<DataSync | undefined>("sync");
  }
  get memory(): SemanticMemory | undefined {
    return this.#set.get<MemoryComponent | undefined>("memory")?.memory;
  }

  async #memoryFor(
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<SemanticMemory> {
    this.#guard(what);
    const row = this.#set.get<MemoryComponent | undefined>("memory");
    if (row === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot ${what}: semantic memory is disabled (memory: false)`,
      );
    }
    // Read your writes: the indexer first takes every change committed so
    // far (keyword rows at once; vectors follow in the background).
    await row.registration.catchUp(signal === undefined ? {} : { signal });
    return row.memory;
  }

  async search(text: string, options?: SearchOptions): Promise<MemoryHit[]> {
    return await (await this.#memoryFor("search", options?.signal)).search(
      text,
      options,
    );
  }

  async related(
    target: number | string,
    options?: RelatedOptions,
  ): Promise<MemoryHit[]> {
    return await (await this.#memoryFor("find related", undefined)).related(
      target,
      options,
    );
  }
  get closed(): boolean {
    return this.#closed;
  }

  #guard(what: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${what}: the data layer is closed`,
      );
    }
  }

  recentMessages(conversationId: string, n: number): Promise<Message[]> {
    try {
      this.#guard("read recent messages");
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#routed.conversations.recentMessages(conversationId, n);
  }

  async changePassphrase(
    oldPassphrase: string,
    newPassphrase: string,
  ): Promise<void> {
    this.#guard("change passphrase");
    await changePassphrase(
      `${this.dir}/${DATA_LAYER_FILES.keyFile}`,
      oldPassphrase,
      newPassphrase,
    );
    await auditQuietly(this.audit, "passphrase_change", {
      keyId: this.key.keyId,
    });
  }

  async verify(
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<
    { ok: boolean; storage: VerifyReport; audit: AuditVerifyReport }
  > {
    this.#guard("verify");
    const storage = await this.storage.verify(options);
    options.signal?.throwIfAborted();
    const audit = await this.audit.verify();
    return { ok: storage.ok && audit.ok, storage, audit };
  }

  async exportData(
    to: string | WritableStream<Uint8Array>,
    options: ExportOptions = {},
  ): Promise<ExportReport> {
    this.#guard("export");
    const o = resolveExportOptions(options);
    let writer: WritableStreamDefaultWriter<Uint8Array>;
    if (typeof to === "string") {
      if (to.length === 0) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot export: the file must be a path",
        );
      }
      requirePermission(
        { name: "write", path: to },
        "--allow-write",
        "export",
      );
      try {
        const file = await Deno.open(to, {
          createNew: true,
          write: true,
          mode: PRIVATE_FILE_MODE,
        });
        writer = file.writable.getWriter();
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new AicoDataError(
            "ALREADY_EXISTS",
            `Cannot export to "${to}": the file exists`,
            { cause: err },
          );
        }
        if (err instanceof Deno.errors.NotFound) {
          throw new AicoDataError(
            "NOT_FOUND",
            `Cannot export to "${to}": its folder does not exist`,
            { cause: err },
          );
        }
        throw err;
      }
    } else if (to instanceof WritableStream) {
      writer = to.getWriter();
    } else {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot export: the target must be a file path or a WritableStream",
      );
    }
    let report: ExportReport;
    try {
      report = await writeExport(
        {
          dir: this.dir,
          key: this.key,
          storage: this.storage,
          repositories: this.#set.get<CoreRepositories>("repositories"),
        },
        writer,
        o,
      );
      await writer.close();
    } catch (err) {
      await writer.abort(err).catch(() => {});
      if (typeof to === "string") await Deno.remove(to).catch(() => {});
      throw err;
    }
    await auditQuietly(this.audit, "export", {
      scope: report.scope,
      format: report.format,
      sealed: report.sealed,
      keyId: report.keyId ?? null,
      users: report.users,
      conversations: report.conversations,
      messages: report.messages,
      config: report.config,
      plugins: report.plugins,
      pluginState: report.pluginState,
      bytes: report.bytes,
    });
    return report;
  }

  async importExport(
    file: string,
    options: ImportExportOptions = {},
  ): Promise<ImportExportReport> {
    this.#guard("import export");
    if (typeof file !== "string" || file.length === 0) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot import export: the file must be a path",
      );
    }
    const target = {
      dir: this.dir,
      key: this.key,
      storage: this.storage,
      changes: this.changes,
    };
    const { doc, sealed } = await readExportDocument(target, file, options);
    const report = await restoreDocument(target, doc, file, sealed, options);
    await auditQuietly(this.audit, "restore", {
      source: "export",
      sealed,
      users: report.usersAdded,
      conversations: report.conversationsAdded,
      messages: report.messagesAdded,
      config: report.configAdded,
      plugins: report.pluginsAdded,
      pluginState: report.pluginStateAdded,
      skipped: report.skipped,
    });
    return report;
  }

  async inventory(): Promise<Inventory> {
    this.#guard("take inventory");
    return await takeInventory({
      dir: this.dir,
      storage: this.storage,
      registry: this.registry,
      cache: this.cache,
      memory: this.memory !== undefined,
      analytics: this.analytics !== undefined,
      components: this.#state.extra ?? [],
    });
  }

  component<T>(name: string): T {
    this.#guard("use component");
    return this.#set.get<T>(name);
  }

  rotateKey(
    passphrase: string,
    options: RotateKeyOptions = {},
  ): Promise<string> {
    try {
      this.#guard("rotate key");
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#rotating !== undefined) {
      return Promise.reject(
        new AicoDataError("BUSY", "Cannot rotate key: a rotation is running"),
      );
    }
    const run = this.#rotate(passphrase, options.signal).finally(() => {
      this.#rotating = undefined;
    });
    this.#rotating = run;
    return run;
  }

  async #rotate(passphrase: string, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const keyPath = `${this.dir}/${DATA_LAYER_FILES.keyFile}`;
    const dbPath = `${this.dir}/${DATA_LAYER_FILES.database}`;
    const resumed = (await readKeyFileInfo(keyPath)).pendingKeyId !== undefined;
    const { pending } = await beginKeyRotation(keyPath, passphrase);
    if (pending === undefined) {
      throw new Error("unreachable: rotation without a pending key");
    }
    try {
      signal?.throwIfAborted();
      await this.storage.rekey(pending, {
        sealedColumns: this.registry.sealedColumns,
      });
    } catch (err) {
      // Refused before the store took the new key up: the key file goes
      // back to what it was (no pending slot left behind).
      if (!resumed && !(await storageNamesKey(dbPath, pending.keyId))) {
        await cancelKeyRotation(keyPath, passphrase, pending.keyId);
      }
      throw err;
    }
    const previous = this.#state.key.keyId;
    this.#state.key = await completeKeyRotation(keyPath, passphrase);
    await this.#set.rotated();
    await auditQuietly(this.audit, "key_rotation", {
      keyId: this.#state.key.keyId,
      previousKeyId: previous,
    });
    return this.#state.key.keyId;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#schedule?.stop();
    if (this.#rotating !== undefined) await this.#rotating.catch(() => {});
    await this.#eraser.idle();
    this.#abort.abort(
      new AicoDataError("STORE_CLOSED", "The data layer is closing"),
    );
    const errors = await this.#set.close();
    if (errors.length > 0) {
      throw new AggregateError(errors, "Cannot close data layer cleanly");
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens (or creates) a data layer in a folder. The key file is unlocked
 * (`crypto/`'s `unlockDataKeys`: keyring, passphrase, pending rotation),
 * then the rows of the component table open in order: `storage` (the
 * encrypted database under the key that holds it; every row's schemas and
 * the plugins' migrated), `bus`, `cache` (encrypted LMDB, kept fresh by the
 * bus), `changes` (the durable change feed), `repositories`, `logs` (log
 * persistence from the bus), then `options.components`. Closing runs the
 * rows in reverse order. Hot reads (`config.get`, `users.getUser`,
 * `conversations.recentMessages`) are served from the cache.
 *
 * Permissions: `--allow-read --allow-write` on `dir`, `--allow-ffi`,
 * `--allow-sys`, `--allow-env` (libSQL and LMDB read a few variables).
 *
 * @param dir The folder (`key.json`, `data.db`, `cache/`).
 * @param options Passphrase, keyring, creation, cache, feed and components.
 * @returns The {@linkcode DataLayer}.
 * @throws {AicoDataError} `NOT_FOUND` when the folder has no key file and
 * `create` is not set, `WRONG_KEY` for a wrong passphrase, `MIGRATION_*`
 * codes from the migrator, `PERMISSION_DENIED`, `INVALID_INPUT` for a
 * malformed component.
 *
 * @example A companion's memory in a folder
 * ```ts
 * import { openDataLayer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 }; // the defaults are stronger
 *   {
 *     await using data = await openDataLayer(dir, { passphrase: "pw", create: true, kdf });
 *     const user = await data.users.createUser({ profile: { name: "Ada" } });
 *     const chat = await data.conversations.createConversation({ userId: user.id, title: "Tea" });
 *     await data.conversations.appendMessage(chat.id, { role: "user", content: "I like green tea" });
 *     assert.equal((await data.recentMessages(chat.id, 10))[0]?.content, "I like green tea");
 *   }
 *   await using again = await openDataLayer(dir, { passphrase: "pw" });
 *   const [chat] = (await again.conversations.listConversations()).items;
 *   const { items } = await again.conversations.listMessages(chat!.id);
 *   assert.equal(items[0]?.content, "I like green tea");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openDataLayer(
  dir: string,
  options: DataLayerOptions = {},
): Promise<DataLayer> {
  if (typeof dir !== "string" || dir.length === 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open data layer: the folder must be a path",
    );
  }
  const retention = resolveRetention(options.retention);
  if (options.create) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  let keys: UnlockResult;
  try {
    keys = await unlockDataKeys(`${dir}/${DATA_LAYER_FILES.keyFile}`, {
      ...options,
      guardedPaths: [`${dir}/${DATA_LAYER_FILES.database}`],
    });
  } catch (err) {
    // A failed unlock enters the audit trail at the next successful open.
    if (isAicoDataError(err, "WRONG_KEY")) {
      await notePendingFailure(dir, err.code);
    }
    throw err;
  }
  const state = {
    key: keys.current,
    migrator: undefined as unknown as Migrator,
    applied: [] as MigrationStepReport[],
    extra: (options.components ?? []).map((c) => String(c?.name)),
  };
  const abort = new AbortController();
  const rows = [
    ...builtInComponents(dir, options, keys, (k) => {
      state.key = k;
    }, (m, applied) => {
      state.migrator = m;
      state.applied = applied;
    }),
    ...(options.components ?? []),
  ];
  const registry = createSchemaRegistry([
    ...rows.flatMap((r) => Array.isArray(r?.schemas) ? r.schemas : []),
    ...(options.plugins ?? []),
  ]);
  const set = new ComponentSet(rows, {
    dir,
    key: () => state.key,
    registry: () => registry,
    signal: abort.signal,
  });
  try {
    await set.open(0);
  } catch (err) {
    abort.abort(err);
    await state.migrator?.close?.().catch(() => {});
    await set.close();
    throw err;
  }
  const data = new DataLayerImpl(dir, set, abort, state, options, retention);
  try {
    await data.startRetention();
  } catch (err) {
    await data.close().catch(() => {});
    throw err;
  }
  return data;
}
