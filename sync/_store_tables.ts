// Internal: how each synced core table is read as sync values and written
// back from them (the mutable tables; messages are handled by the applier).
// Values carry plaintext (segments are sealed); sealed columns are opened on
// read and sealed again, under the local row key, on write.
import type { SealedColumn, Storage } from "../storage/storage.ts";
import type { SqlExecutor, Value } from "../storage/types.ts";
import { AicoDataError } from "../errors.ts";
import { CORE_SEALED_COLUMNS } from "../repositories/core_schema.ts";
import { syncSchema } from "./store_schema.ts";
import type { RowRef, SyncValue } from "./types.ts";

/** A row as sync carries it: plain JSON columns. */
export type RowValue = { readonly [column: string]: SyncValue };

/** One synced table other than `messages`. */
export interface TableSpec {
  readonly table: string;
  /** The tombstone of a deleted row: `erase` when its key is never reused. */
  readonly tombstone: "delete" | "erase";
  /** Reads the live rows of these keys. */
  read(
    tx: SqlExecutor,
    keys: readonly string[],
  ): Promise<Map<string, RowValue>>;
  /** Writes a row (insert or replace its synced columns). */
  write(tx: SqlExecutor, key: string, value: RowValue): Promise<void>;
  /** Deletes the row (no cascade). */
  remove(tx: SqlExecutor, key: string): Promise<boolean>;
  /** The row this one belongs to, if any. */
  parent(value: RowValue): RowRef | undefined;
  /**
   * The columns that make a new version when they change (default: all).
   * A column left out is merged otherwise (conversations: `updated_at`,
   * the greatest reading wins, so an append elsewhere never overrides a
   * rename here).
   */
  fingerprint?(value: RowValue): RowValue;
  /** Keys of live rows after `after`, in key order (for the first snapshot). */
  list(
    tx: SqlExecutor,
    after: string | undefined,
    limit: number,
  ): Promise<string[]>;
}

const CHUNK = 400;

function corrupt(table: string, detail: string): AicoDataError {
  return new AicoDataError(
    "CORRUPT_VALUE",
    `Cannot apply synced "${table}" row: ${detail}`,
  );
}

function s(v: Value | undefined): string {
  if (typeof v === "string") return v;
  throw new AicoDataError("CORRUPT_VALUE", "Cannot read row: expected text");
}
function n(v: Value | undefined): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw new AicoDataError(
    "CORRUPT_VALUE",
    "Cannot read row: expected a number",
  );
}
function b(v: Value | undefined): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if ((v as unknown) instanceof ArrayBuffer) {
    return new Uint8Array(v as unknown as ArrayBuffer);
  }
  throw new AicoDataError("CORRUPT_VALUE", "Cannot read row: expected a blob");
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function vs(table: string, v: RowValue, col: string): string {
  const x = v[col];
  if (typeof x !== "string") throw corrupt(table, `"${col}" must be text`);
  return x;
}
function vn(table: string, v: RowValue, col: string): number {
  const x = v[col];
  if (typeof x !== "number" || !Number.isSafeInteger(x)) {
    throw corrupt(table, `"${col}" must be an integer`);
  }
  return x;
}
function vsn(table: string, v: RowValue, col: string): string | null {
  const x = v[col];
  if (x === null) return null;
  if (typeof x !== "string") throw corrupt(table, `"${col}" must be text`);
  return x;
}

async function selectIn(
  tx: SqlExecutor,
  sql: (marks: string) => string,
  keys: readonly string[],
): Promise<Record<string, Value>[]> {
  const out: Record<string, Value>[] = [];
  for (let i = 0; i < keys.length; i += CHUNK) {
    const part = keys.slice(i, i + CHUNK);
    const rs = await tx.execute({
      sql: sql(part.map(() => "?").join(", ")),
      args: [...part],
    });
    for (const r of rs.rows) out.push(r);
  }
  return out;
}

function splitKey(table: string, key: string): [string, string] {
  const at = key.indexOf("/");
  if (at < 1 || at === key.length - 1) {
    throw corrupt(table, "malformed key");
  }
  return [key.slice(0, at), key.slice(at + 1)];
}

async function listKeys(
  tx: SqlExecutor,
  table: string,
  keyExpr: string,
  after: string | undefined,
  limit: number,
): Promise<string[]> {
  const rs = await tx.execute({
    sql: `SELECT ${keyExpr} AS k FROM ${table}${
      after === undefined ? "" : ` WHERE ${keyExpr} > ?`
    } ORDER BY ${keyExpr} LIMIT ?`,
    args: after === undefined ? [limit] : [after, limit],
  });
  return rs.rows.map((r) => s(r.k));
}

/**
 * A sealed column of the core or sync schema, bound to the schema version
 * its declaration names (what the repositories seal and rotation re-seals).
 */
export function declaredColumn(
  storage: Storage,
  table: string,
  column: string,
): SealedColumn {
  const spec = [...CORE_SEALED_COLUMNS, ...syncSchema.sealedColumns].find((
    c,
  ) => c.table === table && c.column === column);
  if (spec === undefined) {
    throw new Error(`unreachable: "${table}.${column}" is not declared sealed`);
  }
  return storage.sealedColumn(table, column, {
    schemaVersion: spec.schemaVersion,
  });
}

/** The specs of the synced mutable tables, in parent-before-child order. */
export function createTableSpecs(storage: Storage): TableSpec[] {
  const profiles = declaredColumn(storage, "users", "profile");
  const secrets = declaredColumn(storage, "config", "sealed_value");
  const titles = declaredColumn(storage, "conversations", "title");

  const users: TableSpec = {
    table: "users",
    tombstone: "erase",
    async read(tx, keys) {
      const rows = await selectIn(
        tx,
        (m) =>
          `SELECT id, profile, created_at, updated_at FROM users WHERE id IN (${m})`,
        keys,
      );
      const out = new Map<string, RowValue>();
      for (const r of rows) {
        const id = s(r.id);
        out.set(id, {
          profile: decoder.decode(await profiles.open(id, b(r.profile))),
          created_at: n(r.created_at),
          updated_at: n(r.updated_at),
        });
      }
      return out;
    },
    async write(tx, key, v) {
      const sealed = await profiles.seal(key, vs("users", v, "profile"));
      await tx.execute({
        sql:
          "INSERT INTO users (id, profile, created_at, updated_at) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (id) DO UPDATE SET profile = excluded.profile, created_at = excluded.created_at, updated_at = excluded.updated_at",
        args: [
          key,
          sealed,
          vn("users", v, "created_at"),
          vn("users", v, "updated_at"),
        ],
      });
    },
    async remove(tx, key) {
      await tx.execute({
        sql: "DELETE FROM user_credentials WHERE user_id = ?",
        args: [key],
      });
      const rs = await tx.execute({
        sql: "DELETE FROM users WHERE id = ?",
        args: [key],
      });
      return rs.rowsAffected > 0;
    },
    parent: () => undefined,
    list: (tx, after, limit) => listKeys(tx, "users", "id", after, limit),
  };

  const config: TableSpec = {
    table: "config",
    tombstone: "delete",
    async read(tx, keys) {
      const rows = await selectIn(
        tx,
        (m) =>
          `SELECT row_key, namespace, key, type, value, sealed_value, secret, updated_at FROM config WHERE row_key IN (${m})`,
        keys,
      );
      const out = new Map<string, RowValue>();
      for (const r of rows) {
        const rowKey = s(r.row_key);
        const secret = n(r.secret) === 1;
        out.set(rowKey, {
          namespace: s(r.namespace),
          key: s(r.key),
          type: s(r.type),
          value: secret
            ? decoder.decode(await secrets.open(rowKey, b(r.sealed_value)))
            : (r.value === null ? null : s(r.value)),
          secret,
          updated_at: n(r.updated_at),
        });
      }
      return out;
    },
    async write(tx, key, v) {
      const [ns, k] = splitKey("config", key);
      if (vs("config", v, "namespace") !== ns || vs("config", v, "key") !== k) {
        throw corrupt("config", "key does not match its columns");
      }
      const secret = v.secret === true;
      const text = vsn("config", v, "value");
      const sealed = secret && text !== null
        ? await secrets.seal(key, text)
        : null;
      await tx.execute({
        sql:
          "INSERT INTO config (row_key, namespace, key, type, value, sealed_value, secret, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (namespace, key) DO UPDATE SET type = excluded.type, value = excluded.value, " +
          "sealed_value = excluded.sealed_value, secret = excluded.secret, updated_at = excluded.updated_at",
        args: [
          key,
          ns,
          k,
          vs("config", v, "type"),
          secret ? null : text,
          sealed,
          secret ? 1 : 0,
          vn("config", v, "updated_at"),
        ],
      });
    },
    async remove(tx, key) {
      const rs = await tx.execute({
        sql: "DELETE FROM config WHERE row_key = ?",
        args: [key],
      });
      return rs.rowsAffected > 0;
    },
    parent: () => undefined,
    list: (tx, after, limit) => listKeys(tx, "config", "row_key", after, limit),
  };

  const plugins: TableSpec = {
    table: "plugins",
    tombstone: "delete",
    async read(tx, keys) {
      const rows = await selectIn(
        tx,
        (m) =>
          `SELECT name, version, enabled, metadata, installed_at, updated_at FROM plugins WHERE name IN (${m})`,
        keys,
      );
      const out = new Map<string, RowValue>();
      for (const r of rows) {
        out.set(s(r.name), {
          version: s(r.version),
          enabled: n(r.enabled),
          metadata: s(r.metadata),
          installed_at: n(r.installed_at),
          updated_at: n(r.updated_at),
        });
      }
      return out;
    },
    async write(tx, key, v) {
      await tx.execute({
        sql:
          "INSERT INTO plugins (name, version, enabled, metadata, installed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (name) DO UPDATE SET version = excluded.version, enabled = excluded.enabled, " +
          "metadata = excluded.metadata, installed_at = excluded.installed_at, updated_at = excluded.updated_at",
        args: [
          key,
          vs("plugins", v, "version"),
          vn("plugins", v, "enabled"),
          vs("plugins", v, "metadata"),
          vn("plugins", v, "installed_at"),
          vn("plugins", v, "updated_at"),
        ],
      });
    },
    async remove(tx, key) {
      await tx.execute({
        sql: "DELETE FROM plugin_state WHERE plugin = ?",
        args: [key],
      });
      const rs = await tx.execute({
        sql: "DELETE FROM plugins WHERE name = ?",
        args: [key],
      });
      return rs.rowsAffected > 0;
    },
    parent: () => undefined,
    list: (tx, after, limit) => listKeys(tx, "plugins", "name", after, limit),
  };

  const pluginState: TableSpec = {
    table: "plugin_state",
    tombstone: "delete",
    async read(tx, keys) {
      const rows = await selectIn(
        tx,
        (m) =>
          `SELECT plugin, key, value, updated_at FROM plugin_state WHERE plugin || '/' || key IN (${m})`,
        keys,
      );
      const out = new Map<string, RowValue>();
      for (const r of rows) {
        out.set(`${s(r.plugin)}/${s(r.key)}`, {
          plugin: s(r.plugin),
          key: s(r.key),
          value: s(r.value),
          updated_at: n(r.updated_at),
        });
      }
      return out;
    },
    async write(tx, key, v) {
      const [plugin, k] = splitKey("plugin_state", key);
      if (
        vs("plugin_state", v, "plugin") !== plugin ||
        vs("plugin_state", v, "key") !== k
      ) {
        throw corrupt("plugin_state", "key does not match its columns");
      }
      await tx.execute({
        sql:
          "INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        args: [
          plugin,
          k,
          vs("plugin_state", v, "value"),
          vn("plugin_state", v, "updated_at"),
        ],
      });
    },
    async remove(tx, key) {
      const [plugin, k] = splitKey("plugin_state", key);
      const rs = await tx.execute({
        sql: "DELETE FROM plugin_state WHERE plugin = ? AND key = ?",
        args: [plugin, k],
      });
      return rs.rowsAffected > 0;
    },
    parent: (v) =>
      typeof v.plugin === "string"
        ? { table: "plugins", key: v.plugin }
        : undefined,
    list: (tx, after, limit) =>
      listKeys(tx, "plugin_state", "plugin || '/' || key", after, limit),
  };

  const conversations: TableSpec = {
    table: "conversations",
    tombstone: "erase",
    async read(tx, keys) {
      const rows = await selectIn(
        tx,
        (m) =>
          `SELECT id, user_id, title, metadata, created_at, updated_at FROM conversations WHERE id IN (${m})`,
        keys,
      );
      const out = new Map<string, RowValue>();
      for (const r of rows) {
        const id = s(r.id);
        out.set(id, {
          user_id: r.user_id === null ? null : s(r.user_id),
          title: r.title === null
            ? null
            : decoder.decode(await titles.open(id, b(r.title))),
          metadata: s(r.metadata),
          created_at: n(r.created_at),
          updated_at: n(r.updated_at),
        });
      }
      return out;
    },
    async write(tx, key, v) {
      const title = vsn("conversations", v, "title");
      const sealed = title === null ? null : await titles.seal(key, title);
      await tx.execute({
        sql:
          "INSERT INTO conversations (id, user_id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, title = excluded.title, " +
          "metadata = excluded.metadata, created_at = excluded.created_at, " +
          "updated_at = MAX(conversations.updated_at, excluded.updated_at)",
        args: [
          key,
          vsn("conversations", v, "user_id"),
          sealed,
          vs("conversations", v, "metadata"),
          vn("conversations", v, "created_at"),
          vn("conversations", v, "updated_at"),
        ],
      });
    },
    async remove(tx, key) {
      await tx.execute({
        sql: "DELETE FROM messages WHERE conversation_id = ?",
        args: [key],
      });
      await tx.execute({
        sql: "DELETE FROM message_gaps WHERE conversation_id = ?",
        args: [key],
      });
      const rs = await tx.execute({
        sql: "DELETE FROM conversations WHERE id = ?",
        args: [key],
      });
      return rs.rowsAffected > 0;
    },
    parent: (v) =>
      typeof v.user_id === "string"
        ? { table: "users", key: v.user_id }
        : undefined,
    fingerprint: (v) => {
      const { updated_at: _, ...rest } = v;
      return rest;
    },
    list: (tx, after, limit) =>
      listKeys(tx, "conversations", "id", after, limit),
  };

  return [users, plugins, pluginState, config, conversations];
}
