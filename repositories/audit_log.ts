/**
 * The audit trail: security events (unlock, failed unlock, lockout, key
 * rotation, passphrase change, backup, export, erase, restore, retention)
 * in an append-only table whose rows are sealed and hash-chained, so that a
 * removed, edited or reordered row is reported by {@linkcode AuditLog.verify}.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { registerSchema, type SchemaDefinition } from "../schema/mod.ts";
import type { Row, Transaction } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import { bytes, num, str } from "./_rows.ts";

/** The kinds of security event the audit trail records. */
export const AUDIT_KINDS: readonly [
  "unlock",
  "unlock_failed",
  "lockout",
  "key_rotation",
  "passphrase_change",
  "backup",
  "export",
  "erase",
  "restore",
  "retention",
] = Object.freeze(
  [
    "unlock",
    "unlock_failed",
    "lockout",
    "key_rotation",
    "passphrase_change",
    "backup",
    "export",
    "erase",
    "restore",
    "retention",
  ] as const,
);

/** A kind of security event. */
export type AuditKind = typeof AUDIT_KINDS[number];

/**
 * What an audit event says besides its kind and time: a flat object of at
 * most 16 fields of short strings, finite numbers, booleans or null.
 * Record ids, counts and key fingerprints here; never key material,
 * passphrases or message content.
 */
export type AuditDetails = Readonly<
  Record<string, string | number | boolean | null>
>;

/** One recorded audit event. */
export interface AuditEvent {
  /** Its position in the trail: 1, 2, 3, ... without gaps. */
  readonly seq: number;
  /** When it happened, ms since the epoch. */
  readonly at: number;
  /** What happened. */
  readonly kind: AuditKind;
  /** The details. */
  readonly details: AuditDetails;
}

/** One problem {@linkcode AuditLog.verify} found. */
export interface AuditProblem {
  /** The row (or, for `missing`, the first absent position). */
  readonly seq: number;
  /**
   * `edited`: the row's sealed body does not open, or its columns do not
   * match what was sealed; `missing`: positions absent before this row;
   * `chain`: the row does not follow the one before it (removed or
   * reordered rows).
   */
  readonly problem: "edited" | "missing" | "chain";
}

/** What {@linkcode AuditLog.verify} found. */
export interface AuditVerifyReport {
  /** `true` when every row opens and the chain is unbroken. */
  readonly ok: boolean;
  /** How many rows were read. */
  readonly count: number;
  /** The problems, in trail order. */
  readonly problems: readonly AuditProblem[];
}

/** Options of {@linkcode AuditLog.list}. */
export interface AuditListOptions {
  /** Only events after this `seq`. @default {0} */
  readonly after?: number;
  /** At most this many (1 to 10,000). @default {100} */
  readonly limit?: number;
  /** Only events of this kind. @default {undefined} */
  readonly kind?: AuditKind;
}

/** Options of {@linkcode AuditLog.record}. */
export interface AuditRecordOptions {
  /** Record inside this open transaction. @default {undefined} (its own) */
  readonly tx?: Transaction;
  /** The event time, ms since the epoch. @default {the log's clock} */
  readonly at?: number;
}

/** The append-only, sealed, hash-chained audit trail. */
export interface AuditLog {
  /**
   * Appends an event.
   *
   * @param kind What happened.
   * @param details Ids, counts, fingerprints (see {@linkcode AuditDetails}).
   * @param options A transaction to join, the event time.
   * @returns The recorded event.
   * @throws {AicoDataError} `INVALID_INPUT` for an unknown kind or bad details.
   */
  record(
    kind: AuditKind,
    details?: AuditDetails,
    options?: AuditRecordOptions,
  ): Promise<AuditEvent>;
  /**
   * Lists events in trail order.
   *
   * @param options Position, limit, kind.
   * @returns The events.
   * @throws {AicoDataError} `AUTH_FAILED` when a listed row was tampered with
   *   (run {@linkcode AuditLog.verify} for a full report).
   */
  list(options?: AuditListOptions): Promise<AuditEvent[]>;
  /**
   * Reads the whole trail and checks every row: its sealed body opens, its
   * columns match what was sealed, positions have no gaps, and each row's
   * chain link names the hash of the row before it.
   *
   * @returns The report; never throws for tampering.
   */
  verify(): Promise<AuditVerifyReport>;
}

/** Options of {@linkcode createAuditLog}. */
export interface AuditLogOptions {
  /** The clock, ms since the epoch. @default {Date.now} */
  readonly now?: () => number;
}

const KIND_LIST = AUDIT_KINDS.map((k) => `'${k}'`).join(", ");

/**
 * The audit schema (owner `"core"`): table `audit_events` with its sealed
 * `body` column declared, so key rotation re-seals it, and triggers that
 * refuse deleting rows or changing their position, time or kind.
 *
 * @example The sealed column is declared
 * ```ts
 * import { auditSchema } from "./audit_log.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(auditSchema.sealedColumns.map((c) => c.column), ["body"]);
 * ```
 */
export const auditSchema: SchemaDefinition = registerSchema("audit", "core", {
  priority: 10,
  sealedColumns: [{ table: "audit_events", column: "body", rowKey: "seq" }],
}, [{
  version: 1,
  name: "create_audit_events",
  description: "Append-only, sealed, hash-chained security events",
  up: [
    `CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN (${KIND_LIST})),
  body BLOB NOT NULL
)`,
    `CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit events are append-only');
END`,
    `CREATE TRIGGER audit_events_no_move BEFORE UPDATE OF seq, at, kind ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit events are append-only');
END`,
  ],
  down: [
    "DROP TRIGGER audit_events_no_move",
    "DROP TRIGGER audit_events_no_delete",
    "DROP TABLE audit_events",
  ],
}]);

const GENESIS = "0".repeat(64);
const FIELD = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
const MAX_FIELDS = 16;
const MAX_TEXT = 200;
const PAGE = 500;

function invalid(detail: string): AicoDataError {
  return new AicoDataError(
    "INVALID_INPUT",
    `Cannot record audit event: ${detail}`,
  );
}

function checkKind(kind: unknown): AuditKind {
  if (!(AUDIT_KINDS as readonly unknown[]).includes(kind)) {
    throw invalid(`unknown kind "${String(kind)}"`);
  }
  return kind as AuditKind;
}

function checkDetails(details: unknown): AuditDetails {
  if (
    typeof details !== "object" || details === null || Array.isArray(details)
  ) {
    throw invalid("details must be a plain object");
  }
  const entries = Object.entries(details);
  if (entries.length > MAX_FIELDS) {
    throw invalid(`details may have at most ${MAX_FIELDS} fields`);
  }
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, value] of entries.sort(([a], [b]) => a < b ? -1 : 1)) {
    if (!FIELD.test(name)) throw invalid(`malformed field name "${name}"`);
    if (typeof value === "string") {
      if (value.length > MAX_TEXT) {
        throw invalid(`field "${name}" is longer than ${MAX_TEXT} characters`);
      }
      if (!value.isWellFormed()) {
        throw invalid(`field "${name}" has a lone surrogate`);
      }
    } else if (typeof value === "number") {
      if (!Number.isFinite(value)) {
        throw invalid(`field "${name}" must be a finite number`);
      }
    } else if (typeof value !== "boolean" && value !== null) {
      throw invalid(
        `field "${name}" must be a string, number, boolean or null`,
      );
    }
    out[name] = value as string | number | boolean | null;
  }
  return Object.freeze(out);
}

/** The chain hash of a row: its position, time, kind, details and the previous hash. */
function chainHash(
  prev: string,
  seq: number,
  at: number,
  kind: string,
  details: AuditDetails,
): string {
  return createHash("sha256")
    .update(`aico/audit/v1\n${prev}\n${seq}\n${at}\n${kind}\n`)
    .update(JSON.stringify(details))
    .digest("hex");
}

interface Body {
  readonly details: AuditDetails;
  readonly prev: string;
  readonly hash: string;
}

function parseBody(plain: Uint8Array): Body | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(plain)) as Body;
    if (
      typeof v !== "object" || v === null ||
      typeof v.prev !== "string" || typeof v.hash !== "string" ||
      typeof v.details !== "object" || v.details === null
    ) return undefined;
    return v;
  } catch {
    return undefined;
  }
}

class AuditLogImpl implements AuditLog {
  #db: RepositoryStorage;
  #now: () => number;

  constructor(db: RepositoryStorage, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  #column() {
    return this.#db.sealedColumn("audit_events", "body");
  }

  async record(
    kind: AuditKind,
    details: AuditDetails = {},
    options: AuditRecordOptions = {},
  ): Promise<AuditEvent> {
    const k = checkKind(kind);
    const d = checkDetails(details);
    const at = options.at ?? this.#now();
    if (!Number.isSafeInteger(at) || at < 0) {
      throw invalid('"at" must be a non-negative integer');
    }
    const write = async (tx: Transaction): Promise<AuditEvent> => {
      const last = await tx.execute(
        "SELECT seq, body FROM audit_events ORDER BY seq DESC LIMIT 1",
      );
      let seq = 1;
      let prev = GENESIS;
      const row = last.rows[0];
      if (row !== undefined) {
        seq = num(row.seq) + 1;
        const body = parseBody(
          await this.#column().open(num(row.seq), bytes(row.body)),
        );
        if (body === undefined) {
          throw new AicoDataError(
            "CORRUPT_VALUE",
            `Cannot record audit event: audit row "${num(row.seq)}" is damaged`,
          );
        }
        prev = body.hash;
      }
      const hash = chainHash(prev, seq, at, k, d);
      const sealed = await this.#column().seal(
        seq,
        JSON.stringify({ details: d, prev, hash }),
      );
      await tx.execute({
        sql:
          "INSERT INTO audit_events (seq, at, kind, body) VALUES (?, ?, ?, ?)",
        args: [seq, at, k, sealed],
      });
      return Object.freeze({ seq, at, kind: k, details: d });
    };
    return options.tx !== undefined
      ? await write(options.tx)
      : await this.#db.transaction(write);
  }

  async list(options: AuditListOptions = {}): Promise<AuditEvent[]> {
    const after = options.after ?? 0;
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new AicoDataError(
        "INVALID_INPUT",
        'Cannot list audit events: "after" must be a non-negative integer',
      );
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
      throw new AicoDataError(
        "INVALID_INPUT",
        'Cannot list audit events: "limit" must be an integer from 1 to 10000',
      );
    }
    const kind = options.kind === undefined
      ? undefined
      : checkKind(options.kind);
    const rs = await this.#db.execute({
      sql: `SELECT seq, at, kind, body FROM audit_events WHERE seq > ?${
        kind === undefined ? "" : " AND kind = ?"
      } ORDER BY seq LIMIT ?`,
      args: kind === undefined ? [after, limit] : [after, kind, limit],
    });
    const opened = await this.#column().openBatch(
      rs.rows.map((r) => ({ rowKey: num(r.seq), sealed: bytes(r.body) })),
    );
    return rs.rows.map((r, i) => {
      const body = parseBody(opened[i]!);
      if (body === undefined) {
        throw new AicoDataError(
          "CORRUPT_VALUE",
          `Cannot list audit events: audit row "${num(r.seq)}" is damaged`,
        );
      }
      return Object.freeze({
        seq: num(r.seq),
        at: num(r.at),
        kind: str(r.kind) as AuditKind,
        details: Object.freeze({ ...body.details }),
      });
    });
  }

  async verify(): Promise<AuditVerifyReport> {
    const problems: AuditProblem[] = [];
    let count = 0;
    let expectedSeq = 1;
    let prev = GENESIS;
    let after = -1;
    for (;;) {
      const rs = await this.#db.execute({
        sql:
          "SELECT seq, at, kind, body FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
        args: [after, PAGE],
      });
      for (const row of rs.rows) {
        count++;
        const checked = await this.#check(row);
        const seq = checked.seq;
        after = seq;
        if (seq !== expectedSeq) {
          problems.push({ seq: expectedSeq, problem: "missing" });
        }
        expectedSeq = seq + 1;
        if (checked.body === undefined) {
          problems.push({ seq, problem: "edited" });
          prev = "";
          continue;
        }
        if (checked.body.prev !== prev && prev !== "") {
          problems.push({ seq, problem: "chain" });
        }
        if (checked.hash !== checked.body.hash) {
          problems.push({ seq, problem: "edited" });
        }
        prev = checked.body.hash;
      }
      if (rs.rows.length < PAGE) break;
    }
    return Object.freeze({
      ok: problems.length === 0,
      count,
      problems: Object.freeze(problems),
    });
  }

  async #check(
    row: Row,
  ): Promise<{ seq: number; body: Body | undefined; hash: string }> {
    const seq = typeof row.seq === "number" ? row.seq : Number(row.seq);
    let body: Body | undefined;
    try {
      body = parseBody(await this.#column().open(seq, bytes(row.body)));
    } catch (err) {
      if (!isAicoDataError(err)) throw err;
    }
    const hash = body === undefined ? "" : chainHash(
      body.prev,
      seq,
      typeof row.at === "number" ? row.at : Number(row.at),
      String(row.kind),
      body.details,
    );
    return { seq, body, hash };
  }
}

/**
 * Creates the audit trail over a store holding {@linkcode auditSchema}.
 *
 * Rows are sealed with the `field-aead` key bound to their position; each
 * sealed body holds the SHA-256 chain link of the row before it. What
 * `verify()` cannot detect inside one file: the newest rows removed
 * together (the trail then ends earlier, consistently), or the whole file
 * replaced by an older copy.
 *
 * @param storage The store.
 * @param options The clock.
 * @returns The {@linkcode AuditLog}.
 *
 * @example Record, list, verify
 * ```ts
 * import { auditSchema, createAuditLog } from "./audit_log.ts";
 * import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
 * import { openStorage } from "../storage/mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using db = await openStorage(`${dir}/app.db`, { key: await importDataKey(generateDataKey()) });
 *   await (await openMigrator(db, createSchemaRegistry([auditSchema]))).migrate();
 *   const audit = createAuditLog(db);
 *   await audit.record("unlock", { method: "passphrase" });
 *   await audit.record("key_rotation", { keyId: "k2" });
 *   assert.deepEqual((await audit.list()).map((e) => e.kind), ["unlock", "key_rotation"]);
 *   assert.equal((await audit.verify()).ok, true);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function createAuditLog(
  storage: RepositoryStorage,
  options: AuditLogOptions = {},
): AuditLog {
  const now = options.now ?? Date.now;
  if (typeof now !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot create audit log: "now" must be a function',
    );
  }
  return new AuditLogImpl(storage, now);
}
