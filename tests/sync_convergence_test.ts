// Three simulated devices make concurrent changes and sync through a real
// folder target and a real WebDAV server (rclone) in seeded random orders;
// they converge to identical content and the target holds no plaintext.
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  openFolderTarget,
  openSyncDevice,
  openWebDavTarget,
  type Replica,
  type SyncChange,
  type SyncDevice,
  type SyncKeys,
  type SyncTarget,
} from "../sync/mod.ts";
import { withDir } from "./_helpers.ts";
import { seeded, shuffle } from "./_sync_random.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";

const MARKER = "ZEBRA-MARKER-42c1";

interface Sim {
  device: SyncDevice;
  replica: Replica;
  counter: number;
}

/** Every conv-1 message written, and the newest theme write, on any device. */
const expected = {
  conv1: new Set<string>(),
  theme: undefined as SyncChange | undefined,
};

async function write(sim: Sim, changes: SyncChange[]): Promise<void> {
  for (const c of changes) {
    if (c.op === "append" && c.parent?.key === "conv-1") {
      expected.conv1.add(c.key);
    }
    if (
      c.table === "config" &&
      (expected.theme === undefined || c.hlc > expected.theme.hlc)
    ) {
      expected.theme = c;
    }
  }
  sim.replica.apply(changes);
  await sim.device.stage(changes);
}

function message(sim: Sim, conv: string, text: string): SyncChange {
  return {
    op: "append",
    table: "messages",
    key: `${sim.device.deviceId}/${++sim.counter}`,
    hlc: sim.device.clock.now(),
    parent: { table: "conversations", key: conv },
    value: { role: "user", content: text },
  };
}

async function pull(sim: Sim, target: SyncTarget): Promise<void> {
  await sim.device.pull(target, (changes) => void sim.replica.apply(changes));
}

async function scenario(
  keys: SyncKeys,
  dir: string,
  target: SyncTarget | readonly SyncTarget[],
  seed: number,
  tool?: (rand: () => number, everything: boolean) => Promise<void>,
): Promise<Sim[]> {
  const targets = Array.isArray(target) ? target : [target, target, target];
  const at = (s: Sim) => targets[sims.indexOf(s)]!;
  const rand = seeded(seed);
  expected.conv1.clear();
  expected.theme = undefined;
  const sims: Sim[] = [];
  for (const id of ["dev-a", "dev-b", "dev-c"]) {
    sims.push({
      device: await openSyncDevice(join(dir, id), keys, {
        deviceId: id,
        maxSegmentBytes: 600,
      }),
      replica: createReplica(),
      counter: 0,
    });
  }
  const [a, b, c] = sims as [Sim, Sim, Sim];
  // Shared start: two conversations created on a, synced everywhere.
  await write(a, [
    {
      op: "put",
      table: "conversations",
      key: "conv-1",
      hlc: a.device.clock.now(),
      value: { title: `Trip ${MARKER}` },
    },
    {
      op: "put",
      table: "conversations",
      key: "conv-2",
      hlc: a.device.clock.now(),
      value: { title: "Doomed" },
    },
    message(a, "conv-2", "first in conv-2"),
  ]);
  await a.device.push(at(a));
  await tool?.(rand, true);
  for (const s of [b, c]) await pull(s, at(s));

  const ops = 60;
  let erased = false;
  for (let i = 0; i < ops; i++) {
    const s = sims[Math.floor(rand() * 3)]!;
    const r = rand();
    if (r < 0.35) {
      await write(s, [
        message(s, "conv-1", `${MARKER} from ${s.device.deviceId} #${i}`),
      ]);
    } else if (r < 0.5) {
      await write(s, [{
        op: "put",
        table: "config",
        key: "ui/theme",
        hlc: s.device.clock.now(),
        value: { value: `${MARKER}-${s.device.deviceId}-${i}` },
      }]);
    } else if (r < 0.6 && !erased && s === a) {
      // a deletes conv-2 (and the messages it knows) while b may append to it.
      erased = true;
      const known = s.replica.rows("messages").filter((m) =>
        m.parent?.key === "conv-2"
      );
      await write(s, [
        ...known.map((m): SyncChange => ({
          op: "erase",
          table: "messages",
          key: m.key,
          hlc: s.device.clock.now(),
        })),
        {
          op: "erase",
          table: "conversations",
          key: "conv-2",
          hlc: s.device.clock.now(),
        },
      ]);
    } else if (r < 0.7 && s === b) {
      await write(s, [message(s, "conv-2", `b appends to conv-2 #${i}`)]);
    } else if (r < 0.85) {
      await s.device.push(at(s));
    } else {
      await tool?.(rand, false);
      await pull(s, at(s));
    }
  }
  if (!erased) {
    await write(a, [{
      op: "erase",
      table: "conversations",
      key: "conv-2",
      hlc: a.device.clock.now(),
    }]);
  }
  await write(b, [
    message(b, "conv-2", "b appends after a erased, before syncing"),
  ]);
  // Everybody pushes, then everybody pulls (twice: the second pull is a no-op).
  for (const s of sims) await s.device.push(at(s));
  await tool?.(rand, true);
  for (const s of sims) await pull(s, at(s));
  for (const s of sims) await pull(s, at(s));
  return sims;
}

function checkConverged(sims: Sim[]): void {
  const [a, b, c] = sims as [Sim, Sim, Sim];
  assert.equal(a.replica.contentHash(), b.replica.contentHash());
  assert.equal(a.replica.contentHash(), c.replica.contentHash());
  const messages = a.replica.rows("messages");
  assert.ok(
    messages.every((m) => m.parent?.key === "conv-1"),
    "every message of conv-2 is erased everywhere",
  );
  assert.equal(a.replica.get("conversations", "conv-2")?.op, "erase");
  // No lost and no duplicated message: exactly the conv-1 messages written anywhere.
  assert.deepEqual(
    messages.map((m) => m.key).sort(),
    [...expected.conv1].sort(),
  );
  assert.ok(expected.conv1.size > 5);
  // The config key edited concurrently holds the last writer's value everywhere.
  assert.deepEqual(a.replica.get("config", "ui/theme"), expected.theme);
}

async function* filesUnder(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* filesUnder(p);
    else if (e.isFile) yield p;
  }
}

async function assertNoPlaintext(dir: string): Promise<number> {
  let files = 0;
  const needles = [
    MARKER,
    "conv-1",
    "conv-2",
    "messages",
    "conversations",
    "ui/theme",
    "dev-a",
    "dev-b",
    "dev-c",
  ];
  for await (const file of filesUnder(dir)) {
    files++;
    const text = new TextDecoder("latin1").decode(await Deno.readFile(file));
    const name = file.slice(dir.length);
    for (const n of needles) {
      assert.equal(text.split(n).length - 1, 0, `"${n}" in ${name}`);
      assert.ok(!name.includes(n), `"${n}" in the name ${name}`);
    }
  }
  return files;
}

Deno.test("three devices converge through a folder target in random orders (8 seeds); the target holds no plaintext", async (t) => {
  const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
  for (let seed = 1; seed <= 8; seed++) {
    await t.step(`seed ${seed}`, async () => {
      await withDir(async (dir) => {
        await using target = await openFolderTarget(join(dir, "target"));
        const sims = await scenario(keys, dir, target, seed);
        try {
          checkConverged(sims);
          assert.ok(await assertNoPlaintext(join(dir, "target")) > 3);
        } finally {
          for (const s of sims) await s.device.close();
        }
      });
    });
  }
});

Deno.test({
  name:
    "three devices converge through a real WebDAV server (rclone serve webdav); its files hold no plaintext",
  ignore: !hasRclone(),
  fn: async (t) => {
    const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
    const server = await startWebDavServer();
    try {
      for (const seed of [101, 102]) {
        await t.step(`seed ${seed}`, async () => {
          await withDir(async (dir) => {
            await using target = await openWebDavTarget({
              url: `${server.url}aico-${seed}/`,
            });
            const sims = await scenario(keys, dir, target, seed);
            try {
              checkConverged(sims);
            } finally {
              for (const s of sims) await s.device.close();
            }
          });
        });
      }
      assert.ok(await assertNoPlaintext(server.dir) > 3);
    } finally {
      await server.stop();
    }
  },
});

/**
 * A folder-sync tool between three folders (like Syncthing): each pass
 * copies a random part of the missing files in random order (atomically,
 * through a temporary name) and then propagates deletions.
 */
function folderSyncTool(folders: string[]) {
  const deleted = new Set<string>();
  const seen = folders.map(() => new Set<string>());
  const names = async (f: string) => {
    const out: string[] = [];
    for await (const e of Deno.readDir(f)) {
      if (!e.name.startsWith(".")) out.push(e.name);
    }
    return out;
  };
  return async (rand: () => number, everything: boolean) => {
    // Deletions the owners made since the last pass.
    for (let i = 0; i < folders.length; i++) {
      const now = new Set(await names(folders[i]!));
      for (const n of seen[i]!) if (!now.has(n)) deleted.add(n);
      seen[i] = now;
    }
    for (const from of shuffle(folders.map((_, i) => i), rand)) {
      for (const to of shuffle(folders.map((_, i) => i), rand)) {
        if (from === to) continue;
        const there = new Set(await names(folders[to]!));
        for (const n of shuffle(await names(folders[from]!), rand)) {
          if (there.has(n) || deleted.has(n) || (!everything && rand() < 0.5)) {
            continue;
          }
          const tmp = join(folders[to]!, `.syncthing.${n}.tmp`);
          await Deno.copyFile(join(folders[from]!, n), tmp);
          await Deno.rename(tmp, join(folders[to]!, n));
          seen[to]!.add(n);
        }
      }
    }
    for (let i = 0; i < folders.length; i++) {
      for (const n of await names(folders[i]!)) {
        if (deleted.has(n) && (everything || rand() < 0.5)) {
          await Deno.remove(join(folders[i]!, n));
          seen[i]!.delete(n);
        }
      }
    }
  };
}

Deno.test("three devices with three folders kept in sync by a folder-sync tool that delivers files in random order converge (6 seeds)", async (t) => {
  const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
  for (let seed = 201; seed <= 206; seed++) {
    await t.step(`seed ${seed}`, async () => {
      await withDir(async (dir) => {
        const folders = ["fa", "fb", "fc"].map((f) => join(dir, f));
        const targets = await Promise.all(
          folders.map((f) => openFolderTarget(f)),
        );
        const sims = await scenario(
          keys,
          dir,
          targets,
          seed,
          folderSyncTool(folders),
        );
        try {
          checkConverged(sims);
          for (const f of folders) assert.ok(await assertNoPlaintext(f) > 3);
        } finally {
          for (const s of sims) await s.device.close();
          for (const tg of targets) await tg.close();
        }
      });
    });
  }
});
