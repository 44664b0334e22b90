// Internal: the refresher's work on the engine: full loads, applying change
// events (re-read by key, missing = deleted), and message text on request.
// Callers serialise calls (one at a time per engine).
import type { ChangeEvent } from "../changes/types.ts";
import type { AnalyticsEngine, ColumnBatch } from "./engine.ts";
import {
  assignConversationKeys,
  CONVERSATION_ROWIDS,
  DUCK_TABLES,
  hasModelColumn,
  KEY_CHUNK,
  MESSAGES_PACKED,
  readAll,
  readAllBatches,
  readKeys,
  type Row,
  type SqlReader,
  TABLES,
  type TableSpec,
  toBatch,
} from "./_tables.ts";
import type { AnalyticsStore } from "./analytics.ts";

/** The name prefix of the tables a full load builds before the swap. */
const SHADOW = "_new_";

export class Refresher {
  #storage: AnalyticsStore;
  #text = false;
  #hasModel = false;

  constructor(storage: AnalyticsStore) {
    this.#storage = storage;
  }

  /** Whether message text is copied. */
  get text(): boolean {
    return this.#text;
  }

  async #insertBatch(
    engine: AnalyticsEngine,
    spec: TableSpec,
    batch: ColumnBatch,
    prefix = "",
  ): Promise<void> {
    if (batch.length === 0) return;
    await engine.load("_stage", batch);
    await engine.exec(
      `${spec === TABLES[0] ? `${assignConversationKeys(prefix)}; ` : ""}${
        spec.insert(prefix)
      }; DROP TABLE _stage`,
    );
  }

  async #loadStage(
    engine: AnalyticsEngine,
    db: SqlReader,
    spec: TableSpec,
    rows: readonly Row[],
    prefix = "",
  ): Promise<void> {
    if (rows.length === 0) return;
    await this.#insertBatch(engine, spec, toBatch(spec, rows), prefix);
    if (spec.name === "messages" && this.#text) {
      await this.#loadText(engine, db, rows, prefix);
    }
  }

  async #loadText(
    engine: AnalyticsEngine,
    db: SqlReader,
    rows: readonly Row[],
    prefix = "",
  ): Promise<void> {
    const column = this.#storage.sealedColumn("messages", "content");
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const withContent = rows.length > 0 && rows[0]!.content !== undefined;
    const step = withContent ? Math.max(1, rows.length) : KEY_CHUNK;
    for (let o = 0; o < rows.length; o += step) {
      let chunk: readonly Row[] = rows.slice(o, o + step);
      if (!withContent) {
        const ids = chunk.map((r) => Number(r.id));
        chunk = (await db.execute({
          sql: `SELECT id, content FROM messages WHERE id IN (${
            ids.map(() => "?").join(", ")
          })`,
          args: ids,
        })).rows;
      }
      const opened = await column.openBatch(
        chunk.map((r) => ({
          rowKey: Number(r.id),
          sealed: r.content as Uint8Array,
        })),
      );
      const idv = new Float64Array(chunk.length);
      const text = new Array<string>(chunk.length);
      for (let i = 0; i < chunk.length; i++) {
        idv[i] = Number(chunk[i]!.id);
        text[i] = decoder.decode(opened[i]!);
      }
      await engine.load("_text", {
        length: idv.length,
        columns: [
          { name: "id", type: "double", values: idv },
          { name: "text", type: "varchar", values: text },
        ],
      });
      await engine.exec(
        `INSERT INTO ${prefix}message_text SELECT id::BIGINT, text FROM _text; DROP TABLE _text`,
      );
    }
  }

  /**
   * Loads `messages` in its packed form ({@linkcode MESSAGES_PACKED}): the
   * conversation rowids become dense indexes into `_convlist` here.
   */
  async #loadMessagesPacked(
    engine: AnalyticsEngine,
    tx: SqlReader,
    signal?: AbortSignal,
  ): Promise<void> {
    const ids: (string | null)[] = [];
    const index = new Map<number, number>();
    for await (
      const b of readAllBatches(tx, CONVERSATION_ROWIDS, false, signal)
    ) {
      const r = b.columns[0]!.values as Float64Array;
      const id = b.columns[1]!.values as readonly (string | null)[];
      for (let i = 0; i < b.length; i++) {
        index.set(r[i]!, ids.length);
        ids.push(id[i]!);
      }
    }
    if (ids.length === 0) {
      await engine.exec(
        "CREATE TABLE _convlist AS SELECT []::VARCHAR[] AS ids",
      );
    } else {
      await engine.load("_convmap", {
        length: ids.length,
        columns: [
          { name: "i", type: "double", values: Float64Array.from(ids.keys()) },
          { name: "id", type: "varchar", values: ids },
        ],
      });
      await engine.exec(
        `INSERT INTO ${SHADOW}conversation_keys SELECT id, i::INTEGER FROM _convmap; ` +
          "CREATE TABLE _convlist AS SELECT list(id ORDER BY i) AS ids FROM _convmap; DROP TABLE _convmap",
      );
    }
    await this.#pipeline(
      engine,
      MESSAGES_PACKED,
      readAllBatches(tx, MESSAGES_PACKED, this.#hasModel, signal),
      (batch) => {
        const conv = batch.columns[1]!.values as Float64Array;
        for (let i = 0; i < batch.length; i++) {
          // A message whose conversation is gone gets a NULL conversation.
          conv[i] = index.get(conv[i]!) ?? -1;
        }
      },
    );
    await engine.exec("DROP TABLE _convlist");
  }

  /**
   * Stages and inserts the batches of a full load into the shadow table,
   * overlapping the store's read of the next page with DuckDB's INSERT of
   * this one (the native engine runs statements on a worker thread; on the
   * WASM engine this is plain sequential work).
   */
  async #pipeline(
    engine: AnalyticsEngine,
    spec: TableSpec,
    batches: AsyncIterable<ColumnBatch>,
    prepare?: (batch: ColumnBatch) => void,
  ): Promise<void> {
    const insert = `${spec.insert(SHADOW)}; DROP TABLE _stage`;
    let pending: Promise<unknown> | undefined;
    try {
      for await (const batch of batches) {
        prepare?.(batch);
        if (pending) await pending;
        pending = undefined;
        if (batch.length === 0) continue;
        await engine.load("_stage", batch);
        // Settled later; the catch only keeps a failure from going
        // unhandled while the next page is read.
        const p = engine.exec(insert);
        p.catch(() => {});
        pending = p;
      }
      if (pending) await pending;
    } finally {
      // Never leave a statement running behind a failure.
      if (pending) await pending.catch(() => {});
    }
  }

  /**
   * Replaces every table with the store's committed rows. The new copy is
   * built in shadow tables (`_new_*`, outside any transaction: rows written
   * inside one big DuckDB transaction are scanned about 2x slower later)
   * and swapped in by one short transaction; on failure the old copy stays.
   */
  async fullLoad(
    engine: AnalyticsEngine,
    signal?: AbortSignal,
  ): Promise<void> {
    const names = [
      ...TABLES.map((t) => t.name),
      "message_text",
      "conversation_keys",
    ];
    await this.#dropShadows(engine, names);
    try {
      await this.#storage.transaction(async (tx) => {
        this.#hasModel = await hasModelColumn(tx);
        await this.#createShadows(engine, names);
        for (const spec of TABLES) {
          if (spec.name === "messages" && this.#text) {
            // With text: rows with their sealed content, opened page by page.
            for await (
              const rows of readAll(tx, spec, this.#hasModel, signal, true)
            ) {
              await this.#loadStage(engine, tx, spec, rows, SHADOW);
            }
            continue;
          }
          if (spec.name === "messages") {
            await this.#loadMessagesPacked(engine, tx, signal);
            continue;
          }
          await this.#pipeline(
            engine,
            spec,
            readAllBatches(tx, spec, this.#hasModel, signal),
          );
        }
      }, "read");
      await this.#swap(engine, names);
    } catch (e) {
      await engine.exec(
        "DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _text; DROP TABLE IF EXISTS _convmap; DROP TABLE IF EXISTS _convlist",
      ).catch(() => {});
      await this.#dropShadows(engine, names).catch(() => {});
      throw e;
    }
  }

  async #createShadows(
    engine: AnalyticsEngine,
    names: readonly string[],
  ): Promise<void> {
    for (const ddl of DUCK_TABLES) {
      const m = /^CREATE TABLE (\w+)/.exec(ddl);
      if (m && names.includes(m[1]!)) {
        await engine.exec(
          ddl.replace(/^CREATE TABLE (\w+)/, `CREATE TABLE ${SHADOW}$1`),
        );
      }
    }
  }

  async #dropShadows(
    engine: AnalyticsEngine,
    names: readonly string[],
  ): Promise<void> {
    await engine.exec(
      names.map((n) => `DROP TABLE IF EXISTS ${SHADOW}${n}`).join("; "),
    );
  }

  /** Puts the shadow tables in place of the live ones, atomically. */
  async #swap(
    engine: AnalyticsEngine,
    names: readonly string[],
  ): Promise<void> {
    await engine.exec("BEGIN TRANSACTION");
    try {
      for (const n of names) {
        await engine.exec(
          `DROP TABLE ${n}; ALTER TABLE ${SHADOW}${n} RENAME TO ${n}`,
        );
      }
      await engine.exec("COMMIT");
    } catch (e) {
      await engine.exec("ROLLBACK").catch(() => {});
      throw e;
    }
  }

  /** Applies events: re-reads the named rows by key (missing = deleted). */
  async apply(
    engine: AnalyticsEngine,
    batch: readonly ChangeEvent[],
    signal?: AbortSignal,
  ): Promise<void> {
    const keys = new Map<string, Set<string>>();
    for (const ev of batch) {
      if (!TABLES.some((t) => t.name === ev.table)) continue;
      let set = keys.get(ev.table);
      if (!set) keys.set(ev.table, set = new Set());
      for (const k of ev.keys) set.add(k);
      // Appends and deletions change their conversation's count and time.
      if (ev.table === "messages" && ev.scope !== undefined) {
        let c = keys.get("conversations");
        if (!c) keys.set("conversations", c = new Set());
        c.add(ev.scope);
      }
    }
    if (keys.size === 0) return;
    signal?.throwIfAborted();
    const read = new Map<TableSpec, { keys: string[]; rows: Row[] }>();
    await this.#storage.transaction(async (tx) => {
      this.#hasModel = await hasModelColumn(tx);
      for (const spec of TABLES) {
        let k = keys.get(spec.name);
        if (spec.name === "conversations") {
          // ... and so do edits of messages whose event carries no scope.
          for (const row of read.get(TABLES[0]!)?.rows ?? []) {
            if (!k) keys.set("conversations", k = new Set());
            k.add(String(row.conversation_id));
          }
        }
        if (!k) continue;
        const list = spec.integerKey
          ? [...k].filter((x) => /^-?\d+$/.test(x))
          : [...k];
        read.set(spec, {
          keys: list,
          rows: await readKeys(tx, spec, this.#hasModel, list, this.#text),
        });
      }
    }, "read");
    await engine.exec("BEGIN TRANSACTION");
    try {
      for (const [spec, { keys: list, rows }] of read) {
        await engine.load("_keys", {
          length: list.length,
          columns: [{ name: "k", type: "varchar", values: list }],
        });
        const key = spec.integerKey ? "k::BIGINT" : "k";
        // One round trip per step (each costs a thread hand-off natively).
        await engine.exec(
          `DELETE FROM ${spec.name} WHERE id IN (SELECT ${key} FROM _keys); ` +
            (spec.name === "messages"
              ? `DELETE FROM message_text WHERE id IN (SELECT ${key} FROM _keys); `
              : "") +
            "DROP TABLE _keys",
        );
        if (spec.name === "conversations") {
          // A deleted conversation takes its messages along.
          const present = new Set(rows.map((r) => String(r.id)));
          const gone = list.filter((k) => !present.has(k));
          if (gone.length > 0) {
            await engine.load("_keys", {
              length: gone.length,
              columns: [{ name: "k", type: "varchar", values: gone }],
            });
            await engine.exec(
              "DELETE FROM message_text WHERE id IN (SELECT id FROM messages WHERE conversation_id IN (SELECT k FROM _keys)); " +
                "DELETE FROM messages WHERE conversation_id IN (SELECT k FROM _keys); " +
                "DELETE FROM conversation_keys WHERE id IN (SELECT k FROM _keys); " +
                "DROP TABLE _keys",
            );
          }
        }
        await this.#loadStage(engine, this.#storage, spec, rows);
      }
      await engine.exec("COMMIT");
    } catch (e) {
      await engine.exec("ROLLBACK").catch(() => {});
      await engine.exec(
        "DROP TABLE IF EXISTS _keys; DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _text",
      ).catch(() => {});
      throw e;
    }
  }

  /** Copies the text of every message (opened from its sealed form), once. */
  async enableText(engine: AnalyticsEngine): Promise<void> {
    if (this.#text) return;
    this.#text = true;
    const names = ["message_text"];
    try {
      await this.#dropShadows(engine, names);
      await this.#createShadows(engine, names);
      await this.#storage.transaction(async (tx) => {
        for await (
          const rows of readAll(tx, TABLES[0]!, this.#hasModel, undefined, true)
        ) {
          await this.#loadText(engine, tx, rows, SHADOW);
        }
      }, "read");
      await this.#swap(engine, names);
    } catch (e) {
      this.#text = false;
      await engine.exec("DROP TABLE IF EXISTS _text").catch(() => {});
      await this.#dropShadows(engine, names).catch(() => {});
      throw e;
    }
  }
}
