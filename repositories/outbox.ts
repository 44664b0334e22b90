/**
 * The outbox of cross-store events: repositories insert an event row in the
 * same transaction as their write; after commit the outbox publishes
 * `data.changed.<table>` with `{ keys }` on the bus and marks the row
 * processed. Rows still pending (crash between commit and publish) are
 * published at the next {@linkcode openOutbox}.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { Transaction } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import { num, str } from "./_rows.ts";
import { checkInt, checkObject, invalid } from "./_validate.ts";

/** The payload of a `data.changed.<table>` event. */
export interface DataChanged {
  /** The keys of the changed rows (format documented per repository). */
  readonly keys: string[];
}

/** The topics the outbox publishes: `data.changed.<table>`. */
export type DataChangedTopics = {
  [topic: `data.changed.${string}`]: DataChanged;
};

/** Where the outbox publishes: a `MessageBus` or anything with `publish`. */
export interface OutboxPublisher {
  /** Publishes one event; its return value is ignored. */
  publish(topic: `data.changed.${string}`, payload: DataChanged): unknown;
}

/** Options of {@linkcode openOutbox}. */
export interface OutboxOptions {
  /**
   * The clock, ms since the epoch.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
  /**
   * How long processed rows are kept before `openOutbox` deletes them, ms.
   *
   * @default {86_400_000} (one day)
   */
  readonly keepProcessedMs?: number;
  /**
   * Receives failures of a dispatch after commit (the write itself succeeded;
   * the rows stay pending and are retried at the next dispatch or open).
   *
   * @default {() => {}}
   */
  readonly onError?: (error: unknown) => void;
}

/** The resolved form of {@linkcode OutboxOptions}. */
export interface ResolvedOutboxOptions {
  /** See {@linkcode OutboxOptions.now}. */
  readonly now: () => number;
  /** See {@linkcode OutboxOptions.keepProcessedMs}. */
  readonly keepProcessedMs: number;
  /** See {@linkcode OutboxOptions.onError}. */
  readonly onError: (error: unknown) => void;
}

/**
 * The outbox. Delivery is at least once: a crash after publishing and before
 * marking the row processed publishes it again at the next open.
 */
export interface Outbox {
  /**
   * Inserts an event row inside a caller's transaction (repositories call
   * this; the event is published by the next {@linkcode Outbox.dispatch}).
   *
   * @param tx The open transaction.
   * @param table The changed table (`[a-z_]+`).
   * @param keys The changed keys.
   * @returns When inserted.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed table name.
   */
  enqueue(
    tx: Transaction,
    table: string,
    keys: readonly string[],
  ): Promise<void>;
  /**
   * Publishes every pending row in id order and marks it processed. Never
   * throws: failures go to `onError` and the rows stay pending.
   *
   * @returns How many rows were published.
   */
  dispatch(): Promise<number>;
  /**
   * Counts rows not yet processed.
   *
   * @returns The count.
   */
  pending(): Promise<number>;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /**
   * Waits for a dispatch in progress; later dispatches do nothing. Safe to call twice.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  /** Calls `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Normalises {@linkcode OutboxOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveOutboxOptions } from "./outbox.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveOutboxOptions().keepProcessedMs, 86_400_000);
 * ```
 */
export function resolveOutboxOptions(
  options: OutboxOptions = {},
): ResolvedOutboxOptions {
  const what = "open outbox";
  const o = checkObject(options, "options", what);
  const now = o.now ?? Date.now;
  const onError = o.onError ?? (() => {});
  if (typeof now !== "function") {
    throw invalid(what, '"now" must be a function');
  }
  if (typeof onError !== "function") {
    throw invalid(what, '"onError" must be a function');
  }
  const keepProcessedMs = o.keepProcessedMs === undefined
    ? 86_400_000
    : checkInt(
      o.keepProcessedMs,
      "keepProcessedMs",
      what,
      0,
      Number.MAX_SAFE_INTEGER,
    );
  return Object.freeze({
    now: now as () => number,
    onError: onError as (e: unknown) => void,
    keepProcessedMs,
  });
}

const TABLE_RE = /^[a-z][a-z0-9_]{0,62}$/;
const PAGE = 500;

class OutboxImpl implements Outbox {
  #db: RepositoryStorage;
  #bus: OutboxPublisher;
  #options: ResolvedOutboxOptions;
  #running: Promise<number> | undefined;
  #again = false;
  #closed = false;

  constructor(
    db: RepositoryStorage,
    bus: OutboxPublisher,
    options: ResolvedOutboxOptions,
  ) {
    this.#db = db;
    this.#bus = bus;
    this.#options = options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async enqueue(
    tx: Transaction,
    table: string,
    keys: readonly string[],
  ): Promise<void> {
    if (!TABLE_RE.test(table)) {
      throw invalid("enqueue event", `malformed table name "${table}"`);
    }
    await tx.execute({
      sql: "INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
      args: [
        `data.changed.${table}`,
        JSON.stringify({ keys }),
        this.#options.now(),
      ],
    });
  }

  dispatch(): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    if (this.#running !== undefined) {
      // A dispatch is running: make it loop once more and share its result.
      this.#again = true;
      return this.#running;
    }
    const run = this.#run().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #run(): Promise<number> {
    let published = 0;
    try {
      do {
        this.#again = false;
        for (;;) {
          const rs = await this.#db.execute({
            sql:
              "SELECT id, topic, payload FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT ?",
            args: [PAGE],
          });
          if (rs.rows.length === 0) break;
          const ids: number[] = [];
          for (const row of rs.rows) {
            const topic = str(row.topic) as `data.changed.${string}`;
            let payload: DataChanged;
            try {
              payload = JSON.parse(str(row.payload)) as DataChanged;
            } catch (cause) {
              throw new AicoDataError(
                "CORRUPT_VALUE",
                `Cannot dispatch outbox row "${
                  num(row.id)
                }": payload is not JSON`,
                {
                  cause,
                },
              );
            }
            try {
              this.#bus.publish(topic, payload);
            } catch (e) {
              // A closed bus or a bad topic: report, and still mark it so it is not retried forever.
              this.#options.onError(e);
            }
            ids.push(num(row.id));
            published++;
          }
          await this.#db.execute({
            sql: `UPDATE outbox SET processed_at = ? WHERE id IN (${
              ids.map(() => "?").join(", ")
            })`,
            args: [this.#options.now(), ...ids],
          });
          if (rs.rows.length < PAGE) break;
        }
      } while (this.#again);
    } catch (e) {
      this.#options.onError(e);
    }
    return published;
  }

  async pending(): Promise<number> {
    const rs = await this.#db.execute(
      "SELECT COUNT(*) AS n FROM outbox WHERE processed_at IS NULL",
    );
    return num(rs.rows[0]?.n);
  }

  async purgeProcessed(): Promise<void> {
    await this.#db.execute({
      sql:
        "DELETE FROM outbox WHERE processed_at IS NOT NULL AND processed_at < ?",
      args: [this.#options.now() - this.#options.keepProcessedMs],
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#running !== undefined) await this.#running;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens the outbox over a store holding the core schema: deletes processed
 * rows older than `keepProcessedMs`, then publishes the rows left pending by
 * an earlier run.
 *
 * @param storage The store.
 * @param bus Where events are published (a `MessageBus`).
 * @param options See {@linkcode OutboxOptions}.
 * @returns The outbox; hand it to the repositories' `outbox` option.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options; store errors.
 *
 * @example Config changes reach the bus after commit
 * ```ts
 * import { openOutbox } from "./outbox.ts";
 * import { createConfigRepository } from "./config_repository.ts";
 * import { createMessageBus } from "../bus/message_bus.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * await using bus = createMessageBus();
 * const seen: unknown[] = [];
 * bus.subscribe("data.changed.*", (payload, { topic }) => {
 *   seen.push([topic, payload]);
 * });
 * await using outbox = await openOutbox(store.storage, bus);
 * const config = createConfigRepository(store.storage, { outbox });
 * await config.set("ui", "theme", "dark");
 * assert.deepEqual(seen, [["data.changed.config", { keys: ["ui/theme"] }]]);
 * assert.equal(await outbox.pending(), 0);
 * ```
 */
export async function openOutbox(
  storage: RepositoryStorage,
  bus: OutboxPublisher,
  options: OutboxOptions = {},
): Promise<Outbox> {
  if (typeof bus?.publish !== "function") {
    throw invalid("open outbox", '"bus" must have a publish function');
  }
  const outbox = new OutboxImpl(storage, bus, resolveOutboxOptions(options));
  await outbox.purgeProcessed();
  await outbox.dispatch();
  return outbox;
}
