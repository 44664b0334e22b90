/**
 * `openImporter()`: imports export files into the conversation repository,
 * idempotently, one transaction per file.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { RepositoryStorage } from "../repositories/mod.ts";
import type { ChangeRecorder } from "../changes/mod.ts";
import {
  createSchemaRegistry,
  type MigratableDatabase,
  openMigrator,
  registerSchema,
  type SchemaDefinition,
} from "../schema/mod.ts";
import type { InValue, Transaction } from "../storage/types.ts";
import { readExport } from "./read_export.ts";
import type { ImportedConversation, ImportFormat, Unseal } from "./types.ts";
import { newConversation, newMessage, repositoryIn } from "./_repository.ts";

/**
 * The importer's own schema: `import_sources` maps every imported source id
 * (conversation or message) to what it became, so that a re-import adds only
 * what is new.
 */
export const IMPORT_SOURCES_SCHEMA: SchemaDefinition = registerSchema(
  "importers",
  "core",
  { priority: 100 },
  [{
    version: 1,
    name: "import sources",
    // No index on conversation_id: it would double the cost of every
    // imported message; lookups are by source_key (erasing a conversation's
    // rows scans, which is rare).
    up:
      "CREATE TABLE import_sources (source_key TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, message_id INTEGER) WITHOUT ROWID",
    down: "DROP TABLE import_sources",
  }],
);

/** Options of {@linkcode openImporter}. */
export interface ImporterOptions {
  /**
   * The user new conversations belong to.
   *
   * @default {undefined}
   */
  readonly userId?: string;
  /**
   * The change feed the repositories record change events in (the data
   * layer's `changes`); a file's events are announced once its transaction
   * committed.
   *
   * @default {undefined}
   */
  readonly changes?: ChangeRecorder;
}

/**
 * Normalises {@linkcode ImporterOptions}.
 *
 * @param options The options.
 * @returns The checked, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults and a bad user id
 * ```ts
 * import { resolveImporterOptions } from "./importer.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(resolveImporterOptions(), {});
 * assert.throws(() => resolveImporterOptions({ userId: "" }), { code: "INVALID_INPUT" });
 * ```
 */
export function resolveImporterOptions(
  options: ImporterOptions = {},
): Readonly<ImporterOptions> {
  const fail = (detail: string) =>
    new AicoDataError("INVALID_INPUT", `Cannot open importer: ${detail}`);
  if (typeof options !== "object" || options === null) {
    throw fail("options must be an object");
  }
  const { userId, changes } = options;
  if (
    userId !== undefined &&
    (typeof userId !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(userId))
  ) {
    throw fail('"userId" must be 1 to 128 characters of [A-Za-z0-9_-]');
  }
  if (
    changes !== undefined &&
    (typeof changes !== "object" || changes === null ||
      typeof changes.record !== "function" ||
      typeof changes.committed !== "function")
  ) {
    throw fail('"changes" must be a ChangeRecorder');
  }
  return Object.freeze({
    ...(userId === undefined ? {} : { userId }),
    ...(changes === undefined ? {} : { changes }),
  });
}

/** Progress of one file, reported after each conversation. */
export interface ImportProgress {
  /** The file. */
  readonly file: string;
  /** Conversations read so far. */
  readonly conversations: number;
  /** Messages read so far. */
  readonly messages: number;
}

/** Options of {@linkcode Importer.importFile}. */
export interface ImportFileOptions {
  /**
   * The format, detected when absent.
   *
   * @default {undefined}
   */
  readonly format?: ImportFormat;
  /**
   * ChatGPT: import every branch, each as its own conversation.
   *
   * @default {false}
   */
  readonly allBranches?: boolean;
  /**
   * Standard input, for the path `-`.
   *
   * @default {Deno.stdin.readable}
   */
  readonly stdin?: ReadableStream<Uint8Array>;
  /**
   * Stops the import; nothing of the file is stored.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
  /**
   * Opens a sealed aico-data export (see `ReadExportOptions.unseal`).
   *
   * @default {undefined}
   */
  readonly unseal?: Unseal;
  /**
   * Called after each conversation.
   *
   * @default {undefined}
   */
  readonly onProgress?: (progress: ImportProgress) => void;
}

/** What one file's import did. */
export interface ImportReport {
  /** The file (`(stdin)` for `-`). */
  readonly file: string;
  /** The format read. */
  readonly format: ImportFormat;
  /** Conversations in the file (ChatGPT with `allBranches`: branches too). */
  readonly conversationsRead: number;
  /** Messages in the file (after the format's skipping rules). */
  readonly messagesRead: number;
  /** Conversations created by this import. */
  readonly conversationsAdded: number;
  /** Messages added by this import. */
  readonly messagesAdded: number;
  /** Messages already stored by an earlier import, skipped. */
  readonly messagesSkipped: number;
}

/** Imports export files into a store that holds the core schema. */
export interface Importer extends AsyncDisposable {
  /**
   * Imports one file in one transaction: a malformed file, an abort or a
   * crash stores nothing of it, and a rerun imports it whole; messages and
   * conversations already imported (by source id) are skipped.
   *
   * @param path The file, or `-` for standard input.
   * @param options See {@linkcode ImportFileOptions}.
   * @returns What was read and added.
   * @throws {AicoDataError} `IMPORT_INVALID` naming file, conversation and
   *   field; `NOT_FOUND` for a missing file; `STORE_CLOSED` after close;
   *   the signal's reason when aborted.
   */
  importFile(path: string, options?: ImportFileOptions): Promise<ImportReport>;
  /** Whether {@linkcode Importer.close} ran. */
  readonly closed: boolean;
  /** Closes the importer (not the store); safe to call twice. */
  close(): Promise<void>;
}

const IN_CHUNK = 400;
const ROW_CHUNK = 300;
/** A batch is written once it holds this many messages... */
const BATCH_MESSAGES = 256;
/** ...or this many conversations. */
const BATCH_CONVERSATIONS = 64;

/** Which of `values` the column holds (table and column are constants). */
async function present(
  tx: Transaction,
  table: "import_sources" | "conversations",
  column: "source_key" | "id",
  values: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  const unique = [...new Set(values)];
  for (let i = 0; i < unique.length; i += IN_CHUNK) {
    const part = unique.slice(i, i + IN_CHUNK);
    const rs = await tx.execute({
      sql: `SELECT ${column} AS v FROM ${table} WHERE ${column} IN (${
        part.map(() => "?").join(", ")
      })`,
      args: part,
    });
    for (const r of rs.rows) found.add(String(r.v));
  }
  return found;
}

const existingKeys = (tx: Transaction, keys: readonly string[]) =>
  present(tx, "import_sources", "source_key", keys);
const takenIds = (tx: Transaction, ids: readonly string[]) =>
  present(tx, "conversations", "id", ids);

async function insertSources(
  tx: Transaction,
  rows: readonly (readonly [string, string, number | null])[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += ROW_CHUNK) {
    const part = rows.slice(i, i + ROW_CHUNK);
    const args: InValue[] = [];
    for (const r of part) args.push(r[0], r[1], r[2]);
    await tx.execute({
      sql:
        `INSERT INTO import_sources (source_key, conversation_id, message_id) VALUES ${
          part.map(() => "(?, ?, ?)").join(", ")
        }`,
      args,
    });
  }
}

class ImporterImpl implements Importer {
  #storage: RepositoryStorage;
  #o: ImporterOptions;
  #closed = false;

  constructor(storage: RepositoryStorage, options: ImporterOptions) {
    this.#storage = storage;
    this.#o = options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async importFile(
    path: string,
    options: ImportFileOptions = {},
  ): Promise<ImportReport> {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        "Cannot import: the importer is closed",
      );
    }
    const file = path === "-" ? "(stdin)" : path;
    let format: ImportFormat = options.format ?? "chatgpt";
    const counts = {
      conversationsRead: 0,
      messagesRead: 0,
      conversationsAdded: 0,
      messagesAdded: 0,
      messagesSkipped: 0,
    };
    const changes = this.#o.changes;
    let used: Transaction | undefined;
    await this.#storage.transaction(async (tx) => {
      used = tx;
      const repo = repositoryIn(tx, this.#storage, changes);
      const conversations = readExport(path, {
        ...(options.format === undefined ? {} : { format: options.format }),
        allBranches: options.allBranches === true,
        ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(options.unseal === undefined ? {} : { unseal: options.unseal }),
        onFormat: (f) => (format = f),
      });
      // Conversations are written in batches (a few multi-row statements
      // for many small conversations); the batch bounds what is held.
      let pending: ImportedConversation[] = [];
      let pendingMessages = 0;
      for await (const c of conversations) {
        counts.conversationsRead++;
        counts.messagesRead += c.messages.length;
        pending.push(c);
        pendingMessages += c.messages.length;
        if (
          pendingMessages >= BATCH_MESSAGES ||
          pending.length >= BATCH_CONVERSATIONS
        ) {
          await this.#writeBatch(tx, repo, pending, counts);
          pending = [];
          pendingMessages = 0;
        }
        options.signal?.throwIfAborted();
        options.onProgress?.({
          file,
          conversations: counts.conversationsRead,
          messages: counts.messagesRead,
        });
      }
      await this.#writeBatch(tx, repo, pending, counts);
    }, "write");
    if (changes !== undefined && used !== undefined) changes.committed(used);
    return { file, format, ...counts };
  }

  /**
   * Writes a batch of conversations: those new to the store (the common
   * case) in one `createConversations` call with their `import_sources`
   * rows; any other (already imported, named by its own id, or whose key or
   * id appeared earlier in the batch) one by one through `#write`, after
   * what came before it was written, in file order.
   */
  async #writeBatch(
    tx: Transaction,
    repo: ReturnType<typeof repositoryIn>,
    list: readonly ImportedConversation[],
    counts: {
      conversationsAdded: number;
      messagesAdded: number;
      messagesSkipped: number;
    },
  ): Promise<void> {
    if (list.length === 0) return;
    const known = await existingKeys(tx, list.map((c) => c.sourceKey));
    const taken = await takenIds(tx, list.map((c) => c.preferredId));
    const seenKeys = new Set<string>();
    const seenIds = new Set<string>();
    let group: { c: ImportedConversation; id: string }[] = [];
    const flush = async () => {
      if (group.length === 0) return;
      const items = group;
      group = [];
      await this.#create(tx, repo, items, counts);
    };
    for (const c of list) {
      const own = c.sourceKey.startsWith("jsonl:") ||
        c.sourceKey.startsWith("aico:");
      const fresh = !known.has(c.sourceKey) && !seenKeys.has(c.sourceKey) &&
        !seenIds.has(c.preferredId) && !(own && taken.has(c.preferredId));
      seenKeys.add(c.sourceKey);
      seenIds.add(c.preferredId);
      if (fresh) {
        group.push({
          c,
          id: taken.has(c.preferredId) ? crypto.randomUUID() : c.preferredId,
        });
      } else {
        await flush();
        await this.#write(tx, repo, c, counts);
      }
    }
    await flush();
  }

  /** Creates conversations new to the store, with their source rows. */
  async #create(
    tx: Transaction,
    repo: ReturnType<typeof repositoryIn>,
    group: readonly { c: ImportedConversation; id: string }[],
    counts: {
      conversationsAdded: number;
      messagesAdded: number;
      messagesSkipped: number;
    },
  ): Promise<void> {
    const todos = group.map(({ c }) => {
      // A key twice in one conversation (a malformed export) is stored once.
      const seen = new Set<string>();
      return c.messages.filter((m) =>
        !seen.has(m.sourceKey) && (seen.add(m.sourceKey), true)
      );
    });
    const results = await repo.createConversations(group.map(({ c, id }, k) => {
      // A message without a time takes the one before it (or the conversation's).
      let last = c.createdAt;
      return {
        conversation: newConversation(id, this.#o.userId, c),
        messages: todos[k]!.map((m) => {
          if (m.createdAt !== undefined) last = m.createdAt;
          return newMessage(m, last);
        }),
      };
    }));
    const rows: (readonly [string, string, number | null])[] = [];
    for (let k = 0; k < group.length; k++) {
      const { c, id } = group[k]!;
      const todo = todos[k]!;
      const firstId = results[k]!.firstId;
      rows.push([c.sourceKey, id, null]);
      for (let i = 0; i < todo.length; i++) {
        rows.push([todo[i]!.sourceKey, id, firstId + i]);
      }
      counts.conversationsAdded++;
      counts.messagesAdded += todo.length;
      counts.messagesSkipped += c.messages.length - todo.length;
    }
    await insertSources(tx, rows);
  }

  async #write(
    tx: Transaction,
    repo: ReturnType<typeof repositoryIn>,
    c: ImportedConversation,
    counts: {
      conversationsAdded: number;
      messagesAdded: number;
      messagesSkipped: number;
    },
  ): Promise<void> {
    const known = await tx.execute({
      sql: "SELECT conversation_id FROM import_sources WHERE source_key = ?",
      args: [c.sourceKey],
    });
    let id = known.rows[0]?.conversation_id as string | undefined;
    let fresh = false;
    if (id === undefined) {
      const taken = (await tx.execute({
        sql: "SELECT 1 AS x FROM conversations WHERE id = ?",
        args: [c.preferredId],
      })).rows.length > 0;
      // JSON Lines and aico-data exports name their conversation: lines go
      // into it even when the app made it (an aico-data export of this very
      // conversation holds its messages up to its last seq already).
      // Other exports get their own id, or a new one when it is taken.
      const own = c.sourceKey.startsWith("jsonl:") ||
        c.sourceKey.startsWith("aico:");
      if (taken && own) {
        id = c.preferredId;
        if (c.sourceKey.startsWith("aico:")) {
          const last = Number(
            (await tx.execute({
              sql: "SELECT last_seq FROM conversations WHERE id = ?",
              args: [id],
            })).rows[0]?.last_seq ?? 0,
          );
          const have = c.messages.filter((m) =>
            Number(m.sourceKey.slice(m.sourceKey.lastIndexOf(":") + 1)) <= last
          );
          await insertSources(
            tx,
            have.map((m) => [m.sourceKey, id!, null] as const),
          );
        }
      } else {
        id = taken ? crypto.randomUUID() : c.preferredId;
        await repo.createConversation(
          newConversation(id, this.#o.userId, c),
        );
        counts.conversationsAdded++;
        fresh = true;
      }
      await insertSources(tx, [[c.sourceKey, id, null]]);
    }
    if (c.messages.length === 0) return;
    const seen = fresh
      ? new Set<string>()
      : await existingKeys(tx, c.messages.map((m) => m.sourceKey));
    // A key twice in one conversation (a malformed export) is stored once.
    const todo = c.messages.filter((m) =>
      !seen.has(m.sourceKey) && (seen.add(m.sourceKey), true)
    );
    counts.messagesSkipped += c.messages.length - todo.length;
    if (todo.length === 0) return;
    // A message without a time takes the one before it (or the conversation's).
    let last = c.createdAt;
    const values = todo.map((m) => {
      if (m.createdAt !== undefined) last = m.createdAt;
      return newMessage(m, last);
    });
    const r = await repo.appendMessages(id, values);
    await insertSources(
      tx,
      todo.map((m, i) => [m.sourceKey, id!, r.firstId + i] as const),
    );
    counts.messagesAdded += todo.length;
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
 * Opens an importer over a store that holds the core schema; migrates the
 * importer's own schema ({@linkcode IMPORT_SOURCES_SCHEMA}) first.
 *
 * Memory vs transactions: each file is imported in ONE transaction (atomic:
 * a malformed file, Ctrl-C or a crash stores nothing of it, and the next run
 * imports it whole without duplicates). The parser holds one conversation at
 * a time, the writer a batch of new conversations (about 256 messages,
 * written with a few multi-row statements), and SQLite spills the
 * transaction's pages to its WAL, so memory stays bounded whatever the file
 * size; the cost is that an interrupted large file is imported again from
 * its start.
 *
 * Permissions: those of the store, and `--allow-read` on the files.
 *
 * @param storage The store (a `Storage` from `openStorage()`, or the data layer's).
 * @param options See {@linkcode ImporterOptions}.
 * @returns The importer.
 * @throws {AicoDataError} from the migration of `import_sources`.
 *
 * @example Importing a JSON Lines file twice adds its messages once
 * ```ts
 * import { openImporter } from "./importer.ts";
 * import { openTestStore } from "../repositories/_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * await using importer = await openImporter(store.storage);
 * const file = await Deno.makeTempFile({ suffix: ".jsonl" });
 * try {
 *   await Deno.writeTextFile(file, [
 *     '{"conversation":"c1","role":"user","content":"Hello","title":"Hi"}',
 *     '{"conversation":"c1","role":"assistant","content":"Hi!"}',
 *   ].join("\n"));
 *   assert.equal((await importer.importFile(file)).messagesAdded, 2);
 *   const again = await importer.importFile(file);
 *   assert.equal(again.messagesAdded, 0);
 *   assert.equal(again.messagesSkipped, 2);
 * } finally {
 *   await Deno.remove(file);
 * }
 * ```
 */
export async function openImporter(
  storage: RepositoryStorage & MigratableDatabase,
  options: ImporterOptions = {},
): Promise<Importer> {
  const migrator = await openMigrator(
    storage,
    createSchemaRegistry([IMPORT_SOURCES_SCHEMA]),
  );
  const resolved = resolveImporterOptions(options);
  try {
    await migrator.migrate();
  } finally {
    await migrator.close();
  }
  return new ImporterImpl(storage, resolved);
}
