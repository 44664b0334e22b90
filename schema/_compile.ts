/**
 * Validation and compilation of schema definitions: name rules, contiguous
 * versions, statement splitting, static isolation checks and checksums.
 *
 * Internal to `schema/`.
 *
 * @module
 */

import type { Transaction } from "../storage/types.ts";
import {
  analyseStatement,
  checkStatement,
  pluginPrefix,
} from "./_isolation.ts";
import {
  splitStatements,
  type SqlStatement,
  SqlSyntaxError,
} from "../_internal/sql_lexer.ts";
import { normalizeText, normalizeTokens } from "./_sql.ts";
import { MigrationError } from "./migration_error.ts";

/** A migration written as code: it receives the version's transaction. */
export type MigrationFunction = (tx: Transaction) => Promise<void>;

/** One direction of a version: SQL text (one or more statements), a list of them, or a function. */
export type MigrationStep = string | readonly string[] | MigrationFunction;

/** A compiled step. */
export type CompiledStep =
  | { readonly kind: "sql"; readonly statements: readonly SqlStatement[] }
  | { readonly kind: "function"; readonly fn: MigrationFunction };

/** A validated, compiled version. */
export interface CompiledVersion {
  readonly version: number;
  readonly name: string;
  readonly up: CompiledStep;
  readonly down: CompiledStep | undefined;
  readonly irreversible: boolean;
  /** The text hashed into the checksum. */
  readonly checksumSource: string;
}

/** The shape of a version as given by the caller (validated here). */
export interface RawVersion {
  readonly version: number;
  readonly name: string;
  readonly description?: string | undefined;
  readonly up: MigrationStep;
  readonly down?: MigrationStep | undefined;
  readonly irreversible?: boolean | undefined;
  readonly checksumKey?: string | undefined;
}

/** Schema names: a lowercase letter, then up to 62 of `[a-z0-9_]`. */
export const SCHEMA_NAME = /^[a-z][a-z0-9_]{0,62}$/;
/**
 * Plugin names: a lowercase letter, then up to 62 of `[a-z0-9]`. No `_`, so
 * that no plugin's prefix `plugin_<name>_` is a prefix of another's.
 */
export const PLUGIN_NAME = /^[a-z][a-z0-9]{0,62}$/;

const VERSION_KEYS = new Set([
  "version",
  "name",
  "description",
  "up",
  "down",
  "irreversible",
  "checksumKey",
]);

function invalid(
  schema: string,
  message: string,
  version?: number,
  cause?: unknown,
): MigrationError {
  return new MigrationError("SCHEMA_INVALID", message, {
    schema,
    version,
    cause,
  });
}

/**
 * Validates a schema's name, owner and priority.
 *
 * @throws {MigrationError} `SCHEMA_INVALID` on a bad value.
 */
export function validateHeader(
  name: unknown,
  owner: unknown,
  priority: unknown,
): void {
  const schema = typeof name === "string" ? name : String(name);
  if (typeof name !== "string" || !SCHEMA_NAME.test(name)) {
    throw invalid(
      schema,
      `Cannot register schema "${schema}": the name must match ${SCHEMA_NAME}`,
    );
  }
  if (
    typeof owner !== "string" || (owner !== "core" && !PLUGIN_NAME.test(owner))
  ) {
    throw invalid(
      schema,
      `Cannot register schema "${schema}": owner "${
        String(owner)
      }" must be "core" or a plugin name matching ${PLUGIN_NAME}`,
    );
  }
  if (typeof priority !== "number" || !Number.isSafeInteger(priority)) {
    throw invalid(
      schema,
      `Cannot register schema "${schema}": priority "${
        String(priority)
      }" must be an integer`,
    );
  }
}

function compileStep(
  schema: string,
  owner: string,
  version: number,
  direction: "up" | "down",
  step: unknown,
): CompiledStep {
  if (typeof step === "function") {
    return { kind: "function", fn: step as MigrationFunction };
  }
  const parts = typeof step === "string" ? [step] : step;
  if (!Array.isArray(parts) || parts.some((p) => typeof p !== "string")) {
    throw invalid(
      schema,
      `Cannot register schema "${schema}" version ${version}: "${direction}" must be SQL text, a list of SQL texts or a function`,
      version,
    );
  }
  const statements: SqlStatement[] = [];
  for (const part of parts as string[]) {
    try {
      statements.push(...splitStatements(part));
    } catch (e) {
      if (!(e instanceof SqlSyntaxError)) throw e;
      throw invalid(
        schema,
        `Cannot register schema "${schema}" version ${version}: "${direction}" is malformed: ${e.message}`,
        version,
        e,
      );
    }
  }
  if (statements.length === 0) {
    throw invalid(
      schema,
      `Cannot register schema "${schema}" version ${version}: "${direction}" has no statement`,
      version,
    );
  }
  statements.forEach((s, index) => {
    const violation = checkStatement(owner, analyseStatement(s.tokens));
    if (violation !== undefined) {
      throw new MigrationError(
        violation.code,
        `Cannot register schema "${schema}" version ${version}: ${direction} statement ${index} refused: ${violation.reason}`,
        { schema, version, statementIndex: index },
      );
    }
  });
  return { kind: "sql", statements };
}

/**
 * Validates and compiles the versions of a schema.
 *
 * @returns The versions sorted by number, contiguous from 1.
 * @throws {MigrationError} `SCHEMA_INVALID` or `PLUGIN_ISOLATION`.
 */
export function compileVersions(
  schema: string,
  owner: string,
  versions: unknown,
): CompiledVersion[] {
  if (!Array.isArray(versions) || versions.length === 0) {
    throw invalid(
      schema,
      `Cannot register schema "${schema}": versions must be a non-empty array`,
    );
  }
  const compiled: CompiledVersion[] = [];
  for (const raw of versions as unknown[]) {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw invalid(
        schema,
        `Cannot register schema "${schema}": every version must be an object`,
      );
    }
    const v = raw as Record<string, unknown>;
    const n = v.version;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
      throw invalid(
        schema,
        `Cannot register schema "${schema}": version "${
          String(n)
        }" must be an integer of at least 1`,
      );
    }
    for (const key of Object.keys(v)) {
      if (!VERSION_KEYS.has(key)) {
        throw invalid(
          schema,
          `Cannot register schema "${schema}" version ${n}: unknown field "${key}"`,
          n,
        );
      }
    }
    if (
      typeof v.name !== "string" || v.name.trim() === "" ||
      v.name.length > 200 || /[\p{Cc}]/u.test(v.name)
    ) {
      throw invalid(
        schema,
        `Cannot register schema "${schema}" version ${n}: name must be 1 to 200 printable characters`,
        n,
      );
    }
    if (v.description !== undefined && typeof v.description !== "string") {
      throw invalid(
        schema,
        `Cannot register schema "${schema}" version ${n}: description must be a string`,
        n,
      );
    }
    if (v.irreversible !== undefined && typeof v.irreversible !== "boolean") {
      throw invalid(
        schema,
        `Cannot register schema "${schema}" version ${n}: irreversible must be a boolean`,
        n,
      );
    }
    const irreversible = v.irreversible === true;
    if (irreversible && v.down !== undefined) {
      throw invalid(
        schema,
        `Cannot register schema "${schema}" version ${n}: an irreversible version cannot have "down"`,
        n,
      );
    }
    const up = compileStep(schema, owner, n, "up", v.up);
    const down = v.down === undefined
      ? undefined
      : compileStep(schema, owner, n, "down", v.down);
    if (v.checksumKey !== undefined) {
      if (typeof v.checksumKey !== "string" || v.checksumKey === "") {
        throw invalid(
          schema,
          `Cannot register schema "${schema}" version ${n}: checksumKey must be a non-empty string`,
          n,
        );
      }
      if (up.kind !== "function") {
        throw invalid(
          schema,
          `Cannot register schema "${schema}" version ${n}: checksumKey is only for function migrations`,
          n,
        );
      }
    }
    const body = up.kind === "sql"
      ? up.statements.map((s) => normalizeTokens(s.tokens)).join(";\n")
      : v.checksumKey !== undefined
      ? `key:${v.checksumKey as string}`
      : `function:${normalizeText(up.fn.toString())}`;
    compiled.push({
      version: n,
      name: v.name,
      up,
      down,
      irreversible,
      checksumSource: `aico-schema/v1\n${n}\n${v.name}\n${body}`,
    });
  }
  compiled.sort((a, b) => a.version - b.version);
  compiled.forEach((c, index) => {
    if (c.version === index) {
      throw invalid(
        schema,
        `Cannot register schema "${schema}": version ${c.version} is defined twice`,
        c.version,
      );
    }
    if (c.version !== index + 1) {
      throw invalid(
        schema,
        `Cannot register schema "${schema}": version ${
          index + 1
        } is missing (versions must run 1, 2, 3, ... without gaps)`,
        index + 1,
      );
    }
  });
  return compiled;
}

/**
 * The SHA-256 checksum (hex) of a compiled version.
 *
 * @param version The compiled version.
 * @returns 64 hex characters.
 */
export async function checksumOf(version: CompiledVersion): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(version.checksumSource),
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** The namespace prefix of an owner: `undefined` for core. */
export function namespaceOf(owner: string): string | undefined {
  return owner === "core" ? undefined : pluginPrefix(owner);
}
