/**
 * `PluginStateRepository`: installed plugins (metadata, enabled flag) and
 * each plugin's key/value state.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type { Row } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import { num, str } from "./_rows.ts";
import {
  checkName,
  checkObject,
  invalid,
  type JsonObject,
  type JsonValue,
  toJson,
  toJsonObject,
} from "./_validate.ts";
import { writeTx } from "./_changes.ts";
import {
  type RepositoryOptions,
  type ResolvedRepositoryOptions,
  resolveRepositoryOptions,
} from "./repository_options.ts";

/** Largest plugin metadata accepted, as JSON, in UTF-8 bytes (64 KiB). */
export const MAX_PLUGIN_METADATA_BYTES = 65_536;
/** Largest plugin state value accepted, as JSON, in UTF-8 bytes (1 MiB). */
export const MAX_PLUGIN_STATE_BYTES = 1_048_576;

/** An installed plugin. */
export interface Plugin {
  /** The name (`[a-z][a-z0-9]{0,62}`, as plugin schema owners). */
  readonly name: string;
  /** The version (1 to 64 characters of `[0-9A-Za-z.+-]`). */
  readonly version: string;
  /** Whether it is enabled. */
  readonly enabled: boolean;
  /** Free metadata. */
  readonly metadata: JsonObject;
  /** First installation, ms since the epoch. */
  readonly installedAt: number;
  /** Last change, ms since the epoch. */
  readonly updatedAt: number;
}

/** Input of {@linkcode PluginStateRepository.registerPlugin}. */
export interface PluginRegistration {
  /** The name. */
  readonly name: string;
  /** The version. */
  readonly version: string;
  /** Whether it is enabled; default `true` for a new plugin, unchanged otherwise. */
  readonly enabled?: boolean;
  /** Free metadata, a JSON object of at most 64 KiB; default `{}`. */
  readonly metadata?: JsonObject;
}

/**
 * Options of {@linkcode createPluginStateRepository}: plugin writes record
 * `plugins` changes (key: the name), state writes `plugin_state` changes
 * (key: `"<plugin>/<key>"`).
 */
export type PluginStateRepositoryOptions = RepositoryOptions;

/** The resolved form of {@linkcode PluginStateRepositoryOptions}. */
export type ResolvedPluginStateRepositoryOptions = ResolvedRepositoryOptions;

/** Plugins and their state. */
export interface PluginStateRepository {
  /**
   * Installs or updates a plugin (upsert by name).
   *
   * @param plugin The registration.
   * @returns The stored plugin.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  registerPlugin(plugin: PluginRegistration): Promise<Plugin>;
  /**
   * Reads a plugin.
   *
   * @param name The name.
   * @returns The plugin, or `undefined`.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  getPlugin(name: string): Promise<Plugin | undefined>;
  /**
   * Lists plugins by name.
   *
   * @returns The plugins.
   */
  listPlugins(): Promise<Plugin[]>;
  /**
   * Enables or disables a plugin.
   *
   * @param name The name.
   * @param enabled The flag.
   * @returns When stored.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`.
   */
  setEnabled(name: string, enabled: boolean): Promise<void>;
  /**
   * Removes a plugin and all its state.
   *
   * @param name The name.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  removePlugin(name: string): Promise<boolean>;
  /**
   * Reads a state value.
   *
   * @param plugin The plugin.
   * @param key The key (1 to 256 characters of `[A-Za-z0-9_.:@-]`).
   * @returns The value, or `undefined`.
   * @throws {AicoDataError} `INVALID_INPUT`, `CORRUPT_VALUE`.
   */
  getState<T extends JsonValue = JsonValue>(
    plugin: string,
    key: string,
  ): Promise<T | undefined>;
  /**
   * Writes a state value.
   *
   * @param plugin The plugin (must be registered).
   * @param key The key.
   * @param value Plain JSON of at most 1 MiB.
   * @returns When stored.
   * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND` for an unknown plugin.
   */
  setState(plugin: string, key: string, value: JsonValue): Promise<void>;
  /**
   * Deletes a state value.
   *
   * @param plugin The plugin.
   * @param key The key.
   * @returns `true` when it existed.
   * @throws {AicoDataError} `INVALID_INPUT`.
   */
  deleteState(plugin: string, key: string): Promise<boolean>;
  /**
   * Reads all state of a plugin.
   *
   * @param plugin The plugin.
   * @returns Key to value.
   * @throws {AicoDataError} `INVALID_INPUT`, `CORRUPT_VALUE`.
   */
  listState(plugin: string): Promise<Record<string, JsonValue>>;
}

/**
 * Normalises {@linkcode PluginStateRepositoryOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed option.
 *
 * @example Defaults
 * ```ts
 * import { resolvePluginStateRepositoryOptions } from "./plugin_state_repository.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolvePluginStateRepositoryOptions().changes, undefined);
 * ```
 */
export function resolvePluginStateRepositoryOptions(
  options: PluginStateRepositoryOptions = {},
): ResolvedPluginStateRepositoryOptions {
  return resolveRepositoryOptions(options, "create plugin state repository");
}

const PLUGIN_RE = /^[a-z][a-z0-9]{0,62}$/;
const VERSION_RE = /^[0-9A-Za-z.+-]{1,64}$/;

function checkPlugin(name: unknown, what: string): string {
  if (typeof name !== "string" || !PLUGIN_RE.test(name)) {
    throw invalid(
      what,
      `plugin name must match [a-z][a-z0-9]{0,62}, got "${
        String(name).slice(0, 40)
      }"`,
    );
  }
  return name;
}

function parseJson(text: string, what: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot ${what}: stored value is not JSON`,
      { cause },
    );
  }
}

function toPlugin(row: Row): Plugin {
  return {
    name: str(row.name),
    version: str(row.version),
    enabled: num(row.enabled) === 1,
    metadata: parseJson(str(row.metadata), "read plugin") as JsonObject,
    installedAt: num(row.installed_at),
    updatedAt: num(row.updated_at),
  };
}

const PLUGIN_COLUMNS =
  "name, version, enabled, metadata, installed_at, updated_at";

class PluginStateRepositoryImpl implements PluginStateRepository {
  #db: RepositoryStorage;
  #o: ResolvedPluginStateRepositoryOptions;

  constructor(
    db: RepositoryStorage,
    options: ResolvedPluginStateRepositoryOptions,
  ) {
    this.#db = db;
    this.#o = options;
  }

  async registerPlugin(plugin: PluginRegistration): Promise<Plugin> {
    const what = "register plugin";
    const p = checkObject(plugin, "plugin", what);
    const name = checkPlugin(p.name, what);
    if (typeof p.version !== "string" || !VERSION_RE.test(p.version)) {
      throw invalid(
        what,
        '"version" must be 1 to 64 characters of [0-9A-Za-z.+-]',
      );
    }
    if (p.enabled !== undefined && typeof p.enabled !== "boolean") {
      throw invalid(what, '"enabled" must be a boolean');
    }
    const metadata = p.metadata === undefined
      ? "{}"
      : toJsonObject(p.metadata, "metadata", what, MAX_PLUGIN_METADATA_BYTES);
    const now = this.#o.now();
    const changes = this.#o.changes;
    const stored = await writeTx(this.#db, this.#o, async (tx) => {
      await tx.execute({
        sql:
          `INSERT INTO plugins (${PLUGIN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ` +
          "ON CONFLICT (name) DO UPDATE SET version = excluded.version, metadata = excluded.metadata, " +
          "enabled = CASE WHEN ? IS NULL THEN plugins.enabled ELSE excluded.enabled END, updated_at = excluded.updated_at",
        args: [
          name,
          p.version as string,
          p.enabled === false ? 0 : 1,
          metadata,
          now,
          now,
          p.enabled === undefined ? null : 1,
        ],
      });
      await changes?.record(tx, [{
        table: "plugins",
        op: "update",
        keys: [name],
      }]);
      const read = await tx.execute({
        sql: `SELECT ${PLUGIN_COLUMNS} FROM plugins WHERE name = ?`,
        args: [name],
      });
      return toPlugin(read.rows[0]!);
    });
    return stored;
  }

  async getPlugin(name: string): Promise<Plugin | undefined> {
    checkPlugin(name, "get plugin");
    const rs = await this.#db.execute({
      sql: `SELECT ${PLUGIN_COLUMNS} FROM plugins WHERE name = ?`,
      args: [name],
    });
    const row = rs.rows[0];
    return row === undefined ? undefined : toPlugin(row);
  }

  async listPlugins(): Promise<Plugin[]> {
    const rs = await this.#db.execute(
      `SELECT ${PLUGIN_COLUMNS} FROM plugins ORDER BY name`,
    );
    return rs.rows.map(toPlugin);
  }

  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const what = "enable plugin";
    checkPlugin(name, what);
    if (typeof enabled !== "boolean") {
      throw invalid(what, '"enabled" must be a boolean');
    }
    const changes = this.#o.changes;
    await writeTx(this.#db, this.#o, async (tx) => {
      const rs = await tx.execute({
        sql: "UPDATE plugins SET enabled = ?, updated_at = ? WHERE name = ?",
        args: [enabled ? 1 : 0, this.#o.now(), name],
      });
      if (rs.rowsAffected === 0) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot enable plugin "${name}": not registered`,
        );
      }
      await changes?.record(tx, [{
        table: "plugins",
        op: "update",
        keys: [name],
      }]);
    });
  }

  async removePlugin(name: string): Promise<boolean> {
    checkPlugin(name, "remove plugin");
    const changes = this.#o.changes;
    const n = await writeTx(this.#db, this.#o, async (tx) => {
      await tx.execute({
        sql: "DELETE FROM plugin_state WHERE plugin = ?",
        args: [name],
      });
      const rs = await tx.execute({
        sql: "DELETE FROM plugins WHERE name = ?",
        args: [name],
      });
      if (rs.rowsAffected > 0) {
        await changes?.record(tx, [{
          table: "plugins",
          op: "delete",
          keys: [name],
        }]);
      }
      return rs.rowsAffected;
    });
    return n > 0;
  }

  async getState<T extends JsonValue = JsonValue>(
    plugin: string,
    key: string,
  ): Promise<T | undefined> {
    const what = "get plugin state";
    checkPlugin(plugin, what);
    checkName(key, "key", what);
    const rs = await this.#db.execute({
      sql: "SELECT value FROM plugin_state WHERE plugin = ? AND key = ?",
      args: [plugin, key],
    });
    const row = rs.rows[0];
    return row === undefined ? undefined : parseJson(str(row.value), what) as T;
  }

  async setState(plugin: string, key: string, value: JsonValue): Promise<void> {
    const what = "set plugin state";
    checkPlugin(plugin, what);
    checkName(key, "key", what);
    const text = toJson(value, "value", what, MAX_PLUGIN_STATE_BYTES);
    const changes = this.#o.changes;
    await writeTx(this.#db, this.#o, async (tx) => {
      const rs = await tx.execute({
        sql:
          "INSERT INTO plugin_state (plugin, key, value, updated_at) SELECT ?, ?, ?, ? " +
          "WHERE EXISTS (SELECT 1 FROM plugins WHERE name = ?) " +
          "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        args: [plugin, key, text, this.#o.now(), plugin],
      });
      if (rs.rowsAffected === 0) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot set plugin state: plugin "${plugin}" is not registered`,
        );
      }
      await changes?.record(tx, [{
        table: "plugin_state",
        op: "update",
        keys: [`${plugin}/${key}`],
      }]);
    });
  }

  async deleteState(plugin: string, key: string): Promise<boolean> {
    const what = "delete plugin state";
    checkPlugin(plugin, what);
    checkName(key, "key", what);
    const changes = this.#o.changes;
    const n = await writeTx(this.#db, this.#o, async (tx) => {
      const rs = await tx.execute({
        sql: "DELETE FROM plugin_state WHERE plugin = ? AND key = ?",
        args: [plugin, key],
      });
      if (rs.rowsAffected > 0) {
        await changes?.record(tx, [{
          table: "plugin_state",
          op: "delete",
          keys: [`${plugin}/${key}`],
        }]);
      }
      return rs.rowsAffected;
    });
    return n > 0;
  }

  async listState(plugin: string): Promise<Record<string, JsonValue>> {
    const what = "list plugin state";
    checkPlugin(plugin, what);
    const rs = await this.#db.execute({
      sql: "SELECT key, value FROM plugin_state WHERE plugin = ? ORDER BY key",
      args: [plugin],
    });
    const out: Record<string, JsonValue> = {};
    for (const row of rs.rows) {
      out[str(row.key)] = parseJson(str(row.value), what);
    }
    return out;
  }
}

/**
 * Creates a {@linkcode PluginStateRepository} over a store holding the core schema.
 *
 * Permissions: those of the store.
 *
 * @param storage The store.
 * @param options See {@linkcode PluginStateRepositoryOptions}.
 * @returns The repository.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options.
 *
 * @example Registering a plugin and keeping state
 * ```ts
 * import { createPluginStateRepository } from "./plugin_state_repository.ts";
 * import { openTestStore } from "./_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const plugins = createPluginStateRepository(store.storage);
 * await plugins.registerPlugin({ name: "weather", version: "1.2.0", metadata: { author: "me" } });
 * await plugins.setState("weather", "lastCity", "Zürich");
 * assert.equal(await plugins.getState("weather", "lastCity"), "Zürich");
 * assert.equal((await plugins.getPlugin("weather"))?.enabled, true);
 * ```
 */
export function createPluginStateRepository(
  storage: RepositoryStorage,
  options: PluginStateRepositoryOptions = {},
): PluginStateRepository {
  return new PluginStateRepositoryImpl(
    storage,
    resolvePluginStateRepositoryOptions(options),
  );
}
