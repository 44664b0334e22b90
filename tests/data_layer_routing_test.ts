// Query routing through openDataLayer: hot reads are served from the LMDB
// cache without the caller asking, and a cached read reflects a write as
// soon as the write returned (the change feed's bus events invalidate).
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { openDataLayer } from "../mod.ts";

const kdf = { memoryKiB: 19456, iterations: 2 } as const;
const PW = "a long test passphrase";

Deno.test("hot reads are served from the cache and reflect each update immediately after the write returns", async (t) => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      cache: { defaultTtlMs: Infinity, sweepIntervalMs: 0 },
    });
    const cache = data.cache!;

    await t.step("config.get", async () => {
      await data.config.set("ui", "theme", "dark");
      assert.equal(await data.config.get("ui", "theme"), "dark");
      assert.deepEqual(cache.namespace("config").get("ui/theme"), {
        found: true,
        value: "dark",
      });
      await data.config.set("ui", "theme", "light");
      assert.equal(await data.config.get("ui", "theme"), "light");
      await data.config.delete("ui", "theme");
      assert.equal(await data.config.get("ui", "theme"), undefined);
      // A value that did not exist when it was read (cached as missing)
      // is seen as soon as it is set.
      assert.equal(await data.config.get("ui", "lang"), undefined);
      await data.config.set("ui", "lang", "en");
      assert.equal(await data.config.get("ui", "lang"), "en");
    });

    await t.step("secret config values never enter the cache", async () => {
      await data.config.set("llm", "apiKey", "sk-1", { secret: true });
      assert.equal(await data.config.get("llm", "apiKey"), "sk-1");
      assert.deepEqual(cache.namespace("config").get("llm/apiKey"), {
        secret: true,
      });
      await data.config.set("llm", "apiKey", "sk-2", { secret: true });
      assert.equal(await data.config.get("llm", "apiKey"), "sk-2");
    });

    await t.step("users.getUser", async () => {
      await data.users.createUser({ id: "u", profile: { name: "Ada" } });
      assert.deepEqual((await data.users.getUser("u")).profile, {
        name: "Ada",
      });
      assert.ok(cache.namespace("users").has("u"));
      await data.users.updateProfile("u", { name: "Ada L." });
      assert.deepEqual((await data.users.getUser("u")).profile, {
        name: "Ada L.",
      });
      await data.users.deleteUser("u");
      await assert.rejects(data.users.getUser("u"), { code: "NOT_FOUND" });
    });

    await t.step("the recent context of a conversation", async () => {
      const c = await data.conversations.createConversation({ id: "c" });
      await data.conversations.appendMessage(c.id, {
        role: "user",
        content: "one",
      });
      assert.deepEqual(
        (await data.recentMessages("c", 2)).map((m) => m.content),
        ["one"],
      );
      assert.ok(cache.namespace("recent").has("c/2"));
      await data.conversations.appendMessages(c.id, [
        { role: "assistant", content: "two", model: "m-1" },
        { role: "user", content: "three" },
      ]);
      const recent = await data.recentMessages("c", 2);
      assert.deepEqual(recent.map((m) => [m.content, m.model]), [
        ["two", "m-1"],
        ["three", undefined],
      ]);
      assert.deepEqual(
        await data.conversations.recentMessages("c", 2),
        recent,
      );
      await data.conversations.deleteConversation("c");
      assert.deepEqual(await data.recentMessages("c", 2), []);
    });

    await t.step("a closed cache falls back to libSQL", async () => {
      await data.config.set("ui", "font", "serif");
      await cache.close();
      assert.equal(await data.config.get("ui", "font"), "serif");
    });
  });
});

Deno.test("with the cache off every read goes to libSQL", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      cache: false,
    });
    assert.equal(data.cache, undefined);
    await data.config.set("ui", "theme", "dark");
    assert.equal(await data.config.get("ui", "theme"), "dark");
    assert.equal(data.component("cache"), undefined);
    assert.equal(data.component("changes"), data.changes);
  });
});

Deno.test("components of options.components open after the built-in rows and close before them", async () => {
  await withDir(async (dir) => {
    const events: string[] = [];
    const data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      cache: false,
      components: [{
        name: "probe",
        schemas: [],
        open(ctx) {
          // An earlier row by name, and the shared context.
          assert.equal(ctx.get("changes"), ctx.changes);
          assert.ok(ctx.storage !== undefined && ctx.bus !== undefined);
          assert.equal(ctx.signal.aborted, false);
          events.push("open");
          ctx.signal.addEventListener("abort", () => events.push("abort"));
          return Promise.resolve({ storageClosed: () => ctx.storage.closed });
        },
        close(instance: { storageClosed(): boolean }) {
          events.push(`close (storage closed: ${instance.storageClosed()})`);
          return Promise.resolve();
        },
      }],
    });
    await data.close();
    await data.close();
    assert.deepEqual(events, [
      "open",
      "abort",
      "close (storage closed: false)",
    ]);
    await assert.rejects(
      openDataLayer(dir, {
        passphrase: PW,
        components: [{
          name: "bus",
          schemas: [],
          open: () => Promise.resolve(1),
          close: () => Promise.resolve(),
        }],
      }),
      { code: "INVALID_INPUT" },
    );
  });
});
