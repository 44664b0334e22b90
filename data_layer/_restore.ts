// Internal: reads an aico-data export (format version 2, plaintext or
// sealed) back into a data layer, in one transaction: users, configuration,
// plugins and their state, conversations and messages, with their times.
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { type DataKey, unlockKeys } from "../crypto/mod.ts";
import type { ChangeRecorder } from "../changes/mod.ts";
import {
  createConfigRepository,
  createConversationRepository,
  createPluginStateRepository,
  createUserService,
  type JsonObject,
  type JsonValue,
  type MessageRole,
  type NewMessage,
  type RepositoryStorage,
  type Transaction,
} from "../repositories/mod.ts";
import { EXPORT_FORMAT, EXPORT_VERSION } from "./export.ts";
import type {
  ExportDocument,
  ExportedConfig,
  ExportedConversation,
  ExportedMessage,
  ExportedPlugin,
  ExportedUser,
  ImportExportOptions,
  ImportExportReport,
} from "./export.ts";
import {
  isSealedV2,
  openSealedBody,
  readSealedHeader,
  type SealedHeader,
} from "./_export_stream.ts";
import { PRIVATE_FILE_MODE } from "../_internal/fs.ts";

/** What the restore writes into. */
export interface RestoreTarget {
  /** The folder (an embedded key file is unlocked from a private file there). */
  readonly dir: string;
  readonly key: DataKey;
  readonly storage: RepositoryStorage;
  readonly changes: ChangeRecorder;
}

const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
const ROLES = new Set(["system", "user", "assistant", "tool"]);

function invalid(file: string, where: string, detail: string): AicoDataError {
  return new AicoDataError(
    "IMPORT_INVALID",
    `Cannot import "${file}": ${where} ${detail}`,
  );
}

async function keyFor(
  target: RestoreTarget,
  header: SealedHeader,
  options: ImportExportOptions,
): Promise<DataKey> {
  if (header.keyId === target.key.keyId) return target.key;
  const pick = async (path: string): Promise<DataKey> => {
    if (options.passphrase === undefined) {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot import: the export is sealed with the data key ${header.keyId}, not this folder's; a passphrase is needed`,
      );
    }
    const keys = await unlockKeys(path, options.passphrase);
    for (const k of [keys.current, keys.pending]) {
      if (k?.keyId === header.keyId) return k;
    }
    throw new AicoDataError(
      "WRONG_KEY",
      `Cannot import: the export is sealed with the data key ${header.keyId}, which this key file does not hold`,
    );
  };
  if (options.keyFile !== undefined) return await pick(options.keyFile);
  if (header.keyFile === undefined) {
    throw new AicoDataError(
      "WRONG_KEY",
      `Cannot import: the export is sealed with the data key ${header.keyId}, not this folder's, and carries no key file (pass the key file it was made with)`,
    );
  }
  // crypto/ unlocks key files by path: a private copy in the folder (it
  // holds only the wrapped key), removed at once.
  const path = await Deno.makeTempFile({
    dir: target.dir,
    prefix: ".export-key-",
    suffix: ".json",
  });
  try {
    await Deno.chmod(path, PRIVATE_FILE_MODE).catch(() => {});
    await Deno.writeTextFile(path, JSON.stringify(header.keyFile));
    return await pick(path);
  } catch (err) {
    if (isAicoDataError(err, "KEY_FILE_CORRUPT")) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        "Cannot import: the key file embedded in the export is damaged",
        { cause: err },
      );
    }
    throw err;
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

/** Reads the file, opens it if sealed, parses and checks the document. */
export async function readExportDocument(
  target: RestoreTarget,
  file: string,
  options: ImportExportOptions,
): Promise<{ doc: ExportDocument; sealed: boolean }> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      await Deno.readFile(file),
    );
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot import "${file}": no such file`,
        {
          cause,
        },
      );
    }
    if (cause instanceof TypeError) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": not UTF-8 text`,
        { cause },
      );
    }
    throw cause;
  }
  let sealed = false;
  if (isSealedV2(text.slice(0, 200))) {
    sealed = true;
    const { header, body } = readSealedHeader(text, file);
    if (header.contentType !== "application/json") {
      throw invalid(
        file,
        "the export",
        "is Markdown: it is for reading and cannot be imported",
      );
    }
    const key = await keyFor(target, header, options);
    const plain = await openSealedBody(
      header,
      body,
      await key.sealer("export"),
      file,
    );
    text = new TextDecoder("utf-8", { fatal: true }).decode(plain);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new AicoDataError(
      "IMPORT_INVALID",
      `Cannot import "${file}": not valid JSON (truncated?)`,
      { cause },
    );
  }
  return { doc: checkDocument(raw, file), sealed };
}

function obj(v: unknown, file: string, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalid(file, where, "must be an object");
  }
  return v as Record<string, unknown>;
}
function arr(v: unknown, file: string, where: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(file, where, "must be an array");
  return v;
}
function time(v: unknown, file: string, where: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(file, where, "must be a time in ms");
  }
  return v;
}
function id(v: unknown, file: string, where: string): string {
  if (typeof v !== "string" || !ID_RE.test(v)) {
    throw invalid(file, where, "must be 1 to 128 characters of [A-Za-z0-9_-]");
  }
  return v;
}
function text(v: unknown, file: string, where: string): string {
  if (typeof v !== "string") throw invalid(file, where, "must be a string");
  return v;
}
function nullable<T>(
  v: unknown,
  check: (v: unknown) => T,
): T | null {
  return v === null || v === undefined ? null : check(v);
}

function checkDocument(raw: unknown, file: string): ExportDocument {
  const d = obj(raw, file, "the document");
  if (d.format !== EXPORT_FORMAT || d.version !== EXPORT_VERSION) {
    throw invalid(
      file,
      'field "format"',
      `must be "${EXPORT_FORMAT}" version ${EXPORT_VERSION}`,
    );
  }
  const users = arr(d.users, file, '"users"').map((u, i): ExportedUser => {
    const w = `users[${i}]`;
    const o = obj(u, file, w);
    return {
      id: id(o.id, file, `${w}.id`),
      profile: obj(o.profile, file, `${w}.profile`) as JsonObject,
      createdAt: time(o.createdAt, file, `${w}.createdAt`),
      updatedAt: time(o.updatedAt, file, `${w}.updatedAt`),
    };
  });
  const config = arr(d.config, file, '"config"').map((c, i): ExportedConfig => {
    const w = `config[${i}]`;
    const o = obj(c, file, w);
    if (!("value" in o)) throw invalid(file, `${w}.value`, "is missing");
    return {
      namespace: text(o.namespace, file, `${w}.namespace`),
      key: text(o.key, file, `${w}.key`),
      value: o.value as JsonValue,
      secret: o.secret === true,
      updatedAt: time(o.updatedAt, file, `${w}.updatedAt`),
    };
  });
  const plugins = arr(d.plugins, file, '"plugins"').map(
    (p, i): ExportedPlugin => {
      const w = `plugins[${i}]`;
      const o = obj(p, file, w);
      return {
        name: text(o.name, file, `${w}.name`),
        version: text(o.version, file, `${w}.version`),
        enabled: o.enabled !== false,
        metadata: obj(o.metadata, file, `${w}.metadata`) as JsonObject,
        installedAt: time(o.installedAt, file, `${w}.installedAt`),
        updatedAt: time(o.updatedAt, file, `${w}.updatedAt`),
        state: arr(o.state, file, `${w}.state`).map((s, j) => {
          const ws = `${w}.state[${j}]`;
          const so = obj(s, file, ws);
          if (!("value" in so)) {
            throw invalid(file, `${ws}.value`, "is missing");
          }
          return {
            key: text(so.key, file, `${ws}.key`),
            value: so.value as JsonValue,
            updatedAt: time(so.updatedAt, file, `${ws}.updatedAt`),
          };
        }),
      };
    },
  );
  const conversations = arr(d.conversations, file, '"conversations"').map(
    (c, i): ExportedConversation => {
      const o = obj(c, file, `conversations[${i}]`);
      const cid = id(o.id, file, `conversations[${i}].id`);
      const w = `conversation "${cid}"`;
      return {
        id: cid,
        userId: nullable(o.userId, (v) => id(v, file, `${w} userId`)),
        title: nullable(o.title, (v) => text(v, file, `${w} title`)),
        metadata: obj(o.metadata ?? {}, file, `${w} metadata`) as JsonObject,
        createdAt: time(o.createdAt, file, `${w} createdAt`),
        updatedAt: time(o.updatedAt, file, `${w} updatedAt`),
        sourceKeys: arr(o.sourceKeys ?? [], file, `${w} sourceKeys`).map((
          k,
          j,
        ) => text(k, file, `${w} sourceKeys[${j}]`)),
        messages: arr(o.messages, file, `${w} messages`).map(
          (m, j): ExportedMessage => {
            const wm = `${w} messages[${j}]`;
            const mo = obj(m, file, wm);
            if (typeof mo.role !== "string" || !ROLES.has(mo.role)) {
              throw invalid(
                file,
                `${wm}.role`,
                "must be system, user, assistant or tool",
              );
            }
            return {
              seq: time(mo.seq, file, `${wm}.seq`),
              role: mo.role as MessageRole,
              content: text(mo.content, file, `${wm}.content`),
              createdAt: time(mo.createdAt, file, `${wm}.createdAt`),
              model: nullable(mo.model, (v) => text(v, file, `${wm}.model`)),
              sourceKey: nullable(
                mo.sourceKey,
                (v) => text(v, file, `${wm}.sourceKey`),
              ),
            };
          },
        ),
      };
    },
  );
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: typeof d.exportedAt === "number" ? d.exportedAt : 0,
    scope: (d.scope ?? "all") as ExportDocument["scope"],
    users,
    config,
    plugins,
    conversations,
  };
}

/** Writes a checked document into the store, in one transaction. */
export async function restoreDocument(
  target: RestoreTarget,
  doc: ExportDocument,
  file: string,
  sealed: boolean,
  options: ImportExportOptions,
): Promise<ImportExportReport> {
  const counts = {
    usersAdded: 0,
    configAdded: 0,
    pluginsAdded: 0,
    pluginStateAdded: 0,
    conversationsAdded: 0,
    messagesAdded: 0,
    skipped: 0,
  };
  options.signal?.throwIfAborted();
  const changes = target.changes;
  const deferred: ChangeRecorder = Object.freeze({
    record: (t: Transaction, c: Parameters<ChangeRecorder["record"]>[1]) =>
      changes.record(t, c),
    committed: () => {},
  });
  let clock = 0;
  const now = () => clock;
  let used: Transaction | undefined;
  // What is being written, for an error the store refuses (a value the
  // repositories do not accept): it names the record, and nothing is stored.
  let where = "";
  try {
    await target.storage.transaction(async (tx) => {
      used = tx;
      const bound: RepositoryStorage = {
        execute: (stmt, args) => tx.execute(stmt, args),
        batch: (stmts) => tx.batch(stmts),
        transaction: async (fn) => await fn(tx),
        sealedColumn: (table, column, o) =>
          target.storage.sealedColumn(table, column, o),
      };
      const ro = { changes: deferred, now };
      const users = createUserService(bound, ro);
      const config = createConfigRepository(bound, ro);
      const plugins = createPluginStateRepository(bound, ro);
      const conversations = createConversationRepository(bound, ro);
      const exists = async (sql: string, args: (string | number)[]) =>
        (await tx.execute({ sql, args })).rows.length > 0;
      const known = new Set<string>();
      for (const u of doc.users) {
        if (await exists("SELECT 1 AS x FROM users WHERE id = ?", [u.id])) {
          counts.skipped++;
          known.add(u.id);
          continue;
        }
        where = `user "${u.id}"`;
        clock = u.createdAt;
        await users.createUser({ id: u.id, profile: u.profile });
        if (u.updatedAt !== u.createdAt) {
          clock = u.updatedAt;
          await users.updateProfile(u.id, u.profile);
        }
        known.add(u.id);
        counts.usersAdded++;
      }
      for (const c of doc.config) {
        where = `config "${c.namespace}/${c.key}"`;
        if ((await config.getEntry(c.namespace, c.key)) !== undefined) {
          counts.skipped++;
          continue;
        }
        clock = c.updatedAt;
        await config.set(c.namespace, c.key, c.value, { secret: c.secret });
        counts.configAdded++;
      }
      for (const p of doc.plugins) {
        where = `plugin "${p.name}"`;
        const fresh = (await plugins.getPlugin(p.name)) === undefined;
        if (fresh) {
          clock = p.installedAt;
          await plugins.registerPlugin({
            name: p.name,
            version: p.version,
            enabled: p.enabled,
            metadata: p.metadata,
          });
          counts.pluginsAdded++;
        } else counts.skipped++;
        for (const s of p.state) {
          where = `plugin "${p.name}" state "${s.key}"`;
          if ((await plugins.getState(p.name, s.key)) !== undefined) {
            counts.skipped++;
            continue;
          }
          clock = s.updatedAt;
          await plugins.setState(p.name, s.key, s.value);
          counts.pluginStateAdded++;
        }
        if (fresh && p.updatedAt !== p.installedAt) {
          clock = p.updatedAt;
          await plugins.setEnabled(p.name, p.enabled);
        }
      }
      const sources = await exists(
        "SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = 'import_sources'",
        [],
      );
      const userOk = async (u: string | null): Promise<string | undefined> => {
        if (u === null) return options.userId;
        if (known.has(u)) return u;
        if (await exists("SELECT 1 AS x FROM users WHERE id = ?", [u])) {
          known.add(u);
          return u;
        }
        return options.userId;
      };
      for (const c of doc.conversations) {
        options.signal?.throwIfAborted();
        where = `conversation "${c.id}"`;
        const row = (await tx.execute({
          sql: "SELECT last_seq FROM conversations WHERE id = ?",
          args: [c.id],
        })).rows[0];
        let last = 0;
        if (row === undefined) {
          const userId = await userOk(c.userId);
          clock = c.createdAt;
          await conversations.createConversation({
            id: c.id,
            ...(userId === undefined ? {} : { userId }),
            ...(c.title === null ? {} : { title: c.title }),
            metadata: c.metadata,
            createdAt: c.createdAt,
            updatedAt: c.createdAt,
          });
          counts.conversationsAdded++;
        } else {
          last = Number(row.last_seq);
          counts.skipped++;
        }
        const todo = c.messages.filter((m) => m.seq > last);
        counts.skipped += c.messages.length - todo.length;
        if (todo.length > 0) {
          clock = c.updatedAt;
          const values = todo.map((m): NewMessage => ({
            role: m.role,
            content: m.content,
            createdAt: m.createdAt,
            ...(m.model === null ? {} : { model: m.model }),
          }));
          const r = await conversations.appendMessages(c.id, values);
          counts.messagesAdded += todo.length;
          if (sources) {
            for (let i = 0; i < todo.length; i++) {
              const key = todo[i]!.sourceKey;
              if (key === null) continue;
              await tx.execute({
                sql:
                  "INSERT INTO import_sources (source_key, conversation_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                args: [key, c.id, r.firstId + i],
              });
            }
          }
        }
        if (row === undefined) {
          // Appending moved updated_at to the newest message: put it back.
          await tx.execute({
            sql: "UPDATE conversations SET updated_at = ? WHERE id = ?",
            args: [c.updatedAt, c.id],
          });
          if (sources) {
            for (const key of c.sourceKeys) {
              await tx.execute({
                sql:
                  "INSERT INTO import_sources (source_key, conversation_id, message_id) VALUES (?, ?, NULL) ON CONFLICT DO NOTHING",
                args: [key, c.id],
              });
            }
          }
        }
      }
      options.signal?.throwIfAborted();
    }, "write");
  } catch (err) {
    if (
      isAicoDataError(err, "INVALID_INPUT") ||
      isAicoDataError(err, "ALREADY_EXISTS") ||
      isAicoDataError(err, "NOT_FOUND")
    ) {
      throw new AicoDataError(
        "IMPORT_INVALID",
        `Cannot import "${file}": ${where} is refused: ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
  if (used !== undefined) changes.committed(used);
  return { file, sealed, ...counts };
}
