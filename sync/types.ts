/**
 * The contracts of device sync: where sealed objects are kept
 * ({@linkcode SyncTarget}) and what a segment carries ({@linkcode SyncChange}).
 *
 * @module
 */

/**
 * A place that keeps immutable named objects for sync: a local folder (kept
 * in sync by Syncthing, Dropbox, iCloud Drive or carried on a USB stick) or a
 * WebDAV server. It sees only opaque names, sizes and times.
 *
 * @remarks
 * Names match {@linkcode SYNC_OBJECT_NAME} (`[a-z0-9][a-z0-9._-]{0,199}`);
 * names starting with `.` are reserved for a target's temporary files and
 * never listed. An object is written once and never replaced: a writer that
 * finds its name taken gets `false` and must not overwrite.
 */
export interface SyncTarget extends AsyncDisposable {
  /** Identifies the target (a folder path or a URL without credentials). */
  readonly id: string;
  /**
   * Lists the names of the objects whose name starts with `prefix`, sorted.
   *
   * @param prefix The start of the names to list (`""` for every object).
   * @returns The names.
   * @throws {AicoDataError} `CONNECTION_FAILED`, `PERMISSION_DENIED`,
   * `STORE_CLOSED`.
   */
  list(prefix?: string): Promise<string[]>;
  /**
   * Reads an object.
   *
   * @param name The object name.
   * @returns Its bytes.
   * @throws {AicoDataError} `NOT_FOUND` when absent, `INVALID_INPUT` for a
   * malformed name, `CONNECTION_FAILED`, `STORE_CLOSED`.
   */
  read(name: string): Promise<Uint8Array>;
  /**
   * Creates an object unless one of that name exists; a reader never sees a
   * partly written object.
   *
   * @param name The object name.
   * @param bytes Its content.
   * @returns `true` when written, `false` when the name was taken (nothing
   * is changed then).
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed name,
   * `CONNECTION_FAILED`, `STORE_CLOSED`.
   */
  writeIfAbsent(name: string, bytes: Uint8Array): Promise<boolean>;
  /**
   * Deletes an object.
   *
   * @param name The object name.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT`, `CONNECTION_FAILED`,
   * `STORE_CLOSED`.
   */
  delete(name: string): Promise<boolean>;
  /** Whether `close()` ran. */
  readonly closed: boolean;
  /**
   * Releases the target; safe to call twice.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
}

/** The form of a sync object name. */
export const SYNC_OBJECT_NAME: RegExp = /^[a-z0-9][a-z0-9._-]{0,199}$/;

/** A JSON value as a sync change carries it. */
export type SyncValue =
  | null
  | boolean
  | number
  | string
  | readonly SyncValue[]
  | { readonly [key: string]: SyncValue };

/** Names a row: its table and its globally unique key. */
export interface RowRef {
  /** The table (`[a-z][a-z0-9_]{0,62}`). */
  readonly table: string;
  /** The row key, unique across devices (1 to 512 characters). */
  readonly key: string;
}

/**
 * One row version as a segment carries it: the row as it must be applied on
 * every other device.
 *
 * @remarks
 * - `append`: a row that is written once and never updated (messages). Its
 *   key is globally unique (for example `<deviceId>/<local id>` or a UUID);
 *   applying it twice is a no-op.
 * - `put`: the whole new value of a mutable row (config, plugin state,
 *   conversation titles); the greatest `hlc` wins.
 * - `delete`: a tombstone for a mutable row that may be written again (a
 *   config key): it wins over writes with a smaller `hlc` and loses to later
 *   ones.
 * - `erase`: a permanent tombstone for a key that is never reused
 *   (conversations, users, messages): it wins over every version of the row,
 *   and every row whose `parent` is an erased row is erased too, whether it
 *   arrives before or after the erase.
 *
 * `hlc` is the `formatHlc()` form of the hybrid logical clock of the
 * writing device when the row was written; it ends with that device's id, so
 * equal clock readings of two devices still order.
 */
export type SyncChange = SyncWrite | SyncTombstone;

/** An `append` or `put` row version. */
export interface SyncWrite extends RowRef {
  /** `append` (write-once rows) or `put` (mutable rows). */
  readonly op: "append" | "put";
  /** The hybrid logical clock of the write. */
  readonly hlc: string;
  /** The row this one belongs to (a message's conversation); erased with it. */
  readonly parent?: RowRef;
  /** The row's columns, plaintext (segments are sealed). */
  readonly value: { readonly [column: string]: SyncValue };
}

/** A `delete` or `erase` tombstone. */
export interface SyncTombstone extends RowRef {
  /** `delete` (last writer wins) or `erase` (permanent, cascades). */
  readonly op: "delete" | "erase";
  /** The hybrid logical clock of the deletion. */
  readonly hlc: string;
}
