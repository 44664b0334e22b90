// Compaction and device removal over the REAL data layer and a folder
// target: a long history (2,000 messages, most conversations deleted, a
// config key edited 500 times, a message erased) is folded into a snapshot;
// a new device pulls bytes bounded by the live data and converges; a device
// behind the compaction point falls back to the snapshot and converges; the
// erased message is in no object left on the target; a tampered snapshot
// gives AUTH_FAILED and applies nothing; a removed device's segments are
// deleted and its later writes refused.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type DataLayer, openDataLayer } from "../data_layer/mod.ts";
import {
  deriveSyncKeys,
  fetchKeyFile,
  openFolderTarget,
  openSegment,
  openSnapshotManifest,
  openSnapshotPart,
  openWebDavTarget,
  publishKeyFile,
  segmentName,
  snapshotPartName,
  type SyncKeys,
  type SyncTarget,
} from "../sync/mod.ts";
import { rejectsWith, withDir } from "./_helpers.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";
import { contentHash, contents, KDF, PASS } from "./_sync_store.ts";

const ERASED = "ERASED-CONTENT-3b9d";

async function open(
  dir: string,
  deviceId: string,
  target: SyncTarget,
  compactAfter = 0,
): Promise<DataLayer> {
  return await openDataLayer(dir, {
    passphrase: PASS,
    create: true,
    kdf: KDF,
    cache: false,
    memory: false,
    analytics: false,
    sync: { target, deviceId, maxSegmentBytes: 4096, compactAfter },
  });
}

async function first(
  dir: string,
  id: string,
  target: SyncTarget,
): Promise<DataLayer> {
  const d = await open(dir, id, target);
  await publishKeyFile(target, `${dir}/key.json`);
  return d;
}

async function join_(
  dir: string,
  id: string,
  target: SyncTarget,
): Promise<DataLayer> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await fetchKeyFile(target, `${dir}/key.json`, PASS);
  return await open(dir, id, target);
}

async function targetSize(dir: string): Promise<{ n: number; bytes: number }> {
  let n = 0, bytes = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || e.name.startsWith(".")) continue;
    n++;
    bytes += (await Deno.stat(join(dir, e.name))).size;
  }
  return { n, bytes };
}

function text(i: number, c: number): string {
  return `message ${i} of conversation ${c}: ${"lorem ipsum ".repeat(4)}`;
}

/** Every plaintext change left on the target (segments and snapshots). */
async function everything(
  target: SyncTarget,
  keys: SyncKeys,
  devices: Record<string, number>,
): Promise<string> {
  const out: string[] = [];
  const starts: Record<string, { head: number; chain: string }> = {};
  for (const name of await target.list("q")) {
    const m = openSnapshotManifest(keys, name, await target.read(name));
    for (const [d, p] of Object.entries(m.covers)) {
      if ((starts[d]?.head ?? -1) < p.head) starts[d] = p;
    }
    let chain: string | undefined;
    for (let i = 0; i < m.parts; i++) {
      const p = openSnapshotPart(
        keys,
        await target.read(snapshotPartName(keys, m.deviceId, m.id, i)),
        {
          deviceId: m.deviceId,
          id: m.id,
          part: i,
          ...(chain === undefined ? {} : { prevChain: chain }),
        },
      );
      chain = p.chain;
      out.push(JSON.stringify(p.changes));
    }
  }
  let segments = 0;
  for (const [d, head] of Object.entries(devices)) {
    for (let n = 1; n <= (starts[d]?.head ?? 0); n++) {
      await rejectsWith(target.read(segmentName(keys, d, n)), "NOT_FOUND");
    }
    let prev = starts[d]?.chain;
    for (let n = (starts[d]?.head ?? 0) + 1; n <= head; n++) {
      let bytes: Uint8Array;
      try {
        bytes = await target.read(segmentName(keys, d, n));
      } catch {
        break;
      }
      const s = openSegment(keys, bytes, {
        deviceId: d,
        number: n,
        ...(prev === undefined ? {} : { prevChain: prev }),
      });
      prev = s.chain;
      segments++;
      out.push(JSON.stringify(s.changes));
    }
  }
  // Every segment object on the target was opened.
  assert.equal(segments, (await target.list("s")).length);
  return out.join("\n");
}

/** The live data of the history, written fresh (the size baseline). */
async function writeLive(d: DataLayer): Promise<void> {
  await d.users.createUser({ id: "u1", profile: { name: "Ada" } });
  for (const c of [0, 1]) {
    await d.conversations.createConversation({
      id: `c${c}`,
      userId: "u1",
      title: `chat ${c}`,
    });
    await d.conversations.appendMessages(
      `c${c}`,
      Array.from({ length: 100 }, (_, i) => ({
        role: i % 2 === 0 ? "user" : "assistant",
        content: text(i, c),
      })),
    );
  }
  await d.config.set("ui", "theme", "v499");
}

Deno.test("compaction: a new device pulls bytes bounded by the live data; a device behind converges; erased content is gone", async () => {
  await withDir(async (dir) => {
    const tdir = join(dir, "target");
    await using target = await openFolderTarget(tdir);
    const a = await first(join(dir, "a"), "dev-a", target);
    const devices: DataLayer[] = [a];
    try {
      await a.users.createUser({ id: "u1", profile: { name: "Ada" } });
      await a.config.set("ui", "theme", "start");
      await a.sync!.run();
      // b syncs once, then stays offline while the history grows.
      const b = await join_(join(dir, "b"), "dev-b", target);
      devices.push(b);
      await b.sync!.run();
      let middle = 0;
      let b2: DataLayer | undefined;
      for (let c = 0; c < 20; c++) {
        await a.conversations.createConversation({
          id: `c${c}`,
          userId: "u1",
          title: `chat ${c}`,
        });
        const r = await a.conversations.appendMessages(
          `c${c}`,
          Array.from({ length: 100 }, (_, i) => ({
            role: i % 2 === 0 ? "user" : "assistant",
            content: i === 50 && c === 0 ? `${ERASED} middle` : text(i, c),
          })),
        );
        if (c === 0) middle = r.firstId + 50;
        if (c % 5 === 4) await a.sync!.run();
        if (c === 4) {
          // b2 holds c0..c4 (the message erased later), then goes offline.
          b2 = await join_(join(dir, "b2"), "dev-b2", target);
          devices.push(b2);
          await b2.sync!.run();
          assert.equal((await contents(b2, "c0")).length, 100);
        }
      }
      const doomed = await a.conversations.appendMessage("c1", {
        role: "user",
        content: `${ERASED} secret`,
      });
      await a.sync!.run();
      for (let c = 2; c < 20; c++) {
        assert.equal(await a.conversations.deleteConversation(`c${c}`), true);
      }
      for (let i = 0; i < 500; i++) {
        await a.config.set("ui", "theme", `v${i}`);
        if (i % 100 === 99) await a.sync!.run();
      }
      await a.erase({ message: doomed.id });
      await a.erase({ message: middle });
      // The offline device writes meanwhile.
      await b.conversations.createConversation({ id: "b-own", userId: "u1" });
      await b.conversations.appendMessage("b-own", {
        role: "user",
        content: "written offline on b",
      });
      await a.sync!.run();

      // Before compaction: a new device replays the whole history.
      const before = await targetSize(tdir);
      const c = await join_(join(dir, "c"), "dev-c", target);
      devices.push(c);
      const full = await c.sync!.run();
      assert.equal(await contentHash(c), await contentHash(a));
      const keys = await deriveSyncKeys(a.key);
      assert.ok(
        (await everything(target, keys, {
          "dev-a": a.sync!.device.status().sealed,
          "dev-b": b.sync!.device.status().sealed,
        })).includes(
          ERASED,
        ),
        "before compaction the erased content is still sealed on the target",
      );

      const report = await a.sync!.compact();
      assert.ok(report.deletedSegments > 0);
      assert.ok(report.changes > 0);
      const after = await targetSize(tdir);
      assert.ok(
        after.n < before.n / 4,
        `objects ${after.n} vs ${before.n} before compaction`,
      );
      // Erased content is in no object left on the target.
      const left = await everything(target, keys, {
        "dev-a": a.sync!.device.status().sealed,
        "dev-b": b.sync!.device.status().sealed,
        "dev-b2": b2!.sync!.device.status().sealed,
        "dev-c": c.sync!.device.status().sealed,
      });
      assert.ok(!left.includes(ERASED), "erased content survived compaction");
      assert.ok(left.includes(text(7, 1)), "live content is in the snapshot");
      assert.ok(!left.includes(text(7, 5)), "deleted conversations are not");

      // Baseline: the same live data written fresh on a new target.
      const fresh = await first(
        join(dir, "fresh"),
        "dev-f",
        await openFolderTarget(join(dir, "fresh-target")),
      );
      try {
        await writeLive(fresh);
        await fresh.sync!.run();
      } finally {
        await fresh.close();
      }
      const live = await targetSize(join(dir, "fresh-target"));

      const d = await join_(join(dir, "d"), "dev-d", target);
      devices.push(d);
      const t0 = performance.now();
      const pulled = await d.sync!.run();
      const ms = performance.now() - t0;
      // deno-lint-ignore no-console
      console.log(
        `new device: uncompacted pull ${full.pulled.bytes} bytes, after compaction ${pulled.pulled.bytes} bytes in ${
          ms.toFixed(0)
        } ms; snapshot ${report.bytes} bytes; fresh live data ${live.bytes} bytes; objects ${before.n} -> ${after.n}`,
      );
      assert.ok(
        report.bytes < 2 * live.bytes,
        `snapshot ${report.bytes} bytes vs live data ${live.bytes}`,
      );
      assert.ok(pulled.pulled.bytes < 2 * live.bytes + 64 * 1024);
      assert.ok(pulled.pulled.bytes * 3 < full.pulled.bytes);
      assert.equal(await contentHash(d), await contentHash(a));
      assert.equal((await contents(d, "c1")).length, 100);
      assert.equal((await contents(d, "c0")).length, 99);
      const seqs = (await d.conversations.listMessages("c0", { limit: 1000 }))
        .items.map((m) => m.seq);
      assert.ok(!seqs.includes(51) && seqs.includes(52), "the gap is kept");

      // The device behind the compaction point: its segments were
      // deleted; it falls back to the snapshot.
      for (let r = 0; r < 2; r++) {
        for (const x of [b, b2!, a, c, d]) await x.sync!.run();
      }
      const hash = await contentHash(a);
      for (const x of [b, b2!, c, d]) assert.equal(await contentHash(x), hash);
      assert.equal((await contents(b2!, "c0")).length, 99);
      assert.ok(!(await contents(b2!, "c0")).some((t) => t.includes(ERASED)));
      assert.deepEqual(await contents(d, "b-own"), ["written offline on b"]);
      assert.equal((await contents(b, "c1")).length, 100);
      assert.equal(await b.config.get("ui", "theme"), "v499");
      await rejectsWith(b.conversations.getConversation("c5"), "NOT_FOUND");

      // Compacting again replaces the snapshot; everyone still converges.
      await c.conversations.appendMessage("c0", { role: "user", content: "x" });
      await c.sync!.run();
      const again = await c.sync!.compact();
      assert.ok(again.deletedSnapshots >= 1);
      assert.equal((await target.list("q")).length, 1);
      for (let r = 0; r < 2; r++) {
        for (const x of devices) await x.sync!.run();
      }
      const h2 = await contentHash(a);
      for (const x of devices) assert.equal(await contentHash(x), h2);
    } finally {
      for (const x of devices) await x.close();
    }
  });
});

Deno.test("compaction: a tampered snapshot gives AUTH_FAILED and applies nothing", async () => {
  await withDir(async (dir) => {
    const tdir = join(dir, "target");
    await using target = await openFolderTarget(tdir);
    const a = await first(join(dir, "a"), "dev-a", target);
    let b: DataLayer | undefined;
    try {
      await a.conversations.createConversation({ id: "c" });
      await a.conversations.appendMessages(
        "c",
        Array.from({ length: 50 }, (_, i) => ({
          role: "user",
          content: text(i, 0),
        })),
      );
      await a.sync!.run();
      await a.sync!.compact();
      const [part] = await target.list("p");
      const path = join(tdir, part!);
      const good = await Deno.readFile(path);
      const bad = good.slice();
      bad[bad.length - 40]! ^= 1;
      await Deno.writeFile(path, bad);
      b = await join_(join(dir, "b"), "dev-b", target);
      await rejectsWith(b.sync!.run(), "AUTH_FAILED");
      await rejectsWith(b.conversations.getConversation("c"), "NOT_FOUND");
      assert.equal((await b.sync!.verify()).problem?.code, "AUTH_FAILED");
      // Truncated: the same.
      await Deno.writeFile(path, good.subarray(0, good.length - 100));
      await rejectsWith(b.sync!.run(), "AUTH_FAILED");
      await rejectsWith(b.conversations.getConversation("c"), "NOT_FOUND");
      await Deno.writeFile(path, good);
      await b.sync!.run();
      assert.equal((await contents(b, "c")).length, 50);
      assert.equal(await contentHash(b), await contentHash(a));
    } finally {
      await b?.close();
      await a.close();
    }
  });
});

Deno.test("device removal: its segments are compacted away and its later writes refused", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const a = await first(join(dir, "a"), "dev-a", target);
    const b = await join_(join(dir, "b"), "dev-b", target);
    const c = await join_(join(dir, "c"), "dev-c", target);
    try {
      await a.conversations.createConversation({ id: "c" });
      await a.sync!.run();
      await c.sync!.run();
      await c.conversations.appendMessage("c", {
        role: "user",
        content: "from c before removal",
      });
      await c.config.set("ui", "theme", "c-theme");
      await c.sync!.run();
      await b.sync!.run();
      await a.sync!.run();
      await rejectsWith(a.sync!.removeDevice("dev-a"), "INVALID_INPUT");
      await rejectsWith(a.sync!.removeDevice("Bad Id"), "INVALID_INPUT");
      const removal = await a.sync!.removeDevice("dev-c");
      assert.ok(removal.deletedSegments > 0);
      assert.ok(removal.deletedManifests > 0);
      const keys = await deriveSyncKeys(a.key);
      const sealed = c.sync!.device.status().sealed;
      for (let n = 1; n <= sealed; n++) {
        await rejectsWith(
          target.read(segmentName(keys, "dev-c", n)),
          "NOT_FOUND",
        );
      }
      // c writes again: the others refuse it; c learns it was removed.
      await c.conversations.appendMessage("c", {
        role: "user",
        content: "from c after removal",
      });
      await c.config.set("ui", "theme", "c-after");
      await rejectsWith(c.sync!.run(), "DEVICE_REMOVED");
      for (const x of [a, b]) await x.sync!.run();
      for (const x of [a, b]) {
        assert.deepEqual(await contents(x, "c"), ["from c before removal"]);
        assert.equal(await x.config.get("ui", "theme"), "c-theme");
        assert.deepEqual(x.sync!.device.status().removed, ["dev-c"]);
      }
      assert.equal(await contentHash(a), await contentHash(b));
      assert.equal((await b.sync!.verify()).ok, true);
      // A new device converges without anything of c's later writes.
      const d = await join_(join(dir, "d"), "dev-d", target);
      try {
        await d.sync!.run();
        assert.equal(await contentHash(d), await contentHash(a));
      } finally {
        await d.close();
      }
      // The next compaction deletes what c pushed after its removal.
      await b.sync!.compact();
      for (let n = 1; n <= c.sync!.device.status().sealed; n++) {
        await rejectsWith(
          target.read(segmentName(keys, "dev-c", n)),
          "NOT_FOUND",
        );
      }
    } finally {
      for (const x of [a, b, c]) await x.close();
    }
  });
});

Deno.test("sync.run() compacts by itself past compactAfter uncovered segments", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const a = await open(join(dir, "a"), "dev-a", target, 10);
    await publishKeyFile(target, join(dir, "a", "key.json"));
    try {
      await rejectsWith(
        openDataLayer(join(dir, "x"), {
          passphrase: PASS,
          create: true,
          kdf: KDF,
          cache: false,
          memory: false,
          analytics: false,
          sync: { target, compactAfter: -1 },
        }),
        "INVALID_INPUT",
      );
      await a.conversations.createConversation({ id: "c" });
      let compacted = 0;
      for (let i = 0; i < 6; i++) {
        await a.conversations.appendMessages(
          "c",
          Array.from({ length: 20 }, (_, k) => ({
            role: "user",
            content: text(k, i),
          })),
        );
        const r = await a.sync!.run();
        if (r.compacted !== undefined) compacted++;
      }
      // Over 10 uncovered segments once, then covered again.
      assert.ok(compacted >= 1, "no automatic compaction");
      assert.equal((await target.list("q")).length, 1);
      assert.ok((await target.list("s")).length <= 12);
      const b = await join_(join(dir, "b"), "dev-b", target);
      try {
        const r = await b.sync!.run();
        assert.ok(r.pulled.changes > 0);
        assert.equal(await contentHash(b), await contentHash(a));
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  });
});

Deno.test({
  name:
    "compaction over a real WebDAV server: a new device and one behind converge",
  ignore: !hasRclone(),
  async fn() {
    const server = await startWebDavServer();
    try {
      await withDir(async (dir) => {
        await using target = await openWebDavTarget({ url: server.url });
        const a = await first(join(dir, "a"), "dev-a", target);
        const b = await join_(join(dir, "b"), "dev-b", target);
        const devices = [a, b];
        try {
          await a.conversations.createConversation({ id: "keep" });
          await a.conversations.createConversation({ id: "gone" });
          for (const id of ["keep", "gone"]) {
            await a.conversations.appendMessages(
              id,
              Array.from({ length: 150 }, (_, k) => ({
                role: "user",
                content: text(k, id.length),
              })),
            );
          }
          await a.sync!.run();
          await b.sync!.run();
          await a.conversations.deleteConversation("gone");
          const r = await a.conversations.appendMessages(
            "keep",
            Array.from({ length: 50 }, (_, k) => ({
              role: "assistant",
              content: `${ERASED} ${k}`,
            })),
          );
          await a.erase({ message: r.firstId + 10 });
          await a.sync!.run();
          const report = await a.sync!.compact();
          assert.ok(report.deletedSegments > 0);
          const c = await join_(join(dir, "c"), "dev-c", target);
          devices.push(c);
          await c.sync!.run();
          await b.sync!.run();
          const hash = await contentHash(a);
          for (const x of [b, c]) assert.equal(await contentHash(x), hash);
          assert.equal((await contents(c, "keep")).length, 199);
        } finally {
          for (const x of devices) await x.close();
        }
      });
    } finally {
      await server.stop();
    }
  },
});
