/**
 * The export a user takes away: `DataLayer.exportData()` writes the
 * conversations, messages, users' profiles, configuration and plugin state
 * as the documented `aico-data-export` JSON format (version 2, see
 * `docs/EXPORT_FORMAT.md`) or as Markdown, sealed by default with the
 * `export` purpose key, streamed to a file or stream.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { DataKey } from "../crypto/mod.ts";
import type {
  Conversation,
  JsonObject,
  JsonValue,
  Message,
  MessageRole,
  RepositoryStorage,
} from "../repositories/mod.ts";
import type { CoreRepositories } from "./data_layer.ts";
import {
  CHUNK_BYTES,
  ExportSink,
  isSealedV2,
  SEALED_FORMAT,
  SEALED_VERSION,
} from "./_export_stream.ts";

/** The `format` field of a plaintext JSON export. */
export const EXPORT_FORMAT = "aico-data-export";
/** The version of the JSON format written by {@linkcode writeExport}. */
export const EXPORT_VERSION = 2;

/** What to export: everything, one user (profile and conversations), or one conversation. */
export type ExportScope =
  | "all"
  | { readonly user: string }
  | { readonly conversation: string };

/** Options of `DataLayer.exportData()`. */
export interface ExportOptions {
  /**
   * What to export.
   *
   * @default {"all"}
   */
  readonly scope?: ExportScope;
  /**
   * `json` (the documented format, which `aico-data import` reads back) or
   * `markdown` (for reading; not importable).
   *
   * @default {"json"}
   */
  readonly format?: "json" | "markdown";
  /**
   * Write the export unencrypted. Only with this option is plaintext
   * written; anyone who can read the file then reads the conversations.
   *
   * @default {false}
   */
  readonly plaintext?: boolean;
  /**
   * A sealed export carries the folder's key file (the data key wrapped
   * under the passphrase, as in `key.json`), so that it opens on another
   * device with the passphrase alone. `false` leaves it out: only the key
   * file (or this folder) opens the export.
   *
   * @default {true}
   */
  readonly embedKeyFile?: boolean;
  /**
   * Stops the export; a file target is removed.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** What `DataLayer.exportData()` wrote (counts only, never content). */
export interface ExportReport {
  /** The scope's kind. */
  readonly scope: "all" | "user" | "conversation";
  /** The format. */
  readonly format: "json" | "markdown";
  /** Whether the file is sealed. */
  readonly sealed: boolean;
  /** The fingerprint of the data key it is sealed with (sealed only). */
  readonly keyId: string | undefined;
  /** Users exported. */
  readonly users: number;
  /** Conversations exported. */
  readonly conversations: number;
  /** Messages exported. */
  readonly messages: number;
  /** Configuration entries exported. */
  readonly config: number;
  /** Plugins exported. */
  readonly plugins: number;
  /** Plugin state values exported. */
  readonly pluginState: number;
  /** Bytes written. */
  readonly bytes: number;
}

/** One exported user (no PIN or password hash is ever exported). */
export interface ExportedUser {
  /** The user's id. */
  readonly id: string;
  /** The profile, opened (it is sealed in the store). */
  readonly profile: JsonObject;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** Last profile change, ms since the epoch. */
  readonly updatedAt: number;
}

/** One exported configuration entry (a secret one is exported opened). */
export interface ExportedConfig {
  /** The namespace. */
  readonly namespace: string;
  /** The key. */
  readonly key: string;
  /** The JSON value. */
  readonly value: JsonValue;
  /** Whether the store keeps it sealed (restored sealed again). */
  readonly secret: boolean;
  /** Last write, ms since the epoch. */
  readonly updatedAt: number;
}

/** One plugin state value. */
export interface ExportedPluginState {
  /** The key. */
  readonly key: string;
  /** The JSON value. */
  readonly value: JsonValue;
  /** Last write, ms since the epoch. */
  readonly updatedAt: number;
}

/** One exported plugin with its state. */
export interface ExportedPlugin {
  /** The plugin's name. */
  readonly name: string;
  /** Its version. */
  readonly version: string;
  /** Whether it is enabled. */
  readonly enabled: boolean;
  /** Its metadata. */
  readonly metadata: JsonObject;
  /** First installation, ms since the epoch. */
  readonly installedAt: number;
  /** Last change, ms since the epoch. */
  readonly updatedAt: number;
  /** Its state values, by key. */
  readonly state: readonly ExportedPluginState[];
}

/** One exported message. */
export interface ExportedMessage {
  /** Its position in the conversation: 1, 2, 3, ... */
  readonly seq: number;
  /** Who wrote it. */
  readonly role: MessageRole;
  /** The text, exactly as stored (may be empty). */
  readonly content: string;
  /** When it was written, ms since the epoch. */
  readonly createdAt: number;
  /** The model that wrote it, when known. */
  readonly model: string | null;
  /** The id of the message in the file it was imported from, if any. */
  readonly sourceKey: string | null;
}

/** One exported conversation. */
export interface ExportedConversation {
  /** Its id. */
  readonly id: string;
  /** The user it belongs to, if any. */
  readonly userId: string | null;
  /** Its title (may be empty), or `null` for none. */
  readonly title: string | null;
  /** Its metadata. */
  readonly metadata: JsonObject;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** Last change, ms since the epoch. */
  readonly updatedAt: number;
  /** Source ids of the imports it came from, if any. */
  readonly sourceKeys: readonly string[];
  /** Its messages, by `seq`. */
  readonly messages: readonly ExportedMessage[];
}

/** The whole JSON document (version 2). */
export interface ExportDocument {
  /** Always `"aico-data-export"`. */
  readonly format: typeof EXPORT_FORMAT;
  /** Always `2`. */
  readonly version: typeof EXPORT_VERSION;
  /** When it was written, ms since the epoch. */
  readonly exportedAt: number;
  /** What was exported. */
  readonly scope: ExportScope;
  /** Users (scope `all`: every user; `user`: that one; `conversation`: none). */
  readonly users: readonly ExportedUser[];
  /** Configuration (scope `all` only). */
  readonly config: readonly ExportedConfig[];
  /** Plugins and their state (scope `all` only). */
  readonly plugins: readonly ExportedPlugin[];
  /** Conversations, by id. */
  readonly conversations: readonly ExportedConversation[];
}

/** Options of `DataLayer.importExport()`. */
export interface ImportExportOptions {
  /**
   * The passphrase that opens the key file embedded in a sealed export made
   * in another folder (or the one of `keyFile`).
   *
   * @default {undefined}
   */
  readonly passphrase?: string;
  /**
   * The key file (`key.json`) a sealed export of another folder was made
   * with; opened with `passphrase`.
   *
   * @default {undefined} (this folder's key, else the embedded key file)
   */
  readonly keyFile?: string;
  /**
   * The user a conversation is given when the user it belonged to is
   * neither in the store nor in the export.
   *
   * @default {undefined} (no user)
   */
  readonly userId?: string;
  /**
   * Stops the import before it writes; nothing is stored.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** What `DataLayer.importExport()` stored (counts only). */
export interface ImportExportReport {
  /** The file. */
  readonly file: string;
  /** Whether it was sealed. */
  readonly sealed: boolean;
  /** Users created. */
  readonly usersAdded: number;
  /** Configuration entries written. */
  readonly configAdded: number;
  /** Plugins registered. */
  readonly pluginsAdded: number;
  /** Plugin state values written. */
  readonly pluginStateAdded: number;
  /** Conversations created. */
  readonly conversationsAdded: number;
  /** Messages appended. */
  readonly messagesAdded: number;
  /** Rows already in the store (same id or key, or a message seq stored already), left as they are. */
  readonly skipped: number;
}

/**
 * Whether the first bytes of a file are an export of format version 2
 * (plaintext JSON or sealed), which `DataLayer.importExport()` reads.
 *
 * @param head The first bytes of the file, as text (200 are enough).
 * @returns `true` for a version 2 export.
 *
 * @example Telling the versions apart
 * ```ts
 * import { isExportV2 } from "./export.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isExportV2('{"format":"aico-data-export","version":2,"users":[]'), true);
 * assert.equal(isExportV2('{"format":"aico-data-export-sealed","version":2,"keyId":"'), true);
 * assert.equal(isExportV2('{"format":"aico-data-export","version":1,'), false);
 * ```
 */
export function isExportV2(head: string): boolean {
  return isSealedV2(head) ||
    /^\s*\{\s*"format"\s*:\s*"aico-data-export"\s*,\s*"version"\s*:\s*2\b/
      .test(head);
}

/** What the writer reads from (the data layer's parts). */
export interface ExportSource {
  readonly dir: string;
  readonly key: DataKey;
  readonly storage: RepositoryStorage;
  readonly repositories: CoreRepositories;
}

/** The checked form of {@linkcode ExportOptions}. */
export interface ResolvedExportOptions {
  /** See {@linkcode ExportOptions.scope}. */
  readonly scope: ExportScope;
  /** The scope's kind. */
  readonly kind: "all" | "user" | "conversation";
  /** See {@linkcode ExportOptions.format}. */
  readonly format: "json" | "markdown";
  /** See {@linkcode ExportOptions.plaintext}. */
  readonly plaintext: boolean;
  /** See {@linkcode ExportOptions.embedKeyFile}. */
  readonly embedKeyFile: boolean;
  /** See {@linkcode ExportOptions.signal}. */
  readonly signal: AbortSignal | undefined;
}

const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Normalises {@linkcode ExportOptions}.
 *
 * @param options The options.
 * @returns The checked options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults, and a bad scope
 * ```ts
 * import { resolveExportOptions } from "./export.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveExportOptions().plaintext, false);
 * assert.equal(resolveExportOptions({ scope: { user: "u1" } }).kind, "user");
 * assert.throws(() => resolveExportOptions({ scope: { user: "" } }), { code: "INVALID_INPUT" });
 * ```
 */
export function resolveExportOptions(
  options: ExportOptions = {},
): Readonly<ResolvedExportOptions> {
  const fail = (detail: string) =>
    new AicoDataError("INVALID_INPUT", `Cannot export: ${detail}`);
  if (typeof options !== "object" || options === null) {
    throw fail("options must be an object");
  }
  const scope = options.scope ?? "all";
  let kind: ResolvedExportOptions["kind"];
  if (scope === "all") kind = "all";
  else if (typeof scope === "object" && scope !== null && "user" in scope) {
    if (typeof scope.user !== "string" || !ID_RE.test(scope.user)) {
      throw fail('"scope.user" must be 1 to 128 characters of [A-Za-z0-9_-]');
    }
    kind = "user";
  } else if (
    typeof scope === "object" && scope !== null && "conversation" in scope
  ) {
    if (
      typeof scope.conversation !== "string" || !ID_RE.test(scope.conversation)
    ) {
      throw fail(
        '"scope.conversation" must be 1 to 128 characters of [A-Za-z0-9_-]',
      );
    }
    kind = "conversation";
  } else {
    throw fail('"scope" must be "all", { user } or { conversation }');
  }
  const format = options.format ?? "json";
  if (format !== "json" && format !== "markdown") {
    throw fail(
      `"format" must be "json" or "markdown", got "${String(format)}"`,
    );
  }
  for (const flag of ["plaintext", "embedKeyFile"] as const) {
    const v = options[flag];
    if (v !== undefined && typeof v !== "boolean") {
      throw fail(`"${flag}" must be a boolean`);
    }
  }
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw fail('"signal" must be an AbortSignal');
  }
  return Object.freeze({
    scope,
    kind,
    format,
    plaintext: options.plaintext === true,
    embedKeyFile: options.embedKeyFile !== false,
    signal: options.signal,
  });
}

/** `2024-01-31 14:05` in UTC. */
function shortDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

async function tableExists(
  db: RepositoryStorage,
  name: string,
): Promise<boolean> {
  const rs = await db.execute({
    sql: "SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = ?",
    args: [name],
  });
  return rs.rows.length > 0;
}

/** Conversation ids of the scope, in pages (keyset on id). */
async function* conversationIds(
  db: RepositoryStorage,
  o: ResolvedExportOptions,
): AsyncGenerator<string> {
  if (o.kind === "conversation") {
    yield (o.scope as { conversation: string }).conversation;
    return;
  }
  const user = o.kind === "user" ? (o.scope as { user: string }).user : null;
  let after = "";
  for (;;) {
    const rs = await db.execute({
      sql: `SELECT id FROM conversations WHERE id > ?${
        user === null ? "" : " AND user_id = ?"
      } ORDER BY id LIMIT 500`,
      args: user === null ? [after] : [after, user],
    });
    for (const r of rs.rows) yield String(r.id);
    if (rs.rows.length < 500) return;
    after = String(rs.rows[rs.rows.length - 1]!.id);
  }
}

async function* pagesOf(
  repos: CoreRepositories,
  id: string,
): AsyncGenerator<Message[]> {
  let cursor: string | undefined;
  do {
    const page = await repos.conversations.listMessages(id, {
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    yield page.items;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

/** Source keys of the imported rows of a conversation (`import_sources`). */
async function sourcesOf(
  db: RepositoryStorage,
  has: boolean,
  id: string,
): Promise<{ conversation: string[]; messages: Map<number, string> }> {
  const out = { conversation: [] as string[], messages: new Map() };
  if (!has) return out;
  const rs = await db.execute({
    sql:
      "SELECT source_key, message_id FROM import_sources WHERE conversation_id = ? ORDER BY source_key",
    args: [id],
  });
  for (const r of rs.rows) {
    if (r.message_id === null) out.conversation.push(String(r.source_key));
    else out.messages.set(Number(r.message_id), String(r.source_key));
  }
  return out;
}

function conversationHead(c: Conversation, sourceKeys: string[]): string {
  const head = JSON.stringify({
    id: c.id,
    userId: c.userId ?? null,
    title: c.title ?? null,
    metadata: c.metadata,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    sourceKeys,
  });
  return head.slice(0, -1) + ',"messages":[';
}

async function usersOf(
  src: ExportSource,
  o: ResolvedExportOptions,
): Promise<ExportedUser[]> {
  if (o.kind === "conversation") return [];
  const ids = o.kind === "user"
    ? [(o.scope as { user: string }).user]
    : (await src.storage.execute("SELECT id FROM users ORDER BY id")).rows
      .map((r) => String(r.id));
  const out: ExportedUser[] = [];
  for (const id of ids) {
    const u = await src.repositories.users.getUser(id);
    out.push({
      id: u.id,
      profile: u.profile,
      createdAt: u.createdAt,
      updatedAt: u.updatedAt,
    });
  }
  return out;
}

async function configOf(src: ExportSource): Promise<ExportedConfig[]> {
  const namespaces = (await src.storage.execute(
    "SELECT DISTINCT namespace FROM config ORDER BY namespace",
  )).rows.map((r) => String(r.namespace));
  const out: ExportedConfig[] = [];
  for (const ns of namespaces) {
    for (const e of await src.repositories.config.list(ns)) {
      out.push({
        namespace: e.namespace,
        key: e.key,
        value: e.value,
        secret: e.secret,
        updatedAt: e.updatedAt,
      });
    }
  }
  return out;
}

async function pluginsOf(src: ExportSource): Promise<ExportedPlugin[]> {
  const out: ExportedPlugin[] = [];
  for (const p of await src.repositories.plugins.listPlugins()) {
    const rs = await src.storage.execute({
      sql:
        "SELECT key, updated_at FROM plugin_state WHERE plugin = ? ORDER BY key",
      args: [p.name],
    });
    const values = await src.repositories.plugins.listState(p.name);
    out.push({
      name: p.name,
      version: p.version,
      enabled: p.enabled,
      metadata: p.metadata,
      installedAt: p.installedAt,
      updatedAt: p.updatedAt,
      state: rs.rows.map((r) => ({
        key: String(r.key),
        value: values[String(r.key)] ?? null,
        updatedAt: Number(r.updated_at),
      })),
    });
  }
  return out;
}

/**
 * Writes an export of `src` to `out` (the engine of `DataLayer.exportData()`).
 * The document streams: users, configuration and plugins first (small),
 * then one conversation at a time, its messages a page of 1,000 at a time;
 * memory holds one page and one 64 KiB chunk.
 *
 * @param src The data layer's parts.
 * @param out Where the bytes go (closed by the caller).
 * @param options The checked options.
 * @returns The counts.
 * @throws {AicoDataError} `NOT_FOUND` for an unknown user or conversation
 * of the scope; errors of the store; the signal's reason.
 */
export async function writeExport(
  src: ExportSource,
  out: WritableStreamDefaultWriter<Uint8Array>,
  options: Readonly<ResolvedExportOptions>,
): Promise<ExportReport> {
  const o = options;
  const contentType = o.format === "json"
    ? "application/json"
    : "text/markdown";
  let sealed: ConstructorParameters<typeof ExportSink>[1];
  if (!o.plaintext) {
    let keyFile: unknown;
    if (o.embedKeyFile) {
      keyFile = JSON.parse(await Deno.readTextFile(`${src.dir}/key.json`));
    }
    sealed = {
      sealer: await src.key.sealer("export"),
      header: {
        format: SEALED_FORMAT,
        version: SEALED_VERSION,
        keyId: src.key.keyId,
        contentType,
        exportId: crypto.getRandomValues(new Uint8Array(16)).toHex(),
        chunkBytes: CHUNK_BYTES,
        ...(keyFile === undefined ? {} : { keyFile }),
      },
    };
  }
  const sink = new ExportSink(out, sealed);
  await sink.start();
  if (o.kind === "conversation") {
    // Fails early, before anything but the header is written.
    await src.repositories.conversations.getConversation(
      (o.scope as { conversation: string }).conversation,
    );
  }
  const users = await usersOf(src, o);
  const config = o.kind === "all" ? await configOf(src) : [];
  const plugins = o.kind === "all" ? await pluginsOf(src) : [];
  const json = o.format === "json";
  if (json) {
    const head = JSON.stringify({
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exportedAt: Date.now(),
      scope: o.scope,
      users,
      config,
      plugins,
    });
    await sink.write(head.slice(0, -1) + ',"conversations":[');
  } else {
    await sink.write(`# Conversations exported ${shortDate(Date.now())}\n`);
    for (const u of users) {
      await sink.write(
        `\n## Profile ${u.id}\n\n\`\`\`json\n${
          JSON.stringify(u.profile, null, 2)
        }\n\`\`\`\n`,
      );
    }
  }
  const hasSources = await tableExists(src.storage, "import_sources");
  let conversations = 0;
  let messages = 0;
  for await (const id of conversationIds(src.storage, o)) {
    o.signal?.throwIfAborted();
    const c = await src.repositories.conversations.getConversation(id);
    const sources = await sourcesOf(src.storage, hasSources, id);
    if (json) {
      await sink.write(
        (conversations > 0 ? ",\n" : "\n") +
          conversationHead(c, sources.conversation),
      );
    } else {
      await sink.write(
        `\n# ${c.title ?? "(untitled)"}\n\n_${c.id} · ${
          shortDate(c.createdAt)
        }_\n`,
      );
    }
    let n = 0;
    for await (const page of pagesOf(src.repositories, id)) {
      // One write per page: the text of 1,000 messages at most.
      const parts = new Array<string>(page.length);
      for (let i = 0; i < page.length; i++) {
        const m = page[i]!;
        parts[i] = json
          ? (n + i > 0 ? ",\n" : "\n") + JSON.stringify({
            seq: m.seq,
            role: m.role,
            content: m.content,
            createdAt: m.createdAt,
            model: m.model ?? null,
            sourceKey: sources.messages.get(m.id) ?? null,
          })
          : `\n**${m.role}** · ${shortDate(m.createdAt)}${
            m.model === undefined ? "" : ` · ${m.model}`
          }\n\n${m.content}\n`;
      }
      await sink.write(parts.join(""));
      n += page.length;
    }
    if (json) await sink.write("]}");
    conversations++;
    messages += n;
  }
  if (json) await sink.write("\n]}\n");
  await sink.end();
  return {
    scope: o.kind,
    format: o.format,
    sealed: !o.plaintext,
    keyId: o.plaintext ? undefined : src.key.keyId,
    users: users.length,
    conversations,
    messages,
    config: config.length,
    plugins: plugins.length,
    pluginState: plugins.reduce((s, p) => s + p.state.length, 0),
    bytes: sink.bytes,
  };
}
