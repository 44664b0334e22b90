import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { createSchemaRegistry } from "./registry.ts";
import { registerSchema, type SchemaDefinition } from "./schema_version.ts";

const up = (
  t: string,
) => [{ version: 1, name: "init", up: `CREATE TABLE ${t} (id INTEGER)` }];

Deno.test("createSchemaRegistry() orders core first, then priority, then name", () => {
  const registry = createSchemaRegistry([
    registerSchema("zeta", "zplug", { priority: 1 }, up("plugin_zplug_a")),
    registerSchema("alpha", "aplug", { priority: 1 }, up("plugin_aplug_a")),
    registerSchema("early", "eplug", { priority: -5 }, up("plugin_eplug_a")),
    registerSchema("extra", "core", { priority: 900 }, up("extra")),
    registerSchema("core", "core", { priority: 0 }, up("logs")),
  ]);
  assert.deepEqual(registry.schemas.map((s) => s.name), [
    "core",
    "extra",
    "early",
    "alpha",
    "zeta",
  ]);
  assert.equal(registry.get("alpha")?.owner, "aplug");
  assert.equal(registry.get("missing"), undefined);
  assert.ok(Object.isFrozen(registry));
  assert.ok(Object.isFrozen(registry.schemas));
});

Deno.test("createSchemaRegistry() refuses duplicate schema names with SCHEMA_INVALID", () => {
  assert.throws(
    () =>
      createSchemaRegistry([
        registerSchema("core", "core", {}, up("logs")),
        registerSchema("core", "core", {}, up("users")),
      ]),
    (e) => isAicoDataError(e, "SCHEMA_INVALID"),
  );
});

Deno.test("createSchemaRegistry() validates hand-made definitions again", () => {
  const forged: SchemaDefinition = {
    name: "evil",
    owner: "evil",
    priority: 1,
    namespace: "plugin_evil_",
    latest: 1,
    versions: [{ version: 1, name: "x", up: "DROP TABLE logs" }],
    sealedColumns: [],
  };
  assert.throws(
    () => createSchemaRegistry([forged]),
    (e) => isAicoDataError(e, "PLUGIN_ISOLATION"),
  );
  const gap: SchemaDefinition = {
    ...forged,
    owner: "core",
    versions: [{ version: 2, name: "x", up: "SELECT 1" }],
  };
  assert.throws(
    () => createSchemaRegistry([gap]),
    (e) => isAicoDataError(e, "SCHEMA_INVALID"),
  );
});

Deno.test("schema/ uses no dynamic import(), so registration survives deno compile", async () => {
  const dir = new URL("./", import.meta.url);
  let files = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) {
      continue;
    }
    files++;
    const source = await Deno.readTextFile(new URL(entry.name, dir));
    assert.doesNotMatch(
      source,
      /^(?!\s*(\*|\/\/)).*\bimport\s*\(/m,
      entry.name,
    );
  }
  assert.ok(files >= 5);
});

Deno.test("createSchemaRegistry() lists every declared sealed column in apply order", () => {
  const registry = createSchemaRegistry([
    registerSchema("notes", "notes", {
      sealedColumns: [{
        table: "plugin_notes_items",
        column: "body",
        rowKey: "id",
      }],
    }, up("plugin_notes_items")),
    registerSchema("core", "core", {
      priority: 0,
      sealedColumns: [{ table: "logs", column: "secret", rowKey: "id" }],
    }, up("logs")),
  ]);
  assert.deepEqual(registry.sealedColumns, [
    { table: "logs", column: "secret", rowKey: "id", schemaVersion: 1 },
    {
      table: "plugin_notes_items",
      column: "body",
      rowKey: "id",
      schemaVersion: 1,
    },
  ]);
  assert.ok(Object.isFrozen(registry.sealedColumns));
});

Deno.test("registerSchema() refuses sealed columns outside a plugin's namespace, duplicates and bad versions", () => {
  const bad = [
    [{ table: "messages", column: "body", rowKey: "id" }],
    [
      { table: "plugin_notes_a", column: "b", rowKey: "id" },
      { table: "plugin_notes_a", column: "b", rowKey: "id" },
    ],
    [{ table: "plugin_notes_a", column: "b", rowKey: "id", schemaVersion: 2 }],
    [{ table: "plugin_notes_a", column: "b; DROP", rowKey: "id" }],
  ];
  for (const sealedColumns of bad) {
    assert.throws(
      () =>
        registerSchema(
          "notes",
          "notes",
          { sealedColumns },
          up("plugin_notes_a"),
        ),
      (err: unknown) => isAicoDataError(err, "SCHEMA_INVALID"),
    );
  }
});
