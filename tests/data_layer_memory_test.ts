import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { openDataLayer } from "../mod.ts";
import { rejectsWith, withDir } from "./_helpers.ts";

const kdf = { memoryKiB: 19456, iterations: 2 };
const PW = "a long passphrase";

Deno.test("openDataLayer() search finds messages by keyword at once and by meaning once embedded; deletes leave nothing", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: { useLite: { workers: 0 } },
    });
    const chat = await data.conversations.createConversation({ title: "home" });
    const other = await data.conversations.createConversation({ title: "x" });
    await data.conversations.appendMessages(chat.id, [
      { role: "user", content: "The plumber Jarek fixed the leaking pipe" },
      { role: "assistant", content: "Good to hear the kitchen is dry again" },
    ]);
    await data.conversations.appendMessages(other.id, [
      { role: "user", content: "We should plant tulips in the garden" },
    ]);
    const byKeyword = await data.search("Jarek", { mode: "keyword" });
    assert.match(byKeyword[0]!.content, /Jarek/);
    await data.memory!.whenIdle();
    const byMeaning = await data.search("who repaired the water leak?", {
      mode: "vector",
      k: 1,
    });
    assert.match(byMeaning[0]!.content, /plumber/);
    assert.equal((await data.search("tulips")).length > 0, true);
    await data.conversations.deleteConversation(other.id);
    assert.deepEqual(await data.search("tulips", { mode: "keyword" }), []);
    const status = await data.memory!.status();
    assert.equal(JSON.stringify(status).includes("tulips"), false);
    await rejectsWith(data.search("   "), "INVALID_INPUT");
    await rejectsWith(data.search("x", { k: 0 }), "INVALID_INPUT");
  });
});

Deno.test("openDataLayer() with memory: false has no search", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: false,
    });
    assert.equal(data.memory, undefined);
    await rejectsWith(data.search("anything"), "NOT_FOUND");
  });
});

Deno.test("a message committed just before a kill -9 is found by search after the next open", async () => {
  await withDir(async (dir) => {
    {
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        create: true,
        kdf,
        memory: { background: false },
      });
      await data.conversations.createConversation({ title: "parcels" });
    }
    const runs = 5;
    const markers: string[] = [];
    for (let i = 0; i < runs; i++) {
      const marker = `ZX${i}Q${crypto.randomUUID().slice(0, 8)}`;
      markers.push(marker);
      const child = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          fileURLToPath(new URL("./_memory_kill_child.ts", import.meta.url)),
          dir,
          marker,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(
        child.signal,
        "SIGKILL",
        new TextDecoder().decode(child.stderr),
      );
    }
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      memory: { background: false },
    });
    for (const marker of markers) {
      const hits = await data.search(marker, { mode: "keyword" });
      assert.ok(hits.length >= 1, marker);
      assert.match(hits[0]!.content, new RegExp(marker));
    }
  });
});
