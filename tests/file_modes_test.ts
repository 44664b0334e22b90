// Issue 12, defect 7: every file the toolkit writes is 0600 and every folder
// 0700. Before the fix data.db (and so its -wal and -shm), its key record
// data.db.aico, backups, the cache/ folder and its LMDB files were created
// 0644/0755 under the usual umask 022 (only key.json was 0600): this test
// failed on each of them.
import assert from "node:assert/strict";
import { join } from "node:path";
import { withDir } from "./_helpers.ts";
import { openDataLayer } from "../data_layer/mod.ts";
import { openStorage, restoreStorage } from "../storage/mod.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";

const kdf = { memoryKiB: 19456, iterations: 2 } as const;

/** Every entry under `dir` (itself included) whose mode is not private. */
async function loose(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string) => {
    const info = await Deno.lstat(path);
    const mode = info.mode! & 0o777;
    if (info.isDirectory) {
      if (mode !== 0o700) out.push(`${path} ${mode.toString(8)}`);
      for await (const entry of Deno.readDir(path)) {
        await visit(join(path, entry.name));
      }
    } else if (mode !== 0o600) {
      out.push(`${path} ${mode.toString(8)}`);
    }
  };
  await visit(dir);
  return out;
}

Deno.test({
  name:
    "the data layer's files (database, WAL, key record, cache, backups) are 0600 and its folders 0700",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    // The modes must come from the toolkit, not from a strict umask.
    const umask = Deno.umask(0o022);
    try {
      await withDir(async (parent) => {
        const dir = join(parent, "data");
        const backups = join(parent, "backups");
        await Deno.mkdir(backups, { mode: 0o700 });
        await Deno.chmod(backups, 0o700);
        {
          await using data = await openDataLayer(dir, {
            passphrase: "correct horse battery staple",
            create: true,
            kdf,
          });
          const chat = await data.conversations.createConversation({
            title: "t",
          });
          await data.conversations.appendMessages(chat.id, [
            { role: "user", content: "hello" },
          ]);
          await data.config.set("ui", "theme", "dark");
          await data.cache?.namespace("n").set("k", "v");
          const names = [...Deno.readDirSync(dir)].map((e) => e.name);
          assert.ok(names.includes("data.db-wal"), names.join(","));
          assert.deepEqual(await loose(dir), [], "while open");
          await data.storage.backup(join(backups, "b.db"));
        }
        assert.deepEqual(await loose(dir), [], "after close");
        assert.deepEqual(await loose(backups), [], "backup");
      });
    } finally {
      Deno.umask(umask);
    }
  },
});

Deno.test({
  name: "restoreStorage() writes the restored database and key record 0600",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const umask = Deno.umask(0o022);
    try {
      await withDir(async (dir) => {
        await Deno.chmod(dir, 0o700);
        const key = await importDataKey(generateDataKey());
        {
          await using db = await openStorage(join(dir, "a.db"), { key });
          await db.execute("CREATE TABLE t (x)");
          await db.backup(join(dir, "a.bak"));
        }
        await restoreStorage(join(dir, "a.bak"), join(dir, "b.db"), { key });
        assert.deepEqual(await loose(dir), []);
      });
    } finally {
      Deno.umask(umask);
    }
  },
});
