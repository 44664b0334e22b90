// The joining flow on the pure layer: the first device publishes its key
// file; a new device fetches it with the passphrase (the target never sees
// the passphrase), derives the same sync keys and pulls everything.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createKeyFile } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  fetchKeyFile,
  openFolderTarget,
  openSyncDevice,
  openWebDavTarget,
  publishKeyFile,
  type SyncTarget,
} from "../sync/mod.ts";
import { rejectsWith, withDir } from "./_helpers.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";

const kdf = { memoryKiB: 19456, iterations: 2 };
const PASSPHRASE = "join-passphrase-9d2e";

async function joinFlow(dir: string, target: SyncTarget): Promise<void> {
  const key = await createKeyFile(join(dir, "first.json"), PASSPHRASE, { kdf });
  const keys = await deriveSyncKeys(key);
  await publishKeyFile(target, join(dir, "first.json"));
  const first = await openSyncDevice(join(dir, "first"), keys);
  const replica = createReplica();
  const changes = Array.from({ length: 250 }, (_, i) => ({
    op: "append" as const,
    table: "messages",
    key: `${first.deviceId}/${i}`,
    hlc: first.clock.now(),
    value: { content: `message ${i}` },
  }));
  replica.apply(changes);
  await first.stage(changes);
  await first.push(target);
  await first.close();

  await rejectsWith(
    fetchKeyFile(target, join(dir, "joined.json"), "not it"),
    "WRONG_KEY",
  );
  const joinedKey = await fetchKeyFile(
    target,
    join(dir, "joined.json"),
    PASSPHRASE,
  );
  await using joined = await openSyncDevice(
    join(dir, "joined"),
    await deriveSyncKeys(joinedKey),
  );
  const pulled = createReplica();
  const report = await joined.pull(target, (c) => void pulled.apply(c));
  assert.equal(report.applied[0]?.changes, 250);
  assert.equal(pulled.contentHash(), replica.contentHash());
}

Deno.test("a new device joins from a folder target with the passphrase and pulls the same content", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    await joinFlow(dir, target);
    for await (const e of Deno.readDir(join(dir, "target"))) {
      const text = new TextDecoder("latin1").decode(
        await Deno.readFile(join(dir, "target", e.name)),
      );
      assert.ok(
        !text.includes(PASSPHRASE),
        "the passphrase is never on the target",
      );
    }
  });
});

Deno.test({
  name:
    "a new device joins from a real WebDAV server with the passphrase and pulls the same content",
  ignore: !hasRclone(),
  fn: async () => {
    const server = await startWebDavServer();
    try {
      await withDir(async (dir) => {
        await using target = await openWebDavTarget({
          url: `${server.url}aico/`,
        });
        await joinFlow(dir, target);
      });
    } finally {
      await server.stop();
    }
  },
});
