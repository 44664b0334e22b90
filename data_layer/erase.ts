/**
 * The shapes of {@linkcode DataLayer.erase} and of retention policies: what
 * to erase, what an erase reports, and the declarative retention policy
 * {@linkcode openDataLayer} applies at open and on a schedule. The machinery
 * lives in `_erase.ts` and `_retention.ts`.
 *
 * @module
 */
import type { KeyringBackend } from "../crypto/mod.ts";
import type { MessageRole } from "../repositories/mod.ts";

/**
 * What to erase: one message (by id), one conversation (by id), one user
 * with everything they own, or everything (`{ all: true }`).
 */
export type EraseScope =
  | { readonly message: number }
  | { readonly conversation: string }
  | { readonly user: string }
  | { readonly all: true };

/** The kind of an erase: the key of its scope, or `retention`. */
export type EraseKind =
  | "message"
  | "conversation"
  | "user"
  | "all"
  | "retention";

/** Options of {@linkcode DataLayer.erase}. */
export interface EraseOptions {
  /**
   * The OS keyring whose copies of the data key `{ all: true }` deletes
   * (`aico-data/<keyId>` of the current, pending and earlier key ids the
   * audit trail names).
   *
   * @default {undefined} (the layer's `keyring` option)
   */
  readonly keyring?: KeyringBackend;
}

/** What an erase removed, counts only. */
export interface EraseReport {
  /** The kind of erase. */
  readonly kind: EraseKind;
  /** Messages removed. */
  readonly messages: number;
  /** Conversations removed. */
  readonly conversations: number;
  /** Users removed (with their credentials). */
  readonly users: number;
  /** Log rows removed (`all`, retention). */
  readonly logs: number;
  /** Configuration and plugin rows removed (`all`). */
  readonly settings: number;
  /** Change-feed event rows removed (every consumer was past them). */
  readonly changeEvents: number;
  /** OS keyring copies of the data key deleted (`all`). */
  readonly keyringCopies: number;
  /**
   * Whether the WAL was checkpointed and truncated to 0 bytes (`false`
   * when another connection kept readers on it: the old frames are
   * overwritten at its next checkpoint).
   */
  readonly checkpointed: boolean;
  /**
   * What this erase could not reach in this folder, one sentence each
   * (empty when it reached everything): another process holding the cache
   * open, a keyring that did not answer, a WAL still read by another
   * connection. Backups and copies made earlier are never reached: see
   * `docs/NOTES.md`.
   */
  readonly unreached: readonly string[];
}

/**
 * A declarative retention policy (`DataLayerOptions.retention`): what is
 * erased once it is old enough. It is applied at open and then every
 * `intervalMinutes`, through the same path as {@linkcode DataLayer.erase}
 * (secure delete, index, vectors, analytics, cache, change feed, WAL
 * truncated), and audited as `retention` with counts only.
 *
 * Ages are measured from a message's `createdAt` and a log row's `ts`.
 * A conversation whose messages are all erased stays, empty (its title and
 * metadata are the user's to erase).
 */
export interface RetentionPolicy {
  /**
   * Messages older than `olderThanDays`, of the listed roles only when
   * `roles` is given (for example tool output after a week).
   *
   * @default {undefined} (kept)
   */
  readonly messages?: {
    readonly olderThanDays: number;
    readonly roles?: readonly MessageRole[];
  };
  /**
   * Log rows older than `olderThanDays`.
   *
   * @default {undefined} (kept)
   */
  readonly logs?: { readonly olderThanDays: number };
  /**
   * Minutes between two applications after the one at open, from one
   * second (`1 / 60`) to a week (the timer is unref'd: it never keeps the
   * process alive, and `close()` clears it).
   *
   * @default {60}
   */
  readonly intervalMinutes?: number;
  /**
   * The clock, ms since the epoch (inject it in tests).
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
}
