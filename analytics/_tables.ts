// Internal: the analytics tables (DuckDB side) and how their rows are read
// from the libSQL store. Only non-secret columns are copied: never user
// profiles, credentials, config values, conversation titles or metadata;
// message text only on request (opened from its sealed form).
import type { ColumnBatch, LoadColumn } from "./engine.ts";

/** A row as the store returns it. */
export type Row = Readonly<Record<string, unknown>>;

/** The SQL surface the loaders read through (a libSQL store or transaction). */
export interface SqlReader {
  execute(
    stmt: string | {
      readonly sql: string;
      readonly args?: readonly (string | number | null)[];
    },
  ): Promise<{ readonly rows: readonly Row[] }>;
}

/** DuckDB DDL of the analytics tables (timestamps are UTC). */
export const DUCK_TABLES: readonly string[] = Object.freeze([
  "CREATE TABLE messages (id BIGINT, conversation_id VARCHAR, seq INTEGER, role VARCHAR, model VARCHAR, created_at TIMESTAMP, conv_key INTEGER)",
  "CREATE TABLE conversation_keys (id VARCHAR, k INTEGER)",
  "CREATE TABLE message_text (id BIGINT, text VARCHAR)",
  "CREATE TABLE conversations (id VARCHAR, user_id VARCHAR, message_count INTEGER, created_at TIMESTAMP, updated_at TIMESTAMP)",
  "CREATE TABLE logs (id BIGINT, ts TIMESTAMP, level VARCHAR, module VARCHAR, message VARCHAR, trace_id VARCHAR)",
  "CREATE TABLE users (id VARCHAR, created_at TIMESTAMP, updated_at TIMESTAMP)",
  "CREATE TABLE stop_words (word VARCHAR)",
]);

/** How one table is copied. */
export interface TableSpec {
  /** The table (same name in libSQL and DuckDB). */
  readonly name: "messages" | "conversations" | "logs" | "users";
  /** Whether its key is an integer. */
  readonly integerKey: boolean;
  /** The libSQL column list. */
  select(hasModel: boolean, text?: boolean): string;
  /** Stage columns: name and type, in order, read from a libSQL row. */
  readonly columns: readonly {
    readonly name: string;
    readonly type: "double" | "varchar";
  }[];
  /**
   * `INSERT ... SELECT` from the stage table `_stage` into the DuckDB table
   * (its name, and that of `conversation_keys`, behind `prefix`).
   */
  insert(prefix: string): string;
}

export const TABLES: readonly TableSpec[] = Object.freeze(
  [
    {
      name: "messages",
      integerKey: true,
      select: (hasModel: boolean) =>
        `id, conversation_id, seq, role, ${
          hasModel ? "model" : "NULL AS model"
        }, created_at`,
      columns: [
        { name: "id", type: "double" },
        { name: "conversation_id", type: "varchar" },
        { name: "seq", type: "double" },
        { name: "role", type: "varchar" },
        { name: "model", type: "varchar" },
        { name: "created_at", type: "double" },
      ],
      // conv_key from conversation_keys (see assignConversationKeys); the
      // join would scatter the rows, ORDER BY keeps id (so time) order.
      insert: (p: string) =>
        `INSERT INTO ${p}messages SELECT s.id::BIGINT, s.conversation_id, s.seq::INTEGER, s.role, s.model, epoch_ms(s.created_at::BIGINT), k.k ` +
        `FROM _stage s LEFT JOIN ${p}conversation_keys k ON k.id = s.conversation_id ORDER BY s.id`,
    },
    {
      name: "conversations",
      integerKey: false,
      select: () => "id, user_id, message_count, created_at, updated_at",
      columns: [
        { name: "id", type: "varchar" },
        { name: "user_id", type: "varchar" },
        { name: "message_count", type: "double" },
        { name: "created_at", type: "double" },
        { name: "updated_at", type: "double" },
      ],
      insert: (p: string) =>
        `INSERT INTO ${p}conversations SELECT id, user_id, message_count::INTEGER, epoch_ms(created_at::BIGINT), epoch_ms(updated_at::BIGINT) FROM _stage`,
    },
    {
      name: "logs",
      integerKey: true,
      select: () => "id, ts, level, module, message, trace_id",
      columns: [
        { name: "id", type: "double" },
        { name: "ts", type: "double" },
        { name: "level", type: "varchar" },
        { name: "module", type: "varchar" },
        { name: "message", type: "varchar" },
        { name: "trace_id", type: "varchar" },
      ],
      insert: (p: string) =>
        `INSERT INTO ${p}logs SELECT id::BIGINT, epoch_ms(ts::BIGINT), level, module, message, trace_id FROM _stage`,
    },
    {
      name: "users",
      integerKey: false,
      select: () => "id, created_at, updated_at",
      columns: [
        { name: "id", type: "varchar" },
        { name: "created_at", type: "double" },
        { name: "updated_at", type: "double" },
      ],
      insert: (p: string) =>
        `INSERT INTO ${p}users SELECT id, epoch_ms(created_at::BIGINT), epoch_ms(updated_at::BIGINT) FROM _stage`,
    },
  ] satisfies TableSpec[],
);

/**
 * The full-load form of `messages`: numbers only (the role as a code, the
 * conversation as its rowid, read in the same transaction as
 * {@linkcode CONVERSATION_ROWIDS} and turned into a dense index by the
 * refresher), mapped back to text in DuckDB through the list `_convlist`
 * (one row: `ids`, the conversation ids by index). Reading no TEXT cells
 * makes the store's pages about a third cheaper; a list lookup instead of
 * a join keeps the rows in id (so time) order without a sort, and later
 * scans group sorted data faster.
 */
export const MESSAGES_PACKED: TableSpec = Object.freeze(
  {
    name: "messages",
    integerKey: true,
    select: (hasModel: boolean) =>
      "id, (SELECT rowid FROM conversations c WHERE c.id = messages.conversation_id) AS conv, seq, " +
      "CASE role WHEN 'system' THEN 0 WHEN 'user' THEN 1 WHEN 'assistant' THEN 2 WHEN 'tool' THEN 3 END AS role_code, " +
      `${hasModel ? "model" : "NULL AS model"}, created_at`,
    columns: [
      { name: "id", type: "double" },
      { name: "conv", type: "double" },
      { name: "seq", type: "double" },
      { name: "role_code", type: "double" },
      { name: "model", type: "varchar" },
      { name: "created_at", type: "double" },
    ],
    // conv is the conversation's dense index (its conv_key), -1 when the
    // conversation is missing.
    insert: (p: string) =>
      `INSERT INTO ${p}messages SELECT s.id::BIGINT, c.ids[s.conv::INTEGER + 1], s.seq::INTEGER, (['system', 'user', 'assistant', 'tool'])[s.role_code::INTEGER + 1], s.model, epoch_ms(s.created_at::BIGINT), ` +
      "CASE WHEN s.conv >= 0 THEN s.conv::INTEGER END FROM _stage s, _convlist c",
  } satisfies TableSpec,
);

/** Conversation rowids and ids, for {@linkcode MESSAGES_PACKED}. */
export const CONVERSATION_ROWIDS: TableSpec = Object.freeze(
  {
    name: "conversations",
    integerKey: false,
    select: () => "rowid AS r, id",
    columns: [
      { name: "r", type: "double" },
      { name: "id", type: "varchar" },
    ],
    insert: () => "",
  } satisfies TableSpec,
);

/**
 * Gives every conversation of the stage `_stage` that has no key yet the
 * next free one (`conversation_keys`, behind `prefix`). A key is a dense
 * surrogate integer of a conversation id, kept until the next full load:
 * `messages.conv_key` lets analyses partition and group by an integer
 * instead of a 36-character id (a window sort over 1M rows is about 2x
 * cheaper on DuckDB-WASM).
 */
export function assignConversationKeys(prefix: string): string {
  const t = `${prefix}conversation_keys`;
  return `INSERT INTO ${t} SELECT id, ((SELECT coalesce(max(k) + 1, 0) FROM ${t}) + row_number() OVER (ORDER BY id) - 1)::INTEGER FROM ` +
    `(SELECT DISTINCT s.conversation_id AS id FROM _stage s WHERE s.conversation_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${t} k WHERE k.id = s.conversation_id))`;
}

/** Rows read per libSQL page during a full load. */
export const PAGE = 65_536;
/** Keys per `IN (...)` list when re-reading changed rows. */
export const KEY_CHUNK = 500;

/** Whether the libSQL `messages` table has the v2 `model` column. */
export async function hasModelColumn(db: SqlReader): Promise<boolean> {
  const rs = await db.execute("PRAGMA table_info(messages)");
  return rs.rows.some((r) => r.name === "model");
}

/** Turns libSQL rows into a stage batch of `spec`. */
export function toBatch(spec: TableSpec, rows: readonly Row[]): ColumnBatch {
  const n = rows.length;
  const columns: LoadColumn[] = spec.columns.map((c) => {
    if (c.type === "double") {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = Number(rows[i]![c.name]);
      return { name: c.name, type: "double", values };
    }
    const values = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      const v = rows[i]![c.name];
      values[i] = v === null || v === undefined ? null : String(v);
    }
    return { name: c.name, type: "varchar", values };
  });
  return { columns, length: n };
}

/** Reads every row of `spec`, page by page (keyset on `id`). */
export async function* readAll(
  db: SqlReader,
  spec: TableSpec,
  hasModel: boolean,
  signal?: AbortSignal,
  text = false,
): AsyncGenerator<Row[]> {
  let last: string | number | undefined;
  for (;;) {
    signal?.throwIfAborted();
    const rs = await db.execute({
      sql: `SELECT ${spec.select(hasModel, text)} FROM ${spec.name}${
        last === undefined ? "" : " WHERE id > ?"
      } ORDER BY id LIMIT ${PAGE}`,
      args: last === undefined ? [] : [last],
    });
    if (rs.rows.length > 0) yield [...rs.rows];
    if (rs.rows.length < PAGE) return;
    const id = rs.rows[rs.rows.length - 1]!.id!;
    last = typeof id === "bigint" ? Number(id) : id as string | number;
  }
}

/** Rows per page of {@linkcode readAllBatches}, by table (logs carry long messages). */
const JSON_PAGE: Readonly<Record<string, number>> = {
  messages: 65_536,
  conversations: 65_536,
  users: 65_536,
  logs: 16_384,
};

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** One column of a page: a JSON array handed over as bytes. */
function jsonColumn(cell: unknown, what: string): unknown[] {
  if (!(cell instanceof Uint8Array)) {
    throw new TypeError(`Cannot read ${what}: expected the page as bytes`);
  }
  return JSON.parse(UTF8.decode(cell)) as unknown[];
}

/**
 * Reads every row of `spec` as stage batches, one page per query and one
 * value per column: SQLite packs each column of the page into one JSON
 * array (`json_group_array`), cast to a BLOB so that the store hands it
 * over as plain bytes (a TEXT cell that large would go through the store's
 * UTF-8 guard, which doubles the read). They are decoded with a fatal
 * UTF-8 decoder and parsed straight into columns (numbers into a
 * `Float64Array`): no object per row. About 3x faster than one row object
 * per row through the store's guarded reads.
 */
export async function* readAllBatches(
  db: SqlReader,
  spec: TableSpec,
  hasModel: boolean,
  signal?: AbortSignal,
): AsyncGenerator<ColumnBatch> {
  const page = JSON_PAGE[spec.name] ?? 4096;
  const cols = spec.columns.map((c, i) =>
    `CAST(json_group_array(${c.name}) AS BLOB) AS c${i}`
  ).join(", ");
  let last: string | number | undefined;
  for (;;) {
    signal?.throwIfAborted();
    const rs = await db.execute({
      sql: `SELECT ${cols}, max(id) AS last, count(*) AS n FROM (SELECT ${
        spec.select(hasModel)
      } FROM ${spec.name}${
        last === undefined ? "" : " WHERE id > ?"
      } ORDER BY id LIMIT ${page})`,
      args: last === undefined ? [] : [last],
    });
    const row = rs.rows[0];
    const n = Number(row?.n ?? 0);
    if (n > 0) {
      const columns: LoadColumn[] = spec.columns.map((c, i) => {
        const values = jsonColumn(row![`c${i}`], `${spec.name}.${c.name}`);
        if (values.length !== n) {
          throw new RangeError(
            `Cannot read ${spec.name}.${c.name}: ${values.length} values for ${n} rows`,
          );
        }
        if (c.type === "double") {
          return {
            name: c.name,
            type: "double",
            values: Float64Array.from(values as number[]),
          };
        }
        for (let k = 0; k < n; k++) {
          const v = values[k];
          if (v !== null && typeof v !== "string") values[k] = String(v);
        }
        return {
          name: c.name,
          type: "varchar",
          values: values as (string | null)[],
        };
      });
      yield { columns, length: n };
    }
    if (n < page) return;
    const id = row!.last;
    last = typeof id === "bigint" ? Number(id) : id as string | number;
  }
}

/** Reads the rows of `spec` whose keys are given (missing ones are deleted). */
export async function readKeys(
  db: SqlReader,
  spec: TableSpec,
  hasModel: boolean,
  keys: readonly string[],
  text = false,
): Promise<Row[]> {
  const out: Row[] = [];
  for (let o = 0; o < keys.length; o += KEY_CHUNK) {
    const chunk = keys.slice(o, o + KEY_CHUNK);
    const rs = await db.execute({
      sql: `SELECT ${
        spec.select(hasModel, text)
      } FROM ${spec.name} WHERE id IN (${chunk.map(() => "?").join(", ")})`,
      args: spec.integerKey ? chunk.map(Number) : chunk,
    });
    out.push(...rs.rows);
  }
  return out;
}
