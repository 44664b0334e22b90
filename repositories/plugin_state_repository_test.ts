import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "./_doc_helpers.ts";
import {
  createPluginStateRepository,
  resolvePluginStateRepositoryOptions,
} from "./plugin_state_repository.ts";

Deno.test("registerPlugin() inserts, updates and keeps the enabled flag unless given", async () => {
  await using store = await openTestStore();
  let now = 100;
  const plugins = createPluginStateRepository(store.storage, {
    now: () => now,
  });
  const p = await plugins.registerPlugin({
    name: "weather",
    version: "1.0.0",
    metadata: { author: "'; --" },
  });
  assert.deepEqual(p, {
    name: "weather",
    version: "1.0.0",
    enabled: true,
    metadata: { author: "'; --" },
    installedAt: 100,
    updatedAt: 100,
  });
  await plugins.setEnabled("weather", false);
  now = 200;
  const again = await plugins.registerPlugin({
    name: "weather",
    version: "1.1.0",
  });
  assert.deepEqual(again, {
    ...p,
    version: "1.1.0",
    enabled: false,
    metadata: {},
    updatedAt: 200,
  });
  assert.equal(
    (await plugins.registerPlugin({
      name: "weather",
      version: "1.2.0",
      enabled: true,
    })).enabled,
    true,
  );
  await plugins.registerPlugin({
    name: "alpha",
    version: "0.1.0-beta+3",
    enabled: false,
  });
  assert.deepEqual(
    (await plugins.listPlugins()).map((x) => [x.name, x.enabled]),
    [["alpha", false], [
      "weather",
      true,
    ]],
  );
  assert.equal(await plugins.getPlugin("nothing"), undefined);
  await assert.rejects(
    plugins.setEnabled("nothing", true),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
});

Deno.test("plugin state round-trips JSON, is scoped per plugin and removed with the plugin", async () => {
  await using store = await openTestStore();
  const plugins = createPluginStateRepository(store.storage);
  await plugins.registerPlugin({ name: "a", version: "1" });
  await plugins.registerPlugin({ name: "b", version: "1" });
  await plugins.setState("a", "cursor", { page: 3, ids: [1, 2] });
  await plugins.setState("a", "name", "'; DROP TABLE plugin_state; --");
  await plugins.setState("b", "cursor", 9);
  assert.deepEqual(await plugins.getState("a", "cursor"), {
    page: 3,
    ids: [1, 2],
  });
  assert.deepEqual(await plugins.listState("a"), {
    cursor: { page: 3, ids: [1, 2] },
    name: "'; DROP TABLE plugin_state; --",
  });
  assert.equal(await plugins.deleteState("a", "cursor"), true);
  assert.equal(await plugins.deleteState("a", "cursor"), false);
  assert.equal(await plugins.removePlugin("a"), true);
  assert.equal(await plugins.removePlugin("a"), false);
  assert.deepEqual(await plugins.listState("a"), {});
  assert.equal(await plugins.getState("b", "cursor"), 9);
  await assert.rejects(
    plugins.setState("a", "k", 1),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
});

Deno.test("invalid plugin input gives INVALID_INPUT and stores nothing", async () => {
  await using store = await openTestStore();
  const plugins = createPluginStateRepository(store.storage);
  await plugins.registerPlugin({ name: "ok", version: "1" });
  for (
    const reg of [
      { name: "Bad", version: "1" },
      { name: "has_underscore", version: "1" },
      { name: "x".repeat(64), version: "1" },
      { name: "ok2", version: "" },
      { name: "ok2", version: "1 0" },
      { name: "ok2", version: 1 },
      { name: "ok2", version: "1", enabled: "yes" },
      { name: "ok2", version: "1", metadata: [] },
      { name: "ok2", version: "1", metadata: { n: NaN } },
    ]
  ) {
    await assert.rejects(
      plugins.registerPlugin(reg as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      JSON.stringify(reg),
    );
  }
  for (
    const [key, value] of [["", 1], ["a b", 1], ["k", undefined], ["k", 1n], [
      "k",
      "x".repeat(1_048_577),
    ]]
  ) {
    await assert.rejects(
      plugins.setState("ok", key as string, value as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
  await assert.rejects(
    plugins.setEnabled("ok", 1 as never),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.equal((await plugins.listPlugins()).length, 1);
  assert.deepEqual(await plugins.listState("ok"), {});
});

Deno.test("resolvePluginStateRepositoryOptions() applies defaults and refuses a bad clock", () => {
  assert.equal(resolvePluginStateRepositoryOptions().now, Date.now);
  assert.throws(
    () => resolvePluginStateRepositoryOptions({ now: "x" as never }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});
