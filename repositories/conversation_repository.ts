/**
 * `ConversationRepository`: conversations and their messages, message
 * content and titles sealed.
 *
 * @module
 */
import { AicoDataError, isAicoDataError } from "../errors.ts";
import type { InValue, ResultSet, Row } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import { bytes, jsonObject, num, optBytes, optStr, str } from "./_rows.ts";
import { checkMessageRun } from "./_integrity.ts";
import { type ColumnSealer, declaredSealer } from "./_sealing.ts";
import {
  checkDense,
  checkId,
  checkLimit,
  checkObject,
  checkString,
  checkText,
  checkTimestamp,
  decodeCursor,
  decodeText,
  encodeCursor,
  invalid,
  type JsonObject,
  toJsonObject,
} from "./_validate.ts";
import { writeTx } from "./_changes.ts";
import {
  type RepositoryOptions,
  type ResolvedRepositoryOptions,
  resolveRepositoryOptions,
} from "./repository_options.ts";
import type { ChangeInput } from "../changes/types.ts";

/** Largest message content accepted, in UTF-8 bytes (1 MiB). */
export const MAX_MESSAGE_BYTES = 1_048_576;
/** Longest conversation title accepted, in UTF-16 code units. */
export const MAX_TITLE_LENGTH = 1024;
/** Largest conversation metadata accepted, as JSON, in UTF-8 bytes (64 KiB). */
export const MAX_CONVERSATION_METADATA_BYTES = 65_536;
/** Most messages one `appendMessages` call accepts. */
export const MAX_APPEND_BATCH = 1_000_000;
/** Most ids one `deleteMessages` call accepts. */
export const MAX_DELETE_BATCH = 100_000;
/** Most items one list page returns. */
export const MAX_PAGE = 1000;

/** Who wrote a message. */
export type MessageRole = "system" | "user" | "assistant" | "tool";

/** A conversation. */
export interface Conversation {
  /** The id. */
  readonly id: string;
  /** The owning user, if any. */
  readonly userId: string | undefined;
  /** The title (stored sealed), if any. */
  readonly title: string | undefined;
  /** Free metadata (stored as plain JSON: no secrets). */
  readonly metadata: JsonObject;
  /** Messages in the conversation. */
  readonly messageCount: number;
  /** The highest message `seq` (0 when empty). */
  readonly lastSeq: number;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** Last change (message appended, title changed), ms since the epoch. */
  readonly updatedAt: number;
}

/** Input of {@linkcode ConversationRepository.createConversation}. */
export interface NewConversation {
  /** The id (1 to 128 characters of `[A-Za-z0-9_-]`); a random UUID when absent. */
  readonly id?: string;
  /** The owning user (must exist). */
  readonly userId?: string;
  /** The title, at most 1024 characters. */
  readonly title?: string;
  /** Free metadata, a JSON object of at most 64 KiB. */
  readonly metadata?: JsonObject;
  /**
   * Creation time, ms since the epoch (importers keep the original time).
   *
   * @default {undefined} (now)
   */
  readonly createdAt?: number;
  /**
   * Last change, ms since the epoch; not before `createdAt`.
   *
   * @default {undefined} (`createdAt`)
   */
  readonly updatedAt?: number;
}

/** A message to append. */
export interface NewMessage {
  /** Who wrote it. */
  readonly role: MessageRole;
  /** The text, at most 1 MiB as UTF-8. */
  readonly content: string;
  /** When it was written, ms since the epoch; default now. */
  readonly createdAt?: number;
  /** The model that wrote it (a slug, 1 to 200 characters), if any. */
  readonly model?: string;
}

/** A stored message. */
export interface Message {
  /** The row id. */
  readonly id: number;
  /** The conversation. */
  readonly conversationId: string;
  /** Position in the conversation: 1, 2, 3, ... */
  readonly seq: number;
  /** Who wrote it. */
  readonly role: MessageRole;
  /** The text. */
  readonly content: string;
  /** When it was written, ms since the epoch. */
  readonly createdAt: number;
  /** The model that wrote it, if recorded. */
  readonly model: string | undefined;
}

/** What {@linkcode ConversationRepository.appendMessages} returns. */
export interface AppendResult {
  /** `seq` of the first appended message. */
  readonly firstSeq: number;
  /** `seq` of the last appended message. */
  readonly lastSeq: number;
  /** Row id of the first appended message (ids are consecutive). */
  readonly firstId: number;
  /** Row id of the last appended message. */
  readonly lastId: number;
  /** How many were appended. */
  readonly count: number;
}

/** Paging of list calls. */
export interface PageQuery {
  /** Page size, 1 to 1000; default 100. */
  readonly limit?: number;
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string;
}

/** Paging and order of {@linkcode ConversationRepository.listMessages}. */
export interface MessageQuery extends PageQuery {
  /** `asc` (oldest first, default) or `desc`. */
  readonly order?: "asc" | "desc";
}

/** Filter and paging of {@linkcode ConversationRepository.listConversations}. */
export interface ConversationQuery extends PageQuery {
  /** Only this user's conversations. */
  readonly userId?: string;
}

/** One page of items. */
export interface Page<T> {
  /** The items. */
  readonly items: T[];
  /** Pass it as `cursor` for the next page; `undefined` on the last page. */
  readonly nextCursor: string | undefined;
}

/**
 * Options of {@linkcode createConversationRepository}. Writes record
 * `conversations` changes (key: the id, scope: the user id when set) and
 * `messages` changes (keys: message ids as decimal strings, scope: the
 * conversation id): an append records a `messages` insert and a
 * `conversations` update; deleting a conversation records a `messages`
 * delete of every message it removes, then the `conversations` delete.
 */
export type ConversationRepositoryOptions = RepositoryOptions;

/** The resolved form of {@linkcode ConversationRepositoryOptions}. */
export type ResolvedConversationRepositoryOptions = ResolvedRepositoryOptions;

/**
 * Conversations and messages.
 *
 * @remarks
 * Message content and titles are sealed with the store's sealed-column
 * helper, bound to the message id and the conversation id: a value copied
 * to another row fails to open (`AUTH_FAILED`). Appends take one write
 * transaction; ids and `seq` are assigned inside it, so concurrent appends
 * never collide. Needs a store opened with a key.
 */
export interface ConversationRepository {
  /**
   * Creates a conversation.
   *
   * @param conversation The id, user, title and metadata.
   * @returns The conversation.
   * @throws {AicoDataError} `INVALID_INPUT`, `ALREADY_EXISTS`, `NOT_FOUND` for an unknown user.
   */
  createConversation(conversation?: NewConversation): Promise<Conversation>;
  /**
   * Reads a conversation.
   *
   * @param id The id.
   * @returns The conversation.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`, `AUTH_FAILED`.
   */
  getConversation(id: string): Promise<Conversation>;
  /**
   * Changes a conversation's title and/or metadata.
   *
   * @param id The id.
   * @param changes The new title (`null` removes it) and/or metadata.
   * @returns The updated conversation.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`.
   */
  updateConversation(
    id: string,
    changes: { readonly title?: string | null; readonly metadata?: JsonObject },
  ): Promise<Conversation>;
  /**
   * Lists conversations, most recently updated first.
   *
   * @param query User filter and paging.
   * @returns One page.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  listConversations(query?: ConversationQuery): Promise<Page<Conversation>>;
  /**
   * Deletes a conversation with all its messages.
   *
   * @param id The id.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  deleteConversation(id: string): Promise<boolean>;
  /**
   * Deletes single messages (one write transaction). Each conversation
   * keeps its `seq` numbering: the erased positions are recorded in
   * `message_gaps` (positions only), so `listMessages` still checks that
   * no row is missing, and `messageCount` goes down; `lastSeq` stays, so a
   * later append never reuses an erased position. Records a `messages`
   * delete per conversation and a `conversations` update.
   *
   * @param ids The message ids (at most 100,000; unknown ids are skipped).
   * @returns How many messages were deleted.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  deleteMessages(ids: readonly number[]): Promise<number>;
  /**
   * Appends one message.
   *
   * @param conversationId The conversation.
   * @param message The message.
   * @returns The stored message.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`.
   */
  appendMessage(conversationId: string, message: NewMessage): Promise<Message>;
  /**
   * Appends messages in one transaction (all or nothing), sealing them in
   * batches pipelined with the inserts.
   *
   * @param conversationId The conversation.
   * @param messages The messages, in order.
   * @returns The `seq` range appended.
   * @throws {AicoDataError} `INVALID_INPUT` (nothing stored), `NOT_FOUND`.
   */
  appendMessages(
    conversationId: string,
    messages: readonly NewMessage[],
  ): Promise<AppendResult>;
  /**
   * Lists a conversation's messages by `seq`.
   *
   * @param conversationId The conversation.
   * @param query Order and paging.
   * @returns One page.
   * @throws {AicoDataError} `INVALID_INPUT`, `AUTH_FAILED` for a tampered message.
   */
  listMessages(
    conversationId: string,
    query?: MessageQuery,
  ): Promise<Page<Message>>;
  /**
   * Reads one message by its row id.
   *
   * @param id The message id.
   * @returns The message.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`, `AUTH_FAILED`.
   */
  getMessage(id: number): Promise<Message>;
  /**
   * The newest `n` messages of a conversation, oldest first (the context a
   * companion sends to its model).
   *
   * @param conversationId The conversation.
   * @param n How many, 1 to 1000.
   * @returns The messages, by `seq`.
   * @throws {AicoDataError} `INVALID_INPUT`, `AUTH_FAILED`.
   */
  recentMessages(conversationId: string, n: number): Promise<Message[]>;
}

/**
 * Normalises {@linkcode ConversationRepositoryOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveConversationRepositoryOptions } from "./conversation_repository.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveConversationRepositoryOptions().changes, undefined);
 * ```
 */
export function resolveConversationRepositoryOptions(
  options: ConversationRepositoryOptions = {},
): ResolvedConversationRepositoryOptions {
  return resolveRepositoryOptions(options, "create conversation repository");
}

const ROLES: ReadonlySet<string> = new Set([
  "system",
  "user",
  "assistant",
  "tool",
]);
const CONV_COLUMNS =
  "id, user_id, title, metadata, last_seq, message_count, created_at, updated_at";
const INSERT_HEAD =
  "INSERT INTO messages (id, conversation_id, seq, role, content, created_at, model) VALUES ";
const MESSAGE_COLUMNS =
  "id, conversation_id, seq, role, content, created_at, model";
/** Longest model slug accepted, in UTF-16 code units. */
const MAX_MODEL_LENGTH = 200;
/** Rows per multi-row INSERT statement. */
const CHUNK = 128;
/** Messages sealed per stage (bounds the memory of one append). */
const SEAL_STAGE = 1024;

function multiInsert(rows: number): string {
  return INSERT_HEAD +
    Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?, ?)").join(", ");
}

interface CheckedMessage {
  readonly role: MessageRole;
  readonly content: string;
  readonly createdAt: number;
  readonly model: string | null;
}

class ConversationRepositoryImpl implements ConversationRepository {
  #db: RepositoryStorage;
  #o: ResolvedConversationRepositoryOptions;
  #titles: ColumnSealer;
  #contents: ColumnSealer;
  #chunkSql = multiInsert(CHUNK);

  constructor(
    db: RepositoryStorage,
    options: ResolvedConversationRepositoryOptions,
  ) {
    this.#db = db;
    this.#o = options;
    this.#titles = declaredSealer(db, "conversations", "title");
    this.#contents = declaredSealer(db, "messages", "content");
  }

  async #toConversation(row: Row): Promise<Conversation> {
    const id = str(row.id);
    const sealed = optBytes(row.title);
    return {
      id,
      userId: optStr(row.user_id),
      title: sealed === undefined
        ? undefined
        : decodeText(await this.#titles.open(id, sealed), "read conversation"),
      metadata: jsonObject(
        row.metadata,
        `conversation "${id}" metadata`,
      ) as JsonObject,
      messageCount: num(row.message_count),
      lastSeq: num(row.last_seq),
      createdAt: num(row.created_at),
      updatedAt: num(row.updated_at),
    };
  }

  async createConversation(
    conversation: NewConversation = {},
  ): Promise<Conversation> {
    const what = "create conversation";
    const c = checkObject(conversation, "conversation", what);
    const id = c.id === undefined
      ? crypto.randomUUID()
      : checkId(c.id, "id", what);
    const userId = c.userId === undefined
      ? null
      : checkId(c.userId, "userId", what);
    const title = c.title === undefined
      ? undefined
      : checkString(c.title, "title", what, MAX_TITLE_LENGTH, 0);
    const metadata = c.metadata === undefined ? "{}" : toJsonObject(
      c.metadata,
      "metadata",
      what,
      MAX_CONVERSATION_METADATA_BYTES,
    );
    const createdAt = c.createdAt === undefined
      ? this.#o.now()
      : checkTimestamp(c.createdAt, "createdAt", what);
    const updatedAt = c.updatedAt === undefined
      ? createdAt
      : checkTimestamp(c.updatedAt, "updatedAt", what);
    if (updatedAt < createdAt) {
      throw invalid(what, '"updatedAt" must not be before "createdAt"');
    }
    const sealedTitle = title === undefined
      ? null
      : await this.#titles.seal(id, title);
    const changes = this.#o.changes;
    await writeTx(this.#db, this.#o, async (tx) => {
      if (userId !== null) {
        const u = await tx.execute({
          sql: "SELECT 1 AS x FROM users WHERE id = ?",
          args: [userId],
        });
        if (u.rows.length === 0) {
          throw new AicoDataError(
            "NOT_FOUND",
            `Cannot create conversation: user "${userId}" not found`,
          );
        }
      }
      const rs = await tx.execute({
        sql:
          "INSERT INTO conversations (id, user_id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (id) DO NOTHING",
        args: [id, userId, sealedTitle, metadata, createdAt, updatedAt],
      });
      if (rs.rowsAffected === 0) {
        throw new AicoDataError(
          "ALREADY_EXISTS",
          `Cannot create conversation "${id}": it exists already`,
        );
      }
      await changes?.record(tx, [{
        table: "conversations",
        op: "insert",
        keys: [id],
        ...(userId === null ? {} : { scope: userId }),
      }]);
    });
    return {
      id,
      userId: userId ?? undefined,
      title,
      metadata: JSON.parse(metadata) as JsonObject,
      messageCount: 0,
      lastSeq: 0,
      createdAt,
      updatedAt,
    };
  }

  async getConversation(id: string): Promise<Conversation> {
    checkId(id, "id", "get conversation");
    const rs = await this.#db.execute({
      sql: `SELECT ${CONV_COLUMNS} FROM conversations WHERE id = ?`,
      args: [id],
    });
    const row = rs.rows[0];
    if (row === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot get conversation "${id}": not found`,
      );
    }
    return await this.#toConversation(row);
  }

  async updateConversation(
    id: string,
    changes: { readonly title?: string | null; readonly metadata?: JsonObject },
  ): Promise<Conversation> {
    const what = "update conversation";
    checkId(id, "id", what);
    const c = checkObject(changes, "changes", what);
    const sets: string[] = [];
    const args: InValue[] = [];
    if (c.title !== undefined) {
      sets.push("title = ?");
      args.push(
        c.title === null ? null : await this.#titles.seal(
          id,
          checkString(c.title, "title", what, MAX_TITLE_LENGTH, 0),
        ),
      );
    }
    if (c.metadata !== undefined) {
      sets.push("metadata = ?");
      args.push(
        toJsonObject(
          c.metadata,
          "metadata",
          what,
          MAX_CONVERSATION_METADATA_BYTES,
        ),
      );
    }
    sets.push("updated_at = ?");
    args.push(this.#o.now(), id);
    const recorder = this.#o.changes;
    const row = await writeTx(this.#db, this.#o, async (tx) => {
      const upd = await tx.execute({
        sql: `UPDATE conversations SET ${sets.join(", ")} WHERE id = ?`,
        args,
      });
      // A separate SELECT (not RETURNING): queries read TEXT through the
      // store's UTF-8 guard.
      const rs = upd.rowsAffected === 0 ? undefined : await tx.execute({
        sql: `SELECT ${CONV_COLUMNS} FROM conversations WHERE id = ?`,
        args: [id],
      });
      const row = rs?.rows[0];
      if (row === undefined) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot update conversation "${id}": not found`,
        );
      }
      const userId = optStr(row.user_id);
      await recorder?.record(tx, [{
        table: "conversations",
        op: "update",
        keys: [id],
        ...(userId === undefined ? {} : { scope: userId }),
      }]);
      return row;
    });
    return await this.#toConversation(row);
  }

  async listConversations(
    query: ConversationQuery = {},
  ): Promise<Page<Conversation>> {
    const what = "list conversations";
    const q = checkObject(query, "query", what);
    const where: string[] = [];
    const args: InValue[] = [];
    if (q.userId !== undefined) {
      where.push("user_id = ?");
      args.push(checkId(q.userId, "userId", what));
    }
    if (q.cursor !== undefined) {
      const [updatedAt, id] = decodeCursor(
        q.cursor,
        ["number", "string"],
        what,
      );
      where.push("(updated_at, id) < (?, ?)");
      args.push(updatedAt!, id!);
    }
    const limit = checkLimit(q.limit, what, MAX_PAGE, 100);
    args.push(limit + 1);
    const rs = await this.#db.execute({
      sql:
        `SELECT ${CONV_COLUMNS} FROM conversations${
          where.length ? ` WHERE ${where.join(" AND ")}` : ""
        } ` +
        "ORDER BY updated_at DESC, id DESC LIMIT ?",
      args,
    });
    const items: Conversation[] = [];
    for (const row of rs.rows.slice(0, limit)) {
      items.push(await this.#toConversation(row));
    }
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rs.rows.length > limit && last
        ? encodeCursor([last.updatedAt, last.id])
        : undefined,
    };
  }

  async deleteConversation(id: string): Promise<boolean> {
    checkId(id, "id", "delete conversation");
    const changes = this.#o.changes;
    const n = await writeTx(this.#db, this.#o, async (tx) => {
      // The removed messages are announced too (selected in this
      // transaction): a message index must forget them.
      const recorded: ChangeInput[] = [];
      if (changes !== undefined) {
        const owner = (await tx.execute({
          sql: "SELECT user_id FROM conversations WHERE id = ?",
          args: [id],
        })).rows[0];
        const ids = (await tx.execute({
          sql: "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id",
          args: [id],
        })).rows.map((r) => String(r.id));
        if (ids.length > 0) {
          recorded.push({
            table: "messages",
            op: "delete",
            keys: ids,
            scope: id,
          });
        }
        if (owner !== undefined) {
          const userId = optStr(owner.user_id);
          recorded.push({
            table: "conversations",
            op: "delete",
            keys: [id],
            ...(userId === undefined ? {} : { scope: userId }),
          });
        }
      }
      await tx.execute({
        sql: "DELETE FROM messages WHERE conversation_id = ?",
        args: [id],
      });
      await tx.execute({
        sql: "DELETE FROM message_gaps WHERE conversation_id = ?",
        args: [id],
      });
      const rs = await tx.execute({
        sql: "DELETE FROM conversations WHERE id = ?",
        args: [id],
      });
      if (rs.rowsAffected > 0 && recorded.length > 0) {
        await changes?.record(tx, recorded);
      }
      return rs.rowsAffected;
    });
    return n > 0;
  }

  async deleteMessages(ids: readonly number[]): Promise<number> {
    const what = "delete messages";
    if (!Array.isArray(ids)) throw invalid(what, "expected an array of ids");
    if (ids.length > MAX_DELETE_BATCH) {
      throw invalid(what, `at most ${MAX_DELETE_BATCH} ids per call`);
    }
    checkDense(ids, what);
    for (const id of ids) {
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
        throw invalid(what, "ids must be positive integers");
      }
    }
    const unique = [...new Set(ids)];
    if (unique.length === 0) return 0;
    const changes = this.#o.changes;
    return await writeTx(this.#db, this.#o, async (tx) => {
      const found = new Map<
        string,
        { userId: string | undefined; keys: string[]; seqs: number[] }
      >();
      for (let s = 0; s < unique.length; s += CHUNK) {
        const part = unique.slice(s, s + CHUNK);
        const rs = await tx.execute({
          sql:
            `SELECT m.id AS id, m.conversation_id AS conversation_id, m.seq AS seq, c.user_id AS user_id FROM messages m ` +
            `JOIN conversations c ON c.id = m.conversation_id WHERE m.id IN (${
              part.map(() => "?").join(", ")
            })`,
          args: part,
        });
        for (const r of rs.rows) {
          const c = str(r.conversation_id);
          let entry = found.get(c);
          if (entry === undefined) {
            found.set(
              c,
              entry = { userId: optStr(r.user_id), keys: [], seqs: [] },
            );
          }
          entry.keys.push(String(num(r.id)));
          entry.seqs.push(num(r.seq));
        }
        await tx.execute({
          sql: `DELETE FROM messages WHERE id IN (${
            part.map(() => "?").join(", ")
          })`,
          args: part,
        });
      }
      let total = 0;
      const recorded: ChangeInput[] = [];
      for (const [c, entry] of found) {
        total += entry.keys.length;
        for (let s = 0; s < entry.seqs.length; s += CHUNK) {
          const part = entry.seqs.slice(s, s + CHUNK);
          await tx.execute({
            sql:
              "INSERT OR IGNORE INTO message_gaps (conversation_id, seq) VALUES " +
              part.map(() => "(?, ?)").join(", "),
            args: part.flatMap((q) => [c, q]),
          });
        }
        await tx.execute({
          sql:
            "UPDATE conversations SET message_count = MAX(0, message_count - ?) WHERE id = ?",
          args: [entry.keys.length, c],
        });
        recorded.push({
          table: "messages",
          op: "delete",
          keys: entry.keys,
          scope: c,
        }, {
          table: "conversations",
          op: "update",
          keys: [c],
          ...(entry.userId === undefined ? {} : { scope: entry.userId }),
        });
      }
      if (recorded.length > 0) await changes?.record(tx, recorded);
      return total;
    });
  }

  #checkMessage(m: unknown, what: string, now: number): CheckedMessage {
    if (typeof m !== "object" || m === null) {
      throw invalid(what, "a message must be an object");
    }
    const r = m as Record<string, unknown>;
    if (typeof r.role !== "string" || !ROLES.has(r.role)) {
      throw invalid(
        what,
        '"role" must be one of system, user, assistant, tool',
      );
    }
    const content = checkText(r.content, "content", what, MAX_MESSAGE_BYTES, 0);
    const createdAt = r.createdAt === undefined
      ? now
      : checkTimestamp(r.createdAt, "createdAt", what);
    const model = r.model === undefined
      ? null
      : checkString(r.model, "model", what, MAX_MODEL_LENGTH);
    return { role: r.role as MessageRole, content, createdAt, model };
  }

  async appendMessage(
    conversationId: string,
    message: NewMessage,
  ): Promise<Message> {
    const r = await this.appendMessages(conversationId, [message]);
    const rs = await this.#db.execute({
      sql:
        "SELECT id, created_at FROM messages WHERE conversation_id = ? AND seq = ?",
      args: [conversationId, r.firstSeq],
    });
    const row = rs.rows[0];
    return {
      id: num(row?.id),
      conversationId,
      seq: r.firstSeq,
      role: message.role,
      content: message.content,
      createdAt: num(row?.created_at),
      model: message.model,
    };
  }

  async appendMessages(
    conversationId: string,
    messages: readonly NewMessage[],
  ): Promise<AppendResult> {
    const what = "append messages";
    checkId(conversationId, "conversationId", what);
    if (!Array.isArray(messages)) {
      throw invalid(what, "expected an array of messages");
    }
    if (messages.length > MAX_APPEND_BATCH) {
      throw invalid(what, `at most ${MAX_APPEND_BATCH} messages per call`);
    }
    checkDense(messages, what);
    const now = this.#o.now();
    const checked = messages.map((m, i) =>
      this.#checkMessage(m, `${what} (message ${i})`, now)
    );
    const n = checked.length;
    if (n === 0) throw invalid(what, "no messages");
    const changes = this.#o.changes;
    const result = await writeTx(this.#db, this.#o, async (tx) => {
      const rs = await tx.execute({
        sql: "SELECT last_seq, user_id FROM conversations WHERE id = ?",
        args: [conversationId],
      });
      const row = rs.rows[0];
      if (row === undefined) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot append messages: conversation "${conversationId}" not found`,
        );
      }
      const base = num(row.last_seq);
      // Ids are assigned here (inside the write transaction) so that each
      // value is sealed for its own row id before the insert; past the
      // AUTOINCREMENT high-water mark, so a deleted id is never reused.
      const idBase = num(
        (await tx.execute(
          "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), " +
            "COALESCE((SELECT MAX(id) FROM messages), 0)) AS m",
        )).rows[0]?.m,
      );
      // Seal and insert stage by stage: memory stays bounded by SEAL_STAGE.
      for (let start = 0; start < n; start += SEAL_STAGE) {
        const end = Math.min(n, start + SEAL_STAGE);
        const items = new Array<{ rowKey: number; value: string }>(
          end - start,
        );
        for (let i = start; i < end; i++) {
          items[i - start] = {
            rowKey: idBase + i + 1,
            value: checked[i]!.content,
          };
        }
        const sealed = await this.#contents.sealBatch(items);
        for (let c = start; c < end; c += CHUNK) {
          const stop = Math.min(end, c + CHUNK);
          const args: InValue[] = new Array((stop - c) * 7);
          let k = 0;
          for (let i = c; i < stop; i++) {
            const m = checked[i]!;
            args[k++] = idBase + i + 1;
            args[k++] = conversationId;
            args[k++] = base + i + 1;
            args[k++] = m.role;
            args[k++] = sealed[i - start]!;
            args[k++] = m.createdAt;
            args[k++] = m.model;
          }
          await tx.execute({
            sql: stop - c === CHUNK ? this.#chunkSql : multiInsert(stop - c),
            args,
          });
        }
      }
      let latest = now;
      for (const m of checked) if (m.createdAt > latest) latest = m.createdAt;
      await tx.execute({
        sql:
          "UPDATE conversations SET last_seq = ?, message_count = message_count + ?, updated_at = ? WHERE id = ?",
        args: [base + n, n, latest, conversationId],
      });
      if (changes !== undefined) {
        const keys = new Array<string>(n);
        for (let i = 0; i < n; i++) {
          keys[i] = String(idBase + i + 1);
        }
        const userId = optStr(row.user_id);
        await changes.record(tx, [
          { table: "messages", op: "insert", keys, scope: conversationId },
          {
            table: "conversations",
            op: "update",
            keys: [conversationId],
            ...(userId === undefined ? {} : { scope: userId }),
          },
        ]);
      }
      return {
        firstSeq: base + 1,
        lastSeq: base + n,
        firstId: idBase + 1,
        lastId: idBase + n,
        count: n,
      };
    });
    return result;
  }

  async listMessages(
    conversationId: string,
    query: MessageQuery = {},
  ): Promise<Page<Message>> {
    const what = "list messages";
    checkId(conversationId, "conversationId", what);
    const q = checkObject(query, "query", what);
    const order = q.order ?? "asc";
    if (order !== "asc" && order !== "desc") {
      throw invalid(what, '"order" must be "asc" or "desc"');
    }
    const args: InValue[] = [conversationId];
    let after = "";
    let cursorSeq: number | undefined;
    if (q.cursor !== undefined) {
      const [seq] = decodeCursor(q.cursor, ["number"], what);
      cursorSeq = seq as number;
      after = order === "asc" ? " AND seq > ?" : " AND seq < ?";
      args.push(seq!);
    }
    const limit = checkLimit(q.limit, what, MAX_PAGE, 100);
    args.push(limit + 1);
    const dir = order === "asc" ? "ASC" : "DESC";
    // The page and the conversation's last seq check that no damaged page
    // hid a message. Fast path: two plain reads; only when they disagree
    // (a damaged page, or an append in between) are both read again in one
    // read transaction, whose verdict stands.
    const statements = [{
      sql:
        `SELECT id, seq, role, content, created_at, model FROM messages WHERE conversation_id = ?${after} ` +
        `ORDER BY seq ${dir} LIMIT ?`,
      args,
    }, {
      sql: "SELECT last_seq FROM conversations WHERE id = ?",
      args: [conversationId],
    }];
    const check = (page: ResultSet, conv: ResultSet, gaps?: ResultSet) => {
      const lastSeqRow = conv.rows[0];
      checkMessageRun(
        conversationId,
        page.rows.map((r) => num(r.seq)),
        order,
        cursorSeq,
        lastSeqRow === undefined ? undefined : num(lastSeqRow.last_seq),
        page.rows.length <= limit,
        gaps === undefined
          ? undefined
          : new Set(gaps.rows.map((r) => num(r.seq))),
      );
    };
    let rs = await this.#db.execute(statements[0]!);
    try {
      check(rs, await this.#db.execute(statements[1]!));
    } catch (err) {
      if (!isAicoDataError(err, "CORRUPT_STORE")) throw err;
      // The erased seqs between the cursor and the last row read (or the
      // end): an erased message leaves a recorded gap, damage does not.
      const bound = q.cursor === undefined
        ? (order === "asc" ? 0 : Number.MAX_SAFE_INTEGER)
        : cursorSeq!;
      const gapSql = order === "asc"
        ? "SELECT seq FROM message_gaps WHERE conversation_id = ?1 AND seq > ?2 AND seq < COALESCE(" +
          "(SELECT seq FROM messages WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT 1 OFFSET ?3), " +
          "(SELECT last_seq + 1 FROM conversations WHERE id = ?1), 0)"
        : "SELECT seq FROM message_gaps WHERE conversation_id = ?1 AND seq < ?2 AND seq > COALESCE(" +
          "(SELECT seq FROM messages WHERE conversation_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3), 0)";
      const [page, conv, gaps] = await this.#db.batch([
        ...statements,
        { sql: gapSql, args: [conversationId, bound, limit] },
      ], "read");
      check(page!, conv!, gaps!);
      rs = page!;
    }
    const rows = rs.rows.slice(0, limit);
    const plain = await this.#contents.openBatch(
      rows.map((r) => ({
        rowKey: num(r.id),
        sealed: bytes(r.content),
      })),
    );
    const items = rows.map((r, i): Message => ({
      id: num(r.id),
      conversationId,
      seq: num(r.seq),
      role: str(r.role) as MessageRole,
      content: decodeText(plain[i]!, what),
      createdAt: num(r.created_at),
      model: optStr(r.model),
    }));
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rs.rows.length > limit && last
        ? encodeCursor([last.seq])
        : undefined,
    };
  }

  async getMessage(id: number): Promise<Message> {
    const what = "get message";
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
      throw invalid(what, '"id" must be a positive integer');
    }
    const rs = await this.#db.execute({
      sql: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`,
      args: [id],
    });
    const r = rs.rows[0];
    if (r === undefined) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot get message "${id}": not found`,
      );
    }
    const plain = await this.#contents.open(id, bytes(r.content));
    return {
      id,
      conversationId: str(r.conversation_id),
      seq: num(r.seq),
      role: str(r.role) as MessageRole,
      content: decodeText(plain, what),
      createdAt: num(r.created_at),
      model: optStr(r.model),
    };
  }

  async recentMessages(conversationId: string, n: number): Promise<Message[]> {
    const what = "read recent messages";
    const limit = checkLimit(n, what, MAX_PAGE, 1);
    const page = await this.listMessages(conversationId, {
      order: "desc",
      limit,
    });
    return page.items.reverse();
  }
}

/**
 * Creates a {@linkcode ConversationRepository} over a store holding the core schema.
 *
 * Permissions: those of the store.
 *
 * @param storage The store.
 * @param options See {@linkcode ConversationRepositoryOptions}.
 * @returns The repository.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options.
 *
 * @example A conversation with messages
 * ```ts
 * import { createConversationRepository } from "./conversation_repository.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const conversations = createConversationRepository(store.storage);
 * const c = await conversations.createConversation({ title: "Plans" });
 * await conversations.appendMessages(c.id, [
 *   { role: "user", content: "Hello" },
 *   { role: "assistant", content: "Hi! How can I help?" },
 * ]);
 * const page = await conversations.listMessages(c.id);
 * assert.deepEqual(page.items.map((m) => m.content), ["Hello", "Hi! How can I help?"]);
 * assert.equal((await conversations.getConversation(c.id)).messageCount, 2);
 * ```
 */
export function createConversationRepository(
  storage: RepositoryStorage,
  options: ConversationRepositoryOptions = {},
): ConversationRepository {
  return new ConversationRepositoryImpl(
    storage,
    resolveConversationRepositoryOptions(options),
  );
}
