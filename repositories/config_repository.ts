/**
 * `ConfigRepository`: namespaced, typed JSON configuration values, secrets
 * sealed.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { RepositoryStorage } from "./_storage.ts";
import { bytes, num, optStr, str } from "./_rows.ts";
import { type ColumnSealer, declaredSealer } from "./_sealing.ts";
import {
  checkName,
  checkObject,
  decodeText,
  invalid,
  type JsonValue,
  toJson,
} from "./_validate.ts";
import { writeTx } from "./_changes.ts";
import {
  type RepositoryOptions,
  type ResolvedRepositoryOptions,
  resolveRepositoryOptions,
} from "./repository_options.ts";

/** Largest configuration value accepted, as JSON, in UTF-8 bytes (1 MiB). */
export const MAX_CONFIG_VALUE_BYTES = 1_048_576;

/** The JSON type of a stored value. */
export type ConfigValueType =
  | "null"
  | "boolean"
  | "number"
  | "string"
  | "array"
  | "object";

/** A stored configuration entry. */
export interface ConfigEntry<T extends JsonValue = JsonValue> {
  /** The namespace. */
  readonly namespace: string;
  /** The key. */
  readonly key: string;
  /** The value. */
  readonly value: T;
  /** Its JSON type. */
  readonly type: ConfigValueType;
  /** Whether it is stored sealed. */
  readonly secret: boolean;
  /** Last write, ms since the epoch. */
  readonly updatedAt: number;
}

/** Options of {@linkcode ConfigRepository.set}. */
export interface ConfigSetOptions {
  /** Store the value sealed (AES-256-GCM) rather than as JSON text. Default `false`. */
  readonly secret?: boolean;
}

/** A view of one namespace with a declared value type per key. */
export interface ConfigNamespace<S extends Record<string, JsonValue>> {
  /** The namespace. */
  readonly namespace: string;
  /** Reads a value; `undefined` when unset. */
  get<K extends keyof S & string>(key: K): Promise<S[K] | undefined>;
  /** Writes a value. */
  set<K extends keyof S & string>(
    key: K,
    value: S[K],
    options?: ConfigSetOptions,
  ): Promise<void>;
  /** Deletes a value; `true` when it existed. */
  delete<K extends keyof S & string>(key: K): Promise<boolean>;
  /** Every set value of the namespace. */
  all(): Promise<Partial<S>>;
}

/**
 * Options of {@linkcode createConfigRepository}: writes record `config`
 * changes keyed `"<namespace>/<key>"` (`update` for a set, which may
 * replace a value; `delete` for a deletion).
 */
export type ConfigRepositoryOptions = RepositoryOptions;

/** The resolved form of {@linkcode ConfigRepositoryOptions}. */
export type ResolvedConfigRepositoryOptions = ResolvedRepositoryOptions;

/**
 * Configuration and preferences: JSON values under `(namespace, key)`.
 *
 * @remarks
 * Namespaces and keys are 1 to 256 characters of `[A-Za-z0-9_.:@-]`
 * starting with a letter or digit. Values are plain JSON (no `undefined`,
 * `NaN`, bigint, class instances or cycles), at most 1 MiB serialised; the
 * JSON type is stored beside the value and checked on read. Secret values
 * are sealed with the store's sealed-column helper, bound to the row key
 * `"<namespace>/<key>"` (needs a store opened with a key).
 */
export interface ConfigRepository {
  /**
   * Reads a value.
   *
   * @param namespace The namespace.
   * @param key The key.
   * @returns The value, or `undefined` when unset.
   * @throws {AicoDataError} `INVALID_INPUT` for malformed names,
   * `AUTH_FAILED` when a sealed value does not open, `CORRUPT_VALUE`.
   */
  get<T extends JsonValue = JsonValue>(
    namespace: string,
    key: string,
  ): Promise<T | undefined>;
  /**
   * Reads an entry with its type and metadata.
   *
   * @param namespace The namespace.
   * @param key The key.
   * @returns The entry, or `undefined` when unset.
   * @throws {AicoDataError} as {@linkcode ConfigRepository.get}.
   */
  getEntry(namespace: string, key: string): Promise<ConfigEntry | undefined>;
  /**
   * Writes a value (insert or replace).
   *
   * @param namespace The namespace.
   * @param key The key.
   * @param value Plain JSON.
   * @param options `secret` to seal it.
   * @returns When committed.
   * @throws {AicoDataError} `INVALID_INPUT` for malformed names or a non-JSON
   * or oversized value (nothing stored).
   */
  set(
    namespace: string,
    key: string,
    value: JsonValue,
    options?: ConfigSetOptions,
  ): Promise<void>;
  /**
   * Deletes a value.
   *
   * @param namespace The namespace.
   * @param key The key.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT` for malformed names.
   */
  delete(namespace: string, key: string): Promise<boolean>;
  /**
   * Lists a namespace's entries, ordered by key.
   *
   * @param namespace The namespace.
   * @returns The entries.
   * @throws {AicoDataError} as {@linkcode ConfigRepository.get}.
   */
  list(namespace: string): Promise<ConfigEntry[]>;
  /**
   * Deletes every value of a namespace.
   *
   * @param namespace The namespace.
   * @returns How many were deleted.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed name.
   */
  deleteNamespace(namespace: string): Promise<number>;
  /**
   * A typed view of one namespace.
   *
   * @typeParam S The value type of each key.
   * @param namespace The namespace.
   * @returns The view.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed name.
   */
  namespace<S extends Record<string, JsonValue>>(
    namespace: string,
  ): ConfigNamespace<S>;
}

/**
 * Normalises {@linkcode ConfigRepositoryOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolveConfigRepositoryOptions } from "./config_repository.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveConfigRepositoryOptions().changes, undefined);
 * ```
 */
export function resolveConfigRepositoryOptions(
  options: ConfigRepositoryOptions = {},
): ResolvedConfigRepositoryOptions {
  return resolveRepositoryOptions(options, "create config repository");
}

function typeOf(value: JsonValue): ConfigValueType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value as ConfigValueType;
}

const what = (verb: string, isValue = true): string =>
  isValue ? `${verb} config value` : `${verb} config namespace`;

class ConfigRepositoryImpl implements ConfigRepository {
  #db: RepositoryStorage;
  #options: ResolvedConfigRepositoryOptions;
  #sealed: ColumnSealer;

  constructor(db: RepositoryStorage, options: ResolvedConfigRepositoryOptions) {
    this.#db = db;
    this.#options = options;
    this.#sealed = declaredSealer(db, "config", "sealed_value");
  }

  async get<T extends JsonValue = JsonValue>(
    namespace: string,
    key: string,
  ): Promise<T | undefined> {
    return (await this.getEntry(namespace, key))?.value as T | undefined;
  }

  async getEntry(
    namespace: string,
    key: string,
  ): Promise<ConfigEntry | undefined> {
    const w = what("read");
    checkName(namespace, "namespace", w);
    checkName(key, "key", w);
    const rs = await this.#db.execute({
      sql:
        "SELECT namespace, key, type, value, sealed_value, secret, updated_at FROM config WHERE namespace = ? AND key = ?",
      args: [namespace, key],
    });
    const row = rs.rows[0];
    return row === undefined ? undefined : await this.#toEntry(row);
  }

  async #toEntry(row: Record<string, unknown>): Promise<ConfigEntry> {
    const namespace = str(row.namespace as string);
    const key = str(row.key as string);
    const secret = num(row.secret as number) === 1;
    let text: string;
    if (secret) {
      text = decodeText(
        await this.#sealed.open(
          `${namespace}/${key}`,
          bytes(row.sealed_value as Uint8Array),
        ),
        "read config value",
      );
    } else {
      text = optStr(row.value as string) ?? "";
    }
    let value: JsonValue;
    try {
      value = JSON.parse(text) as JsonValue;
    } catch (cause) {
      throw new AicoDataError(
        "CORRUPT_VALUE",
        `Cannot read config value "${namespace}/${key}": not JSON`,
        { cause },
      );
    }
    const type = str(row.type as string) as ConfigValueType;
    if (typeOf(value) !== type) {
      throw new AicoDataError(
        "CORRUPT_VALUE",
        `Cannot read config value "${namespace}/${key}": stored type "${type}" does not match`,
      );
    }
    return {
      namespace,
      key,
      value,
      type,
      secret,
      updatedAt: num(row.updated_at as number),
    };
  }

  async set(
    namespace: string,
    key: string,
    value: JsonValue,
    options: ConfigSetOptions = {},
  ): Promise<void> {
    const w = what("set");
    checkName(namespace, "namespace", w);
    checkName(key, "key", w);
    const o = checkObject(options, "options", w);
    if (o.secret !== undefined && typeof o.secret !== "boolean") {
      throw invalid(w, '"secret" must be a boolean');
    }
    const secret = o.secret === true;
    const text = toJson(value, "value", w, 1_048_576);
    const type = typeOf(value);
    let sealed: Uint8Array | null = null;
    if (secret) {
      sealed = await this.#sealed.seal(`${namespace}/${key}`, text);
    }
    const changes = this.#options.changes;
    await writeTx(this.#db, this.#options, async (tx) => {
      await tx.execute({
        sql:
          "INSERT INTO config (row_key, namespace, key, type, value, sealed_value, secret, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " +
          "ON CONFLICT (namespace, key) DO UPDATE SET type = excluded.type, value = excluded.value, " +
          "sealed_value = excluded.sealed_value, secret = excluded.secret, updated_at = excluded.updated_at",
        args: [
          `${namespace}/${key}`,
          namespace,
          key,
          type,
          secret ? null : text,
          sealed,
          secret ? 1 : 0,
          this.#options.now(),
        ],
      });
      await changes?.record(tx, [{
        table: "config",
        op: "update",
        keys: [`${namespace}/${key}`],
      }]);
    });
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    const w = what("delete");
    checkName(namespace, "namespace", w);
    checkName(key, "key", w);
    const changes = this.#options.changes;
    const n = await writeTx(this.#db, this.#options, async (tx) => {
      const rs = await tx.execute({
        sql: "DELETE FROM config WHERE namespace = ? AND key = ?",
        args: [namespace, key],
      });
      if (rs.rowsAffected > 0) {
        await changes?.record(tx, [{
          table: "config",
          op: "delete",
          keys: [`${namespace}/${key}`],
        }]);
      }
      return rs.rowsAffected;
    });
    return n > 0;
  }

  async list(namespace: string): Promise<ConfigEntry[]> {
    checkName(namespace, "namespace", what("list", false));
    const rs = await this.#db.execute({
      sql:
        "SELECT namespace, key, type, value, sealed_value, secret, updated_at FROM config WHERE namespace = ? ORDER BY key",
      args: [namespace],
    });
    const out: ConfigEntry[] = [];
    for (const row of rs.rows) out.push(await this.#toEntry(row));
    return out;
  }

  async deleteNamespace(namespace: string): Promise<number> {
    checkName(namespace, "namespace", what("delete", false));
    const changes = this.#options.changes;
    const n = await writeTx(this.#db, this.#options, async (tx) => {
      const keys = (await tx.execute({
        sql: "SELECT key FROM config WHERE namespace = ?",
        args: [namespace],
      })).rows
        .map((r) => `${namespace}/${str(r.key)}`);
      const rs = await tx.execute({
        sql: "DELETE FROM config WHERE namespace = ?",
        args: [namespace],
      });
      if (keys.length > 0) {
        await changes?.record(tx, [{
          table: "config",
          op: "delete",
          keys: keys,
        }]);
      }
      return rs.rowsAffected;
    });
    return n;
  }

  namespace<S extends Record<string, JsonValue>>(
    namespace: string,
  ): ConfigNamespace<S> {
    checkName(namespace, "namespace", what("open", false));
    return {
      namespace,
      get: (key) => this.get(namespace, key),
      set: (key, value, options) => this.set(namespace, key, value, options),
      delete: (key) => this.delete(namespace, key),
      all: async () => {
        const out: Record<string, JsonValue> = {};
        for (const e of await this.list(namespace)) out[e.key] = e.value;
        return out as Partial<S>;
      },
    };
  }
}

/**
 * Creates a {@linkcode ConfigRepository} over a store holding the core schema.
 *
 * Permissions: those of the store.
 *
 * @param storage The store.
 * @param options See {@linkcode ConfigRepositoryOptions}.
 * @returns The repository.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options.
 *
 * @example Typed namespaces and secrets
 * ```ts
 * import { createConfigRepository } from "./config_repository.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const config = createConfigRepository(store.storage);
 * const ui = config.namespace<{ theme: string; fontSize: number }>("ui");
 * await ui.set("theme", "dark");
 * await ui.set("fontSize", 14);
 * assert.deepEqual(await ui.all(), { fontSize: 14, theme: "dark" });
 * await config.set("llm", "apiKey", "sk-123", { secret: true });
 * assert.equal(await config.get("llm", "apiKey"), "sk-123");
 * ```
 */
export function createConfigRepository(
  storage: RepositoryStorage,
  options: ConfigRepositoryOptions = {},
): ConfigRepository {
  return new ConfigRepositoryImpl(
    storage,
    resolveConfigRepositoryOptions(options),
  );
}
