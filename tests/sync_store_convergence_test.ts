// Sync over the REAL data layer: three data folders sharing one key (the
// key file fetched from the target) make concurrent changes through the
// repositories — messages in the same conversation, edits of the same
// config key, a conversation deleted on one device while another appends
// to it — and sync in seeded random orders through a folder target and a
// real WebDAV server (rclone). They converge to the same content hash over
// every synced core table; the target holds no plaintext; tampering and
// replays are refused with nothing applied.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { DataLayer } from "../data_layer/mod.ts";
import { openFolderTarget, type SyncTarget } from "../sync/mod.ts";
import { rejectsWith, withDir } from "./_helpers.ts";
import { scanFor } from "./_scan.ts";
import { seeded, shuffle } from "./_sync_random.ts";
import {
  contentHash,
  contents,
  firstDevice,
  joinDevice,
} from "./_sync_store.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";

const MARKER = "QUOKKA-MARKER-7f3e";

async function syncAll(
  devices: DataLayer[],
  rand: () => number,
  rounds = 2,
): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    for (const d of shuffle(devices, rand)) await d.sync!.run();
  }
}

async function scenario(
  dir: string,
  target: SyncTarget,
  spec: SyncTarget | string,
  seed: number,
  scanRoot: string,
): Promise<void> {
  const rand = seeded(seed);
  const a = await firstDevice(join(dir, "a"), "dev-a", target, spec);
  const devices: DataLayer[] = [a];
  try {
    const user = await a.users.createUser({
      id: "u1",
      profile: { name: MARKER },
    });
    await a.conversations.createConversation({
      id: "conv-1",
      userId: user.id,
      title: `Trip ${MARKER}`,
    });
    await a.conversations.createConversation({ id: "conv-2", title: "Doomed" });
    await a.conversations.appendMessage("conv-2", {
      role: "user",
      content: `first in conv-2 ${MARKER}`,
    });
    await a.conversations.appendMessage("conv-1", {
      role: "user",
      content: `hello ${MARKER}`,
    });
    await a.config.set("ui", "theme", "dark");
    await a.config.set("secrets", "token", `${MARKER}-secret`, {
      secret: true,
    });
    await a.plugins.registerPlugin({ name: "weather", version: "1.0.0" });
    await a.plugins.setState("weather", "city", MARKER);
    await a.sync!.run();
    devices.push(await joinDevice(join(dir, "b"), "dev-b", target, spec));
    devices.push(await joinDevice(join(dir, "c"), "dev-c", target, spec));
    const [, b, c] = devices as [DataLayer, DataLayer, DataLayer];
    for (const d of [b, c]) {
      const r = await d.sync!.run();
      assert.ok(r.pulled.changes > 0);
      assert.deepEqual(await contents(d, "conv-1"), [`hello ${MARKER}`]);
      assert.equal(await d.config.get("secrets", "token"), `${MARKER}-secret`);
    }

    let appended = 1;
    let erased = false;
    let conv2AfterErase = 0;
    for (let i = 0; i < 40; i++) {
      const d = devices[Math.floor(rand() * 3)]!;
      const r = rand();
      if (r < 0.45) {
        await d.conversations.appendMessage("conv-1", {
          role: rand() < 0.5 ? "user" : "assistant",
          content: `${MARKER} from ${d.sync!.deviceId} #${i}`,
        });
        appended++;
      } else if (r < 0.65) {
        await d.config.set("ui", "theme", `${MARKER}-${d.sync!.deviceId}-${i}`);
      } else if (r < 0.72 && !erased) {
        // a deletes conv-2 while b appends to it before hearing of it.
        erased = true;
        assert.equal(await a.conversations.deleteConversation("conv-2"), true);
        await b.conversations.appendMessage("conv-2", {
          role: "user",
          content: `late append ${MARKER}`,
        });
        conv2AfterErase++;
      } else if (r < 0.8) {
        await d.plugins.setState("weather", "city", `city-${i}`);
      } else {
        await d.sync!.run();
      }
    }
    if (!erased) {
      assert.equal(await a.conversations.deleteConversation("conv-2"), true);
      await b.conversations.appendMessage("conv-2", {
        role: "user",
        content: `late append ${MARKER}`,
      });
      conv2AfterErase++;
    }
    assert.ok(conv2AfterErase > 0);
    await syncAll(devices, rand, 3);

    const hashes = await Promise.all(devices.map((d) => contentHash(d)));
    assert.equal(new Set(hashes).size, 1, `hashes differ: ${hashes}`);
    for (const d of devices) {
      const list = await contents(d, "conv-1");
      assert.equal(list.length, appended, "no lost, no duplicated message");
      assert.equal(new Set(list).size, list.length);
      await rejectsWith(d.conversations.getConversation("conv-2"), "NOT_FOUND");
    }
    // Nothing echoes: a further round moves nothing.
    for (const d of devices) {
      const r = await d.sync!.run();
      assert.equal(r.pushed.segments, 0);
      assert.equal(r.pulled.changes, 0);
    }
    const scan = await scanFor(scanRoot, [MARKER, "conv-1", "ui/theme"]);
    assert.ok(scan.files > 0);
    assert.deepEqual(scan.hits, { [MARKER]: 0, "conv-1": 0, "ui/theme": 0 });
  } finally {
    for (const d of devices) await d.close();
  }
}

Deno.test("three real data layers converge through a folder target", async () => {
  await withDir(async (dir) => {
    for (const seed of [7, 8, 9]) {
      const d = join(dir, `seed-${seed}`);
      await using target = await openFolderTarget(join(d, "target"));
      await scenario(d, target, target, seed, join(d, "target"));
    }
  });
});

Deno.test({
  name: "three real data layers converge through a real WebDAV server",
  ignore: !hasRclone(),
  async fn() {
    const server = await startWebDavServer();
    try {
      await withDir(async (dir) => {
        const { openWebDavTarget } = await import("../sync/mod.ts");
        await using target = await openWebDavTarget({ url: server.url });
        // The devices open the target from its URL text, as the CLI does.
        await scenario(dir, target, server.url, 11, server.dir);
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test("a tampered, truncated, reordered or replayed target applies nothing", async () => {
  await withDir(async (dir) => {
    const tdir = join(dir, "target");
    await using target = await openFolderTarget(tdir);
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    try {
      await a.conversations.createConversation({ id: "c1" });
      await a.conversations.appendMessage("c1", {
        role: "user",
        content: "one",
      });
      await a.sync!.run();
      await b.sync!.run();
      const before = await contentHash(b);
      const names = async () => new Set(await target.list());
      const segmentsOf = async (fn: () => Promise<void>) => {
        const old = await names();
        await fn();
        return [...await names()].filter((n) => !old.has(n));
      };
      const newFiles = await segmentsOf(async () => {
        for (let i = 0; i < 3; i++) {
          await a.conversations.appendMessage("c1", {
            role: "user",
            content: `more ${i} ${"x".repeat(3000)}`,
          });
        }
        await a.sync!.run();
      });
      const segs = newFiles.filter((n) => n.startsWith("s"));
      assert.ok(segs.length >= 2, `segments: ${segs.length}`);
      const path = (n: string) => join(tdir, n);
      const original = new Map<string, Uint8Array>();
      for (const n of segs) original.set(n, await Deno.readFile(path(n)));
      const restore = async () => {
        for (const [n, bytes] of original) await Deno.writeFile(path(n), bytes);
      };
      // Tampered: one flipped byte.
      const t = new Uint8Array(original.get(segs[0]!)!);
      t[t.length >> 1]! ^= 1;
      await Deno.writeFile(path(segs[0]!), t);
      await rejectsWith(b.sync!.run(), "AUTH_FAILED");
      assert.equal((await b.sync!.verify()).problem?.code, "AUTH_FAILED");
      assert.equal(await contentHash(b), before);
      // Truncated.
      await restore();
      await Deno.writeFile(
        path(segs[0]!),
        original.get(segs[0]!)!.subarray(0, 100),
      );
      await rejectsWith(b.sync!.run(), "AUTH_FAILED");
      assert.equal(await contentHash(b), before);
      // Reordered: two segments swap names.
      await restore();
      await Deno.writeFile(path(segs[0]!), original.get(segs[1]!)!);
      await Deno.writeFile(path(segs[1]!), original.get(segs[0]!)!);
      await rejectsWith(b.sync!.run(), "AUTH_FAILED");
      assert.equal(await contentHash(b), before);
      // Intact again: it applies.
      await restore();
      await b.sync!.run();
      assert.equal((await contents(b, "c1")).length, 4);
      const applied = await contentHash(b);
      // Replayed: a's older manifests put back in place of the newer ones.
      const manifests = [...await names()].filter((n) => n.startsWith("m"));
      const saved = new Map<string, Uint8Array>();
      for (const n of manifests) saved.set(n, await Deno.readFile(path(n)));
      const later = await segmentsOf(async () => {
        for (let i = 0; i < 4; i++) {
          await a.conversations.appendMessage("c1", {
            role: "user",
            content: `late ${i}`,
          });
          await a.sync!.run();
        }
      });
      await b.sync!.run();
      const applied2 = await contentHash(b);
      assert.notEqual(applied2, applied);
      for (const n of later.filter((n) => n.startsWith("m"))) {
        await Deno.remove(path(n)).catch(() => {});
      }
      for (const [n, bytes] of saved) await Deno.writeFile(path(n), bytes);
      await rejectsWith(b.sync!.run(), "SYNC_REPLAY");
      assert.equal((await b.sync!.verify()).problem?.code, "SYNC_REPLAY");
      assert.equal(await contentHash(b), applied2);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("synced rows reach the cached reads and the change feed's other consumers", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const { openDataLayer } = await import("../data_layer/mod.ts");
    const { publishKeyFile, fetchKeyFile } = await import("../sync/mod.ts");
    const { KDF, PASS } = await import("./_sync_store.ts");
    const open = (d: string, id: string) =>
      openDataLayer(d, {
        passphrase: PASS,
        create: true,
        kdf: KDF,
        memory: { background: false },
        analytics: false,
        sync: { target, deviceId: id },
      });
    const a = await open(join(dir, "a"), "dev-a");
    await publishKeyFile(target, join(dir, "a", "key.json"));
    await Deno.mkdir(join(dir, "b"));
    await fetchKeyFile(target, join(dir, "b", "key.json"), PASS);
    const b = await open(join(dir, "b"), "dev-b");
    try {
      await a.conversations.createConversation({ id: "c1" });
      await a.conversations.appendMessage("c1", {
        role: "user",
        content: "first",
      });
      await a.config.set("ui", "theme", "dark");
      await a.sync!.run();
      await b.sync!.run();
      // Cached reads on b, then a change on a arrives.
      assert.deepEqual(
        (await b.recentMessages("c1", 10)).map((m) => m.content),
        ["first"],
      );
      assert.equal(await b.config.get("ui", "theme"), "dark");
      await a.conversations.appendMessage("c1", {
        role: "user",
        content: "zebra crossing",
      });
      await a.config.set("ui", "theme", "light");
      await a.sync!.run();
      await b.sync!.run();
      assert.deepEqual(
        (await b.recentMessages("c1", 10)).map((m) => m.content),
        ["first", "zebra crossing"],
      );
      assert.equal(await b.config.get("ui", "theme"), "light");
      // The memory index (another consumer of the feed) has the synced message.
      const hits = await b.search("zebra", { mode: "keyword" });
      assert.equal(hits[0]?.content, "zebra crossing");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("a history written before sync was set up reaches a new device whole", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const { openDataLayer } = await import("../data_layer/mod.ts");
    const { KDF, PASS } = await import("./_sync_store.ts");
    {
      await using plain = await openDataLayer(join(dir, "a"), {
        passphrase: PASS,
        create: true,
        kdf: KDF,
        cache: false,
        memory: false,
        analytics: false,
      });
      // Conversations whose ids sort otherwise than their message ids.
      for (const id of ["z-last", "a-first", "m-mid", "b-2", "b-10"]) {
        await plain.conversations.createConversation({ id, title: id });
        await plain.conversations.appendMessages(
          id,
          Array.from({ length: 700 }, (_, i) => ({
            role: "user" as const,
            content: `${id} ${i}`,
          })),
        );
      }
      await plain.config.set("ui", "theme", "dark");
    }
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    try {
      await a.sync!.run();
      await b.sync!.run();
      assert.equal((await contents(b, "b-10")).length, 700);
      assert.equal(await contentHash(b), await contentHash(a));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("a rename on one device survives an append made meanwhile on another", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    try {
      await a.conversations.createConversation({ id: "c1", title: "Draft" });
      await a.sync!.run();
      await b.sync!.run();
      await a.conversations.updateConversation("c1", { title: "Trip to Rome" });
      await new Promise((r) => setTimeout(r, 5));
      // b appends after the rename (a later clock reading and updated_at).
      await b.conversations.appendMessage("c1", {
        role: "user",
        content: "hi",
      });
      for (const d of [b, a, b]) await d.sync!.run();
      for (const d of [a, b]) {
        const c = await d.conversations.getConversation("c1");
        assert.equal(c.title, "Trip to Rome");
        assert.equal(c.messageCount, 1);
      }
      const [ca, cb] = [
        await a.conversations.getConversation("c1"),
        await b.conversations.getConversation("c1"),
      ];
      assert.equal(ca.updatedAt, cb.updatedAt);
      assert.equal(await contentHash(a), await contentHash(b));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("a deleted user and a deleted config key are gone on every device", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    try {
      await a.users.createUser({ id: "u1", profile: { name: "Ada" } });
      await a.conversations.createConversation({ id: "c1", userId: "u1" });
      await a.conversations.appendMessage("c1", { role: "user", content: "x" });
      await a.config.set("ui", "lang", "en");
      await a.sync!.run();
      await b.sync!.run();
      assert.equal((await b.users.getUser("u1")).profile.name, "Ada");
      // b appends while a deletes the user; b deletes the config key.
      await b.conversations.appendMessage("c1", { role: "user", content: "y" });
      assert.equal(await a.users.deleteUser("u1"), true);
      assert.equal(await b.config.delete("ui", "lang"), true);
      for (const d of [a, b, a]) await d.sync!.run();
      for (const d of [a, b]) {
        await rejectsWith(d.users.getUser("u1"), "NOT_FOUND");
        await rejectsWith(d.conversations.getConversation("c1"), "NOT_FOUND");
        assert.equal(await d.config.get("ui", "lang"), undefined);
        const n = await d.storage.execute("SELECT COUNT(*) AS n FROM messages");
        assert.equal(Number(n.rows[0]!.n), 0);
      }
      assert.equal(await contentHash(a), await contentHash(b));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("rows whose parent has not arrived yet wait, sealed, and apply when it does", async () => {
  await withDir(async (dir) => {
    const tdir = join(dir, "target");
    await using target = await openFolderTarget(tdir);
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    const c = await joinDevice(join(dir, "c"), "dev-c", target);
    try {
      for (const d of [a, b, c]) await d.sync!.run();
      const names = async () => new Set(await target.list());
      const before = await names();
      await a.users.createUser({ id: "u1" });
      await a.conversations.createConversation({ id: "c1", userId: "u1" });
      await a.conversations.appendMessage("c1", {
        role: "user",
        content: "from a",
      });
      await a.sync!.run();
      const aFiles = [...await names()].filter((n) =>
        !before.has(n) && n.startsWith("s")
      );
      await b.sync!.run();
      await b.conversations.appendMessage("c1", {
        role: "assistant",
        content: "from b",
      });
      await b.conversations.createConversation({ id: "c2", userId: "u1" });
      await b.sync!.run();
      // c sees b's segments before a's (a folder-sync tool still copying).
      const held = join(dir, "held");
      await Deno.mkdir(held);
      for (const n of aFiles) await Deno.rename(join(tdir, n), join(held, n));
      const partial = await c.sync!.run();
      assert.deepEqual(partial.incomplete, ["dev-a"]);
      await rejectsWith(c.conversations.getConversation("c1"), "NOT_FOUND");
      const waiting = await c.storage.execute(
        "SELECT COUNT(*) AS n FROM sync_pending",
      );
      assert.ok(Number(waiting.rows[0]!.n) >= 2);
      for (const n of aFiles) await Deno.rename(join(held, n), join(tdir, n));
      await c.sync!.run();
      assert.deepEqual(await contents(c, "c1"), ["from a", "from b"]);
      assert.equal(
        (await c.conversations.getConversation("c2")).userId,
        "u1",
      );
      const left = await c.storage.execute(
        "SELECT COUNT(*) AS n FROM sync_pending",
      );
      assert.equal(Number(left.rows[0]!.n), 0);
      for (const d of [a, b]) await d.sync!.run();
      const hashes = await Promise.all([a, b, c].map((d) => contentHash(d)));
      assert.equal(new Set(hashes).size, 1);
    } finally {
      for (const d of [a, b, c]) await d.close();
    }
  });
});

Deno.test("an older message arriving is placed before newer local ones on every device", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    try {
      await a.conversations.createConversation({ id: "c1" });
      await a.conversations.appendMessage("c1", { role: "user", content: "x" });
      await a.sync!.run();
      await b.sync!.run();
      await a.conversations.appendMessage("c1", {
        role: "user",
        content: "a1",
      });
      await a.sync!.run(); // a1 stamped and pushed first
      await new Promise((r) => setTimeout(r, 5));
      await b.conversations.appendMessages("c1", [
        { role: "user", content: "b1" },
        { role: "user", content: "b2" },
      ]);
      // b's local order is x, b1, b2 until a1 (older) arrives before them.
      await b.sync!.run();
      await a.sync!.run();
      for (const d of [a, b]) {
        assert.deepEqual(await contents(d, "c1"), ["x", "a1", "b1", "b2"]);
        const c = await d.conversations.getConversation("c1");
        assert.equal(c.lastSeq, 4);
      }
      assert.equal(await contentHash(a), await contentHash(b));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("data.erase() of one message erases it on every device, numbering kept", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(join(dir, "target"));
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    try {
      await a.conversations.createConversation({ id: "c1" });
      await a.conversations.appendMessages("c1", [
        { role: "user", content: "one" },
        { role: "user", content: "secret two" },
        { role: "user", content: "three" },
      ]);
      await a.sync!.run();
      await b.sync!.run();
      const two = (await a.conversations.listMessages("c1")).items[1]!;
      await a.erase({ message: two.id });
      await a.sync!.run();
      await new Promise((r) => setTimeout(r, 5));
      // b appended meanwhile; a's older messages keep their places.
      await b.conversations.appendMessage("c1", {
        role: "user",
        content: "four",
      });
      await b.sync!.run();
      await a.sync!.run();
      for (const d of [a, b]) {
        assert.deepEqual(await contents(d, "c1"), ["one", "three", "four"]);
        const seqs = (await d.conversations.listMessages("c1")).items.map((m) =>
          m.seq
        );
        assert.deepEqual(seqs, [1, 3, 4]);
        assert.equal(
          (await d.conversations.getConversation("c1")).messageCount,
          3,
        );
      }
      assert.equal(await contentHash(a), await contentHash(b));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("an erase that reaches a device before the message still leaves its gap", async () => {
  await withDir(async (dir) => {
    const tdir = join(dir, "target");
    await using target = await openFolderTarget(tdir);
    const a = await firstDevice(join(dir, "a"), "dev-a", target);
    const b = await joinDevice(join(dir, "b"), "dev-b", target);
    const c = await joinDevice(join(dir, "c"), "dev-c", target);
    try {
      await a.conversations.createConversation({ id: "c1" });
      await a.conversations.appendMessage("c1", {
        role: "user",
        content: "one",
      });
      for (const d of [a, b, c]) await d.sync!.run();
      const before = new Set(await target.list());
      await a.conversations.appendMessages("c1", [
        { role: "user", content: "two" },
        { role: "user", content: "three" },
      ]);
      await a.sync!.run();
      const aFiles = (await target.list()).filter((n) =>
        !before.has(n) && n.startsWith("s")
      );
      await b.sync!.run();
      const two = (await b.conversations.listMessages("c1")).items[1]!;
      assert.equal(two.content, "two");
      await b.erase({ message: two.id });
      await b.sync!.run();
      // c gets b's erase before a's messages.
      const held = join(dir, "held");
      await Deno.mkdir(held);
      for (const n of aFiles) await Deno.rename(join(tdir, n), join(held, n));
      await c.sync!.run();
      for (const n of aFiles) await Deno.rename(join(held, n), join(tdir, n));
      for (const d of [c, a, b]) await d.sync!.run();
      for (const d of [a, b, c]) {
        const items = (await d.conversations.listMessages("c1")).items;
        assert.deepEqual(items.map((m) => [m.seq, m.content]), [
          [1, "one"],
          [3, "three"],
        ]);
      }
      const hashes = await Promise.all([a, b, c].map((d) => contentHash(d)));
      assert.equal(new Set(hashes).size, 1);
    } finally {
      for (const d of [a, b, c]) await d.close();
    }
  });
});
