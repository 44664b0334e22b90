// kill -9 during push and during pull at random points, 20 runs each: the
// next run converges, with no lost and no duplicated message.
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  openFolderTarget,
  openSyncDevice,
  openWebDavTarget,
  type SyncChange,
  type SyncTarget,
} from "../sync/mod.ts";
import { withDir } from "./_helpers.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";
import { seeded } from "./_sync_random.ts";

const RUNS = 20;
const child = new URL("./_sync_crash_child.ts", import.meta.url).pathname;

/** Runs the child, SIGKILLs it `delayMs` after it is ready; "killed" when it died before finishing. */
/**
 * Runs the child; it SIGKILLs itself at call `killAt` of the target (-1:
 * never), and the parent SIGKILLs it `delayMs` after it is ready if it still
 * runs. "killed" when it died before finishing.
 */
async function runKilled(
  args: string[],
  killAt: number,
  delayMs: number,
): Promise<"killed" | "finished"> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, ...args, String(killAt)],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let seen = "";
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const reading = (async () => {
    for await (const chunk of p.stdout) {
      seen += new TextDecoder().decode(chunk);
      if (seen.includes("ready")) ready();
    }
    ready();
  })();
  await isReady;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    p.status.then(() => true),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), delayMs)),
  ]);
  clearTimeout(timer);
  if (!exited) {
    try {
      p.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }
  await p.status;
  await reading;
  return seen.includes("done") ? "finished" : "killed";
}

async function crashRuns(
  targetDir: string,
  openTarget: () => Promise<SyncTarget>,
): Promise<void> {
  await withDir(async (dir) => {
    const dek = generateDataKey();
    const keyHex = Array.from(dek, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    const keys = await deriveSyncKeys(await importDataKey(dek));
    const journalA = join(dir, "a"), journalB = join(dir, "b");
    const replicaFile = join(dir, "b-replica.json");
    const rand = seeded(2026);
    const written = new Set<string>();
    let killedPush = 0, killedPull = 0;
    const pushPoints = new Set<string>();
    for (let run = 0; run < RUNS; run++) {
      // Device a seals 20 small segments of new messages.
      {
        await using a = await openSyncDevice(journalA, keys, {
          deviceId: "a",
          maxSegmentBytes: 800,
        });
        const changes: SyncChange[] = [];
        for (let i = 0; i < 100; i++) {
          const key = `a/${run}-${i}`;
          written.add(key);
          changes.push({
            op: "append",
            table: "messages",
            key,
            hlc: a.clock.now(),
            parent: { table: "conversations", key: "c1" },
            value: { content: `run ${run} message ${i}` },
          });
        }
        await a.stage(changes);
      }
      const before =
        JSON.parse(await Deno.readTextFile(join(journalA, "state.json"))).out;
      if (
        await runKilled(
          ["push", journalA, targetDir, keyHex, replicaFile],
          run % 2 === 0 ? 1 + Math.floor(rand() * 30) : -1,
          run % 2 === 0 ? 60_000 : rand() * 250,
        ) === "killed"
      ) {
        killedPush++;
        const after =
          JSON.parse(await Deno.readTextFile(join(journalA, "state.json"))).out;
        pushPoints.add(
          `${after.uploaded - before.uploaded}/${
            after.sealed - before.uploaded
          }`,
        );
      }
      // The rerun of push completes.
      {
        await using a = await openSyncDevice(journalA, keys);
        await using target = await openTarget();
        await a.push(target);
        assert.equal(a.status().uploaded, a.status().sealed);
      }
      if (
        await runKilled(
          ["pull", journalB, targetDir, keyHex, replicaFile],
          run % 2 === 0 ? Math.floor(rand() * 30) : -1,
          run % 2 === 0 ? 60_000 : rand() * 80,
        ) === "killed"
      ) {
        killedPull++;
      }
      // The rerun of pull completes, from whatever the killed one saved.
      {
        let versions = [];
        try {
          versions = JSON.parse(await Deno.readTextFile(replicaFile));
        } catch { /* the child died before its first save */ }
        const replica = createReplica(versions);
        await using b = await openSyncDevice(journalB, keys);
        await using target = await openTarget();
        await b.pull(target, (changes) => void replica.apply(changes));
        const keysSeen = replica.rows("messages").map((m) => m.key);
        assert.equal(new Set(keysSeen).size, keysSeen.length, "no duplicate");
        assert.deepEqual(
          keysSeen.sort(),
          [...written].sort(),
          `run ${run}: every message exactly once`,
        );
        await Deno.writeTextFile(
          replicaFile,
          JSON.stringify(replica.versions()),
        );
      }
    }
    // deno-lint-ignore no-console
    console.log(
      `killed mid-push ${killedPush}/${RUNS} (segments uploaded/staged when killed: ${
        [...pushPoints].join(" ")
      }), mid-pull ${killedPull}/${RUNS}`,
    );
    // Half the runs kill at an exact call of the target (seeded), so most
    // of them land mid-operation whatever the machine's speed.
    assert.ok(
      killedPush >= RUNS / 3,
      `push killed mid-way ${killedPush} times`,
    );
    assert.ok(
      killedPull >= RUNS / 3,
      `pull killed mid-way ${killedPull} times`,
    );
    assert.ok(
      pushPoints.size >= 3,
      "push was killed at several different points",
    );
    // At most the last three manifests of a remain on the target.
    await using target = await openTarget();
    assert.ok((await target.list("m")).length <= 3);
  });
}

Deno.test("kill -9 during push and during pull to a folder (20 runs each): the rerun converges, nothing lost or duplicated", async () => {
  await withDir(async (dir) => {
    const targetDir = join(dir, "target");
    await crashRuns(targetDir, () => openFolderTarget(targetDir));
  });
});

Deno.test({
  name:
    "kill -9 during push and during pull to a real WebDAV server (20 runs each): the rerun converges, nothing lost or duplicated",
  ignore: !hasRclone(),
  fn: async () => {
    const server = await startWebDavServer();
    try {
      const url = `${server.url}aico/`;
      await crashRuns(url, () => openWebDavTarget({ url }));
    } finally {
      await server.stop();
    }
  },
});
