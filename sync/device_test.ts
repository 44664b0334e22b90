import assert from "node:assert/strict";
import { join } from "node:path";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import {
  openSyncDevice,
  resolveSyncDeviceOptions,
  type SyncDevice,
  type SyncDeviceOptions,
} from "./device.ts";
import { openFolderTarget } from "./folder_target.ts";
import { deriveSyncKeys } from "./keys.ts";
import { manifestName } from "./manifest.ts";
import { createReplica, type Replica } from "./merge.ts";
import { segmentName } from "./segment.ts";
import type { SyncChange, SyncTarget } from "./types.ts";

const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));

function msg(device: SyncDevice, i: number): SyncChange {
  return {
    op: "append",
    table: "messages",
    key: `${device.deviceId}/${i}`,
    hlc: device.clock.now(),
    parent: { table: "conversations", key: "c1" },
    value: { content: `message ${i}` },
  };
}

async function pullInto(
  device: SyncDevice,
  target: SyncTarget,
  replica: Replica,
) {
  return await device.pull(target, (changes) => void replica.apply(changes));
}

/** Device a pushes three segments, one push each; returns the target dir's manifest copies. */
async function threePushes(dir: string) {
  const target = await openFolderTarget(join(dir, "target"));
  const a = await openSyncDevice(join(dir, "a"), keys, { deviceId: "a" });
  const manifests: Map<number, Uint8Array> = new Map();
  for (let n = 1; n <= 3; n++) {
    await a.stage([msg(a, n)]);
    await a.push(target);
    const name = manifestName(keys, "a", n);
    manifests.set(n, await Deno.readFile(join(dir, "target", name)));
  }
  return {
    target,
    a,
    manifests,
    seg: (n: number) => join(dir, "target", segmentName(keys, "a", n)),
  };
}

Deno.test("SyncDevice push then pull applies each segment once; manifests older than the last three are removed", async () => {
  await withDir(async (dir) => {
    const { target, a } = await threePushes(dir);
    await using b = await openSyncDevice(join(dir, "b"), keys, {
      deviceId: "b",
    });
    const replica = createReplica();
    const first = await pullInto(b, target, replica);
    assert.deepEqual(first.applied, [{
      deviceId: "a",
      from: 1,
      to: 3,
      changes: 3,
    }]);
    assert.equal(replica.rows("messages").length, 3);
    assert.deepEqual((await pullInto(b, target, replica)).applied, []);
    assert.equal((await target.list("m")).length, 3);
    for (let n = 4; n <= 6; n++) {
      await a.stage([msg(a, n)]);
      await a.push(target);
    }
    assert.equal(
      (await target.list("m")).length,
      3,
      "older manifests are deleted",
    );
    assert.deepEqual(a.status(), {
      deviceId: "a",
      sealed: 6,
      uploaded: 6,
      published: 6,
      applied: {},
      removed: [],
    });
    // Pushing again writes nothing.
    assert.deepEqual(await a.push(target), { segments: 0, bytes: 0, head: 6 });
    await a.close();
    await a.close();
    await rejectsWith(a.push(target), "STORE_CLOSED");
  });
});

Deno.test("SyncDevice pull and verify detect tampering before applying anything; pull resumes once repaired", async (t) => {
  await withDir(async (dir) => {
    const { target, a, manifests, seg } = await threePushes(dir);
    const original = await Promise.all(
      [1, 2, 3].map((n) => Deno.readFile(seg(n))),
    );
    const restore = async () => {
      for (let n = 1; n <= 3; n++) {
        await Deno.writeFile(seg(n), original[n - 1]!);
      }
    };
    await using b = await openSyncDevice(join(dir, "b"), keys, {
      deviceId: "b",
    });
    const replica = createReplica();
    const attempts: [string, () => Promise<void>, string][] = [
      ["a flipped byte", async () => {
        const bad = original[1]!.slice();
        bad[100]! ^= 1;
        await Deno.writeFile(seg(2), bad);
      }, "AUTH_FAILED"],
      ["a truncated segment", async () => {
        await Deno.writeFile(
          seg(3),
          original[2]!.subarray(0, original[2]!.length - 16),
        );
      }, "AUTH_FAILED"],
      ["two segments swapped", async () => {
        await Deno.writeFile(seg(1), original[1]!);
        await Deno.writeFile(seg(2), original[0]!);
      }, "AUTH_FAILED"],
      ["an old segment replayed in place of a newer one", async () => {
        await Deno.writeFile(seg(3), original[0]!);
      }, "AUTH_FAILED"],
    ];
    for (const [what, tamper, code] of attempts) {
      await t.step(`${what}: ${code}, nothing applied`, async () => {
        await tamper();
        const report = await b.verify(target);
        assert.equal(report.ok, false);
        assert.equal(report.problem?.code, code, "verify (doctor) reports it");
        await rejectsWith(pullInto(b, target, replica), code);
        assert.equal(replica.versions().length, 0);
        assert.deepEqual(b.status().applied, {});
        await restore();
      });
    }
    await t.step(
      "a missing segment: reported incomplete, nothing applied",
      async () => {
        await Deno.remove(seg(2));
        const report = await pullInto(b, target, replica);
        assert.deepEqual(report.incomplete, ["a"]);
        assert.equal(replica.versions().length, 0);
        await restore();
      },
    );
    await t.step("repaired: everything applies", async () => {
      const check = await b.verify(target);
      assert.equal(check.ok, true);
      assert.deepEqual(check.pending, [{
        deviceId: "a",
        from: 1,
        to: 3,
        changes: 3,
      }]);
      assert.equal(replica.versions().length, 0, "verify applies nothing");
      const report = await pullInto(b, target, replica);
      assert.equal(report.applied[0]?.to, 3);
      assert.equal(replica.rows().length, 3);
    });
    await t.step(
      "an old manifest put back in place of the newest: SYNC_REPLAY",
      async () => {
        const newest = manifestName(keys, "a", 3);
        const saved = await Deno.readFile(join(dir, "target", newest));
        await Deno.remove(join(dir, "target", newest));
        await Deno.writeFile(
          join(dir, "target", manifestName(keys, "a", 2)),
          manifests.get(2)!,
        );
        assert.equal((await b.verify(target)).problem?.code, "SYNC_REPLAY");
        await rejectsWith(pullInto(b, target, replica), "SYNC_REPLAY");
        // An old manifest beside the newest one is ignored.
        await Deno.writeFile(join(dir, "target", newest), saved);
        assert.deepEqual((await pullInto(b, target, replica)).applied, []);
      },
    );
    await t.step("a manifest moved to another name: AUTH_FAILED", async () => {
      await Deno.writeFile(
        join(dir, "target", manifestName(keys, "a", 9)),
        manifests.get(3)!,
      );
      await rejectsWith(pullInto(b, target, replica), "AUTH_FAILED");
      await Deno.remove(join(dir, "target", manifestName(keys, "a", 9)));
    });
    await a.close();
  });
});

Deno.test("openSyncDevice() keeps its id and refuses another key, another id or another target", async () => {
  await withDir(async (dir) => {
    const first = await openSyncDevice(join(dir, "j"), keys);
    const id = first.deviceId;
    assert.match(id, /^[0-9a-f]{32}$/);
    const t1 = await openFolderTarget(join(dir, "t1"));
    const t2 = await openFolderTarget(join(dir, "t2"));
    await first.push(t1);
    await rejectsWith(first.push(t2), "INVALID_INPUT");
    await first.close();
    const again = await openSyncDevice(join(dir, "j"), keys);
    assert.equal(again.deviceId, id);
    await again.close();
    const other = await deriveSyncKeys(await importDataKey(generateDataKey()));
    await rejectsWith(openSyncDevice(join(dir, "j"), other), "WRONG_KEY");
    await rejectsWith(
      openSyncDevice(join(dir, "j"), keys, { deviceId: "someone" }),
      "INVALID_INPUT",
    );
    await Deno.writeTextFile(join(dir, "j", "state.json"), "{");
    await rejectsWith(openSyncDevice(join(dir, "j"), keys), "CORRUPT_STORE");
    assert.equal((await Deno.stat(join(dir, "j"))).mode! & 0o777, 0o700);
  });
});

Deno.test("SyncDevice stage splits large batches into several segments and refuses malformed changes", async () => {
  await withDir(async (dir) => {
    await using a = await openSyncDevice(join(dir, "a"), keys, {
      deviceId: "a",
      maxSegmentBytes: 2000,
    });
    const numbers = await a.stage(
      Array.from({ length: 50 }, (_, i) => msg(a, i)),
    );
    assert.ok(numbers.length > 3);
    assert.deepEqual(numbers, numbers.map((_, i) => i + 1));
    await rejectsWith(a.stage([{ op: "put" } as never]), "INVALID_INPUT");
    assert.equal(a.status().sealed, numbers.length);
    const target = await openFolderTarget(join(dir, "t"));
    const report = await a.push(target);
    assert.equal(report.segments, numbers.length);
    const left = [];
    for await (const e of Deno.readDir(join(dir, "a", "outbox"))) {
      left.push(e.name);
    }
    assert.deepEqual(left, [], "the outbox is emptied once pushed");
    await using b = await openSyncDevice(join(dir, "b"), keys, {
      deviceId: "b",
    });
    const replica = createReplica();
    await pullInto(b, target, replica);
    assert.equal(replica.rows().length, 50);
  });
});

Deno.test("SyncDevice push refuses to overwrite another device's bytes under its names", async () => {
  await withDir(async (dir) => {
    const target = await openFolderTarget(join(dir, "t"));
    const a1 = await openSyncDevice(join(dir, "a1"), keys, {
      deviceId: "same",
    });
    const a2 = await openSyncDevice(join(dir, "a2"), keys, {
      deviceId: "same",
    });
    await a1.stage([msg(a1, 1)]);
    await a2.stage([msg(a2, 2)]);
    await a1.push(target);
    await rejectsWith(a2.push(target), "ALREADY_EXISTS");
    await a1.close();
    await a2.close();
  });
});

Deno.test("openSyncDevice() holds its journal: BUSY in the same process, another process waits", async () => {
  await withDir(async (dir) => {
    const journal = join(dir, "j");
    const first = await openSyncDevice(journal, keys);
    await rejectsWith(openSyncDevice(journal, keys), "BUSY");
    await first.close();
    const dek = crypto.getRandomValues(new Uint8Array(32));
    const k = await deriveSyncKeys(await importDataKey(dek));
    const hex = Array.from(dek, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    await Deno.remove(journal, { recursive: true });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../tests/_sync_crash_child.ts", import.meta.url).pathname,
        "hold",
        journal,
        join(dir, "t"),
        hex,
        join(dir, "r.json"),
        "-1",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let out = "";
    const reader = child.stdout.getReader();
    while (!out.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
    })();
    const second = await openSyncDevice(journal, k);
    const seenWhenOpened = out;
    await second.close();
    await reading;
    await child.status;
    assert.ok(
      seenWhenOpened.includes("released"),
      "the open waited for the other process",
    );
  });
});

Deno.test("resolveSyncDeviceOptions() fills defaults and refuses bad options", () => {
  const ok: [
    SyncDeviceOptions,
    Partial<ReturnType<typeof resolveSyncDeviceOptions>>,
  ][] = [
    [{}, { deviceId: undefined, maxSegmentBytes: 1_048_576 }],
    [{ deviceId: "laptop-2" }, { deviceId: "laptop-2" }],
    [{ maxSegmentBytes: 1 }, { maxSegmentBytes: 1 }],
  ];
  for (const [input, want] of ok) {
    const got = resolveSyncDeviceOptions(input);
    for (const [k, v] of Object.entries(want)) {
      assert.equal(got[k as keyof typeof got], v);
    }
    assert.ok(Object.isFrozen(got));
  }
  const bad: SyncDeviceOptions[] = [
    { deviceId: "" },
    { deviceId: "UPPER" },
    { deviceId: "x".repeat(65) },
    { maxSegmentBytes: 0 },
    { maxSegmentBytes: 1.5 },
    { maxSegmentBytes: 64 * 1024 * 1024 },
  ];
  for (const b of bad) {
    assert.throws(() => resolveSyncDeviceOptions(b), { code: "INVALID_INPUT" });
  }
});
