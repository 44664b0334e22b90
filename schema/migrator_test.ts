import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { isAicoDataError } from "../errors.ts";
import { openStorage } from "../storage/mod.ts";
import type { Transaction } from "../storage/types.ts";
import { MigrationError } from "./migration_error.ts";
import {
  HISTORY_TABLE,
  LOG_TABLE,
  type MigratableDatabase,
  openMigrator,
  resolveMigratorOptions,
} from "./migrator.ts";
import { createSchemaRegistry } from "./registry.ts";
import {
  registerSchema,
  type SchemaDefinition,
  type SchemaVersion,
} from "./schema_version.ts";

async function withDb(
  fn: (db: MigratableDatabase, path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aico-schema-" });
  try {
    const path = `${dir}/test.db`;
    const db = await openStorage(path, {
      key: await importDataKey(generateDataKey()),
    });
    try {
      await fn(db, path);
    } finally {
      await db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function snapshot(db: MigratableDatabase): Promise<string[]> {
  const rs = await db.execute(
    "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name",
  );
  return rs.rows.map((r) => `${r.type}|${r.name}|${r.tbl_name}|${r.sql}`);
}

async function count(db: MigratableDatabase, sql: string): Promise<number> {
  return Number((await db.execute(sql)).rows[0]?.n);
}

async function history(
  db: MigratableDatabase,
  schema: string,
): Promise<number[]> {
  const rs = await db.execute({
    sql:
      `SELECT version FROM ${HISTORY_TABLE} WHERE schema = ? ORDER BY version`,
    args: [schema],
  });
  return rs.rows.map((r) => Number(r.version));
}

function rejectsWith(code: string): (e: unknown) => boolean {
  return (e) => {
    if (!isAicoDataError(e) || e.code !== code) throw e;
    return true;
  };
}

const coreVersions: SchemaVersion[] = [
  {
    version: 1,
    name: "logs",
    up: "CREATE TABLE logs (id INTEGER PRIMARY KEY, msg TEXT NOT NULL)",
    down: "DROP TABLE logs",
  },
  {
    version: 2,
    name: "users",
    up: `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
         CREATE INDEX logs_msg ON logs (msg);`,
    down: "DROP INDEX logs_msg; DROP TABLE users",
  },
  {
    version: 3,
    name: "log_view",
    up:
      "CREATE VIEW recent_logs AS SELECT * FROM logs ORDER BY id DESC LIMIT 10",
    down: "DROP VIEW recent_logs",
  },
];
const core = registerSchema("core", "core", { priority: 0 }, coreVersions);

const weather = registerSchema("weather", "weather", { priority: 10 }, [
  {
    version: 1,
    name: "readings",
    up:
      `CREATE TABLE plugin_weather_readings (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER, celsius REAL);
         CREATE INDEX plugin_weather_readings_at ON plugin_weather_readings (at);`,
    down: "DROP TABLE plugin_weather_readings",
  },
  {
    version: 2,
    name: "views_and_search",
    up:
      `CREATE VIEW plugin_weather_hot AS SELECT * FROM plugin_weather_readings WHERE celsius > 30;
         CREATE VIRTUAL TABLE plugin_weather_notes USING fts5(body);`,
    down: `DROP TABLE plugin_weather_notes; DROP VIEW plugin_weather_hot`,
  },
]);

const tides = registerSchema("tides", "tides", { priority: 20 }, [
  {
    version: 1,
    name: "levels",
    up:
      "CREATE TABLE plugin_tides_levels (at INTEGER PRIMARY KEY, metres REAL)",
  },
]);

Deno.test("resolveMigratorOptions() fills defaults and refuses bad values", () => {
  const table: [unknown, unknown][] = [
    [undefined, { validateOnOpen: true, lockTimeoutMs: 30000 }],
    [{}, { validateOnOpen: true, lockTimeoutMs: 30000 }],
    [{ validateOnOpen: false, lockTimeoutMs: 0 }, {
      validateOnOpen: false,
      lockTimeoutMs: 0,
    }],
    [{ validateOnOpen: "yes" }, "INVALID_INPUT"],
    [{ lockTimeoutMs: -1 }, "INVALID_INPUT"],
    [{ lockTimeoutMs: Number.NaN }, "INVALID_INPUT"],
  ];
  for (const [input, expected] of table) {
    if (typeof expected === "string") {
      assert.throws(
        () => resolveMigratorOptions(input as never),
        rejectsWith(expected),
      );
    } else {
      const resolved = resolveMigratorOptions(input as never);
      assert.deepEqual(resolved, expected);
      assert.ok(Object.isFrozen(resolved));
    }
  }
});

Deno.test("migrate() applies core first, records each version, and is idempotent", async () => {
  await withDb(async (db) => {
    const migrator = await openMigrator(
      db,
      createSchemaRegistry([tides, weather, core]),
    );
    const applied = await migrator.migrate();
    assert.deepEqual(applied.map((a) => `${a.schema}@${a.version}`), [
      "core@1",
      "core@2",
      "core@3",
      "weather@1",
      "weather@2",
      "tides@1",
    ]);
    assert.ok(applied.every((a) => a.direction === "up" && a.durationMs >= 0));
    const rows = (await db.execute(
      `SELECT schema, version, owner, name, checksum, applied_at, duration_ms, direction FROM ${HISTORY_TABLE}
       ORDER BY schema, version`,
    )).rows;
    assert.equal(rows.length, 6);
    for (const r of rows) {
      assert.match(String(r.checksum), /^[0-9a-f]{64}$/);
      assert.equal(r.direction, "up");
      assert.ok(Number(r.applied_at) > 1_700_000_000_000);
    }
    assert.deepEqual(
      rows.filter((r) => r.schema === "weather").map((r) => r.owner),
      ["weather", "weather"],
    );
    // The schema is really there.
    await db.execute("INSERT INTO logs (msg) VALUES ('hello')");
    assert.equal(await count(db, "SELECT count(*) AS n FROM recent_logs"), 1);
    assert.deepEqual(await migrator.migrate(), []);
    assert.equal(await count(db, `SELECT count(*) AS n FROM ${LOG_TABLE}`), 6);
    await migrator.close();
  });
});

Deno.test("plan() lists pending and applied versions without changing anything", async () => {
  await withDb(async (db) => {
    const registry = createSchemaRegistry([core, weather]);
    const migrator = await openMigrator(db, registry);
    const before = await snapshot(db);
    const plan = await migrator.plan();
    assert.deepEqual(await snapshot(db), before);
    assert.equal(before.length, 0);
    assert.deepEqual(
      plan.map((p) => [p.schema, p.current, p.latest, p.pending, p.applied]),
      [
        ["core", 0, 3, [1, 2, 3], []],
        ["weather", 0, 2, [1, 2], []],
      ],
    );
    await migrator.migrateTo("core", 2);
    const afterMigrate = await snapshot(db);
    const plan2 = await migrator.plan();
    assert.deepEqual(await snapshot(db), afterMigrate);
    assert.deepEqual(plan2[0]?.pending, [3]);
    assert.deepEqual(plan2[0]?.applied, [1, 2]);
    assert.deepEqual(plan2[0]?.versions.map((v) => v.state), [
      "applied",
      "applied",
      "pending",
    ]);
    assert.ok(plan2[0]?.versions[0]?.appliedAt !== undefined);
    assert.equal(plan2[0]?.versions[2]?.appliedAt, undefined);
    assert.ok(plan2[0]?.versions.every((v) => v.reversible));
  });
});

Deno.test("a failing version rolls back completely and leaves the previous version with data intact", async (t) => {
  await withDb(async (db) => {
    const base: SchemaVersion = {
      version: 1,
      name: "notes",
      up: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
    };
    await (await openMigrator(
      db,
      createSchemaRegistry([registerSchema("app", "core", {}, [base])]),
    )).migrate();
    await db.execute("INSERT INTO notes (body) VALUES ('keep me'), ('and me')");
    const before = await snapshot(db);

    await t.step(
      "SQL version: MIGRATION_FAILED names schema, version and statement",
      async () => {
        const broken = registerSchema("app", "core", {}, [base, {
          version: 2,
          name: "broken",
          up: `CREATE TABLE tags (id INTEGER PRIMARY KEY);
             INSERT INTO notes (body) VALUES ('half applied');
             UPDATE notes SET body = 'clobbered';
             INSERT INTO no_such_table VALUES (1);`,
        }]);
        const migrator = await openMigrator(db, createSchemaRegistry([broken]));
        const err = await migrator.migrate().then(() => undefined, (e) => e);
        assert.ok(err instanceof MigrationError, String(err));
        assert.equal(err.code, "MIGRATION_FAILED");
        assert.equal(err.schema, "app");
        assert.equal(err.version, 2);
        assert.equal(err.statementIndex, 3);
        assert.ok(err.cause !== undefined);
      },
    );
    await t.step("function version: same guarantee", async () => {
      const broken = registerSchema("app", "core", {}, [base, {
        version: 2,
        name: "broken_fn",
        up: async (tx: Transaction) => {
          await tx.execute("CREATE TABLE tags (id INTEGER PRIMARY KEY)");
          await tx.execute("DELETE FROM notes");
          throw new Error("boom");
        },
      }]);
      const migrator = await openMigrator(db, createSchemaRegistry([broken]));
      await assert.rejects(migrator.migrate(), rejectsWith("MIGRATION_FAILED"));
    });
    await t.step(
      "nothing changed: same objects, same rows, history at version 1",
      async () => {
        assert.deepEqual(await snapshot(db), before);
        assert.deepEqual(
          (await db.execute("SELECT body FROM notes ORDER BY id")).rows.map((
            r,
          ) => r.body),
          ["keep me", "and me"],
        );
        assert.deepEqual(await history(db, "app"), [1]);
        assert.equal(
          await count(db, `SELECT count(*) AS n FROM ${LOG_TABLE}`),
          1,
        );
      },
    );
  });
});

Deno.test("an edited applied migration is detected with MIGRATION_CHECKSUM and repair() accepts it", async (t) => {
  await withDb(async (db) => {
    await (await openMigrator(db, createSchemaRegistry([core]))).migrate();
    const edited = registerSchema("core", "core", { priority: 0 }, [
      coreVersions[0]!,
      {
        ...coreVersions[1]!,
        up:
          "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)",
      },
      coreVersions[2]!,
    ]);
    await t.step("whitespace and comments are not an edit", async () => {
      const reformatted = registerSchema("core", "core", { priority: 0 }, [
        {
          ...coreVersions[0]!,
          up:
            "-- the log table\nCREATE  TABLE logs(\n  id INTEGER PRIMARY KEY,\n  msg TEXT NOT NULL\n);",
        },
        coreVersions[1]!,
        coreVersions[2]!,
      ]);
      await (await openMigrator(db, createSchemaRegistry([reformatted])))
        .validate();
    });
    await t.step("at open", async () => {
      const err = await openMigrator(db, createSchemaRegistry([edited])).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(err instanceof MigrationError);
      assert.equal(err.code, "MIGRATION_CHECKSUM");
      assert.equal(err.schema, "core");
      assert.equal(err.version, 2);
    });
    await t.step(
      "by migrate(), plan() and migrateTo() when opened without validation",
      async () => {
        const migrator = await openMigrator(
          db,
          createSchemaRegistry([edited]),
          { validateOnOpen: false },
        );
        assert.deepEqual(
          (await migrator.plan())[0]?.versions.map((v) => v.state),
          ["applied", "changed", "applied"],
        );
        await assert.rejects(
          migrator.migrate(),
          rejectsWith("MIGRATION_CHECKSUM"),
        );
        await assert.rejects(
          migrator.migrateTo("core", 1),
          rejectsWith("MIGRATION_CHECKSUM"),
        );
        assert.deepEqual(await history(db, "core"), [1, 2, 3]);
      },
    );
    await t.step(
      "an applied version missing from the code is detected too",
      async () => {
        const shorter = registerSchema(
          "core",
          "core",
          { priority: 0 },
          coreVersions.slice(0, 2),
        );
        await assert.rejects(
          openMigrator(db, createSchemaRegistry([shorter])),
          rejectsWith("MIGRATION_CHECKSUM"),
        );
        const migrator = await openMigrator(
          db,
          createSchemaRegistry([shorter]),
          { validateOnOpen: false },
        );
        assert.equal((await migrator.plan())[0]?.versions[2]?.state, "unknown");
      },
    );
    await t.step("repair() records the new checksum deliberately", async () => {
      const migrator = await openMigrator(db, createSchemaRegistry([edited]), {
        validateOnOpen: false,
      });
      const repaired = await migrator.repair("core");
      assert.deepEqual(repaired.map((r) => [r.schema, r.version]), [[
        "core",
        2,
      ]]);
      assert.notEqual(repaired[0]?.checksum, repaired[0]?.previousChecksum);
      await (await openMigrator(db, createSchemaRegistry([edited]))).validate();
      assert.equal(
        await count(
          db,
          `SELECT count(*) AS n FROM ${LOG_TABLE} WHERE direction = 'repair'`,
        ),
        1,
      );
      assert.deepEqual(await migrator.repair(), []);
      // The original definition is now the changed one.
      await assert.rejects(
        openMigrator(db, createSchemaRegistry([core])),
        rejectsWith("MIGRATION_CHECKSUM"),
      );
    });
  });
});

Deno.test("migrateTo() down then up returns to an identical schema", async () => {
  await withDb(async (db) => {
    const migrator = await openMigrator(
      db,
      createSchemaRegistry([core, weather]),
    );
    await migrator.migrate();
    const full = await snapshot(db);
    const down = await migrator.migrateTo("weather", 0);
    assert.deepEqual(down.map((d) => `${d.direction}${d.version}`), [
      "down2",
      "down1",
    ]);
    assert.equal(
      (await snapshot(db)).some((s) => s.includes("plugin_weather_")),
      false,
    );
    await migrator.migrateTo("core", 1);
    assert.deepEqual(await history(db, "core"), [1]);
    assert.equal((await snapshot(db)).some((s) => s.includes("users")), false);
    await migrator.migrateTo("core", 3);
    const up = await migrator.migrateTo("weather", 2);
    assert.deepEqual(up.map((d) => `${d.direction}${d.version}`), [
      "up1",
      "up2",
    ]);
    assert.deepEqual(await snapshot(db), full);
    assert.equal(
      await count(
        db,
        `SELECT count(*) AS n FROM ${LOG_TABLE} WHERE direction = 'down'`,
      ),
      4,
    );
  });
});

Deno.test("migrateTo() refuses to go down through an irreversible version, changing nothing", async () => {
  await withDb(async (db) => {
    const app = registerSchema("app", "core", {}, [
      { version: 1, name: "a", up: "CREATE TABLE a (x)", irreversible: true },
      { version: 2, name: "b", up: "CREATE TABLE b (x)" }, // no down
      { version: 3, name: "c", up: "CREATE TABLE c (x)", down: "DROP TABLE c" },
    ]);
    const migrator = await openMigrator(db, createSchemaRegistry([app]));
    await migrator.migrate();
    const before = await snapshot(db);
    for (const target of [0, 1]) {
      const err = await migrator.migrateTo("app", target).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(err instanceof MigrationError);
      assert.equal(err.code, "MIGRATION_IRREVERSIBLE");
      assert.equal(err.version, 2);
    }
    assert.deepEqual(await snapshot(db), before);
    assert.deepEqual(await history(db, "app"), [1, 2, 3]);
    await migrator.migrateTo("app", 2);
    assert.deepEqual(await history(db, "app"), [1, 2]);
    assert.deepEqual(
      (await migrator.plan())[0]?.versions.map((v) => v.reversible),
      [false, false, true],
    );
    await assert.rejects(
      migrator.migrateTo("nope", 1),
      rejectsWith("NOT_FOUND"),
    );
    await assert.rejects(
      migrator.migrateTo("app", 4),
      rejectsWith("INVALID_INPUT"),
    );
    await assert.rejects(
      migrator.migrateTo("app", -1),
      rejectsWith("INVALID_INPUT"),
    );
    await assert.rejects(
      migrator.migrateTo("app", 1.5),
      rejectsWith("INVALID_INPUT"),
    );
  });
});

Deno.test("baseline() adopts an existing database", async () => {
  await withDb(async (db) => {
    // A database created before the migrator existed.
    await db.execute(
      "CREATE TABLE logs (id INTEGER PRIMARY KEY, msg TEXT NOT NULL)",
    );
    await db.execute("INSERT INTO logs (msg) VALUES ('old')");
    await db.execute(
      "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
    );
    await db.execute("CREATE INDEX logs_msg ON logs (msg)");
    const migrator = await openMigrator(db, createSchemaRegistry([core]));
    await migrator.baseline("core", 2);
    assert.deepEqual((await migrator.plan())[0]?.pending, [3]);
    const applied = await migrator.migrate();
    assert.deepEqual(applied.map((a) => a.version), [3]);
    assert.equal(await count(db, "SELECT count(*) AS n FROM logs"), 1);
    const directions = (await db.execute(
      `SELECT direction FROM ${HISTORY_TABLE} ORDER BY version`,
    )).rows;
    assert.deepEqual(directions.map((r) => r.direction), [
      "baseline",
      "baseline",
      "up",
    ]);
    await assert.rejects(
      migrator.baseline("core", 1),
      rejectsWith("ALREADY_EXISTS"),
    );
    await assert.rejects(
      migrator.baseline("core", 4),
      rejectsWith("INVALID_INPUT"),
    );
    await assert.rejects(
      migrator.baseline("nope", 1),
      rejectsWith("NOT_FOUND"),
    );
  });
});

Deno.test("function migrations get the transaction, checked against the owner's rules", async (t) => {
  await withDb(async (db) => {
    await (await openMigrator(db, createSchemaRegistry([core]))).migrate();
    await db.execute("INSERT INTO logs (msg) VALUES ('a'), ('b')");
    await t.step(
      "core backfill runs in the version's transaction",
      async () => {
        const app = registerSchema("app", "core", { priority: 1 }, [{
          version: 1,
          name: "backfill",
          up: async (tx) => {
            await tx.execute("CREATE TABLE log_counts (n INTEGER)");
            const rs = await tx.execute("SELECT count(*) AS n FROM logs");
            await tx.execute({
              sql: "INSERT INTO log_counts (n) VALUES (?)",
              args: [rs.rows[0]?.n ?? null],
            });
          },
          down: async (tx) => {
            await tx.execute("DROP TABLE log_counts");
          },
        }]);
        const migrator = await openMigrator(
          db,
          createSchemaRegistry([core, app]),
        );
        await migrator.migrate();
        assert.equal(await count(db, "SELECT n FROM log_counts"), 2);
        await migrator.migrateTo("app", 0);
        assert.equal(
          (await snapshot(db)).some((s) => s.includes("log_counts")),
          false,
        );
      },
    );
    await t.step(
      "transaction control inside a function is refused",
      async () => {
        const app = registerSchema("app2", "core", {}, [{
          version: 1,
          name: "commit",
          up: async (tx) => {
            await tx.execute("CREATE TABLE c1 (x)");
            await tx.execute("COMMIT");
          },
        }]);
        await assert.rejects(
          (await openMigrator(db, createSchemaRegistry([core, app]))).migrate(),
          rejectsWith("SCHEMA_INVALID"),
        );
        assert.equal((await snapshot(db)).some((s) => s.includes("c1")), false);
      },
    );
  });
});

Deno.test("plugin isolation: a plugin that tries DROP TABLE logs is refused and nothing changes", async (t) => {
  await withDb(async (db) => {
    const migrator = await openMigrator(
      db,
      createSchemaRegistry([core, weather]),
    );
    await migrator.migrate();
    await db.execute("INSERT INTO logs (msg) VALUES ('precious')");
    const before = await snapshot(db);
    const logsBefore = await count(db, "SELECT count(*) AS n FROM logs");
    const unchanged = async () => {
      assert.deepEqual(await snapshot(db), before);
      assert.equal(
        await count(db, "SELECT count(*) AS n FROM logs"),
        logsBefore,
      );
      assert.deepEqual(await history(db, "evil"), []);
    };

    await t.step("as SQL: refused at registration", () => {
      assert.throws(
        () =>
          registerSchema("evil", "evil", {}, [{
            version: 1,
            name: "x",
            up: "DROP TABLE logs",
          }]),
        rejectsWith("PLUGIN_ISOLATION"),
      );
    });
    await t.step(
      "as SQL in a forged definition: refused before any statement runs",
      async () => {
        const forged: SchemaDefinition = {
          name: "evil",
          owner: "evil",
          priority: 1,
          namespace: "plugin_evil_",
          latest: 1,
          versions: [{
            version: 1,
            name: "x",
            up: "CREATE TABLE plugin_evil_a (x); DROP TABLE logs",
          }],
          sealedColumns: [],
        };
        await assert.rejects(
          openMigrator(db, {
            schemas: [core, forged],
            get: () => undefined,
            sealedColumns: [],
          }),
          rejectsWith("PLUGIN_ISOLATION"),
        );
        await unchanged();
      },
    );
    await t.step(
      "from a function: refused, its earlier statements rolled back",
      async () => {
        const evil = registerSchema("evil", "evil", {}, [{
          version: 1,
          name: "sneaky",
          up: async (tx) => {
            await tx.execute("CREATE TABLE plugin_evil_a (x)");
            await tx.execute("DROP TABLE logs");
          },
        }]);
        const err = await (await openMigrator(
          db,
          createSchemaRegistry([core, weather, evil]),
        )).migrate()
          .then(() => undefined, (e) => e);
        assert.ok(err instanceof MigrationError);
        assert.equal(err.code, "PLUGIN_ISOLATION");
        assert.equal(err.schema, "evil");
        assert.equal(err.statementIndex, 1);
        await unchanged();
      },
    );
    await t.step(
      "reading or writing core data from a function is refused",
      async () => {
        for (
          const sql of [
            "SELECT * FROM logs",
            "DELETE FROM logs",
            "SELECT * FROM plugin_weather_readings",
          ]
        ) {
          const evil = registerSchema("evil", "evil", {}, [{
            version: 1,
            name: "peek",
            up: async (tx) => {
              await tx.execute(sql);
            },
          }]);
          await assert.rejects(
            (await openMigrator(db, createSchemaRegistry([core, evil])))
              .migrate(),
            rejectsWith("PLUGIN_ISOLATION"),
          );
        }
        await unchanged();
      },
    );
    await t.step(
      "a change outside the namespace that slips past the analyser is caught after the fact",
      async () => {
        // Core reads a plugin table in a view; renaming the table makes SQLite
        // rewrite the core view: the sqlite_schema check refuses it.
        const spy = registerSchema("spy", "core", { priority: 5 }, [{
          version: 1,
          name: "view_on_plugin",
          up:
            "CREATE VIEW weather_summary AS SELECT count(*) AS n FROM plugin_weather_readings",
        }]);
        const m = await openMigrator(
          db,
          createSchemaRegistry([core, spy, weather]),
        );
        await m.migrate();
        const withView = await snapshot(db);
        const renamer = registerSchema("weather", "weather", { priority: 10 }, [
          ...weather.versions,
          {
            version: 3,
            name: "rename",
            up:
              "ALTER TABLE plugin_weather_readings RENAME TO plugin_weather_samples",
          },
        ]);
        const err = await (await openMigrator(
          db,
          createSchemaRegistry([core, spy, renamer]),
        )).migrate()
          .then(() => undefined, (e) => e);
        assert.ok(err instanceof MigrationError, String(err));
        assert.equal(err.code, "PLUGIN_ISOLATION");
        assert.equal(err.version, 3);
        assert.deepEqual(await snapshot(db), withView);
        assert.deepEqual(await history(db, "weather"), [1, 2]);
      },
    );
  });
});

Deno.test("removePlugin() drops only the plugin's objects and history; core and other plugins are untouched", async () => {
  await withDb(async (db) => {
    const migrator = await openMigrator(
      db,
      createSchemaRegistry([core, weather, tides]),
    );
    await migrator.migrate();
    await db.execute("INSERT INTO users (name) VALUES ('ada')");
    await db.execute(
      "INSERT INTO plugin_weather_readings (at, celsius) VALUES (1, 31.5)",
    );
    await db.execute(
      "INSERT INTO plugin_tides_levels (at, metres) VALUES (1, 2.5)",
    );
    const before = await snapshot(db);
    const logs = (await db.execute("SELECT * FROM logs ORDER BY id")).rows;

    const report = await migrator.removePlugin("weather");
    assert.deepEqual([...report.schemas], ["weather"]);
    assert.ok(report.objects.includes("plugin_weather_readings"));
    assert.ok(report.objects.includes("plugin_weather_notes"));
    const after = await snapshot(db);
    assert.deepEqual(
      after,
      before.filter((s) => !s.split("|")[1]!.startsWith("plugin_weather_")),
    );
    assert.deepEqual(
      (await db.execute("SELECT * FROM logs ORDER BY id")).rows,
      logs,
    );
    assert.equal(
      await count(db, "SELECT count(*) AS n FROM plugin_tides_levels"),
      1,
    );
    assert.deepEqual(await history(db, "weather"), []);
    assert.deepEqual(await history(db, "core"), [1, 2, 3]);
    assert.deepEqual(await history(db, "tides"), [1]);
    assert.equal(
      await count(
        db,
        `SELECT count(*) AS n FROM ${LOG_TABLE} WHERE direction = 'remove'`,
      ),
      2,
    );
    // Still registered: migrate() installs it again from scratch.
    assert.deepEqual(
      (await migrator.migrate()).map((a) => `${a.schema}@${a.version}`),
      ["weather@1", "weather@2"],
    );

    assert.deepEqual(await migrator.removePlugin("absent"), {
      objects: [],
      schemas: [],
    });
    await assert.rejects(
      migrator.removePlugin("core"),
      rejectsWith("INVALID_INPUT"),
    );
    await assert.rejects(
      migrator.removePlugin("Bad_Name"),
      rejectsWith("INVALID_INPUT"),
    );
  });
});

Deno.test("a closed migrator refuses every call with STORE_CLOSED", async () => {
  await withDb(async (db) => {
    const migrator = await openMigrator(db, createSchemaRegistry([core]));
    assert.equal(migrator.closed, false);
    await migrator[Symbol.asyncDispose]();
    await migrator.close();
    assert.equal(migrator.closed, true);
    await assert.rejects(migrator.migrate(), rejectsWith("STORE_CLOSED"));
    await assert.rejects(migrator.plan(), rejectsWith("STORE_CLOSED"));
    await assert.rejects(migrator.validate(), rejectsWith("STORE_CLOSED"));
    await assert.rejects(migrator.repair(), rejectsWith("STORE_CLOSED"));
    await assert.rejects(
      migrator.baseline("core", 1),
      rejectsWith("STORE_CLOSED"),
    );
    await assert.rejects(
      migrator.migrateTo("core", 1),
      rejectsWith("STORE_CLOSED"),
    );
    await assert.rejects(
      migrator.removePlugin("x"),
      rejectsWith("STORE_CLOSED"),
    );
    assert.deepEqual(await snapshot(db), []);
  });
});

Deno.test("CREATE TRIGGER ... BEGIN ... END migrations apply, revert and are removed with their plugin", async () => {
  await withDb(async (db) => {
    const audit = registerSchema("audit", "core", { priority: 1 }, [{
      version: 1,
      name: "user_audit",
      up: `CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN
             INSERT INTO logs (msg) VALUES ('user ' || new.name);
           END;`,
      down: "DROP TRIGGER users_audit",
    }]);
    const watch = registerSchema("watch", "watch", {}, [{
      version: 1,
      name: "events",
      up: `CREATE TABLE plugin_watch_events (id INTEGER PRIMARY KEY, what TEXT);
           CREATE TABLE plugin_watch_counts (n INTEGER);
           INSERT INTO plugin_watch_counts VALUES (0);
           CREATE TRIGGER plugin_watch_count AFTER INSERT ON plugin_watch_events BEGIN
             UPDATE plugin_watch_counts SET n = n + 1;
             SELECT CASE WHEN new.what = 'bad' THEN RAISE(ABORT, 'bad event') END;
           END;`,
      down:
        "DROP TRIGGER plugin_watch_count; DROP TABLE plugin_watch_counts; DROP TABLE plugin_watch_events",
    }]);
    const migrator = await openMigrator(
      db,
      createSchemaRegistry([core, audit, watch]),
    );
    await migrator.migrate();
    const full = await snapshot(db);
    await db.execute("INSERT INTO users (name) VALUES ('ada')");
    assert.equal(
      await count(db, "SELECT count(*) AS n FROM logs WHERE msg = 'user ada'"),
      1,
    );
    await db.execute("INSERT INTO plugin_watch_events (what) VALUES ('ok')");
    assert.equal(await count(db, "SELECT n FROM plugin_watch_counts"), 1);

    await migrator.migrateTo("audit", 0);
    await migrator.migrateTo("watch", 0);
    assert.equal(
      (await snapshot(db)).some((x) => x.startsWith("trigger|")),
      false,
    );
    await migrator.migrate();
    assert.deepEqual(await snapshot(db), full);

    const removed = await migrator.removePlugin("watch");
    assert.ok(removed.objects.includes("plugin_watch_count"));
    assert.deepEqual(
      await snapshot(db),
      full.filter((x) => !x.split("|")[1]!.startsWith("plugin_watch_")),
    );
    assert.ok(
      (await snapshot(db)).some((x) => x.startsWith("trigger|users_audit|")),
    );
  });
});

Deno.test("a write lock held elsewhere is waited for, then reported as MIGRATION_LOCKED", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "aico-schema-" });
  try {
    const path = `${dir}/test.db`;
    const key = await importDataKey(generateDataKey());
    await using holder = await openStorage(path, { key });
    await using db = await openStorage(path, { key, busyTimeoutMs: 20 });
    const registry = createSchemaRegistry([core]);
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const tx = holder.transaction(async (tx) => {
      await tx.execute("CREATE TABLE other (x)");
      locked();
      await holding;
    }, "write");
    await isLocked;
    await t.step(
      "gives up after lockTimeoutMs, having applied nothing",
      async () => {
        const migrator = await openMigrator(db, registry, {
          lockTimeoutMs: 100,
        });
        await assert.rejects(
          migrator.migrate(),
          rejectsWith("MIGRATION_LOCKED"),
        );
      },
    );
    await t.step(
      "succeeds once the lock is released within lockTimeoutMs",
      async () => {
        const migrator = await openMigrator(db, registry, {
          lockTimeoutMs: 10_000,
        });
        const done = migrator.migrate();
        setTimeout(release, 200);
        assert.equal((await done).length, 3);
        await tx;
        assert.deepEqual(await history(db, "core"), [1, 2, 3]);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an uninstalled plugin's history is ignored by validation and removed by removePlugin()", async () => {
  await withDb(async (db) => {
    await (await openMigrator(db, createSchemaRegistry([core, weather])))
      .migrate();
    // The plugin's code is gone: only core is registered now.
    const migrator = await openMigrator(db, createSchemaRegistry([core]));
    assert.deepEqual((await migrator.plan()).map((p) => p.schema), ["core"]);
    assert.deepEqual(await migrator.migrate(), []);
    const report = await migrator.removePlugin("weather");
    assert.deepEqual([...report.schemas], ["weather"]);
    assert.equal(
      (await snapshot(db)).some((s) => s.includes("plugin_weather_")),
      false,
    );
    assert.deepEqual(await history(db, "weather"), []);
    assert.deepEqual(await history(db, "core"), [1, 2, 3]);
  });
});

Deno.test("migrate({ dryRun: true }) tries every pending version and keeps nothing", async (t) => {
  await withDb(async (db) => {
    const registry = createSchemaRegistry([core, weather]);
    const migrator = await openMigrator(db, registry);
    await t.step(
      "on a fresh database: all versions run, nothing stays",
      async () => {
        const tried = await migrator.migrate({ dryRun: true });
        assert.equal(tried.length, 5);
        assert.deepEqual(await snapshot(db), []);
      },
    );
    await migrator.migrateTo("core", 1);
    await db.execute("INSERT INTO logs (msg) VALUES ('keep')");
    const before = await snapshot(db);
    await t.step("only pending versions run", async () => {
      const tried = await migrator.migrate({ dryRun: true });
      assert.deepEqual(tried.map((r) => `${r.schema}@${r.version}`), [
        "core@2",
        "core@3",
        "weather@1",
        "weather@2",
      ]);
      assert.deepEqual(await snapshot(db), before);
      assert.deepEqual(await history(db, "core"), [1]);
    });
    await t.step(
      "a failing version is reported the same way, nothing changes",
      async () => {
        const broken = registerSchema("broken", "core", { priority: 1 }, [{
          version: 1,
          name: "bad",
          up: "DELETE FROM logs; INSERT INTO nowhere VALUES (1)",
        }]);
        const m = await openMigrator(db, createSchemaRegistry([core, broken]));
        const err = await m.migrate({ dryRun: true }).then(
          () => undefined,
          (e) => e,
        );
        assert.ok(err instanceof MigrationError);
        assert.equal(err.code, "MIGRATION_FAILED");
        assert.equal(err.schema, "broken");
        assert.equal(err.statementIndex, 1);
        assert.deepEqual(await snapshot(db), before);
        assert.equal(await count(db, "SELECT count(*) AS n FROM logs"), 1);
      },
    );
    await assert.rejects(
      migrator.migrate({ dryRun: "yes" as unknown as boolean }),
      rejectsWith("INVALID_INPUT"),
    );
  });
});
