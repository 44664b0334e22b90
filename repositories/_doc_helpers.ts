// Internal, for the examples and tests only: a throw-away store in a temp
// directory with the core schema and the change feed's schema applied through the
// migrator.
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import type { DataKey } from "../crypto/mod.ts";
import { coreSchema } from "./core_schema.ts";
import { changesSchema } from "../changes/changes_schema.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { type LocalStorage, openStorage } from "../storage/mod.ts";

/** A temporary store with the core schema; removed on dispose. */
export interface TestStore extends AsyncDisposable {
  readonly storage: LocalStorage;
  readonly key: DataKey;
  readonly dir: string;
  readonly path: string;
  /** Closes the storage (keeps the files), for reopen tests. */
  closeStorage(): Promise<void>;
  /** Reopens the same file with the same key. */
  reopen(): Promise<LocalStorage>;
}

/** Opens a store in a new temp dir, migrated to the core schema. */
export async function openTestStore(): Promise<TestStore> {
  const dir = await Deno.makeTempDir({ prefix: "aico_repo_" });
  const path = `${dir}/core.db`;
  const key = await importDataKey(generateDataKey());
  let storage: LocalStorage;
  try {
    storage = await openStorage(path, { key });
    await using migrator = await openMigrator(
      storage,
      createSchemaRegistry([coreSchema, changesSchema]),
    );
    await migrator.migrate();
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  return {
    get storage(): LocalStorage {
      return storage;
    },
    key,
    dir,
    path,
    closeStorage: () => storage.close(),
    async reopen(): Promise<LocalStorage> {
      await storage.close();
      storage = await openStorage(path, { key });
      return storage;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await storage.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
