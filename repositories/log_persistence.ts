/**
 * Log persistence: a bus subscriber that batches log events into a
 * `LogRepository`, one transaction per batch, with a bounded queue.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import {
  LOG_LEVELS,
  type LogInput,
  type LogLevel,
  type LogRepository,
} from "./log_repository.ts";
import type { MessageBus, TopicMap, Unsubscribe } from "../bus/message_bus.ts";

/** The topics log persistence listens to: `log.<level>` with a log record. */
export type LogTopics = { [topic: `log.${string}`]: LogEvent };

/**
 * A log event: a log record whose `level` may be left out when the topic
 * names it (`log.warn`).
 */
export type LogEvent = Omit<LogInput, "level"> & { readonly level?: LogLevel };

/** Options of {@linkcode createLogPersistence}. */
export interface LogPersistenceOptions {
  /**
   * Records written per transaction.
   *
   * @default {500}
   */
  readonly batchSize?: number;
  /**
   * Longest wait before a partial batch is written, ms.
   *
   * @default {200}
   */
  readonly flushIntervalMs?: number;
  /**
   * Most records queued in memory. When full, an awaited publish
   * (`bus.publishAsync`, {@linkcode LogPersistence.accept}) waits for room;
   * a synchronous `bus.publish` is refused: the record is dropped, counted
   * in {@linkcode LogPersistence.dropped} and reported to `onError` as
   * `QUEUE_FULL`.
   *
   * @default {10_000}
   */
  readonly maxQueue?: number;
  /**
   * The subscription pattern.
   *
   * @default {"log.*"}
   */
  readonly pattern?: `${string}.*`;
  /**
   * Receives dropped (`QUEUE_FULL`), malformed (`INVALID_INPUT`) records and
   * write failures (the batch stays queued and is retried).
   *
   * @default {() => {}}
   */
  readonly onError?: (error: unknown) => void;
}

/** The resolved form of {@linkcode LogPersistenceOptions}. */
export interface ResolvedLogPersistenceOptions {
  /** See {@linkcode LogPersistenceOptions.batchSize}. */
  readonly batchSize: number;
  /** See {@linkcode LogPersistenceOptions.flushIntervalMs}. */
  readonly flushIntervalMs: number;
  /** See {@linkcode LogPersistenceOptions.maxQueue}. */
  readonly maxQueue: number;
  /** See {@linkcode LogPersistenceOptions.pattern}. */
  readonly pattern: `${string}.*`;
  /** See {@linkcode LogPersistenceOptions.onError}. */
  readonly onError: (error: unknown) => void;
}

/**
 * A running log persistence subscriber.
 *
 * @remarks
 * Guarantee: every record accepted before `close()` (a synchronous publish
 * that was not reported `QUEUE_FULL`, or an awaited publish / `accept()` that
 * resolved or was still waiting for room) is written by the time `close()`
 * resolves; if the final write fails, `close()` rejects with that error.
 * Records are validated when accepted, so one malformed record never fails
 * a batch.
 */
export interface LogPersistence {
  /**
   * Queues one record, waiting for room when the queue is full.
   *
   * @param entry The record.
   * @returns When queued (not yet written).
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed record,
   * `STORE_CLOSED` after `close()`.
   */
  accept(entry: LogInput): Promise<void>;
  /**
   * Writes everything queued now.
   *
   * @returns When written.
   * @throws {AicoDataError} the store's error when a write fails.
   */
  flush(): Promise<void>;
  /** Records waiting in memory (queued and waiting for room). */
  readonly queued: number;
  /** Records written so far. */
  readonly written: number;
  /** Records refused with `QUEUE_FULL` so far. */
  readonly dropped: number;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /**
   * Unsubscribes, then writes every accepted record. Safe to call twice.
   *
   * @returns When everything accepted is written.
   * @throws {AicoDataError} the store's error when the final write fails.
   */
  close(): Promise<void>;
  /** Calls `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

function checkPositive(value: unknown, name: string, max: number): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 1 ||
    value > max
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot create log persistence: "${name}" must be an integer in [1, ${max}]`,
    );
  }
  return value;
}

/**
 * Normalises {@linkcode LogPersistenceOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveLogPersistenceOptions } from "./log_persistence.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveLogPersistenceOptions();
 * assert.equal(o.batchSize, 500);
 * assert.equal(o.maxQueue, 10_000);
 * assert.equal(o.pattern, "log.*");
 * ```
 */
export function resolveLogPersistenceOptions(
  options: LogPersistenceOptions = {},
): ResolvedLogPersistenceOptions {
  const batchSize = checkPositive(
    options.batchSize ?? 500,
    "batchSize",
    100_000,
  );
  const flushIntervalMs = checkPositive(
    options.flushIntervalMs ?? 200,
    "flushIntervalMs",
    3_600_000,
  );
  const maxQueue = checkPositive(
    options.maxQueue ?? 10_000,
    "maxQueue",
    10_000_000,
  );
  const pattern = options.pattern ?? "log.*";
  if (typeof pattern !== "string" || !pattern.endsWith(".*")) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot create log persistence: "pattern" must end with ".*"',
    );
  }
  const onError = options.onError ?? (() => {});
  if (typeof onError !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot create log persistence: "onError" must be a function',
    );
  }
  return Object.freeze({
    batchSize,
    flushIntervalMs,
    maxQueue,
    pattern,
    onError,
  });
}

const LEVELS: ReadonlySet<string> = new Set(LOG_LEVELS);

interface Waiter {
  readonly entry: LogInput;
  readonly resolve: () => void;
}

class LogPersistenceImpl implements LogPersistence {
  #repo: LogRepository;
  #o: ResolvedLogPersistenceOptions;
  #queue: LogInput[] = [];
  #waiters: Waiter[] = [];
  #unsubscribe: Unsubscribe;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined;
  #written = 0;
  #dropped = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(
    bus: MessageBus<TopicMap>,
    repo: LogRepository,
    options: ResolvedLogPersistenceOptions,
  ) {
    this.#repo = repo;
    this.#o = options;
    this.#unsubscribe = bus.subscribe(options.pattern, (payload, info) => {
      let entry: LogInput;
      try {
        entry = this.#normalise(payload, info.topic);
      } catch (e) {
        this.#o.onError(e);
        return;
      }
      if (info.awaited) return this.#enqueue(entry, true);
      this.#enqueue(entry, false);
    });
  }

  get queued(): number {
    return this.#queue.length + this.#waiters.length;
  }

  get written(): number {
    return this.#written;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #normalise(payload: unknown, topic: string): LogInput {
    if (typeof payload !== "object" || payload === null) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot persist log from "${topic}": payload must be an object`,
      );
    }
    const p = payload as LogEvent;
    let entry = p as LogInput;
    if (p.level === undefined) {
      const last = topic.slice(topic.lastIndexOf(".") + 1);
      if (!LEVELS.has(last)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot persist log from "${topic}": no level in payload nor topic`,
        );
      }
      entry = { ...p, level: last as LogLevel };
    }
    this.#repo.validate(entry);
    return entry;
  }

  /** Queues or (sync) drops; awaited callers wait for room. */
  #enqueue(entry: LogInput, wait: boolean): Promise<void> | undefined {
    if (this.#queue.length < this.#o.maxQueue && this.#waiters.length === 0) {
      this.#queue.push(entry);
      this.#schedule();
      return undefined;
    }
    if (!wait) {
      this.#dropped++;
      this.#o.onError(
        new AicoDataError(
          "QUEUE_FULL",
          `Cannot persist log: the queue holds ${this.#o.maxQueue} records (use publishAsync to wait)`,
        ),
      );
      return undefined;
    }
    const p = new Promise<void>((resolve) =>
      this.#waiters.push({ entry, resolve })
    );
    this.#schedule();
    return p;
  }

  #admitWaiters(): void {
    while (this.#waiters.length > 0 && this.#queue.length < this.#o.maxQueue) {
      const w = this.#waiters.shift()!;
      this.#queue.push(w.entry);
      w.resolve();
    }
  }

  #schedule(): void {
    if (this.#queue.length + this.#waiters.length >= this.#o.batchSize) {
      this.#clearTimer();
      if (this.#writing === undefined) {
        this.#startWriting().catch((e) => this.#o.onError(e));
      }
      return;
    }
    if (this.#timer === undefined && this.#writing === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#startWriting().catch((e) => this.#o.onError(e));
      }, this.#o.flushIntervalMs);
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Writes until the queue is empty; one writer at a time. */
  #startWriting(): Promise<void> {
    if (this.#writing !== undefined) return this.#writing;
    const run = (async () => {
      try {
        while (this.#queue.length > 0 || this.#waiters.length > 0) {
          this.#admitWaiters();
          const batch = this.#queue.splice(0, this.#o.batchSize);
          this.#admitWaiters();
          try {
            await this.#repo.insertLogs(batch);
          } catch (e) {
            // Keep the batch for the next attempt, in order.
            this.#queue.unshift(...batch);
            throw e;
          }
          this.#written += batch.length;
        }
      } finally {
        this.#writing = undefined;
      }
    })();
    this.#writing = run;
    run.catch(() => {
      // Retry later unless closing (close() reports its own failure).
      if (!this.#closed && this.#timer === undefined) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#startWriting().catch((e) => this.#o.onError(e));
        }, this.#o.flushIntervalMs);
      }
    });
    return run;
  }

  async accept(entry: LogInput): Promise<void> {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        "Cannot persist log: the log persistence is closed",
      );
    }
    this.#repo.validate(entry);
    await this.#enqueue(entry, true);
  }

  async flush(): Promise<void> {
    this.#clearTimer();
    if (this.#writing !== undefined) {
      await this.#writing.catch(() => {});
    }
    await this.#startWriting();
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#unsubscribe();
    this.#closing = this.flush().finally(() => this.#clearTimer());
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts persisting log events published on the bus (`log.<level>`) into a
 * {@linkcode LogRepository}, batched, one transaction per batch.
 *
 * Close it before closing the store: `close()` writes every accepted record.
 *
 * @param bus The bus.
 * @param repository The log repository.
 * @param options See {@linkcode LogPersistenceOptions}.
 * @returns The running subscriber.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options,
 * `STORE_CLOSED` for a closed bus.
 *
 * @example Publishing logs on the bus
 * ```ts
 * import { createLogPersistence } from "./log_persistence.ts";
 * import { createMessageBus } from "../bus/message_bus.ts";
 * import { createLogRepository } from "./log_repository.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const logs = createLogRepository(store.storage);
 * await using bus = createMessageBus();
 * const persistence = createLogPersistence(bus, logs, { batchSize: 100 });
 * for (let i = 0; i < 250; i++) {
 *   bus.publish("log.info", { module: "app", message: `event ${i}` });
 * }
 * await bus.publishAsync("log.error", { module: "app", message: "boom" });
 * await persistence.close();
 * assert.equal((await logs.stats()).total, 251);
 * ```
 */
export function createLogPersistence(
  bus: MessageBus<TopicMap>,
  repository: LogRepository,
  options: LogPersistenceOptions = {},
): LogPersistence {
  if (typeof repository?.insertLogs !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot create log persistence: "repository" must be a LogRepository',
    );
  }
  return new LogPersistenceImpl(
    bus,
    repository,
    resolveLogPersistenceOptions(options),
  );
}
