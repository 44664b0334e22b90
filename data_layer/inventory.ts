/**
 * What a companion keeps: `DataLayer.inventory()` lists, per store and per
 * table, the rows, bytes, oldest and newest times, the sealed columns, which
 * stores hold vectors and which hold copies of text, and the files of the
 * folder.
 *
 * @module
 */
import { join } from "node:path";
import type { SchemaRegistry } from "../schema/mod.ts";
import type { RepositoryStorage } from "../repositories/mod.ts";
import type { Cache } from "../cache/mod.ts";

/** One table of the libSQL store. */
export interface InventoryTable {
  /** The table (an FTS5 index counts its shadow tables in). */
  readonly name: string;
  /** Rows. */
  readonly rows: number;
  /**
   * Bytes of its pages (`dbstat`: the table, its indexes, and for an FTS5
   * index its shadow tables), or `undefined` when `dbstat` is unavailable.
   */
  readonly bytes: number | undefined;
  /** The column its times were taken from, if it has one. */
  readonly timeColumn: string | undefined;
  /** The oldest time (ms since the epoch), if any row. */
  readonly oldest: number | undefined;
  /** The newest time (ms since the epoch), if any row. */
  readonly newest: number | undefined;
  /** Its columns sealed with AES-256-GCM (from the schema registry). */
  readonly sealedColumns: readonly string[];
  /** What it holds, in a few words (for known tables). */
  readonly holds: string | undefined;
  /** Whether it holds vectors. */
  readonly vectors: boolean;
  /** Whether it holds a copy of text stored elsewhere (an index or document store). */
  readonly textCopy: boolean;
}

/** One store of the data layer. */
export interface InventoryStore {
  /** `libsql`, `cache`, `analytics`, `vector`, or a component's name. */
  readonly name: string;
  /** Where it lives: a file or folder of the data folder, `memory`, or `none` when disabled. */
  readonly location: string;
  /** Whether it is encrypted at rest. */
  readonly encrypted: boolean;
  /** Whether it holds vectors. */
  readonly vectors: boolean;
  /** Whether it holds copies of text kept in the primary store. */
  readonly textCopies: boolean;
  /** What it holds. */
  readonly holds: string;
  /** Entries, when the store counts them (cache: live entries). */
  readonly entries?: number;
  /** Its tables (libSQL only). */
  readonly tables?: readonly InventoryTable[];
}

/** One file of the data folder. */
export interface InventoryFile {
  /** The path inside the folder (`/`-separated). */
  readonly path: string;
  /** Bytes. */
  readonly bytes: number;
}

/** What `DataLayer.inventory()` reports. */
export interface Inventory {
  /** The folder. */
  readonly dir: string;
  /** When it was taken, ms since the epoch. */
  readonly at: number;
  /** Whether the byte counts per table come from `dbstat`. */
  readonly dbstat: boolean;
  /** The stores. */
  readonly stores: readonly InventoryStore[];
  /** Every file of the folder, with its size. */
  readonly files: readonly InventoryFile[];
  /** The sum of the files' sizes. */
  readonly totalBytes: number;
}

/** What the inventory reads (the data layer's parts). */
export interface InventorySource {
  readonly dir: string;
  readonly storage: RepositoryStorage;
  readonly registry: SchemaRegistry;
  readonly cache: Cache | undefined;
  readonly memory: boolean;
  readonly analytics: boolean;
  readonly components: readonly string[];
}

const TIME_COLUMNS = ["created_at", "ts", "at", "installed_at", "updated_at"];

/** What the known tables hold. */
const KNOWN: Readonly<
  Record<string, { holds: string; vectors?: true; textCopy?: true }>
> = {
  users: { holds: "users and their profiles" },
  user_credentials: { holds: "PIN and password hashes (Argon2id)" },
  config: { holds: "configuration and preferences" },
  plugins: { holds: "installed plugins" },
  plugin_state: { holds: "plugin state" },
  conversations: { holds: "conversations and their titles" },
  messages: { holds: "messages" },
  logs: { holds: "system logs" },
  audit_events: { holds: "the audit trail of security events" },
  change_events: {
    holds: "the change feed (ids of changed rows, no content)",
  },
  change_cursors: { holds: "change feed consumer positions" },
  import_sources: {
    holds: "source ids of imported conversations and messages",
  },
  memory_fts: {
    holds: "keyword index of message text (FTS5 terms)",
    textCopy: true,
  },
  memory_items: { holds: "indexed messages (ids, roles, times)" },
  memory_state: { holds: "semantic memory state" },
  vector_collections: { holds: "vector collections" },
  vector_segments: { holds: "message embeddings (quantised)", vectors: true },
  vector_documents: {
    holds: "documents stored with vectors",
    textCopy: true,
  },
  vector_stale: { holds: "vectors waiting to be re-made" },
};

function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function tablesOf(
  src: InventorySource,
): Promise<{ tables: InventoryTable[]; dbstat: boolean }> {
  const db = src.storage;
  const schema = (await db.execute(
    "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE type IN ('table', 'index') ORDER BY name",
  )).rows.map((r) => ({
    type: String(r.type),
    name: String(r.name),
    table: String(r.tbl_name),
    sql: r.sql === null ? "" : String(r.sql),
  }));
  const virtual = schema.filter((s) =>
    s.type === "table" && /^CREATE VIRTUAL TABLE/i.test(s.sql)
  ).map((s) => s.name);
  const ownerOf = (name: string, table: string): string => {
    for (const v of virtual) if (name.startsWith(`${v}_`)) return v;
    return table;
  };
  let bytesBy: Map<string, number> | undefined;
  try {
    const rs = await db.execute(
      "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name",
    );
    bytesBy = new Map();
    const tableOf = new Map(schema.map((s) => [s.name, s.table]));
    for (const r of rs.rows) {
      const name = String(r.name);
      const owner = ownerOf(name, tableOf.get(name) ?? name);
      bytesBy.set(owner, (bytesBy.get(owner) ?? 0) + Number(r.bytes));
    }
  } catch {
    bytesBy = undefined; // dbstat is not compiled in
  }
  const sealed = new Map<string, string[]>();
  for (const c of src.registry.sealedColumns) {
    sealed.set(c.table, [...(sealed.get(c.table) ?? []), c.column]);
  }
  const tables: InventoryTable[] = [];
  for (const s of schema) {
    if (s.type !== "table") continue;
    if (ownerOf(s.name, s.name) !== s.name) continue; // an FTS shadow table
    if (s.name.startsWith("sqlite_")) continue;
    const rows = Number(
      (await db.execute(`SELECT COUNT(*) AS n FROM ${q(s.name)}`)).rows[0]?.n ??
        0,
    );
    let timeColumn: string | undefined;
    if (!virtual.includes(s.name)) {
      const cols = (await db.execute(`PRAGMA table_info(${q(s.name)})`)).rows
        .map((r) => String(r.name));
      timeColumn = TIME_COLUMNS.find((c) => cols.includes(c));
    }
    let oldest: number | undefined;
    let newest: number | undefined;
    if (timeColumn !== undefined && rows > 0) {
      const r = (await db.execute(
        `SELECT MIN(${q(timeColumn)}) AS lo, MAX(${q(timeColumn)}) AS hi FROM ${
          q(s.name)
        }`,
      )).rows[0];
      if (r?.lo !== null && r?.lo !== undefined) oldest = Number(r.lo);
      if (r?.hi !== null && r?.hi !== undefined) newest = Number(r.hi);
    }
    const known = KNOWN[s.name];
    tables.push({
      name: s.name,
      rows,
      bytes: bytesBy === undefined ? undefined : bytesBy.get(s.name) ?? 0,
      timeColumn,
      oldest,
      newest,
      sealedColumns: sealed.get(s.name) ?? [],
      holds: known?.holds,
      vectors: known?.vectors === true,
      textCopy: known?.textCopy === true,
    });
  }
  return { tables, dbstat: bytesBy !== undefined };
}

async function filesOf(dir: string): Promise<InventoryFile[]> {
  const out: InventoryFile[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(join(dir, rel))) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile) {
        out.push({ path, bytes: (await Deno.stat(join(dir, path))).size });
      }
    }
  };
  await walk("");
  return out.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

/**
 * Takes the inventory of a data layer (the engine of `DataLayer.inventory()`).
 *
 * @param src The data layer's parts.
 * @returns The inventory.
 */
export async function takeInventory(src: InventorySource): Promise<Inventory> {
  const { tables, dbstat } = await tablesOf(src);
  const files = await filesOf(src.dir);
  const stores: InventoryStore[] = [{
    name: "libsql",
    location: "data.db",
    encrypted: true,
    vectors: tables.some((t) => t.vectors && t.rows > 0),
    textCopies: tables.some((t) => t.textCopy && t.rows > 0),
    holds:
      "the primary store: everything below, pages encrypted (AES-256-CBC), sealed columns AES-256-GCM",
    tables,
  }];
  const stats = src.cache?.stats();
  stores.push({
    name: "cache",
    location: src.cache === undefined ? "none" : "cache/",
    encrypted: src.cache !== undefined,
    vectors: false,
    textCopies: src.cache !== undefined,
    holds: src.cache === undefined
      ? "disabled"
      : "copies of hot reads: configuration, user profiles, recent messages of conversations",
    ...(stats === undefined ? {} : { entries: stats.entries }),
  });
  stores.push({
    name: "vector",
    location: src.memory ? "data.db" : "none",
    encrypted: src.memory,
    vectors: src.memory,
    textCopies: src.memory,
    holds: src.memory
      ? "the embedded vector store and keyword index, inside data.db (tables vector_*, memory_*); no Chroma server is configured"
      : "disabled",
  });
  stores.push({
    name: "analytics",
    location: src.analytics ? "memory" : "none",
    encrypted: false,
    vectors: false,
    textCopies: src.analytics,
    holds: src.analytics
      ? "DuckDB in this process's memory, loaded on first use: message metadata and text (message_text), logs, users; nothing on disk"
      : "disabled",
  });
  for (const name of src.components) {
    stores.push({
      name,
      location: "unknown",
      encrypted: false,
      vectors: false,
      textCopies: false,
      holds: "a component passed to openDataLayer (not inspected)",
    });
  }
  return {
    dir: src.dir,
    at: Date.now(),
    dbstat,
    stores,
    files,
    totalBytes: files.reduce((s, f) => s + f.bytes, 0),
  };
}
