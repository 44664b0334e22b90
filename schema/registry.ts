/**
 * A set of schema definitions in apply order: {@linkcode createSchemaRegistry}.
 *
 * @module
 */

import { AicoDataError } from "../errors.ts";
import {
  registerSchema,
  type SchemaDefinition,
  type SealedColumnSpec,
} from "./schema_version.ts";

/** An immutable set of schemas, in the order they are applied. */
export interface SchemaRegistry {
  /** The schemas: core first, then plugins; each group by priority, then name. */
  readonly schemas: readonly SchemaDefinition[];
  /**
   * Finds a schema by name.
   *
   * @param name The schema name.
   * @returns The definition, or `undefined`.
   */
  get(name: string): SchemaDefinition | undefined;
  /**
   * Every sealed column declared by the registered schemas, in apply order
   * (what key rotation re-seals).
   */
  readonly sealedColumns: readonly Required<SealedColumnSpec>[];
}

/**
 * Creates a registry from definitions made by {@linkcode registerSchema}.
 * Each definition is validated again (so a hand-made object cannot slip
 * past the rules) and the registry is frozen.
 *
 * @param definitions The schemas, in any order.
 * @returns The registry, in apply order.
 * @throws {AicoDataError} `SCHEMA_INVALID` when two schemas share a name or a
 * definition is malformed; `PLUGIN_ISOLATION` when a plugin's SQL leaves its
 * namespace.
 *
 * @example Core schemas come first
 * ```ts
 * import { createSchemaRegistry } from "./registry.ts";
 * import { registerSchema } from "./schema_version.ts";
 * import assert from "node:assert/strict";
 *
 * const registry = createSchemaRegistry([
 *   registerSchema("notes", "notes", { priority: 1 }, [
 *     { version: 1, name: "init", up: "CREATE TABLE plugin_notes_items (id INTEGER PRIMARY KEY)" },
 *   ]),
 *   registerSchema("core", "core", { priority: 500 }, [
 *     { version: 1, name: "init", up: "CREATE TABLE logs (id INTEGER PRIMARY KEY, msg TEXT)" },
 *   ]),
 * ]);
 * assert.deepEqual(registry.schemas.map((s) => s.name), ["core", "notes"]);
 * assert.equal(registry.get("notes")?.owner, "notes");
 * ```
 */
export function createSchemaRegistry(
  definitions: readonly SchemaDefinition[],
): SchemaRegistry {
  if (!Array.isArray(definitions)) {
    throw new AicoDataError(
      "SCHEMA_INVALID",
      "Cannot create registry: definitions must be an array",
    );
  }
  const byName = new Map<string, SchemaDefinition>();
  for (const def of definitions) {
    if (typeof def !== "object" || def === null) {
      throw new AicoDataError(
        "SCHEMA_INVALID",
        "Cannot create registry: every definition must come from registerSchema()",
      );
    }
    const checked = registerSchema(def.name, def.owner, {
      priority: def.priority,
      sealedColumns: def.sealedColumns ?? [],
    }, def.versions);
    if (byName.has(checked.name)) {
      throw new AicoDataError(
        "SCHEMA_INVALID",
        `Cannot create registry: schema "${checked.name}" is registered twice`,
      );
    }
    byName.set(checked.name, checked);
  }
  const schemas = Object.freeze(
    [...byName.values()].sort((a, b) =>
      Number(a.owner !== "core") - Number(b.owner !== "core") ||
      a.priority - b.priority ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    ),
  );
  const sealedColumns = Object.freeze(schemas.flatMap((s) => s.sealedColumns));
  return Object.freeze({
    schemas,
    sealedColumns,
    get(name: string): SchemaDefinition | undefined {
      return byName.get(name);
    },
  });
}
