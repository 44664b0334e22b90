/**
 * The merge rule of sync, as pure functions over row versions, and
 * {@linkcode createReplica}: the reference state that applies them in any
 * order and converges.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AicoDataError } from "../errors.ts";
import { compareHlc, parseHlc } from "./hlc.ts";
import type {
  RowRef,
  SyncChange,
  SyncTombstone,
  SyncValue,
  SyncWrite,
} from "./types.ts";

const TABLE_FORM = /^[a-z][a-z0-9_]{0,62}$/;
const OPS = new Set(["append", "put", "delete", "erase"]);
const OP_RANK: Record<SyncChange["op"], number> = {
  append: 0,
  put: 1,
  delete: 2,
  erase: 3,
};
const MAX_DEPTH = 32;

function invalid(detail: string): AicoDataError {
  return new AicoDataError("INVALID_INPUT", `Invalid sync change: ${detail}`);
}

function checkRef(ref: unknown, what: string): void {
  const r = ref as RowRef;
  if (typeof r !== "object" || r === null) throw invalid(`${what} missing`);
  if (typeof r.table !== "string" || !TABLE_FORM.test(r.table)) {
    throw invalid(`malformed ${what} table`);
  }
  if (
    typeof r.key !== "string" || r.key.length < 1 || r.key.length > 512 ||
    !r.key.isWellFormed()
  ) {
    throw invalid(`malformed ${what} key`);
  }
}

function checkValue(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw invalid("value nested too deeply");
  if (v === null || typeof v === "boolean") return;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw invalid("non-finite number in value");
    return;
  }
  if (typeof v === "string") {
    if (!v.isWellFormed()) throw invalid("lone surrogate in value");
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) checkValue(x, depth + 1);
    return;
  }
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) {
      if (!k.isWellFormed()) throw invalid("lone surrogate in value");
      checkValue(x, depth + 1);
    }
    return;
  }
  throw invalid(`unsupported value type "${typeof v}"`);
}

/**
 * Checks that a value is a well-formed {@linkcode SyncChange} and returns a
 * frozen copy holding only its known fields (a change it returned passes
 * again without a second walk; its `value` is the caller's, not copied).
 *
 * @param change Anything (changes read from segments go through it too).
 * @returns The change.
 * @throws {AicoDataError} `INVALID_INPUT` when malformed.
 *
 * @example A malformed change is refused
 * ```ts
 * import { checkSyncChange } from "./merge.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => checkSyncChange({ op: "put", table: "Bad!", key: "k" }), {
 *   code: "INVALID_INPUT",
 * });
 * ```
 */
export function checkSyncChange(change: unknown): SyncChange {
  const c = change as SyncChange;
  if (typeof c !== "object" || c === null) throw invalid("not an object");
  if (CHECKED.has(c)) return c;
  if (!OPS.has(c.op)) throw invalid(`unknown op "${String(c.op)}"`);
  checkRef(c, "row");
  if (typeof c.hlc !== "string") throw invalid("missing clock reading");
  try {
    parseHlc(c.hlc);
  } catch {
    throw invalid("malformed clock reading");
  }
  if (c.op === "delete" || c.op === "erase") {
    return remember({ op: c.op, table: c.table, key: c.key, hlc: c.hlc });
  }
  const w = c as SyncWrite;
  if (
    typeof w.value !== "object" || w.value === null || Array.isArray(w.value)
  ) {
    throw invalid("value must be an object");
  }
  checkValue(w.value, 0);
  if (w.parent !== undefined) checkRef(w.parent, "parent");
  return remember({
    op: w.op,
    table: w.table,
    key: w.key,
    hlc: w.hlc,
    ...(w.parent === undefined ? {} : {
      parent: Object.freeze({ table: w.parent.table, key: w.parent.key }),
    }),
    value: w.value,
  });
}

/** Changes returned by checkSyncChange (frozen): checked again for free. */
const CHECKED = new WeakSet<object>();

function remember(c: SyncChange): SyncChange {
  Object.freeze(c);
  CHECKED.add(c);
  return c;
}

/**
 * JSON with object keys sorted: one text per value, whatever the key order.
 *
 * @param value A JSON value.
 * @returns Its canonical text.
 *
 * @example Key order does not matter
 * ```ts
 * import { canonicalJson } from "./merge.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(canonicalJson({ b: 1, a: [true, null] }), canonicalJson({ a: [true, null], b: 1 }));
 * ```
 */
export function canonicalJson(value: SyncValue | undefined): string {
  if (value === undefined) return "";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    return `[${value.map((v) => canonicalJson(v)).join(",")}]`;
  }
  const obj = value as { readonly [k: string]: SyncValue };
  const keys = Object.keys(obj).sort();
  return `{${
    keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")
  }}`;
}

function refText(r: RowRef): string {
  return `${r.table}\u0000${r.key}`;
}

function versionText(c: SyncChange): string {
  if (!isWrite(c)) return "";
  return canonicalJson({
    p: c.parent === undefined ? null : [c.parent.table, c.parent.key],
    v: c.value,
  });
}

/**
 * Orders two versions of one row by the merge rule: an `erase` above
 * everything, then by clock reading (whose device id breaks ties), then
 * `delete` above `put` above `append`, then by canonical content. The order
 * is total, so the greater of two versions is the same on every device.
 *
 * @param a A version.
 * @param b Another version of the same row.
 * @returns `-1`, `0` (the same version) or `1`.
 *
 * @example A tombstone wins over an older write and loses to a newer one
 * ```ts
 * import { compareVersions } from "./merge.ts";
 * import assert from "node:assert/strict";
 *
 * const put = { op: "put", table: "config", key: "ui/theme", hlc: "0000000003e80000.a", value: { v: "dark" } } as const;
 * const del = { op: "delete", table: "config", key: "ui/theme", hlc: "0000000007d00000.b" } as const;
 * assert.equal(compareVersions(del, put), 1);
 * assert.equal(compareVersions(del, { ...put, hlc: "000000000bb80000.a" }), -1);
 * ```
 */
export function compareVersions(a: SyncChange, b: SyncChange): -1 | 0 | 1 {
  const ea = a.op === "erase", eb = b.op === "erase";
  if (ea !== eb) return ea ? 1 : -1;
  const byClock = compareHlc(a.hlc, b.hlc);
  if (byClock !== 0) return byClock;
  const byOp = OP_RANK[a.op] - OP_RANK[b.op];
  if (byOp !== 0) return byOp < 0 ? -1 : 1;
  const ta = versionText(a), tb = versionText(b);
  return ta === tb ? 0 : ta < tb ? -1 : 1;
}

/**
 * Merges a remote version of a row into the local one: the winner by
 * {@linkcode compareVersions}. Pure, commutative, associative and idempotent,
 * so devices that have seen the same versions hold the same row whatever the
 * order they saw them in.
 *
 * @param local The local version (`undefined` when the row is unknown).
 * @param remote The incoming version.
 * @returns The version to keep (one of the two).
 * @throws {AicoDataError} `INVALID_INPUT` when the two name different rows.
 *
 * @example Last writer wins per row
 * ```ts
 * import { mergeRow } from "./merge.ts";
 * import assert from "node:assert/strict";
 *
 * const a = { op: "put", table: "config", key: "ui/theme", hlc: "0000000003e80000.a", value: { v: "dark" } } as const;
 * const b = { ...a, hlc: "0000000003e80000.b", value: { v: "light" } } as const;
 * assert.equal(mergeRow(a, b), b);
 * assert.equal(mergeRow(b, a), b);
 * assert.equal(mergeRow(undefined, a), a);
 * ```
 */
export function mergeRow(
  local: SyncChange | undefined,
  remote: SyncChange,
): SyncChange {
  if (local === undefined) return remote;
  if (local.table !== remote.table || local.key !== remote.key) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot merge versions: they name different rows",
    );
  }
  return compareVersions(local, remote) >= 0 ? local : remote;
}

/** What {@linkcode Replica.apply} changed. */
export interface ApplyResult {
  /** Rows whose kept version changed (erasures by cascade included). */
  readonly changed: number;
}

/**
 * Row versions merged by the sync rule: the reference semantics that the
 * database apply side implements, and the state of simulated devices.
 */
export interface Replica {
  /**
   * Merges versions (in any order, any number of times).
   *
   * @param changes Versions, checked with {@linkcode checkSyncChange}.
   * @returns What changed.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed change (nothing
   * of the batch is applied).
   */
  apply(changes: readonly SyncChange[]): ApplyResult;
  /**
   * The kept version of a row, tombstones included.
   *
   * @param table The table.
   * @param key The row key.
   * @returns The version, or `undefined` when never seen.
   */
  get(table: string, key: string): SyncChange | undefined;
  /**
   * The live rows (not deleted, not erased), sorted by table, then clock
   * reading, then key: the order messages are shown in.
   *
   * @param table Only this table.
   * @returns The rows.
   */
  rows(table?: string): SyncWrite[];
  /**
   * Every kept version, tombstones included (to persist the replica).
   *
   * @returns The versions.
   */
  versions(): SyncChange[];
  /**
   * SHA-256 (hex) over the live rows and the tombstoned row names: equal on
   * two replicas exactly when they hold the same content.
   *
   * @returns The hash.
   */
  contentHash(): string;
}

function isWrite(c: SyncChange): c is SyncWrite {
  return c.op === "append" || c.op === "put";
}

class ReplicaImpl implements Replica {
  #rows = new Map<string, SyncChange>();
  /** ref → the parent a write of that row named (kept through deletes). */
  #parents = new Map<string, string>();
  /** parent ref → refs of rows, not erased, that name it as parent. */
  #children = new Map<string, Set<string>>();

  apply(changes: readonly SyncChange[]): ApplyResult {
    const checked = changes.map((c) => checkSyncChange(c));
    let changed = 0;
    for (const c of checked) changed += this.#applyOne(c);
    return { changed };
  }

  #applyOne(change: SyncChange): number {
    const ref = refText(change);
    const current = this.#rows.get(ref);
    const winner = mergeRow(current, change);
    if (isWrite(change) && change.parent !== undefined) {
      if (!this.#parents.has(ref)) {
        this.#parents.set(ref, refText(change.parent));
      }
    }
    if (winner === current) return 0;
    if (winner.op === "erase") return this.#erase(ref, winner);
    const pref = this.#parents.get(ref);
    if (pref !== undefined) {
      if (this.#rows.get(pref)?.op === "erase") {
        return this.#erase(ref, {
          op: "erase",
          table: winner.table,
          key: winner.key,
          hlc: winner.hlc,
        });
      }
      let set = this.#children.get(pref);
      if (set === undefined) this.#children.set(pref, set = new Set());
      set.add(ref);
    }
    this.#rows.set(ref, winner);
    return 1;
  }

  #erase(ref: string, erase: SyncTombstone): number {
    this.#rows.set(ref, erase);
    const pref = this.#parents.get(ref);
    if (pref !== undefined) this.#children.get(pref)?.delete(ref);
    let n = 1;
    const kids = this.#children.get(ref);
    if (kids !== undefined) {
      this.#children.delete(ref);
      for (const kid of kids) {
        const v = this.#rows.get(kid);
        if (v === undefined || v.op === "erase") continue;
        n += this.#erase(kid, {
          op: "erase",
          table: v.table,
          key: v.key,
          hlc: v.hlc,
        });
      }
    }
    return n;
  }

  get(table: string, key: string): SyncChange | undefined {
    return this.#rows.get(refText({ table, key }));
  }

  rows(table?: string): SyncWrite[] {
    const out: SyncWrite[] = [];
    for (const v of this.#rows.values()) {
      if (!isWrite(v)) continue;
      if (table !== undefined && v.table !== table) continue;
      out.push(v);
    }
    return out.sort((a, b) =>
      a.table !== b.table
        ? (a.table < b.table ? -1 : 1)
        : compareHlc(a.hlc, b.hlc) ||
          (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
    );
  }

  versions(): SyncChange[] {
    return [...this.#rows.values()];
  }

  contentHash(): string {
    const lines: string[] = [];
    for (const v of this.#rows.values()) {
      lines.push(
        v.op === "erase"
          ? `x\u0000${refText(v)}`
          : v.op === "delete"
          ? `d\u0000${refText(v)}\u0000${v.hlc}`
          : `w\u0000${refText(v)}\u0000${v.op}\u0000${v.hlc}\u0000${
            versionText(v)
          }`,
      );
    }
    lines.sort();
    const h = createHash("sha256");
    for (const l of lines) h.update(l).update("\n");
    return h.digest("hex");
  }
}

/**
 * Creates a {@linkcode Replica}, optionally from saved versions.
 *
 * @remarks
 * A database applies pulled changes the same way, keeping per synced row
 * its version (`op`, `hlc`, parent) beside the row and a tombstone per
 * deleted or erased key: for each change, `winner = mergeRow(stored,
 * incoming)`; when the winner is the stored version nothing happens; a
 * `put`/`append` winner is written, unless its parent is erased, when it
 * becomes an erase; a `delete` winner removes the row and keeps the
 * tombstone; an `erase` winner removes the row and every row naming it as
 * parent (recursively), each keeping an erase tombstone. All of it in one
 * transaction with the pull position, or idempotently before it.
 *
 * @param versions Versions to start from (from {@linkcode Replica.versions}).
 * @returns The replica.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed version.
 *
 * @example An erased conversation takes the messages appended elsewhere with it
 * ```ts
 * import { createReplica } from "./merge.ts";
 * import assert from "node:assert/strict";
 *
 * const conv = { table: "conversations", key: "c1" };
 * const a = createReplica();
 * a.apply([
 *   { op: "put", ...conv, hlc: "0000000003e80000.a", value: { title: "t" } },
 *   { op: "append", table: "messages", key: "b/1", hlc: "0000000007d00000.b", parent: conv, value: { text: "hi" } },
 *   { op: "erase", ...conv, hlc: "0000000005dc0000.a" },
 * ]);
 * assert.equal(a.rows().length, 0);
 * assert.equal(a.get("messages", "b/1")?.op, "erase");
 * ```
 */
export function createReplica(versions: readonly SyncChange[] = []): Replica {
  const r = new ReplicaImpl();
  r.apply(versions);
  return r;
}
