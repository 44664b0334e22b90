import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { checksumOf, compileVersions } from "./_compile.ts";
import { MigrationError } from "./migration_error.ts";
import { registerSchema, type SchemaVersion } from "./schema_version.ts";

const v1: SchemaVersion = {
  version: 1,
  name: "one",
  up: "CREATE TABLE a (x INTEGER)",
  down: "DROP TABLE a",
};
const v2: SchemaVersion = {
  version: 2,
  name: "two",
  up: "CREATE TABLE b (x INTEGER)",
  down: "DROP TABLE b",
};

function refusesWith(code: string, fn: () => unknown): void {
  assert.throws(fn, (e) => isAicoDataError(e) && e.code === code);
}

Deno.test("registerSchema() returns a frozen, sorted definition", () => {
  const def = registerSchema("app", "core", {}, [v2, v1]);
  assert.equal(def.name, "app");
  assert.equal(def.owner, "core");
  assert.equal(def.priority, 100);
  assert.equal(def.namespace, undefined);
  assert.equal(def.latest, 2);
  assert.deepEqual(def.versions.map((v) => v.version), [1, 2]);
  assert.ok(Object.isFrozen(def));
  assert.ok(Object.isFrozen(def.versions));
  assert.ok(Object.isFrozen(def.versions[0]));
  assert.throws(() => {
    (def.versions as SchemaVersion[]).push(v1);
  }, TypeError);
  assert.equal(
    registerSchema("wx", "weather", { priority: -3 }, [{
      version: 1,
      name: "x",
      up: "SELECT 1",
    }]).namespace,
    "plugin_weather_",
  );
});

Deno.test("registerSchema() refuses malformed registrations with SCHEMA_INVALID", async (t) => {
  const cases: [string, () => unknown][] = [
    ["bad schema name", () => registerSchema("App", "core", {}, [v1])],
    ["empty schema name", () => registerSchema("", "core", {}, [v1])],
    ["name too long", () => registerSchema("a".repeat(64), "core", {}, [v1])],
    ["bad owner", () => registerSchema("app", "Core", {}, [v1])],
    [
      "plugin name with underscore",
      () =>
        registerSchema("app", "my_plugin", {}, [{
          version: 1,
          name: "x",
          up: "SELECT 1",
        }]),
    ],
    [
      "non-integer priority",
      () => registerSchema("app", "core", { priority: 1.5 }, [v1]),
    ],
    ["no versions", () => registerSchema("app", "core", {}, [])],
    [
      "gap",
      () => registerSchema("app", "core", {}, [v1, { ...v2, version: 3 }]),
    ],
    ["not starting at 1", () => registerSchema("app", "core", {}, [v2])],
    [
      "duplicate",
      () =>
        registerSchema("app", "core", {}, [v1, v2, { ...v2, name: "again" }]),
    ],
    [
      "version 0",
      () => registerSchema("app", "core", {}, [{ ...v1, version: 0 }]),
    ],
    [
      "fractional version",
      () => registerSchema("app", "core", {}, [{ ...v1, version: 1.5 }]),
    ],
    [
      "empty name",
      () => registerSchema("app", "core", {}, [{ ...v1, name: " " }]),
    ],
    [
      "control character in name",
      () => registerSchema("app", "core", {}, [{ ...v1, name: "a\nb" }]),
    ],
    [
      "unknown field",
      () =>
        registerSchema("app", "core", {}, [
          { ...v1, donw: "DROP TABLE a" } as SchemaVersion,
        ]),
    ],
    [
      "up missing",
      () =>
        registerSchema("app", "core", {}, [
          { version: 1, name: "x" } as unknown as SchemaVersion,
        ]),
    ],
    [
      "empty up",
      () =>
        registerSchema("app", "core", {}, [{ ...v1, up: " -- nothing\n ; " }]),
    ],
    [
      "unterminated string",
      () =>
        registerSchema("app", "core", {}, [{
          ...v1,
          up: "INSERT INTO a VALUES ('x",
        }]),
    ],
    [
      "irreversible with down",
      () => registerSchema("app", "core", {}, [{ ...v1, irreversible: true }]),
    ],
    [
      "checksumKey on SQL",
      () => registerSchema("app", "core", {}, [{ ...v1, checksumKey: "k" }]),
    ],
    [
      "transaction control",
      () =>
        registerSchema("app", "core", {}, [{
          ...v1,
          up: "CREATE TABLE a (x); COMMIT",
        }]),
    ],
    [
      "migrator tables",
      () =>
        registerSchema("app", "core", {}, [{
          ...v1,
          up: "DELETE FROM _aico_schema_history",
        }]),
    ],
    [
      "core in a plugin namespace",
      () =>
        registerSchema("app", "core", {}, [{
          ...v1,
          up: "CREATE TABLE plugin_x_a (id)",
        }]),
    ],
  ];
  for (const [name, fn] of cases) {
    await t.step(name, () => refusesWith("SCHEMA_INVALID", fn));
  }
});

Deno.test("registerSchema() refuses a plugin statement outside its namespace with PLUGIN_ISOLATION", () => {
  try {
    registerSchema("wx", "weather", {}, [
      {
        version: 1,
        name: "ok",
        up: "CREATE TABLE plugin_weather_a (id INTEGER)",
      },
      {
        version: 2,
        name: "evil",
        up: "CREATE TABLE plugin_weather_b (id INTEGER); DROP TABLE logs",
      },
    ]);
    assert.fail("no error");
  } catch (e) {
    assert.ok(e instanceof MigrationError);
    assert.equal(e.code, "PLUGIN_ISOLATION");
    assert.equal(e.schema, "wx");
    assert.equal(e.version, 2);
    assert.equal(e.statementIndex, 1);
  }
  refusesWith("PLUGIN_ISOLATION", () =>
    registerSchema("wx", "weather", {}, [{
      version: 1,
      name: "down leaks",
      up: "CREATE TABLE plugin_weather_a (id INTEGER)",
      down: "DROP TABLE users",
    }]));
});

Deno.test("checksums ignore whitespace and comments but see any change of meaning", async () => {
  const sum = async (v: SchemaVersion) =>
    await checksumOf(compileVersions("app", "core", [v])[0]!);
  const base = await sum(v1);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(
    await sum({ ...v1, up: "  create  TABLE a(x INTEGER) ; -- note\n" }),
    await sum({ ...v1, up: "create TABLE a ( x INTEGER )" }),
  );
  assert.equal(
    await sum({ ...v1, up: "CREATE TABLE a (x INTEGER) /* c */;" }),
    base,
  );
  assert.equal(await sum({ ...v1, up: ["CREATE TABLE a (x INTEGER)"] }), base);
  assert.equal(
    await sum({
      ...v1,
      down: "DROP TABLE IF EXISTS a",
      description: "new words",
    }),
    base,
  );
  assert.notEqual(await sum({ ...v1, up: "CREATE TABLE a (x TEXT)" }), base);
  assert.notEqual(await sum({ ...v1, name: "uno" }), base);
  const fnA = async () => {};
  const withKey = async (key: string) =>
    await sum({ version: 1, name: "f", up: fnA, checksumKey: key });
  assert.equal(await withKey("k1"), await withKey("k1"));
  assert.notEqual(await withKey("k1"), await withKey("k2"));
  const fn1 = {
    version: 1,
    name: "f",
    up: async (tx: { execute(s: string): Promise<unknown> }) => {
      await tx.execute("SELECT 1");
    },
  };
  const fn2 = {
    version: 1,
    name: "f",
    up: async (tx: { execute(s: string): Promise<unknown> }) => {
      await tx.execute("SELECT 2");
    },
  };
  assert.notEqual(
    await sum(fn1 as unknown as SchemaVersion),
    await sum(fn2 as unknown as SchemaVersion),
  );
});
