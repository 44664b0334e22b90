// kill -9 of a real data layer during compaction, at a chosen call to the
// target: after every kill the target stays usable (a device behind pulls
// and a new device joins), and the next compaction completes, removes the
// crashed one's leftover parts, and every device converges with no lost and
// no duplicated message.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  deriveSyncKeys,
  openFolderTarget,
  openSnapshotManifest,
} from "../sync/mod.ts";
import { withDir } from "./_helpers.ts";
import { seeded } from "./_sync_random.ts";
import {
  contentHash,
  contents,
  firstDevice,
  joinDevice,
  openDevice,
} from "./_sync_store.ts";

const RUNS = 8;
const child = new URL("./_sync_store_child.ts", import.meta.url).pathname;

async function compactKilled(
  dir: string,
  target: string,
  killAt: number,
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, dir, target, "dev-a", String(killAt), "compact"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (text.includes("done")) return "finished";
  if (out.signal !== "SIGKILL") {
    throw new Error(
      `child failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return "killed";
}

Deno.test("kill -9 during compaction leaves the target usable; the rerun converges", async () => {
  await withDir(async (dir) => {
    const tdir = join(dir, "target");
    const rand = seeded(1407);
    await using target = await openFolderTarget(tdir);
    const aDir = join(dir, "a"), bDir = join(dir, "b");
    let expected = 0;
    {
      const a = await firstDevice(aDir, "dev-a", target);
      const b = await joinDevice(bDir, "dev-b", target);
      try {
        await a.conversations.createConversation({ id: "keep" });
        await a.conversations.createConversation({ id: "gone" });
        for (let i = 0; i < 6; i++) {
          await a.conversations.appendMessages(
            i % 2 === 0 ? "keep" : "gone",
            Array.from({ length: 40 }, (_, k) => ({
              role: "user",
              content: `m ${i}.${k} ${"x".repeat(40)}`,
            })),
          );
          if (i % 2 === 0) expected += 40;
          await a.sync!.run();
        }
        await b.sync!.run();
        await a.conversations.deleteConversation("gone");
        await a.sync!.run();
      } finally {
        await a.close();
        await b.close();
      }
    }
    const outcomes: string[] = [];
    for (let r = 0; r < RUNS; r++) {
      {
        const a = await openDevice(aDir, "dev-a", target);
        try {
          await a.conversations.appendMessage("keep", {
            role: "user",
            content: `run ${r}`,
          });
          expected++;
          await a.sync!.run();
        } finally {
          await a.close();
        }
      }
      // Early (while pulling and writing parts) to late (while deleting).
      const killAt = 1 + Math.floor(rand() * 70);
      outcomes.push(`${killAt}:${await compactKilled(aDir, tdir, killAt)}`);
      // The target is usable: the device behind pulls and converges on
      // what it can see; a new device joins.
      const b = await openDevice(bDir, "dev-b", target);
      try {
        await b.sync!.run();
        const got = await contents(b, "keep");
        assert.equal(new Set(got).size, got.length, "no duplicates");
      } finally {
        await b.close();
      }
    }
    // deno-lint-ignore no-console
    console.log(`kill point:outcome per run: ${outcomes.join(", ")}`);
    assert.ok(
      outcomes.filter((o) => o.endsWith("killed")).length >= RUNS / 2,
      outcomes.join(","),
    );
    const a = await openDevice(aDir, "dev-a", target);
    const b = await openDevice(bDir, "dev-b", target);
    const c = await joinDevice(join(dir, "c"), "dev-c", target);
    try {
      await a.sync!.compact();
      for (let round = 0; round < 2; round++) {
        for (const x of [a, b, c]) await x.sync!.run();
      }
      const hash = await contentHash(a);
      for (const x of [b, c]) assert.equal(await contentHash(x), hash);
      for (const x of [a, b, c]) {
        const got = await contents(x, "keep");
        assert.equal(got.length, expected);
        assert.equal(new Set(got).size, expected);
      }
      // No part is left over from a crashed compaction.
      const keys = await deriveSyncKeys(a.key);
      let parts = 0;
      for (const name of await target.list("q")) {
        parts += openSnapshotManifest(keys, name, await target.read(name))
          .parts;
      }
      assert.equal((await target.list("p")).length, parts);
    } finally {
      for (const x of [a, b, c]) await x.close();
    }
  });
});
