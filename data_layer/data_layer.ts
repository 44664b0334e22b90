/**
 * `openDataLayer()`: the whole data layer of a companion app, composed from
 * the modules, in one folder.
 *
 * @module
 */
import { AicoDataError, isAicoDataError } from "../errors.ts";
import {
  beginKeyRotation,
  completeKeyRotation,
  createKeyFile,
  type DataKey,
  type KdfOptions,
  type KeyringBackend,
  readKeyFileInfo,
  unlockKeys,
  unlockWithKeyring,
} from "../crypto/mod.ts";
import { type LocalStorage, openStorage } from "../storage/mod.ts";
import { readSidecar } from "../storage/_sidecar.ts";
import { exists } from "../_internal/fs.ts";
import {
  createSchemaRegistry,
  type MigrationStepReport,
  type Migrator,
  openMigrator,
  type SchemaDefinition,
} from "../schema/mod.ts";
import {
  type ConfigRepository,
  type ConversationRepository,
  CORE_SEALED_COLUMNS,
  coreSchema,
  createConfigRepository,
  createConversationRepository,
  createLogPersistence,
  createLogRepository,
  createPluginStateRepository,
  createUserService,
  type LogPersistence,
  type LogRepository,
  openOutbox,
  type Outbox,
  type PluginStateRepository,
  type UserService,
} from "../repositories/mod.ts";
import { createMessageBus, type MessageBus } from "../bus/mod.ts";
import type { Cache, CacheOptions } from "../cache/mod.ts";

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
}

/** The composed data layer returned by {@linkcode openDataLayer}. */
export interface DataLayer extends AsyncDisposable {
  /** The folder. */
  readonly dir: string;
  /** The current data key. */
  readonly key: DataKey;
  /** The encrypted libSQL store. */
  readonly storage: LocalStorage;
  /** The schema migrator (core and plugins). */
  readonly migrator: Migrator;
  /** What the last `migrate()` at open applied. */
  readonly applied: readonly MigrationStepReport[];
  /** The in-process message bus (`log.<level>`, `data.changed.<table>`). */
  readonly bus: MessageBus;
  /** The outbox that publishes committed changes on the bus. */
  readonly outbox: Outbox;
  /** Logs; `log.<level>` bus events are persisted here in batches. */
  readonly logs: LogRepository;
  /** Log persistence from the bus. */
  readonly logPersistence: LogPersistence;
  /** Users, profiles, PINs and passwords. */
  readonly users: UserService;
  /** Namespaced configuration. */
  readonly config: ConfigRepository;
  /** Plugin metadata and state. */
  readonly plugins: PluginStateRepository;
  /** Conversations and their sealed messages. */
  readonly conversations: ConversationRepository;
  /** The session cache, unless disabled. */
  readonly cache: Cache | undefined;
  /** Whether {@linkcode DataLayer.close} ran. */
  readonly closed: boolean;
  /**
   * Rotates the data key: a new DEK is written to the key file's pending
   * slot, the database is re-encrypted (`PRAGMA rekey`) and its sealed
   * columns re-sealed, the cache is emptied (it is disposable), and the key
   * file keeps only the new key. A crash at any step leaves a folder that
   * opens with {@linkcode openDataLayer}.
   *
   * @param passphrase The key file's passphrase.
   * @returns The new key's fingerprint.
   */
  rotateKey(passphrase: string): Promise<string>;
  /** Flushes logs and closes everything; safe to call twice. */
  close(): Promise<void>;
}

async function unlock(
  dir: string,
  options: DataLayerOptions,
): Promise<{ current: DataKey; pending: DataKey | undefined }> {
  const keyPath = `${dir}/${DATA_LAYER_FILES.keyFile}`;
  if (!(await exists(keyPath))) {
    const dbPath = `${dir}/${DATA_LAYER_FILES.database}`;
    if (await exists(dbPath)) {
      // Never make a new key beside data sealed under a lost one.
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open data layer: "${dbPath}" exists but its key file "${keyPath}" is missing (restore it from a backup)`,
      );
    }
    if (!options.create) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open data layer: no key file at "${keyPath}" (pass create: true to make one)`,
      );
    }
    if (options.passphrase === undefined) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot create data layer: a passphrase is needed",
      );
    }
    const kdf = options.kdf === undefined ? {} : { kdf: options.kdf };
    return {
      current: await createKeyFile(keyPath, options.passphrase, kdf),
      pending: undefined,
    };
  }
  if (options.keyring !== undefined) {
    const info = await readKeyFileInfo(keyPath);
    if (info.pendingKeyId === undefined || options.passphrase === undefined) {
      try {
        return {
          current: await unlockWithKeyring(keyPath, options.keyring),
          pending: undefined,
        };
      } catch (err) {
        if (options.passphrase === undefined) throw err;
      }
    }
  }
  if (options.passphrase === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open data layer: a passphrase is needed",
    );
  }
  return await unlockKeys(keyPath, options.passphrase);
}

/**
 * Opens the database with the key that holds it. During an interrupted
 * rotation that is the pending key (the store then finishes re-sealing with
 * the previous one) or, when the rotation stopped before `PRAGMA rekey`, the
 * current key.
 */
async function openStore(
  path: string,
  keys: { current: DataKey; pending: DataKey | undefined },
): Promise<{ storage: LocalStorage; key: DataKey }> {
  const withCurrent = async () => ({
    storage: await openStorage(path, { key: keys.current }),
    key: keys.current,
  });
  const withPending = async (pending: DataKey) => ({
    storage: await openStorage(path, {
      key: pending,
      previousKey: keys.current,
    }),
    key: pending,
  });
  if (keys.pending === undefined) return await withCurrent();
  // The store's key record says which key its pages are under; a wrong
  // attempt would leave a native connection behind until it is collected,
  // and that connection would block a later PRAGMA rekey.
  const record = await readSidecar(path);
  if (record?.keyId === keys.pending.keyId) {
    return await withPending(keys.pending);
  }
  if (record === undefined || record.pendingKeyId === undefined) {
    return await withCurrent();
  }
  // Stopped inside the store's own rotation: either key may hold the pages.
  try {
    return await withPending(keys.pending);
  } catch (err) {
    if (!isAicoDataError(err, "WRONG_KEY")) throw err;
    return await withCurrent();
  }
}

type DataLayerParts = Omit<
  DataLayer,
  "closed" | "rotateKey" | "close" | typeof Symbol.asyncDispose
>;

class DataLayerImpl implements DataLayer {
  declare readonly dir: string;
  declare key: DataKey;
  declare readonly storage: LocalStorage;
  declare readonly migrator: Migrator;
  declare readonly applied: readonly MigrationStepReport[];
  declare readonly bus: MessageBus;
  declare readonly outbox: Outbox;
  declare readonly logs: LogRepository;
  declare readonly logPersistence: LogPersistence;
  declare readonly users: UserService;
  declare readonly config: ConfigRepository;
  declare readonly plugins: PluginStateRepository;
  declare readonly conversations: ConversationRepository;
  declare readonly cache: Cache | undefined;
  #closed = false;

  constructor(parts: DataLayerParts) {
    Object.assign(this, parts);
  }

  get closed(): boolean {
    return this.#closed;
  }

  async rotateKey(passphrase: string): Promise<string> {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        "Cannot rotate key: the data layer is closed",
      );
    }
    const keyPath = `${this.dir}/${DATA_LAYER_FILES.keyFile}`;
    const { pending } = await beginKeyRotation(keyPath, passphrase);
    if (pending === undefined) {
      throw new Error("unreachable: rotation without a pending key");
    }
    await this.storage.rekey(pending, { sealedColumns: CORE_SEALED_COLUMNS });
    await this.cache?.clear();
    this.key = await completeKeyRotation(keyPath, passphrase);
    return this.key.keyId;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    for (
      const step of [
        () => this.logPersistence.close(),
        () => this.outbox.close(),
        () => this.cache?.close(),
        () => this.bus.close(),
        () => this.storage.close(),
      ]
    ) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, "Cannot close data layer cleanly");
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens (or creates) a data layer in a folder: key file, encrypted database
 * with the core schema and the given plugin schemas migrated, repositories,
 * message bus with log persistence and outbox, and the encrypted cache,
 * which the bus keeps fresh (`data.changed.<table>` invalidates entries).
 *
 * Permissions: `--allow-read --allow-write` on `dir`, `--allow-ffi`,
 * `--allow-sys`, `--allow-env` (libSQL and LMDB read a few variables).
 *
 * @param dir The folder (`key.json`, `data.db`, `cache/`).
 * @param options Passphrase, keyring, creation and cache settings.
 * @returns The {@linkcode DataLayer}.
 * @throws {AicoDataError} `NOT_FOUND` when the folder has no key file and
 * `create` is not set, `WRONG_KEY` for a wrong passphrase, `MIGRATION_*`
 * codes from the migrator, `PERMISSION_DENIED`.
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
  if (options.create) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPath = `${dir}/${DATA_LAYER_FILES.keyFile}`;
  const keys = await unlock(dir, options);
  const { storage, key } = await openStore(
    `${dir}/${DATA_LAYER_FILES.database}`,
    keys,
  );
  if (
    keys.pending !== undefined && key === keys.pending &&
    options.passphrase !== undefined
  ) {
    // The database finished an interrupted rotation: so does the key file.
    await completeKeyRotation(keyPath, options.passphrase);
  }
  const opened: { close(): Promise<void> }[] = [storage];
  try {
    const migrator = await openMigrator(
      storage,
      createSchemaRegistry([coreSchema, ...(options.plugins ?? [])]),
    );
    const applied = await migrator.migrate();
    const bus = createMessageBus();
    opened.push(bus);
    const outbox = await openOutbox(storage, bus);
    opened.push(outbox);
    const logs = createLogRepository(storage);
    const logPersistence = createLogPersistence(bus, logs);
    opened.push(logPersistence);
    let cache: Cache | undefined;
    if (options.cache !== false) {
      const { openCache } = await import("../cache/mod.ts");
      cache = await openCache({
        ...options.cache,
        path: `${dir}/${DATA_LAYER_FILES.cache}`,
        key,
      });
      opened.push(cache);
      cache.subscribeInvalidation(bus);
    }
    return new DataLayerImpl({
      dir,
      key,
      storage,
      migrator,
      applied,
      bus,
      outbox,
      logs,
      logPersistence,
      users: createUserService(storage, { outbox }),
      config: createConfigRepository(storage, { outbox }),
      plugins: createPluginStateRepository(storage, { outbox }),
      conversations: createConversationRepository(storage, { outbox }),
      cache,
    });
  } catch (err) {
    for (const r of opened.reverse()) await r.close().catch(() => {});
    throw err;
  }
}
