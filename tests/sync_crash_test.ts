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
  type SyncChange,
} from "../sync/mod.ts";
import { withDir } from "./_helpers.ts";
import { seeded } from "./_sync_random.ts";

const RUNS = 20;
const child = new URL("./_sync_crash_child.ts", import.meta.url).pathname;

/** Runs the child, SIGKILLs it `delayMs` after it is ready; "killed" when it died before finishing. */
async function runKilled(
  args: string[],
  delayMs: number,
): Promise<"killed" | "finished"> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, ...args],
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
  await new Promise((r) => setTimeout(r, delayMs));
  try {
    p.kill("SIGKILL");
  } catch { /* already exited */ }
  await p.status;
  await reading;
  return seen.includes("done") ? "finished" : "killed";
}

Deno.test("kill -9 during push and during pull (20 runs each): the rerun converges, nothing lost or duplicated", async () => {
  await withDir(async (dir) => {
    const dek = generateDataKey();
    const keyHex = Array.from(dek, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    const keys = await deriveSyncKeys(await importDataKey(dek));
    const targetDir = join(dir, "target");
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
          rand() * 250,
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
        await using target = await openFolderTarget(targetDir);
        await a.push(target);
        assert.equal(a.status().uploaded, a.status().sealed);
      }
      if (
        await runKilled(
          ["pull", journalB, targetDir, keyHex, replicaFile],
          rand() * 80,
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
        await using target = await openFolderTarget(targetDir);
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
    // At least some kills must have landed mid-operation for the test to mean anything.
    assert.ok(
      killedPush >= RUNS / 4,
      `push killed mid-way ${killedPush} times`,
    );
    assert.ok(
      killedPull >= RUNS / 4,
      `pull killed mid-way ${killedPull} times`,
    );
    assert.ok(
      pushPoints.size >= 3,
      "push was killed at several different points",
    );
    // Only one manifest of a remains on the target.
    await using target = await openFolderTarget(targetDir);
    assert.ok((await target.list("m")).length <= 2);
  });
});
