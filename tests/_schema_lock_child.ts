// Child process of tests/schema_lock_test.ts: waits for a start signal, then
// migrates the shared database and prints what it applied as JSON.
// Usage: deno run -A tests/_schema_lock_child.ts <db path> <key hex> <dir> <0|1>
import { importDataKey } from "../crypto/mod.ts";
import { isAicoDataError } from "../errors.ts";
import {
  createSchemaRegistry,
  openMigrator,
  registerSchema,
  type SchemaVersion,
} from "../schema/mod.ts";
import { openStorage } from "../storage/mod.ts";

export const VERSIONS = 8;

/**
 * Version 1 creates the table, then holds the write lock until both
 * processes have started migrating (and a little longer), so that the other
 * one is waiting on the lock with a stale view of the history: without the
 * re-read inside the lock it would apply version 1 again.
 */
export function lockTestSchema(dir: string): ReturnType<typeof registerSchema> {
  const versions: SchemaVersion[] = [{
    version: 1,
    name: "counter",
    up: async (tx) => {
      await tx.execute(
        "CREATE TABLE applied (id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL, pid INTEGER NOT NULL)",
      );
      await tx.execute({
        sql: "INSERT INTO applied (version, pid) VALUES (1, ?)",
        args: [Deno.pid],
      });
      await waitFor(`${dir}/migrating-0`);
      await waitFor(`${dir}/migrating-1`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    },
  }];
  for (let n = 2; n <= VERSIONS; n++) {
    versions.push({
      version: n,
      name: `insert_${n}`,
      up: async (tx) => {
        await tx.execute({
          sql: "INSERT INTO applied (version, pid) VALUES (?, ?)",
          args: [n, Deno.pid],
        });
        await new Promise((resolve) => setTimeout(resolve, 10));
      },
    });
  }
  return registerSchema("locktest", "core", {}, versions);
}

async function print(text: string): Promise<void> {
  await Deno.stdout.write(new TextEncoder().encode(text + "\n"));
}

async function waitFor(file: string): Promise<void> {
  for (;;) {
    try {
      await Deno.stat(file);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

if (import.meta.main) {
  const [path, keyHex, dir, index] = Deno.args as [
    string,
    string,
    string,
    string,
  ];
  const dek = new Uint8Array(keyHex.match(/../g)!.map((h) => parseInt(h, 16)));
  try {
    await using db = await openStorage(path, { key: await importDataKey(dek) });
    await using migrator = await openMigrator(
      db,
      createSchemaRegistry([lockTestSchema(dir)]),
    );
    await waitFor(`${dir}/go`);
    const pendingBefore = (await migrator.plan())[0]?.pending ?? [];
    // Barrier: both processes have seen the pending versions before either migrates.
    await Deno.writeTextFile(`${dir}/planned-${index}`, "");
    await waitFor(`${dir}/planned-${index === "0" ? "1" : "0"}`);
    await Deno.writeTextFile(`${dir}/migrating-${index}`, "");
    const applied = await migrator.migrate();
    await print(
      JSON.stringify({
        pid: Deno.pid,
        pendingBefore,
        applied: applied.map((a) => a.version),
      }),
    );
  } catch (e) {
    await print(
      JSON.stringify({
        pid: Deno.pid,
        error: isAicoDataError(e) ? e.code : String(e),
      }),
    );
    Deno.exit(1);
  }
}
