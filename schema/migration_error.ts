/**
 * The error raised for a problem tied to a schema (and often one version and
 * one statement of it).
 *
 * @module
 */

import { AicoDataError, type AicoDataErrorCode } from "../errors.ts";

/** Where a {@linkcode MigrationError} happened. */
export interface MigrationErrorDetails {
  /** The schema name. */
  readonly schema: string;
  /** The version concerned, when one is. */
  readonly version?: number | undefined;
  /** The 0-based index of the statement concerned within the version, when one is. */
  readonly statementIndex?: number | undefined;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * An {@linkcode AicoDataError} that also says which schema, version and
 * statement it is about. Codes: `MIGRATION_FAILED`, `MIGRATION_CHECKSUM`,
 * `MIGRATION_IRREVERSIBLE`, `PLUGIN_ISOLATION`, `SCHEMA_INVALID`.
 *
 * @example Reading the details of a failure
 * ```ts
 * import { MigrationError } from "./migration_error.ts";
 * import { isAicoDataError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const err = new MigrationError(
 *   "MIGRATION_FAILED",
 *   'Cannot apply "notes" version 2: statement 1 failed',
 *   { schema: "notes", version: 2, statementIndex: 1 },
 * );
 * assert.ok(isAicoDataError(err, "MIGRATION_FAILED"));
 * assert.equal(err.schema, "notes");
 * assert.equal(err.version, 2);
 * assert.equal(err.statementIndex, 1);
 * ```
 */
export class MigrationError extends AicoDataError {
  /** The schema name. */
  readonly schema: string;
  /** The version concerned, or `undefined`. */
  readonly version: number | undefined;
  /** The 0-based statement index within the version, or `undefined`. */
  readonly statementIndex: number | undefined;

  /**
   * Creates the error.
   *
   * @param code The stable code.
   * @param message A sentence-case message without a final period.
   * @param details The schema, version, statement index and cause.
   */
  constructor(
    code: AicoDataErrorCode,
    message: string,
    details: MigrationErrorDetails,
  ) {
    super(
      code,
      message,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.schema = details.schema;
    this.version = details.version;
    this.statementIndex = details.statementIndex;
  }
}
