/**
 * {@linkcode RepositoryOptions}: the options every repository over the core
 * schema shares (where it records its changes, and its clock).
 *
 * @module
 */
import type { ChangeRecorder } from "../changes/types.ts";
import { checkObject, invalid } from "./_validate.ts";

/** The options shared by the repositories. */
export interface RepositoryOptions {
  /**
   * Where writes record their changes (the change feed of `changes/`),
   * inside the transaction that writes the rows; after commit the feed
   * publishes them and wakes its consumers. Keys per table are documented
   * on `ChangeInput` (messages: ids as decimal strings, scope the
   * conversation id; conversations: ids, scope the user id).
   *
   * @default {undefined} (nothing is recorded)
   */
  readonly changes?: ChangeRecorder;
  /**
   * The clock, ms since the epoch.
   *
   * @default {Date.now}
   */
  readonly now?: () => number;
}

/** The resolved form of {@linkcode RepositoryOptions}. */
export interface ResolvedRepositoryOptions {
  /** See {@linkcode RepositoryOptions.changes}. */
  readonly changes: ChangeRecorder | undefined;
  /** See {@linkcode RepositoryOptions.now}. */
  readonly now: () => number;
}

/**
 * Normalises {@linkcode RepositoryOptions}.
 *
 * @param options The options.
 * @param what What is being created, for error messages.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveRepositoryOptions } from "./repository_options.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveRepositoryOptions();
 * assert.equal(o.changes, undefined);
 * assert.equal(o.now, Date.now);
 * ```
 */
export function resolveRepositoryOptions(
  options: RepositoryOptions = {},
  what = "create repository",
): ResolvedRepositoryOptions {
  const o = checkObject(options, "options", what);
  const now = o.now ?? Date.now;
  if (typeof now !== "function") {
    throw invalid(what, '"now" must be a function');
  }
  const changes = o.changes as ChangeRecorder | undefined;
  if (
    changes !== undefined &&
    (typeof changes?.record !== "function" ||
      typeof changes?.committed !== "function")
  ) {
    throw invalid(what, '"changes" must have record and committed functions');
  }
  return Object.freeze({ changes, now: now as () => number });
}
