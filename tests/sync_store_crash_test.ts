// kill -9 of a real data layer during push and during pull, at random
// points (a chosen call to the target, or a random time), 20 runs each: the
// next run converges, with no lost and no duplicated message.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSyncTarget } from "../sync/mod.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";
import { withDir } from "./_helpers.ts";
import { seeded } from "./_sync_random.ts";
import {
  contentHash,
  contents,
  firstDevice,
  joinDevice,
  openDevice,
} from "./_sync_store.ts";

const RUNS = 20;
const child = new URL("./_sync_store_child.ts", import.meta.url).pathname;

async function runChild(
  args: string[],
  killAt: number,
  delayMs: number,
): Promise<"killed" | "finished"> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, ...args, String(killAt)],
    stdout: "piped",
    stderr: "piped",
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
  const errText = new Response(p.stderr).text();
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
  const status = await p.status;
  await reading;
  const err = await errText;
  if (seen.includes("done")) return "finished";
  if (status.signal !== "SIGKILL") {
    throw new Error(`child failed (${status.code}): ${err}`);
  }
  return "killed";
}

async function crashRuns(dir: string, tdir: string): Promise<void> {
  {
    const aDir = join(dir, "a"), bDir = join(dir, "b");
    {
      await using target = await openSyncTarget(tdir);
      const a = await firstDevice(aDir, "dev-a", target);
      await a.conversations.createConversation({ id: "c1", title: "crash" });
      await a.sync!.run();
      await a.close();
      const b = await joinDevice(bDir, "dev-b", target);
      await b.sync!.run();
      await b.close();
    }
    const rand = seeded(42);
    let total = 0, killedPush = 0, killedPull = 0;
    for (let run = 0; run < RUNS; run++) {
      // Both devices append, so each pushes and each pulls.
      for (const [d, id] of [[aDir, "dev-a"], [bDir, "dev-b"]] as const) {
        const data = await openDevice(d, id, tdir);
        const n = 5 + Math.floor(rand() * 40);
        await data.conversations.appendMessages(
          "c1",
          Array.from({ length: n }, (_, i) => ({
            role: "user" as const,
            content: `${id} run ${run} #${i} ${
              "y".repeat(Math.floor(rand() * 900))
            }`,
          })),
        );
        total += n;
        await data.close();
      }
      const killAt = 1 + Math.floor(rand() * 12);
      if (
        await runChild([aDir, tdir, "dev-a"], killAt, 50 + rand() * 900) ===
          "killed"
      ) {
        killedPush++;
      }
      if (
        await runChild(
          [bDir, tdir, "dev-b"],
          1 + Math.floor(rand() * 12),
          50 + rand() * 900,
        ) === "killed"
      ) {
        killedPull++;
      }
      // The next runs finish and converge.
      for (
        const [d, id] of [[aDir, "dev-a"], [bDir, "dev-b"], [
          aDir,
          "dev-a",
        ]] as const
      ) {
        assert.equal(await runChild([d, tdir, id], -1, 60_000), "finished");
      }
      const a = await openDevice(aDir, "dev-a", tdir);
      const b = await openDevice(bDir, "dev-b", tdir);
      try {
        const ca = await contents(a, "c1");
        const cb = await contents(b, "c1");
        assert.equal(ca.length, total, `run ${run}: lost or duplicated on a`);
        assert.equal(new Set(ca).size, total);
        assert.deepEqual(cb, ca, `run ${run}: b differs from a`);
        assert.equal(await contentHash(a), await contentHash(b));
      } finally {
        await a.close();
        await b.close();
      }
    }
    assert.ok(
      killedPush + killedPull >= RUNS,
      `killed ${killedPush}+${killedPull}`,
    );
  }
}

Deno.test("kill -9 during push and pull of real data layers: the next run converges", async () => {
  await withDir((dir) => crashRuns(dir, join(dir, "target")));
});

Deno.test({
  name: "kill -9 during push and pull over real WebDAV: the next run converges",
  ignore: !hasRclone(),
  async fn() {
    const server = await startWebDavServer();
    try {
      await withDir((dir) => crashRuns(dir, server.url));
    } finally {
      await server.stop();
    }
  },
});
