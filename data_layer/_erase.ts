// Internal: the one erase path of the data layer (`erase()` and retention).
//
// 1. `PRAGMA secure_delete = ON` is checked in effect (freed cells and pages
//    are zeroed).
// 2. The rows are deleted through the repositories in their write
//    transactions, which record `messages` / `conversations` / `users`
//    delete events in the change feed (logs: recorded here).
// 3. Every active consumer is drained: the memory indexer has removed the
//    keyword rows and the vectors (embedded or any VectorStore), the
//    analytics refresher has dropped the DuckDB rows; the keyword index is
//    optimised, so that no segment keeps an erased row's tokens.
// 4. Change-feed rows about the erased rows are deleted: every event all
//    cursors are past, and any insert/update event naming an erased key.
// 5. The components' `erased` hooks run (the cache closes, its LMDB file
//    is zeroed and removed, and it reopens empty).
// 6. `all`: the keyring copies of the data key are deleted.
// 7. The erase is audited (kind and counts only), then the WAL is
//    checkpointed with TRUNCATE, so neither `data.db` nor `-wal` keeps an
//    old page.
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { type KeyringBackend, readKeyFileInfo } from "../crypto/mod.ts";
import type { ChangeFeed } from "../changes/mod.ts";
import type { LocalStorage } from "../storage/mod.ts";
import type {
  AuditLog,
  ConversationRepository,
  LogPersistence,
  UserService,
} from "../repositories/mod.ts";
import type { EraseKind, EraseReport, EraseScope } from "./erase.ts";
import { auditQuietly } from "./_audit.ts";

/** What the eraser works on. */
export interface EraseDeps {
  readonly storage: () => LocalStorage;
  readonly changes: () => ChangeFeed;
  readonly audit: () => AuditLog;
  readonly conversations: () => ConversationRepository;
  readonly users: () => UserService;
  readonly logPersistence: () => LogPersistence;
  /** Runs every component's `erased` hook; returns what they could not reach. */
  readonly erasedHooks: () => Promise<string[]>;
  readonly keyFile: string;
  readonly keyring: KeyringBackend | undefined;
}

/** What a removal step did. */
export interface Removed {
  messages: number;
  conversations: number;
  users: number;
  logs: number;
  settings: number;
  /** Message ids removed (for the change-feed cleanup). */
  readonly messageIds: string[];
  /** Conversation ids removed or changed. */
  readonly conversationIds: string[];
  /** User ids removed. */
  readonly userIds: string[];
}

export function emptyRemoved(): Removed {
  return {
    messages: 0,
    conversations: 0,
    users: 0,
    logs: 0,
    settings: 0,
    messageIds: [],
    conversationIds: [],
    userIds: [],
  };
}

const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
/**
 * Tables whose owners delete their own rows (repositories, the indexer) or
 * that must stay (the audit trail, the feed).
 */
const OWNED_TABLES: ReadonlySet<string> = new Set([
  "messages",
  "conversations",
  "users",
  "user_credentials",
  "message_gaps",
  "memory_items",
  "audit_events",
  "change_events",
  "change_cursors",
]);
const KEY_CHUNK = 500;
const LOG_CHUNK = 10_000;

function invalid(detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Cannot erase: ${detail}`);
}

/** Checks an {@linkcode EraseScope}; returns its kind. */
export function checkScope(scope: unknown): Exclude<EraseKind, "retention"> {
  if (typeof scope !== "object" || scope === null || Array.isArray(scope)) {
    throw invalid(
      "the scope must be { message }, { conversation }, { user } or { all: true }",
    );
  }
  const keys = Object.keys(scope);
  if (keys.length !== 1) {
    throw invalid(
      "the scope must name exactly one of message, conversation, user, all",
    );
  }
  const s = scope as Record<string, unknown>;
  if ("message" in s) {
    if (
      typeof s.message !== "number" || !Number.isSafeInteger(s.message) ||
      s.message < 1
    ) {
      throw invalid('"message" must be a positive integer id');
    }
    return "message";
  }
  if ("conversation" in s || "user" in s) {
    const kind = "conversation" in s ? "conversation" : "user";
    const id = s[kind];
    if (typeof id !== "string" || !ID_RE.test(id)) {
      throw invalid(
        `"${kind}" must be an id of 1 to 128 characters of [A-Za-z0-9_-]`,
      );
    }
    return kind;
  }
  if ("all" in s) {
    if (s.all !== true) throw invalid('"all" must be true');
    return "all";
  }
  throw invalid(`unknown scope "${keys[0]}"`);
}

async function count(
  db: LocalStorage,
  sql: string,
  args: (string | number)[] = [],
): Promise<number> {
  const rs = await db.execute({ sql, args });
  return Number(rs.rows[0]?.n ?? 0);
}

async function tableExists(db: LocalStorage, name: string): Promise<boolean> {
  return await count(
    db,
    "SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = ?",
    [name],
  ) > 0;
}

/** Serialises erases; runs the whole path. */
export class Eraser {
  readonly #d: EraseDeps;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(deps: EraseDeps) {
    this.#d = deps;
  }

  /** Resolves when no erase is running. */
  async idle(): Promise<void> {
    await this.#chain;
  }

  /** Erases a scope. */
  erase(
    scope: EraseScope,
    keyring: KeyringBackend | undefined,
  ): Promise<EraseReport> {
    let kind: Exclude<EraseKind, "retention">;
    try {
      kind = checkScope(scope);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.run(kind, (r) => this.#remove(kind, scope, r), keyring);
  }

  /** Runs one erase: `remove` deletes the rows, the rest is shared. */
  run(
    kind: EraseKind,
    remove: (r: Removed) => Promise<void>,
    keyring?: KeyringBackend,
  ): Promise<EraseReport> {
    const run = this.#chain.then(() => this.#run(kind, remove, keyring));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #run(
    kind: EraseKind,
    remove: (r: Removed) => Promise<void>,
    keyring: KeyringBackend | undefined,
  ): Promise<EraseReport> {
    const db = this.#d.storage();
    const unreached: string[] = [];
    // 1. Freed content is zeroed: in the b-tree and in the keyword index.
    await db.execute("PRAGMA secure_delete = ON");
    const secure = await count(
      db,
      "SELECT secure_delete AS n FROM pragma_secure_delete",
    );
    if (secure !== 1) {
      throw new AicoDataError(
        "SQL_ERROR",
        "Cannot erase: PRAGMA secure_delete is not in effect",
      );
    }
    // 2. The rows, through the repositories (delete events recorded).
    const removed = emptyRemoved();
    await remove(removed);
    // 3. Every consumer takes the deletes: index, vectors, analytics.
    const feed = this.#d.changes();
    await feed.drain();
    // The keyword index is contentless (`contentless_delete=1`): a delete
    // leaves a tombstone and the row's tokens stay in the index segments
    // until they are merged (FTS5's `secure-delete` cannot help: it needs
    // the deleted text). `optimize` merges every segment into one without
    // the deleted rows; the freed segment rows are zeroed (secure_delete).
    if (removed.messages > 0 && await tableExists(db, "memory_fts")) {
      await db.execute(
        "INSERT INTO memory_fts (memory_fts) VALUES ('optimize')",
      );
    }
    // Rows of other tables (plugins, the importer's sources) naming them.
    await this.#dependents(db, removed);
    // 4. Change-feed rows about the erased rows.
    const changeEvents = await this.#cleanFeed(db, kind, removed);
    // 5. Copies outside the store (the cache).
    unreached.push(...await this.#d.erasedHooks());
    // 6. The keyring copies of the key.
    let keyringCopies = 0;
    if (kind === "all") {
      const k = keyring ?? this.#d.keyring;
      if (k === undefined || k.kind === "none") {
        unreached.push(
          "no OS keyring was given: a copy of the data key kept there (aico-data remember) was not deleted",
        );
      } else {
        try {
          keyringCopies = await this.#forgetKeys(k);
        } catch (err) {
          const code = isAicoDataError(err) ? err.code : "ERROR";
          unreached.push(
            `the OS keyring did not answer (${code}): copies of the data key there were not deleted`,
          );
        }
      }
    }
    const report = {
      kind,
      messages: removed.messages,
      conversations: removed.conversations,
      users: removed.users,
      logs: removed.logs,
      settings: removed.settings,
      changeEvents,
      keyringCopies,
    };
    // 7. Audited (counts only), then no old page stays in the WAL.
    await auditQuietly(
      this.#d.audit(),
      kind === "retention" ? "retention" : "erase",
      {
        scope: kind,
        messages: report.messages,
        conversations: report.conversations,
        users: report.users,
        logs: report.logs,
        settings: report.settings,
        changeEvents,
        keyringCopies,
      },
    );
    const checkpointed = await checkpoint(db);
    if (!checkpointed) {
      unreached.push(
        "another connection reads the database: the WAL was not truncated (its old frames are overwritten at the next checkpoint)",
      );
    }
    return Object.freeze({
      ...report,
      checkpointed,
      unreached: Object.freeze(unreached),
    });
  }

  async #remove(
    kind: Exclude<EraseKind, "retention">,
    scope: EraseScope,
    r: Removed,
  ): Promise<void> {
    const db = this.#d.storage();
    const conversations = this.#d.conversations();
    if (kind === "message") {
      const id = (scope as { message: number }).message;
      const row = (await db.execute({
        sql: "SELECT conversation_id FROM messages WHERE id = ?",
        args: [id],
      })).rows[0];
      r.messages += await conversations.deleteMessages([id]);
      if (row !== undefined) {
        r.messageIds.push(String(id));
        r.conversationIds.push(String(row.conversation_id));
      }
      return;
    }
    if (kind === "conversation") {
      await this.#removeConversation(
        (scope as { conversation: string }).conversation,
        r,
      );
      return;
    }
    if (kind === "user") {
      await this.#removeUser((scope as { user: string }).user, r);
      return;
    }
    // all: every user, every other conversation, logs, settings.
    for (;;) {
      const rs = await db.execute("SELECT id FROM users ORDER BY id LIMIT 100");
      if (rs.rows.length === 0) break;
      for (const row of rs.rows) await this.#removeUser(String(row.id), r);
    }
    for (;;) {
      const rs = await db.execute(
        "SELECT id FROM conversations ORDER BY id LIMIT 100",
      );
      if (rs.rows.length === 0) break;
      for (const row of rs.rows) {
        await this.#removeConversation(String(row.id), r);
      }
    }
    await this.#d.logPersistence().flush().catch(() => {});
    r.logs += await this.removeLogs(undefined);
    r.settings += await db.transaction(async (tx) => {
      let n = 0;
      for (const t of ["plugin_state", "plugins", "config"]) {
        n += (await tx.execute(`DELETE FROM ${t}`)).rowsAffected;
      }
      return n;
    }, "write");
  }

  async #removeConversation(id: string, r: Removed): Promise<void> {
    const db = this.#d.storage();
    const ids = (await db.execute({
      sql: "SELECT id FROM messages WHERE conversation_id = ?",
      args: [id],
    })).rows.map((row) => String(row.id));
    if (await this.#d.conversations().deleteConversation(id)) {
      r.conversations++;
      r.messages += ids.length;
      r.messageIds.push(...ids);
      r.conversationIds.push(id);
    }
  }

  async #removeUser(id: string, r: Removed): Promise<void> {
    const db = this.#d.storage();
    const rows = (await db.execute({
      sql:
        "SELECT c.id AS c, m.id AS m FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id WHERE c.user_id = ?",
      args: [id],
    })).rows;
    if (await this.#d.users().deleteUser(id)) {
      const convs = new Set<string>();
      for (const row of rows) {
        convs.add(String(row.c));
        if (row.m !== null && row.m !== undefined) {
          r.messageIds.push(String(row.m));
          r.messages++;
        }
      }
      r.conversations += convs.size;
      r.conversationIds.push(...convs);
      r.users++;
      r.userIds.push(id);
    }
  }

  /**
   * Deletes log rows (all, or those before `before`), recording `logs`
   * delete events so that the analytics copy drops them too.
   */
  async removeLogs(before: number | undefined): Promise<number> {
    const db = this.#d.storage();
    const feed = this.#d.changes();
    let total = 0;
    for (;;) {
      let used: import("../storage/mod.ts").Transaction | undefined;
      const n = await db.transaction(async (tx) => {
        used = tx;
        const rs = await tx.execute({
          sql: before === undefined
            ? "SELECT id FROM logs ORDER BY id LIMIT ?"
            : "SELECT id FROM logs WHERE ts < ? ORDER BY id LIMIT ?",
          args: before === undefined ? [LOG_CHUNK] : [before, LOG_CHUNK],
        });
        const ids = rs.rows.map((row) => Number(row.id));
        if (ids.length === 0) return 0;
        await tx.execute({
          sql: "DELETE FROM logs WHERE id >= ? AND id <= ?" +
            (before === undefined ? "" : " AND ts < ?"),
          args: before === undefined
            ? [ids[0]!, ids[ids.length - 1]!]
            : [ids[0]!, ids[ids.length - 1]!, before],
        });
        await feed.record(tx, [{
          table: "logs",
          op: "delete",
          keys: ids.map(String),
        }]);
        return ids.length;
      }, "write");
      if (used !== undefined) feed.committed(used);
      total += n;
      if (n < LOG_CHUNK) return total;
    }
  }

  /**
   * Deletes the rows of any other table that name an erased conversation
   * (`conversation_id`), message (`message_id`) or user (`user_id`): plugin
   * state about them, the importer's `import_sources` (so that importing
   * the same export again brings an erased conversation back, and no source
   * id of it stays behind).
   */
  async #dependents(db: LocalStorage, r: Removed): Promise<void> {
    const tables = (await db.execute(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' " +
        "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
    )).rows.map((row) => String(row.name)).filter((t) =>
      !OWNED_TABLES.has(t) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(t)
    );
    const byColumn: [string, readonly string[]][] = [
      ["conversation_id", r.conversationIds],
      ["message_id", r.messageIds],
      ["user_id", r.userIds],
    ];
    for (const table of tables) {
      const columns = new Set(
        (await db.execute({
          sql: "SELECT name FROM pragma_table_info(?)",
          args: [table],
        })).rows.map((row) => String(row.name)),
      );
      for (const [column, keys] of byColumn) {
        if (!columns.has(column) || keys.length === 0) continue;
        for (let s = 0; s < keys.length; s += KEY_CHUNK) {
          await db.execute({
            sql:
              `DELETE FROM "${table}" WHERE CAST("${column}" AS TEXT) IN (SELECT value FROM json_each(?))`,
            args: [JSON.stringify(keys.slice(s, s + KEY_CHUNK))],
          });
        }
      }
    }
  }

  /** Deletes the change-feed rows about erased rows; returns how many. */
  async #cleanFeed(
    db: LocalStorage,
    kind: EraseKind,
    r: Removed,
  ): Promise<number> {
    return await db.transaction(async (tx) => {
      let n = 0;
      // Every event all cursors are past (no cursor: every event, all of
      // them published in this process by the drain).
      n += (await tx.execute(
        "DELETE FROM change_events WHERE seq <= COALESCE((SELECT MIN(seq) FROM change_cursors), (SELECT MAX(seq) FROM change_events))",
      )).rowsAffected;
      if (kind === "all") {
        // A lagging (inactive) consumer still needs the deletes, nothing else.
        n += (await tx.execute(
          "DELETE FROM change_events WHERE op != 'delete'",
        )).rowsAffected;
        return n;
      }
      const named = async (table: string, keys: readonly string[]) => {
        for (let s = 0; s < keys.length; s += KEY_CHUNK) {
          n += (await tx.execute({
            sql:
              "DELETE FROM change_events WHERE tbl = ? AND op != 'delete' AND EXISTS " +
              "(SELECT 1 FROM json_each(change_events.keys) j WHERE j.value IN (SELECT value FROM json_each(?)))",
            args: [table, JSON.stringify(keys.slice(s, s + KEY_CHUNK))],
          })).rowsAffected;
        }
      };
      await named("messages", r.messageIds);
      if (kind !== "message" && kind !== "retention") {
        await named("conversations", r.conversationIds);
      }
      await named("users", r.userIds);
      return n;
    }, "write");
  }

  /** Deletes every keyring copy of this folder's data keys. */
  async #forgetKeys(keyring: KeyringBackend): Promise<number> {
    const info = await readKeyFileInfo(this.#d.keyFile);
    const ids = new Set<string>([info.keyId]);
    if (info.pendingKeyId !== undefined) ids.add(info.pendingKeyId);
    // Keys rotated away may still be in the keyring under their own id.
    let after = 0;
    for (;;) {
      const events = await this.#d.audit().list({
        after,
        limit: 10_000,
        kind: "key_rotation",
      });
      for (const e of events) {
        for (const v of [e.details.keyId, e.details.previousKeyId]) {
          if (typeof v === "string" && v.length > 0) ids.add(v);
        }
      }
      if (events.length < 10_000) break;
      after = events[events.length - 1]!.seq;
    }
    let n = 0;
    for (const id of ids) {
      if (await keyring.delete(`aico-data/${id}`)) n++;
    }
    return n;
  }
}

/** `PRAGMA wal_checkpoint(TRUNCATE)`, retried while readers block it. */
async function checkpoint(db: LocalStorage): Promise<boolean> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const rs = await db.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    const row = rs.rows[0];
    if (row === undefined || Number(row.busy ?? 0) === 0) {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
