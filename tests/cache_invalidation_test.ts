/**
 * End to end: configuration values cached in front of real libSQL storage are
 * invalidated by the change feed's `data.changed.config` events on the real
 * message bus, so a changed value is never served from the cache.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createMessageBus } from "../bus/mod.ts";
import { createConfigRepository } from "../repositories/mod.ts";
import { openChangeFeed } from "../changes/mod.ts";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { openCache } from "../cache/mod.ts";

Deno.test("a cached configuration value is never served after it changed in libSQL", async (t) => {
  await using store = await openTestStore();
  await using bus = createMessageBus();
  await using feed = await openChangeFeed(store.storage, { bus });
  const config = createConfigRepository(store.storage, { changes: feed });
  await using cache = await openCache({
    path: join(store.dir, "cache"),
    key: store.key,
    defaultTtlMs: Infinity,
    sweepIntervalMs: 0,
  });
  const off = cache.subscribeInvalidation(bus);
  const cached = cache.namespace("config");
  let loads = 0;
  const read = (ns: string, key: string) =>
    cached.getOrSet(`${ns}/${key}`, async () => {
      loads++;
      return (await config.get(ns, key)) ?? null;
    });

  await t.step("read-through caches the stored value", async () => {
    await config.set("ui", "theme", "dark");
    assert.equal(await read("ui", "theme"), "dark");
    assert.equal(await read("ui", "theme"), "dark");
    assert.equal(loads, 1);
    assert.equal(cached.get("ui/theme"), "dark");
  });

  await t.step("set, delete and deleteNamespace invalidate", async () => {
    await config.set("ui", "theme", "light");
    assert.equal(cached.has("ui/theme"), false);
    assert.equal(await read("ui", "theme"), "light");
    await config.delete("ui", "theme");
    assert.equal(await read("ui", "theme"), null);
    await config.set("ui", "lang", "en");
    await config.set("ui", "font", "serif");
    assert.equal(await read("ui", "lang"), "en");
    assert.equal(await read("ui", "font"), "serif");
    await config.deleteNamespace("ui");
    assert.equal(await read("ui", "lang"), null);
    assert.equal(await read("ui", "font"), null);
  });

  await t.step("a load in flight during a change is not cached", async () => {
    await config.set("llm", "model", "small");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stale = cached.getOrSet("llm/model", async () => {
      const v = await config.get("llm", "model");
      await gate; // the change lands while this load is in flight
      return v ?? null;
    });
    await config.set("llm", "model", "large");
    release();
    assert.equal(await stale, "small");
    assert.equal(cached.get("llm/model"), undefined);
    assert.equal(await read("llm", "model"), "large");
  });

  await t.step("the cache stops listening after unsubscribe", () => {
    const before = bus.subscriberCount;
    off();
    assert.equal(bus.subscriberCount, before - 1);
  });
});
