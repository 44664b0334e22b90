// Schema migrator benchmarks: ours next to a hand-rolled minimal migrator
// (one transaction per version, a history row, no checksums, no lock re-read,
// no isolation checks: roughly what AICO does) on the same encrypted storage.
//
//   deno bench -A bench/schema_bench.ts
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createSchemaRegistry,
  openMigrator,
  registerSchema,
  type SchemaVersion,
} from "../schema/mod.ts";
import { openStorage } from "../storage/mod.ts";

const VERSIONS = 20;
const dir = await Deno.makeTempDir({ prefix: "aico_schema_bench_" });
const key = await importDataKey(generateDataKey());

function versions(prefix: string): SchemaVersion[] {
  return Array.from({ length: VERSIONS }, (_, i) => ({
    version: i + 1,
    name: `v${i + 1}`,
    up:
      `CREATE TABLE ${prefix}t${i} (id INTEGER PRIMARY KEY, body TEXT NOT NULL, at INTEGER);
         CREATE INDEX ${prefix}t${i}_at ON ${prefix}t${i} (at);
         INSERT INTO ${prefix}t${i} (body, at) VALUES ('seed', 1);`,
    down: `DROP TABLE ${prefix}t${i}`,
  }));
}

const coreDef = registerSchema("app", "core", {}, versions("app_"));
const pluginDef = registerSchema(
  "bench",
  "bench",
  {},
  versions("plugin_bench_"),
);
const rawVersions = versions("raw_");

const oursDb = await openStorage(`${dir}/ours.db`, { key });
const pluginDb = await openStorage(`${dir}/plugin.db`, { key });
const rawDb = await openStorage(`${dir}/raw.db`, { key });
const coreMigrator = await openMigrator(
  oursDb,
  createSchemaRegistry([coreDef]),
);
const pluginMigrator = await openMigrator(
  pluginDb,
  createSchemaRegistry([pluginDef]),
);
await rawDb.execute(
  "CREATE TABLE raw_history (version INTEGER PRIMARY KEY, name TEXT, applied_at INTEGER)",
);

function statements(sql: string): string[] {
  return sql.split(";").map((s) => s.trim()).filter((s) => s !== "");
}

Deno.bench({
  name: "hand-rolled: 20 versions up, then down",
  group: "migrate 20 versions up and down",
  baseline: true,
  async fn() {
    for (const v of rawVersions) {
      await rawDb.transaction(async (tx) => {
        for (const s of statements(v.up as string)) await tx.execute(s);
        await tx.execute({
          sql: "INSERT INTO raw_history VALUES (?, ?, ?)",
          args: [v.version, v.name, Date.now()],
        });
      });
    }
    for (const v of [...rawVersions].reverse()) {
      await rawDb.transaction(async (tx) => {
        await tx.execute(v.down as string);
        await tx.execute({
          sql: "DELETE FROM raw_history WHERE version = ?",
          args: [v.version],
        });
      });
    }
  },
});

Deno.bench({
  name: "ours, core schema: migrate() then migrateTo(0)",
  group: "migrate 20 versions up and down",
  async fn() {
    await coreMigrator.migrate();
    await coreMigrator.migrateTo("app", 0);
  },
});

Deno.bench({
  name: "ours, plugin schema (+ sqlite_schema checks)",
  group: "migrate 20 versions up and down",
  async fn() {
    await pluginMigrator.migrate();
    await pluginMigrator.migrateTo("bench", 0);
  },
});

// Opening on an up-to-date database: ours checks every checksum.
const openDb = await openStorage(`${dir}/open.db`, { key });
const openRegistry = createSchemaRegistry([coreDef]);
await (await openMigrator(openDb, openRegistry)).migrate();

Deno.bench({
  name: "hand-rolled: read the newest version",
  group: "open an up-to-date database (20 versions)",
  baseline: true,
  async fn() {
    await openDb.execute(
      "SELECT coalesce(max(version), 0) AS v FROM _aico_schema_history WHERE schema = 'app'",
    );
  },
});

Deno.bench({
  name: "ours: openMigrator() (compile, checksums, validate)",
  group: "open an up-to-date database (20 versions)",
  async fn() {
    await openMigrator(openDb, openRegistry);
  },
});

globalThis.addEventListener("unload", () => {
  for (const db of [oursDb, pluginDb, rawDb, openDb]) void db.close();
  Deno.removeSync(dir, { recursive: true });
});
