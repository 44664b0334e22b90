/**
 * Sync wired into the real store: the outbound row reader that turns
 * committed change-feed events of the core tables into row versions, and
 * the inbound applier that merges other devices' versions into the local
 * repositories' tables.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type {
  ChangeConsumer,
  ChangeEvent,
  ChangeInput,
  ChangeRecorder,
} from "../changes/types.ts";
import { AicoDataError } from "../errors.ts";
import type { SealedColumn, Storage } from "../storage/storage.ts";
import type { InValue, SqlExecutor, Transaction } from "../storage/types.ts";
import {
  createTableSpecs,
  declaredColumn,
  type RowValue,
  type TableSpec,
} from "./_store_tables.ts";
import { createSyncConsumer, type SyncRowReader } from "./consumer.ts";
import type { ApplyChanges, SyncDevice } from "./device.ts";
import {
  compareHlc,
  formatHlc,
  type HlcTimestamp,
  type HybridLogicalClock,
  parseHlc,
} from "./hlc.ts";
import { canonicalJson, checkSyncChange } from "./merge.ts";
import type { RowRef, SyncChange, SyncWrite } from "./types.ts";

/** The wiring of one store to one sync device. */
export interface StoreSync {
  /** The durable feed consumer that stages local changes (register it). */
  readonly consumer: ChangeConsumer;
  /** Applies verified changes of another device (pass it to `pull`). */
  readonly apply: ApplyChanges;
  /** The reader behind the consumer. */
  readonly reader: SyncRowReader;
  /**
   * The state of every synced row, in batches, for a compaction snapshot
   * (pass it to `device.compact`): erased content is not in it.
   */
  readonly compaction: () => AsyncIterable<SyncChange[]>;
}

interface Stored {
  op: SyncChange["op"];
  hlc: string;
  hash: string | null;
  local: number | null;
  parent: string | null;
}

const OP_RANK: Record<SyncChange["op"], number> = {
  append: 0,
  put: 1,
  delete: 2,
  erase: 3,
};
const CHUNK = 400;
const INSERT_ROWS = 128;
// Lookups by local id name their index: without statistics SQLite prefers
// the primary key's `tbl` prefix, a scan of every synced message.

function hashOf(spec: TableSpec, value: RowValue): string {
  const v = spec.fingerprint === undefined ? value : spec.fingerprint(value);
  return createHash("sha256").update(canonicalJson(v)).digest("hex");
}

function refText(r: RowRef): string {
  return `${r.table}:${r.key}`;
}

function toNumber(v: unknown): number {
  return typeof v === "bigint" ? Number(v) : (v as number);
}

/** Whether `incoming` wins over `stored` by the merge rule of `merge.ts`. */
function wins(stored: Stored | undefined, incoming: SyncChange): boolean {
  if (stored === undefined) return true;
  if (stored.op === "erase") return false;
  if (incoming.op === "erase") return true;
  const c = compareHlc(incoming.hlc, stored.hlc);
  if (c !== 0) return c > 0;
  return OP_RANK[incoming.op] > OP_RANK[stored.op];
}

function compareOrder(
  a: { hlc: string; key: string },
  b: { hlc: string; key: string },
): number {
  return compareHlc(a.hlc, b.hlc) ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

async function loadStored(
  tx: SqlExecutor,
  table: string,
  keys: readonly string[],
): Promise<Map<string, Stored>> {
  const out = new Map<string, Stored>();
  for (let i = 0; i < keys.length; i += CHUNK) {
    const part = keys.slice(i, i + CHUNK);
    const rs = await tx.execute({
      sql:
        `SELECT key, op, hlc, hash, local, parent FROM sync_rows WHERE tbl = ? AND key IN (${
          part.map(() => "?").join(", ")
        })`,
      args: [table, ...part],
    });
    for (const r of rs.rows) {
      out.set(r.key as string, {
        op: r.op as SyncChange["op"],
        hlc: r.hlc as string,
        hash: r.hash as string | null,
        local: r.local === null ? null : toNumber(r.local),
        parent: r.parent as string | null,
      });
    }
  }
  return out;
}

async function setRow(
  tx: SqlExecutor,
  table: string,
  key: string,
  s: Stored,
): Promise<void> {
  await tx.execute({
    sql:
      "INSERT INTO sync_rows (tbl, key, op, hlc, hash, local, parent) VALUES (?, ?, ?, ?, ?, ?, ?) " +
      "ON CONFLICT (tbl, key) DO UPDATE SET op = excluded.op, hlc = excluded.hlc, hash = excluded.hash, " +
      "local = COALESCE(excluded.local, sync_rows.local), parent = COALESCE(excluded.parent, sync_rows.parent)",
    args: [table, key, s.op, s.hlc, s.hash, s.local, s.parent],
  });
}

/** {@linkcode setRow} for many rows of one table, in multi-row statements. */
async function setRows(
  tx: SqlExecutor,
  table: string,
  rows: readonly { key: string; s: Stored }[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_ROWS) {
    const part = rows.slice(i, i + INSERT_ROWS);
    const args: InValue[] = [];
    for (const r of part) {
      args.push(table, r.key, r.s.op, r.s.hlc, r.s.hash, r.s.local, r.s.parent);
    }
    await tx.execute({
      sql:
        "INSERT INTO sync_rows (tbl, key, op, hlc, hash, local, parent) VALUES " +
        part.map(() => "(?, ?, ?, ?, ?, ?, ?)").join(", ") +
        " ON CONFLICT (tbl, key) DO UPDATE SET op = excluded.op, hlc = excluded.hlc, hash = excluded.hash, " +
        "local = COALESCE(excluded.local, sync_rows.local), parent = COALESCE(excluded.parent, sync_rows.parent)",
      args,
    });
  }
}

interface MessageRow {
  id: number;
  conversation: string;
  value: RowValue;
}

class Wiring {
  #storage: Storage;
  #recorder: ChangeRecorder;
  #device: SyncDevice;
  #specs: Map<string, TableSpec>;
  #order: TableSpec[];
  #contents: SealedColumn;
  #pending: SealedColumn;

  constructor(storage: Storage, recorder: ChangeRecorder, device: SyncDevice) {
    this.#storage = storage;
    this.#recorder = recorder;
    this.#device = device;
    this.#order = createTableSpecs(storage);
    this.#specs = new Map(this.#order.map((s) => [s.table, s]));
    this.#contents = declaredColumn(storage, "messages", "content");
    this.#pending = declaredColumn(storage, "sync_pending", "change");
  }

  get #id(): string {
    return this.#device.deviceId;
  }

  #own(hlc: string): boolean {
    return parseHlc(hlc).node === this.#id;
  }

  // ---- outbound ----------------------------------------------------------

  /**
   * The current versions of rows of a mutable table, stamping local changes
   * not seen yet with the clock (in the caller's write transaction).
   */
  async #rowVersions(
    tx: SqlExecutor,
    spec: TableSpec,
    keys: readonly string[],
    clock: HybridLogicalClock,
  ): Promise<SyncChange[]> {
    const unique = [...new Set(keys)];
    const live = await spec.read(tx, unique);
    const stored = await loadStored(tx, spec.table, unique);
    const out: SyncChange[] = [];
    for (const key of unique) {
      const v = live.get(key);
      const hash = v === undefined ? null : hashOf(spec, v);
      const st = stored.get(key);
      const parent = v === undefined ? undefined : spec.parent(v);
      const same = st !== undefined && st.hash === hash &&
        (v === undefined ? st.op !== "put" : st.op === "put");
      let version: Stored;
      if (same) {
        version = st!;
      } else if (st?.op === "erase" || (st === undefined && v === undefined)) {
        // An erased key stays erased (a row made again under it is not
        // synced); a row made and removed before it was staged never left.
        continue;
      } else {
        version = {
          op: v === undefined ? spec.tombstone : "put",
          hlc: clock.now(),
          hash,
          local: null,
          parent: parent === undefined ? null : refText(parent),
        };
        await setRow(tx, spec.table, key, version);
      }
      out.push(
        v === undefined
          ? {
            op: version.op as "delete" | "erase",
            table: spec.table,
            key,
            hlc: version.hlc,
          }
          : {
            op: "put",
            table: spec.table,
            key,
            hlc: version.hlc,
            ...(parent === undefined ? {} : { parent }),
            value: v,
          },
      );
    }
    return out;
  }

  async #readMessages(
    tx: SqlExecutor,
    ids: readonly number[],
  ): Promise<Map<number, MessageRow>> {
    const out = new Map<number, MessageRow>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const rs = await tx.execute({
        sql:
          `SELECT m.id, m.conversation_id, m.role, m.content, m.created_at, m.model, c.updated_at AS conv_updated_at ` +
          `FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id IN (${
            part.map(() => "?").join(", ")
          })`,
        args: [...part],
      });
      const plain = await this.#contents.openBatch(
        rs.rows.map((r) => ({
          rowKey: toNumber(r.id),
          sealed: r.content as Uint8Array,
        })),
      );
      const decoder = new TextDecoder("utf-8", { fatal: true });
      rs.rows.forEach((r, k) => {
        const id = toNumber(r.id);
        out.set(id, {
          id,
          conversation: r.conversation_id as string,
          value: {
            role: r.role as string,
            content: decoder.decode(plain[k]!),
            created_at: toNumber(r.created_at),
            model: r.model === null ? null : r.model as string,
            conv_updated_at: toNumber(r.conv_updated_at),
          },
        });
      });
    }
    return out;
  }

  async #byLocal(
    tx: SqlExecutor,
    ids: readonly number[],
  ): Promise<Map<number, Stored & { key: string }>> {
    const out = new Map<number, Stored & { key: string }>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const rs = await tx.execute({
        sql:
          `SELECT key, op, hlc, hash, local, parent FROM sync_rows INDEXED BY sync_rows_local WHERE tbl = 'messages' AND local IN (${
            part.map(() => "?").join(", ")
          })`,
        args: [...part],
      });
      for (const r of rs.rows) {
        out.set(toNumber(r.local), {
          key: r.key as string,
          op: r.op as SyncChange["op"],
          hlc: r.hlc as string,
          hash: null,
          local: toNumber(r.local),
          parent: r.parent as string | null,
        });
      }
    }
    return out;
  }

  async #messageVersions(
    tx: SqlExecutor,
    event: Pick<ChangeEvent, "op" | "keys" | "scope">,
    clock: HybridLogicalClock,
  ): Promise<SyncChange[]> {
    const ids = [...new Set(event.keys.map((k) => Number(k)))]
      .filter((n) => Number.isSafeInteger(n) && n > 0)
      .sort((a, b) => a - b);
    const stamped = await this.#byLocal(tx, ids);
    const out: SyncChange[] = [];
    if (event.op === "delete") {
      // Messages removed with their conversation travel as its erase.
      const conv = event.scope === undefined ? undefined : (await tx.execute({
        sql: "SELECT 1 AS x FROM conversations WHERE id = ?",
        args: [event.scope],
      })).rows[0];
      if (conv === undefined) return out;
      const parent = { table: "conversations", key: event.scope! };
      for (const id of ids) {
        const st = stamped.get(id);
        if (st?.op === "erase") {
          if (this.#own(st.hlc)) {
            out.push({
              op: "erase",
              table: "messages",
              key: st.key,
              hlc: st.hlc,
            });
          }
          continue;
        }
        const key = st?.key ?? `${this.#id}/${id}`;
        const hlc = clock.now();
        await setRow(tx, "messages", key, {
          op: "erase",
          hlc,
          hash: null,
          local: id,
          parent: refText(parent),
        });
        out.push({ op: "erase", table: "messages", key, hlc });
      }
      return out;
    }
    // Rows that arrived from another device are not read (nor opened).
    const wanted = ids.filter((id) => {
      const st = stamped.get(id);
      return st === undefined || (st.op === "append" && this.#own(st.hlc));
    });
    const live = await this.#readMessages(tx, wanted);
    const fresh: { key: string; s: Stored }[] = [];
    for (const id of wanted) {
      const row = live.get(id);
      if (row === undefined) continue;
      const parent = { table: "conversations", key: row.conversation };
      let st = stamped.get(id);
      if (st === undefined) {
        st = {
          key: `${this.#id}/${id}`,
          op: "append",
          hlc: clock.now(),
          hash: null,
          local: id,
          parent: refText(parent),
        };
        fresh.push({ key: st.key, s: st });
      }
      out.push({
        op: "append",
        table: "messages",
        key: st.key,
        hlc: st.hlc,
        parent,
        value: row.value,
      });
    }
    await setRows(tx, "messages", fresh);
    return out;
  }

  async changesFor(
    events: readonly ChangeEvent[],
    clock: HybridLogicalClock,
  ): Promise<SyncChange[]> {
    return await this.#storage.transaction(async (tx) => {
      const out: SyncChange[] = [];
      const seen = new Set<string>();
      const push = (list: SyncChange[]) => {
        for (const c of list) {
          const id = `${c.table}:${c.key}:${c.hlc}`;
          if (seen.has(id)) continue;
          seen.add(id);
          out.push(c);
        }
      };
      for (const e of events) {
        if (e.table === "messages") {
          push(await this.#messageVersions(tx, e, clock));
          continue;
        }
        const spec = this.#specs.get(e.table);
        if (spec !== undefined) {
          push(await this.#rowVersions(tx, spec, e.keys, clock));
        }
      }
      return out;
    }, "write");
  }

  /** Every row of the synced mutable tables with its version, 500 a batch. */
  async *#mutableRows(
    clock: HybridLogicalClock,
  ): AsyncIterable<SyncChange[]> {
    for (const spec of this.#order) {
      let after: string | undefined;
      for (;;) {
        const batch = await this.#storage.transaction(async (tx) => {
          const keys = await spec.list(tx, after, 500);
          after = keys[keys.length - 1];
          return keys.length === 0
            ? undefined
            : await this.#rowVersions(tx, spec, keys, clock);
        }, "write");
        if (batch === undefined) break;
        yield batch;
      }
    }
  }

  async *snapshot(clock: HybridLogicalClock): AsyncIterable<SyncChange[]> {
    yield* this.#mutableRows(clock);
    let last = 0;
    for (;;) {
      const batch = await this.#storage.transaction(async (tx) => {
        const rs = await tx.execute({
          sql: "SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT 1000",
          args: [last],
        });
        if (rs.rows.length === 0) return undefined;
        const ids = rs.rows.map((r) => toNumber(r.id));
        last = Math.max(last, ...ids);
        return await this.#messageVersions(
          tx,
          { op: "insert", keys: ids.map(String) },
          clock,
        );
      }, "write");
      if (batch === undefined) break;
      yield batch;
    }
  }

  /**
   * The state of every synced row for a compaction snapshot: live rows of
   * every device with their clock readings, the tombstones convergence
   * needs, every message position (an erased message's place as a content-
   * free ghost) and the changes still waiting for their parent row. Erased
   * content is not read: an erased row is a tombstone (key and reading).
   */
  async *compaction(): AsyncIterable<SyncChange[]> {
    const clock = this.#device.clock;
    yield* this.#mutableRows(clock);
    // Tombstones of mutable rows, then message erases outside erased
    // conversations (their messages travel as the conversation's erase).
    const tombstones = (await this.#storage.execute(
      "SELECT tbl, key, op, hlc FROM sync_rows WHERE tbl != 'messages' AND op IN ('delete', 'erase') ORDER BY tbl, key",
    )).rows.map((r) => ({
      op: r.op as "delete" | "erase",
      table: r.tbl as string,
      key: r.key as string,
      hlc: r.hlc as string,
    }));
    for (let i = 0; i < tombstones.length; i += 1000) {
      yield tombstones.slice(i, i + 1000);
    }
    const erased = (await this.#storage.execute(
      "SELECT s.key, s.hlc FROM sync_rows s WHERE s.tbl = 'messages' AND s.op = 'erase' AND (s.parent IS NULL OR " +
        "EXISTS (SELECT 1 FROM conversations c WHERE 'conversations:' || c.id = s.parent)) ORDER BY s.key",
    )).rows.map((r) => ({
      op: "erase" as const,
      table: "messages",
      key: r.key as string,
      hlc: r.hlc as string,
    }));
    for (let i = 0; i < erased.length; i += 1000) {
      yield erased.slice(i, i + 1000);
    }
    const convs = (await this.#storage.execute(
      "SELECT id FROM conversations ORDER BY id",
    )).rows.map((r) => r.id as string);
    for (const conv of convs) {
      const batch = await this.#storage.transaction(
        (tx) => this.#conversationPositions(tx, conv, clock),
        "write",
      );
      for (let i = 0; i < batch.length; i += 1000) {
        yield batch.slice(i, i + 1000);
      }
    }
    const parked = (await this.#storage.execute(
      "SELECT id, change FROM sync_pending ORDER BY id",
    )).rows;
    if (parked.length > 0) {
      const decoder = new TextDecoder();
      const out: SyncChange[] = [];
      for (const r of parked) {
        const plain = await this.#pending.open(
          toNumber(r.id),
          r.change as Uint8Array,
        );
        out.push(checkSyncChange(JSON.parse(decoder.decode(plain))));
      }
      yield out;
    }
  }

  /** Every position of a conversation: its messages and its gaps (ghosts). */
  async #conversationPositions(
    tx: SqlExecutor,
    conv: string,
    clock: HybridLogicalClock,
  ): Promise<SyncChange[]> {
    const parentText = refText({ table: "conversations", key: conv });
    const parent = Object.freeze({ table: "conversations", key: conv });
    const unstamped = (await tx.execute({
      sql:
        "SELECT m.id FROM messages m WHERE m.conversation_id = ? AND NOT EXISTS " +
        "(SELECT 1 FROM sync_rows s INDEXED BY sync_rows_local WHERE s.tbl = 'messages' AND s.local = m.id)",
      args: [conv],
    })).rows.map((r) => String(r.id));
    if (unstamped.length > 0) {
      await this.#messageVersions(
        tx,
        { op: "insert", keys: unstamped, scope: conv },
        clock,
      );
    }
    const rows = (await tx.execute({
      sql:
        "SELECT m.id, m.seq, s.key, s.hlc FROM messages m CROSS JOIN sync_rows s INDEXED BY sync_rows_local " +
        "ON s.tbl = 'messages' AND s.local = m.id WHERE m.conversation_id = ? ORDER BY m.seq",
      args: [conv],
    })).rows.map((r) => ({
      id: toNumber(r.id),
      seq: toNumber(r.seq),
      key: r.key as string,
      hlc: r.hlc as string,
    }));
    const gaps = (await tx.execute({
      sql:
        "SELECT seq FROM message_gaps WHERE conversation_id = ? ORDER BY seq",
      args: [conv],
    })).rows.map((r) => toNumber(r.seq));
    const ghostKeys = (await tx.execute({
      sql:
        "SELECT key FROM sync_rows WHERE tbl = 'messages' AND op = 'erase' AND parent = ? AND local IS NOT NULL ORDER BY local, key",
      args: [parentText],
    })).rows.map((r) => r.key as string);
    const values = await this.#readMessages(tx, rows.map((r) => r.id));
    const positions: ({ seq: number; row?: (typeof rows)[number] })[] = [
      ...rows.map((row) => ({ seq: row.seq, row })),
      ...gaps.map((seq) => ({ seq })),
    ].sort((a, b) => a.seq - b.seq);
    const out: SyncChange[] = [];
    const convHlc = (await loadStored(tx, "conversations", [conv])).get(conv)
      ?.hlc ?? clock.now();
    let pred: string | undefined;
    let run = 0;
    let g = 0;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      if (p.row !== undefined) {
        const v = values.get(p.row.id);
        if (v === undefined) continue;
        out.push({
          op: "append",
          table: "messages",
          key: p.row.key,
          hlc: p.row.hlc,
          parent,
          value: v.value,
        });
        pred = p.row.hlc;
        run = 0;
        continue;
      }
      // A gap sorts right after the message before it (or, first in the
      // conversation, before the message after it).
      run++;
      let base: HlcTimestamp;
      if (pred !== undefined) {
        base = parseHlc(pred);
      } else {
        const succ = positions.slice(i).find((x) => x.row !== undefined)?.row
          ?.hlc;
        const s = parseHlc(succ ?? convHlc);
        base = { wall: Math.max(0, s.wall - 1), counter: 0, node: s.node };
      }
      const node = `${base.node}-g${String(run).padStart(5, "0")}`;
      const hlc = formatHlc({
        wall: base.wall,
        counter: base.counter,
        node: node.length <= 64 ? node : base.node,
      });
      let key = ghostKeys[g++];
      if (key === undefined) {
        key = `${this.#id}/gap-${
          createHash("sha256").update(`${conv}\n${p.seq}`).digest("hex").slice(
            0,
            24,
          )
        }`;
        out.push({ op: "erase", table: "messages", key, hlc });
      }
      out.push({
        op: "append",
        table: "messages",
        key,
        hlc,
        parent,
        value: {},
      });
    }
    return out;
  }

  // ---- inbound -----------------------------------------------------------

  async apply(
    changes: readonly SyncChange[],
    range: {
      readonly deviceId: string;
      readonly from: number;
      readonly to: number;
    },
  ): Promise<void> {
    const clock = this.#device.clock;
    // Local rows stamped while applying sort after what arrives.
    for (const c of changes) clock.receive(c.hlc);
    let used: Transaction | undefined;
    await this.#storage.transaction(async (tx) => {
      used = tx;
      const head = (await tx.execute({
        sql: "SELECT head FROM sync_applied WHERE device = ?",
        args: [range.deviceId],
      })).rows[0];
      if (head !== undefined && toNumber(head.head) >= range.to) return;
      const run = new ApplyRun(this, tx, clock);
      for (const c of changes) await run.one(checkSyncChange(c));
      await run.flush();
      await tx.execute({
        sql:
          "INSERT INTO sync_applied (device, head) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET head = excluded.head",
        args: [range.deviceId, range.to],
      });
      if (run.recorded.length > 0) {
        await this.#recorder.record(tx, run.recorded);
      }
    }, "write");
    if (used !== undefined) this.#recorder.committed(used);
  }

  // Accessors for ApplyRun.
  get deviceId(): string {
    return this.#id;
  }
  spec(table: string): TableSpec | undefined {
    return this.#specs.get(table);
  }
  get contents(): SealedColumn {
    return this.#contents;
  }
  get pendingColumn(): SealedColumn {
    return this.#pending;
  }
}

/** One apply transaction. */
class ApplyRun {
  readonly recorded: ChangeInput[] = [];
  #w: Wiring;
  #tx: Transaction;
  #clock: HybridLogicalClock;
  #buffer = new Map<string, SyncWrite[]>();

  constructor(w: Wiring, tx: Transaction, clock: HybridLogicalClock) {
    this.#w = w;
    this.#tx = tx;
    this.#clock = clock;
  }

  async #stored(table: string, key: string): Promise<Stored | undefined> {
    return (await loadStored(this.#tx, table, [key])).get(key);
  }

  /** The stored version of a mutable row, stamping a local change not staged yet. */
  async #version(spec: TableSpec, key: string): Promise<Stored | undefined> {
    const st = await this.#stored(spec.table, key);
    const v = (await spec.read(this.#tx, [key])).get(key);
    const hash = v === undefined ? null : hashOf(spec, v);
    if (st === undefined && v === undefined) return undefined;
    if (
      st !== undefined &&
      (st.op === "erase" ||
        (st.hash === hash &&
          (v === undefined ? st.op !== "put" : st.op === "put")))
    ) return st;
    const parent = v === undefined ? undefined : spec.parent(v);
    const stamped: Stored = {
      op: v === undefined ? spec.tombstone : "put",
      hlc: this.#clock.now(),
      hash,
      local: null,
      parent: parent === undefined ? null : refText(parent),
    };
    await setRow(this.#tx, spec.table, key, stamped);
    return stamped;
  }

  async #parentState(ref: RowRef): Promise<"live" | "erased" | "missing"> {
    const sql = ref.table === "users"
      ? "SELECT 1 AS x FROM users WHERE id = ?"
      : ref.table === "conversations"
      ? "SELECT 1 AS x FROM conversations WHERE id = ?"
      : ref.table === "plugins"
      ? "SELECT 1 AS x FROM plugins WHERE name = ?"
      : undefined;
    if (sql === undefined) return "missing";
    if ((await this.#tx.execute({ sql, args: [ref.key] })).rows.length > 0) {
      return "live";
    }
    return (await this.#stored(ref.table, ref.key))?.op === "erase"
      ? "erased"
      : "missing";
  }

  async #park(parent: RowRef, c: SyncChange): Promise<void> {
    const id = toNumber(
      (await this.#tx.execute(
        "SELECT COALESCE(MAX(id), 0) + 1 AS n FROM sync_pending",
      )).rows[0]!.n,
    );
    const sealed = await this.#w.pendingColumn.seal(id, JSON.stringify(c));
    await this.#tx.execute({
      sql: "INSERT INTO sync_pending (id, parent, change) VALUES (?, ?, ?)",
      args: [id, refText(parent), sealed],
    });
  }

  async #unpark(ref: RowRef): Promise<void> {
    const rs = await this.#tx.execute({
      sql: "SELECT id, change FROM sync_pending WHERE parent = ? ORDER BY id",
      args: [refText(ref)],
    });
    if (rs.rows.length === 0) return;
    await this.#tx.execute({
      sql: "DELETE FROM sync_pending WHERE parent = ?",
      args: [refText(ref)],
    });
    const decoder = new TextDecoder();
    for (const r of rs.rows) {
      const plain = await this.#w.pendingColumn.open(
        toNumber(r.id),
        r.change as Uint8Array,
      );
      await this.one(checkSyncChange(JSON.parse(decoder.decode(plain))));
    }
  }

  async #dropParked(ref: RowRef): Promise<void> {
    await this.#tx.execute({
      sql: "DELETE FROM sync_pending WHERE parent = ?",
      args: [refText(ref)],
    });
  }

  async one(c: SyncChange): Promise<void> {
    if (c.table === "messages") {
      if (c.op === "append") {
        if (c.parent?.table !== "conversations") {
          throw new AicoDataError(
            "CORRUPT_VALUE",
            "Cannot apply synced message: it names no conversation",
          );
        }
        let list = this.#buffer.get(c.parent.key);
        if (list === undefined) this.#buffer.set(c.parent.key, list = []);
        list.push(c);
      } else if (c.op === "erase") {
        await this.flush();
        await this.#eraseMessage(c.key, c.hlc);
      }
      return;
    }
    const spec = this.#w.spec(c.table);
    if (spec === undefined) return; // a table this version does not sync
    await this.flush();
    const stored = await this.#version(spec, c.key);
    if (!wins(stored, c)) {
      if (
        c.op === "put" && spec.table === "conversations" &&
        stored?.op === "put" && typeof c.value.updated_at === "number"
      ) {
        // Last activity merges by its greatest reading, whichever put wins.
        await this.#tx.execute({
          sql:
            "UPDATE conversations SET updated_at = MAX(updated_at, ?) WHERE id = ?",
          args: [c.value.updated_at, c.key],
        });
      }
      return;
    }
    if (c.op === "put" || c.op === "append") {
      const value = c.value as RowValue;
      const parent = spec.parent(value);
      if (parent !== undefined) {
        const state = await this.#parentState(parent);
        if (state === "missing") return await this.#park(parent, c);
        if (state === "erased") return await this.#erase(spec, c.key, c.hlc);
      }
      await spec.write(this.#tx, c.key, value);
      await setRow(this.#tx, spec.table, c.key, {
        op: "put",
        hlc: c.hlc,
        hash: hashOf(spec, value),
        local: null,
        parent: parent === undefined ? null : refText(parent),
      });
      this.recorded.push({
        table: spec.table,
        op: stored === undefined || stored.op !== "put" ? "insert" : "update",
        keys: [c.key],
        ...(spec.table === "conversations" && typeof value.user_id === "string"
          ? { scope: value.user_id }
          : {}),
      });
      await this.#unpark({ table: spec.table, key: c.key });
    } else if (c.op === "delete") {
      if (await spec.remove(this.#tx, c.key)) {
        this.recorded.push({ table: spec.table, op: "delete", keys: [c.key] });
      }
      await setRow(this.#tx, spec.table, c.key, {
        op: "delete",
        hlc: c.hlc,
        hash: null,
        local: null,
        parent: null,
      });
    } else {
      await this.#erase(spec, c.key, c.hlc);
    }
  }

  async #erase(spec: TableSpec, key: string, hlc: string): Promise<void> {
    const ref = { table: spec.table, key };
    if (spec.table === "users") {
      const convs = (await this.#tx.execute({
        sql: "SELECT id FROM conversations WHERE user_id = ?",
        args: [key],
      })).rows.map((r) => r.id as string);
      const cspec = this.#w.spec("conversations")!;
      for (const c of convs) await this.#erase(cspec, c, hlc);
      await this.#tx.execute({
        sql:
          "UPDATE sync_rows SET op = 'erase', hash = NULL WHERE tbl = 'conversations' AND parent = ?",
        args: [refText(ref)],
      });
    }
    if (spec.table === "conversations") {
      const owner = (await this.#tx.execute({
        sql: "SELECT user_id FROM conversations WHERE id = ?",
        args: [key],
      })).rows[0];
      const ids = (await this.#tx.execute({
        sql: "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id",
        args: [key],
      })).rows.map((r) => String(r.id));
      if (ids.length > 0) {
        this.recorded.push({
          table: "messages",
          op: "delete",
          keys: ids,
          scope: key,
        });
      }
      await this.#tx.execute({
        sql:
          "UPDATE sync_rows SET op = 'erase', hash = NULL WHERE tbl = 'messages' AND parent = ?",
        args: [refText(ref)],
      });
      if (owner !== undefined && (await spec.remove(this.#tx, key))) {
        this.recorded.push({
          table: "conversations",
          op: "delete",
          keys: [key],
          ...(typeof owner.user_id === "string"
            ? { scope: owner.user_id }
            : {}),
        });
      }
    } else if (await spec.remove(this.#tx, key)) {
      this.recorded.push({ table: spec.table, op: "delete", keys: [key] });
    }
    await this.#dropParked(ref);
    await setRow(this.#tx, spec.table, key, {
      op: "erase",
      hlc,
      hash: null,
      local: null,
      parent: null,
    });
  }

  async #eraseMessage(key: string, hlc: string): Promise<void> {
    const st = await this.#stored("messages", key);
    if (st?.op === "erase") return;
    if (st !== undefined && st.local !== null) {
      const row = (await this.#tx.execute({
        sql: "SELECT conversation_id, seq FROM messages WHERE id = ?",
        args: [st.local],
      })).rows[0];
      if (row !== undefined) {
        const conv = row.conversation_id as string;
        const seq = toNumber(row.seq);
        await this.#tx.execute({
          sql: "DELETE FROM messages WHERE id = ?",
          args: [st.local],
        });
        // As `deleteMessages` does on the erasing device: the position
        // stays as a recorded gap, so numbering matches on every device.
        await this.#tx.execute({
          sql:
            "INSERT OR IGNORE INTO message_gaps (conversation_id, seq) VALUES (?, ?)",
          args: [conv, seq],
        });
        await this.#tx.execute({
          sql:
            "UPDATE conversations SET message_count = MAX(0, message_count - 1) WHERE id = ?",
          args: [conv],
        });
        this.recorded.push({
          table: "messages",
          op: "delete",
          keys: [String(st.local)],
          scope: conv,
        });
      }
    }
    await setRow(this.#tx, "messages", key, {
      op: "erase",
      hlc,
      hash: null,
      local: st?.local ?? null,
      parent: st?.parent ?? null,
    });
  }

  /** Applies the buffered message appends, per conversation. */
  async flush(): Promise<void> {
    if (this.#buffer.size === 0) return;
    const buffer = this.#buffer;
    this.#buffer = new Map();
    for (const [conv, list] of buffer) {
      const ref = { table: "conversations", key: conv };
      const keys = [...new Set(list.map((c) => c.key))];
      const known = await loadStored(this.#tx, "messages", keys);
      const fresh = new Map<string, SyncWrite>();
      // Erased before this device held them: they still take a position
      // (a recorded gap), as on the devices that held them.
      const ghosts = new Map<string, SyncWrite>();
      for (const c of list) {
        const st = known.get(c.key);
        if (st === undefined) {
          if (!fresh.has(c.key)) fresh.set(c.key, c);
        } else if (st.op === "erase" && st.local === null) {
          ghosts.set(c.key, c);
        }
      }
      if (fresh.size === 0 && ghosts.size === 0) continue;
      const state = await this.#parentState(ref);
      if (state === "missing") {
        for (const c of [...fresh.values(), ...ghosts.values()]) {
          await this.#park(ref, c);
        }
      } else if (state === "erased") {
        for (const c of fresh.values()) {
          await setRow(this.#tx, "messages", c.key, {
            op: "erase",
            hlc: c.hlc,
            hash: null,
            local: null,
            parent: refText(ref),
          });
        }
      } else {
        await this.#insertMessages(
          conv,
          [...fresh.values()],
          [...ghosts.values()],
        );
      }
    }
  }

  async #insertMessages(
    conv: string,
    list: SyncWrite[],
    ghosts: SyncWrite[] = [],
  ): Promise<void> {
    const tx = this.#tx;
    const parentText = refText({ table: "conversations", key: conv });
    // Local messages not staged yet get their clock reading now: after
    // every incoming one (the clock received them).
    const unstamped = (await tx.execute({
      sql:
        "SELECT m.id FROM messages m WHERE m.conversation_id = ? AND NOT EXISTS " +
        "(SELECT 1 FROM sync_rows s INDEXED BY sync_rows_local WHERE s.tbl = 'messages' AND s.local = m.id) ORDER BY m.seq",
      args: [conv],
    })).rows.map((r) => toNumber(r.id));
    for (const id of unstamped) {
      await setRow(tx, "messages", `${this.#w.deviceId}/${id}`, {
        op: "append",
        hlc: this.#clock.now(),
        hash: null,
        local: id,
        parent: parentText,
      });
    }
    list.sort(compareOrder);
    const ghostKeys = new Set(ghosts.map((g) => g.key));
    const first = [...list, ...ghosts].sort(compareOrder)[0]!;
    const conversation = (await tx.execute({
      sql: "SELECT last_seq FROM conversations WHERE id = ?",
      args: [conv],
    })).rows[0]!;
    const lastSeq = toNumber(conversation.last_seq);
    // Messages ordered after the first incoming one move down (seq follows
    // the clock order on every device).
    const tailRows = (await tx.execute({
      sql:
        "SELECT m.id, m.seq, s.hlc, s.key FROM messages m CROSS JOIN sync_rows s INDEXED BY sync_rows_local ON s.tbl = 'messages' AND s.local = m.id " +
        "WHERE m.conversation_id = ? AND s.hlc >= ? ORDER BY m.seq",
      args: [conv, first.hlc.slice(0, 16)],
    })).rows.map((r) => ({
      id: toNumber(r.id),
      seq: toNumber(r.seq),
      hlc: r.hlc as string,
      key: r.key as string,
    }));
    const after = tailRows.filter((t) => compareOrder(t, first) > 0);
    const fromSeq = after.length === 0
      ? lastSeq + 1
      : Math.min(...after.map((t) => t.seq));
    const tail = (await tx.execute({
      sql:
        "SELECT m.id, m.seq, s.hlc, s.key FROM messages m LEFT JOIN sync_rows s INDEXED BY sync_rows_local ON s.tbl = 'messages' AND s.local = m.id " +
        "WHERE m.conversation_id = ? AND m.seq >= ? ORDER BY m.seq",
      args: [conv, fromSeq],
    })).rows.map((r) => ({
      id: toNumber(r.id),
      seq: toNumber(r.seq),
      hlc: (r.hlc as string | null) ?? this.#clock.now(),
      key: (r.key as string | null) ?? `${this.#w.deviceId}/${toNumber(r.id)}`,
      incoming: undefined as SyncWrite | undefined,
    }));
    const merged = [
      ...tail,
      ...[...list, ...ghosts].map((c) => ({
        id: 0,
        seq: 0,
        hlc: c.hlc,
        key: c.key,
        incoming: c as SyncWrite | undefined,
      })),
    ].sort(compareOrder);
    // Recorded gaps (erased positions) in the moved range keep their place
    // just before the message that followed them.
    const gapsBefore = new Map<number, number>();
    let trailingGaps = 0;
    if (tail.length > 0) {
      const gaps = (await tx.execute({
        sql:
          "SELECT seq FROM message_gaps WHERE conversation_id = ? AND seq >= ? ORDER BY seq",
        args: [conv, fromSeq],
      })).rows.map((r) => toNumber(r.seq));
      let g = 0;
      for (const t of tail) {
        let n = 0;
        while (g < gaps.length && gaps[g]! < t.seq) {
          g++;
          n++;
        }
        if (n > 0) gapsBefore.set(t.id, n);
      }
      trailingGaps = gaps.length - g;
      await tx.execute({
        sql:
          "UPDATE messages SET seq = -seq WHERE conversation_id = ? AND seq >= ?",
        args: [conv, fromSeq],
      });
      if (gaps.length > 0) {
        await tx.execute({
          sql:
            "DELETE FROM message_gaps WHERE conversation_id = ? AND seq >= ?",
          args: [conv, fromSeq],
        });
      }
    }
    const newGaps: number[] = [];
    const idBase = toNumber(
      (await tx.execute(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), " +
          "COALESCE((SELECT MAX(id) FROM messages), 0)) AS m",
      )).rows[0]!.m,
    );
    let nextId = idBase;
    const inserts: { id: number; seq: number; c: SyncWrite }[] = [];
    let seq = fromSeq;
    for (const m of merged) {
      if (m.incoming === undefined) {
        for (let k = gapsBefore.get(m.id) ?? 0; k > 0; k--) newGaps.push(seq++);
        await tx.execute({
          sql: "UPDATE messages SET seq = ? WHERE id = ?",
          args: [seq++, m.id],
        });
      } else if (ghostKeys.has(m.key)) {
        newGaps.push(seq++);
        await setRow(tx, "messages", m.key, {
          op: "erase",
          hlc: m.hlc,
          hash: null,
          local: 0, // positioned: a gap, no row
          parent: parentText,
        });
      } else {
        inserts.push({ id: ++nextId, seq: seq++, c: m.incoming });
      }
    }
    for (let k = trailingGaps; k > 0; k--) newGaps.push(seq++);
    for (const g of newGaps) {
      await tx.execute({
        sql: "INSERT INTO message_gaps (conversation_id, seq) VALUES (?, ?)",
        args: [conv, g],
      });
    }
    const sealed = await this.#w.contents.sealBatch(
      inserts.map((x) => ({
        rowKey: x.id,
        value: String(x.c.value.content ?? ""),
      })),
    );
    for (let i = 0; i < inserts.length; i += INSERT_ROWS) {
      const part = inserts.slice(i, i + INSERT_ROWS);
      const args: InValue[] = [];
      for (let k = 0; k < part.length; k++) {
        const x = part[k]!;
        const v = x.c.value;
        if (
          typeof v.role !== "string" || typeof v.content !== "string" ||
          typeof v.created_at !== "number" ||
          (v.model !== null && v.model !== undefined &&
            typeof v.model !== "string")
        ) {
          throw new AicoDataError(
            "CORRUPT_VALUE",
            "Cannot apply synced message: malformed columns",
          );
        }
        args.push(
          x.id,
          conv,
          x.seq,
          v.role,
          sealed[i + k]!,
          v.created_at,
          (v.model ?? null) as string | null,
        );
      }
      await tx.execute({
        sql:
          "INSERT INTO messages (id, conversation_id, seq, role, content, created_at, model) VALUES " +
          part.map(() => "(?, ?, ?, ?, ?, ?, ?)").join(", "),
        args,
      });
      await setRows(
        tx,
        "messages",
        part.map((x) => ({
          key: x.c.key,
          s: {
            op: "append",
            hlc: x.c.hlc,
            hash: null,
            local: x.id,
            parent: parentText,
          },
        })),
      );
    }
    let activity = 0;
    for (const x of inserts) {
      const u = x.c.value.conv_updated_at;
      if (typeof u === "number" && u > activity) activity = u;
    }
    await tx.execute({
      sql:
        "UPDATE conversations SET last_seq = last_seq + ?, message_count = message_count + ?, " +
        "updated_at = MAX(updated_at, ?) WHERE id = ?",
      args: [inserts.length + ghosts.length, inserts.length, activity, conv],
    });
    if (inserts.length > 0) {
      this.recorded.push({
        table: "messages",
        op: "insert",
        keys: inserts.map((x) => String(x.id)),
        scope: conv,
      });
    }
  }
}

/**
 * Wires a store holding the core and sync schemas to a sync device: the
 * returned consumer (register it on the store's change feed) stages every
 * committed change of the synced core tables, and `apply` (pass it to
 * `device.pull`) merges other devices' changes into the tables.
 *
 * @remarks
 * Row versions (`sync_rows`) keep, per synced row, its op, clock reading
 * and a hash of its synced columns: a row whose columns differ from its
 * stored hash was changed here and gets a new reading from the device
 * clock; a row that matches keeps its reading, and one that arrived from
 * another device is not staged again (nothing echoes back).
 *
 * - Messages: `append`, key `<deviceId>/<local id>` of the device that
 *   wrote it; in every conversation `seq` follows the order of (clock
 *   reading, key), so all devices show the same order (local messages
 *   ordered after an arriving one move down); a message erased elsewhere
 *   leaves a recorded gap (`message_gaps`), as `deleteMessages` does here.
 * - Users, conversations: `put`, deleted by `erase`: an erased
 *   conversation takes every message with it, including messages appended
 *   on another device before or after the erase arrives (they are dropped
 *   on arrival); an erased user takes its conversations. An id erased is
 *   retired: a row created again under it stays local.
 * - A conversation's columns are one last-writer-wins register, except
 *   `updated_at` (last activity): appends do not make a new version of the
 *   conversation (a rename here survives an append made meanwhile
 *   elsewhere); each message carries its conversation's `updated_at` and
 *   every device keeps the greatest reading it has seen.
 * - Config, plugins, plugin state: `put` / `delete`, last writer wins by
 *   clock reading.
 * - A change whose parent row has not arrived yet (a folder-sync tool
 *   delivers files in any order) waits, sealed, in `sync_pending`.
 * - Applying is one transaction with the device's applied position
 *   (`sync_applied`): a repeat after a crash is skipped; it records change
 *   events, so the other consumers (memory, analytics) see synced rows.
 *
 * @param storage The store (core and sync schemas migrated).
 * @param recorder The store's change feed.
 * @param device The sync device.
 * @returns The consumer and the applier.
 * @throws {AicoDataError} `INVALID_INPUT` for a bad argument.
 *
 * @example Two stores converge through a folder target
 * ```ts ignore
 * const wiring = createStoreSync(data.storage, data.changes, device);
 * const registration = await data.changes.register(wiring.consumer);
 * await registration.catchUp();
 * await device.push(target);
 * await device.pull(target, wiring.apply);
 * ```
 */
export function createStoreSync(
  storage: Storage,
  recorder: ChangeRecorder,
  device: SyncDevice,
): StoreSync {
  if (typeof storage?.transaction !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot wire sync: expected a Storage",
    );
  }
  if (typeof recorder?.record !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot wire sync: expected a change recorder",
    );
  }
  const w = new Wiring(storage, recorder, device);
  const reader: SyncRowReader = {
    changesFor: (events, clock) => w.changesFor(events, clock),
    snapshot: (clock) => w.snapshot(clock),
  };
  return {
    consumer: createSyncConsumer(device, reader),
    apply: (changes, range) => w.apply(changes, range),
    reader,
    compaction: () => w.compaction(),
  };
}
