/**
 * The contract of the durable change feed: what writers record inside their
 * transaction, what consumers receive, and how they register. Implemented by
 * `changes/change_feed.ts`; the vector indexer, the analytics refresher and
 * (later) sync are consumers.
 *
 * @module
 */
import type { Transaction } from "../storage/types.ts";

/** What happened to the rows named by a change. */
export type ChangeOp = "insert" | "update" | "delete";

/**
 * One change as a writer records it, inside the transaction that writes the
 * rows it announces.
 *
 * Conventions of the core repositories (consumers rely on them):
 * - `messages`: keys are message ids (decimal strings), scope the
 *   conversation id; deleting a conversation (or a user) records a
 *   `messages` delete for every message it removes, as well as the
 *   `conversations` delete.
 * - `conversations`: keys are conversation ids, scope the user id when set.
 * - `users`: keys are user ids; `config`: `namespace/key`; `plugin_state`:
 *   `plugin/key`; `plugins`: plugin names; `logs`: log ids.
 */
export interface ChangeInput {
  /** The changed table (`[a-z][a-z0-9_]{0,62}`). */
  readonly table: string;
  /** What happened. */
  readonly op: ChangeOp;
  /** The keys of the changed rows (at least one). */
  readonly keys: readonly string[];
  /** A grouping key, for example the conversation id of messages. */
  readonly scope?: string;
}

/** A committed change as consumers receive it. */
export interface ChangeEvent extends ChangeInput {
  /** The feed position: strictly increasing in commit order. */
  readonly seq: number;
  /** When it was recorded, ms since the epoch. */
  readonly at: number;
}

/** What a consumer's handler is given besides the batch. */
export interface ChangeBatchContext {
  /** Aborted when the feed closes or the caller's signal aborts. */
  readonly signal: AbortSignal;
}

/**
 * A durable consumer. Its cursor lives in the database and advances only
 * after `handle()` resolves (at-least-once delivery): a handler must be
 * idempotent, re-reading rows by key (a missing row means deleted).
 */
export interface ChangeConsumer {
  /** A stable name (`[a-z][a-z0-9_.-]{0,63}`): the key of its cursor. */
  readonly name: string;
  /**
   * Only events of these tables are handed to `handle()` (the cursor still
   * moves past the others).
   *
   * @default {undefined} (every table)
   */
  readonly tables?: readonly string[];
  /**
   * At most this many events per `handle()` call.
   *
   * @default {500}
   */
  readonly batchSize?: number;
  /**
   * Called once, when the consumer has no cursor yet (first registration, or
   * after `reset`), to build its state from the tables themselves; the
   * cursor then starts at the feed position read before the call, so no
   * change committed meanwhile is missed.
   *
   * @default {undefined} (start at the current position with nothing to build)
   */
  backfill?(context: ChangeBatchContext): Promise<void>;
  /**
   * Applies a batch (events in `seq` order). A rejection leaves the cursor
   * where it was; the batch is retried at the next wake-up or open.
   */
  handle(
    batch: readonly ChangeEvent[],
    context: ChangeBatchContext,
  ): Promise<void>;
}

/** A consumer's position, as `ChangeFeed.status()` reports it. */
export interface ConsumerStatus {
  /** The consumer name. */
  readonly name: string;
  /** The `seq` of the last event it handled. */
  readonly cursor: number;
  /** How many events are recorded after its cursor. */
  readonly lag: number;
  /** Whether it is registered in this process (a cursor may outlive it). */
  readonly active: boolean;
  /** The message of its last failure, if the last attempt failed. */
  readonly lastError?: string;
}

/** A registered consumer. */
export interface ConsumerRegistration {
  /** The consumer name. */
  readonly name: string;
  /**
   * Runs the consumer until it has handled every event committed so far.
   *
   * @param options `signal` stops the wait (the cursor stays consistent).
   * @returns When caught up.
   * @throws The handler's error when a batch fails.
   */
  catchUp(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /**
   * Stops delivering to it in this process; its cursor stays (events above
   * it are kept for its next registration).
   */
  stop(): Promise<void>;
  /** Stops it and deletes its cursor, so events are no longer kept for it. */
  unregister(): Promise<void>;
}

/** Where writers record changes: the narrow seam repositories call. */
export interface ChangeRecorder {
  /**
   * Records changes inside the writer's open transaction.
   *
   * @param tx The open transaction that writes the rows.
   * @param changes What changed.
   * @returns When recorded.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed change.
   */
  record(tx: Transaction, changes: readonly ChangeInput[]): Promise<void>;
  /**
   * Tells the feed that a transaction committed: it publishes the changes
   * on the bus (cache invalidation, at most once, in process) and wakes the
   * consumers. Never throws.
   *
   * @param tx The transaction that committed.
   */
  committed(tx: Transaction): void;
}

/** The durable change feed. */
export interface ChangeFeed extends ChangeRecorder, AsyncDisposable {
  /**
   * Registers a durable consumer and starts delivering to it in the
   * background (first its `backfill`, when it has no cursor).
   *
   * @param consumer The consumer.
   * @returns Its registration.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed or duplicate name.
   */
  register(consumer: ChangeConsumer): Promise<ConsumerRegistration>;
  /**
   * Waits until every active consumer has handled every event committed so far.
   *
   * @param options `signal` stops the wait.
   * @returns When caught up.
   */
  drain(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /**
   * The feed position: the `seq` of the newest recorded event (0 if none).
   *
   * @returns The position.
   */
  head(): Promise<number>;
  /**
   * Every known consumer with its cursor and lag.
   *
   * @returns The statuses, by name.
   */
  status(): Promise<ConsumerStatus[]>;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /**
   * Stops every consumer (waits for a batch in progress); safe to call twice.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
}
