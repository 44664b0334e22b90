import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "./_doc_helpers.ts";
import {
  createConfigRepository,
  resolveConfigRepositoryOptions,
} from "./config_repository.ts";

Deno.test("set() and get() keep every JSON type, verbatim", async () => {
  await using store = await openTestStore();
  const config = createConfigRepository(store.storage, { now: () => 7 });
  const values = {
    nul: null,
    yes: true,
    no: false,
    int: 42,
    neg: -0.5,
    str: "'; DROP TABLE config; --",
    empty: "",
    arr: [1, "two", { three: 3 }],
    obj: { nested: { deep: ["x"] }, "key with spaces": 1 },
    unicode: "🦕 Zürich \u0000 end",
  };
  for (const [k, v] of Object.entries(values)) await config.set("app", k, v);
  for (const [k, v] of Object.entries(values)) {
    assert.deepEqual(await config.get("app", k), v, k);
  }
  const entry = await config.getEntry("app", "arr");
  assert.deepEqual(entry, {
    namespace: "app",
    key: "arr",
    value: [1, "two", { three: 3 }],
    type: "array",
    secret: false,
    updatedAt: 7,
  });
  assert.equal(await config.get("app", "missing"), undefined);
  assert.equal(await config.get("other", "str"), undefined);
  await config.set("app", "int", "now a string");
  assert.equal((await config.getEntry("app", "int"))?.type, "string");
  assert.equal((await config.list("app")).length, Object.keys(values).length);
});

Deno.test("secret values are sealed and bound to their key", async () => {
  await using store = await openTestStore();
  const config = createConfigRepository(store.storage);
  await config.set("llm", "apiKey", "sk-very-secret", { secret: true });
  await config.set("llm", "other", "sk-other", { secret: true });
  assert.equal(await config.get("llm", "apiKey"), "sk-very-secret");
  const row = (await store.storage.execute(
    "SELECT value, sealed_value FROM config WHERE key = 'apiKey'",
  )).rows[0]!;
  assert.equal(row.value, null);
  assert.ok(
    !new TextDecoder().decode(row.sealed_value as Uint8Array).includes(
      "sk-very",
    ),
  );
  await store.storage.execute(
    "UPDATE config SET sealed_value = (SELECT sealed_value FROM config WHERE key = 'apiKey') WHERE key = 'other'",
  );
  await assert.rejects(
    config.get("llm", "other"),
    (e) => isAicoDataError(e, "AUTH_FAILED"),
  );
  // Turning a secret into a plain value clears the sealed copy.
  await config.set("llm", "apiKey", "public");
  const after = (await store.storage.execute(
    "SELECT value, sealed_value, secret FROM config WHERE key = 'apiKey'",
  ))
    .rows[0]!;
  assert.deepEqual({ ...after }, {
    value: '"public"',
    sealed_value: null,
    secret: 0,
  });
});

Deno.test("invalid names and values give INVALID_INPUT and leave the stored value", async () => {
  await using store = await openTestStore();
  const config = createConfigRepository(store.storage);
  await config.set("app", "k", { v: 1 });
  const circular: Record<string, unknown> = {};
  circular.me = circular;
  const badValues: unknown[] = [
    undefined,
    NaN,
    Infinity,
    10n,
    () => 1,
    Symbol("s"),
    new Date(0),
    new Map(),
    circular,
    { nested: [undefined] },
    "\ud800",
    "x".repeat(1_048_577),
  ];
  for (const v of badValues) {
    await assert.rejects(
      config.set("app", "k", v as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      String(v),
    );
  }
  for (
    const [ns, key] of [
      ["", "k"],
      ["app", ""],
      ["a b", "k"],
      ["app", "x".repeat(257)],
      ["app", "'; --"],
      [1, "k"],
    ]
  ) {
    await assert.rejects(
      config.set(ns as string, key as string, 1),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      `${ns}/${key}`,
    );
    await assert.rejects(
      config.get(ns as string, key as string),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
  await assert.rejects(
    config.set("app", "k", 1, { secret: "yes" as never }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.deepEqual(await config.get("app", "k"), { v: 1 });
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM config")).rows[0]
      ?.n,
    1,
  );
});

Deno.test("a stored type that does not match the value reads as CORRUPT_VALUE", async () => {
  await using store = await openTestStore();
  const config = createConfigRepository(store.storage);
  await config.set("app", "n", 5);
  await store.storage.execute(
    "UPDATE config SET type = 'string' WHERE key = 'n'",
  );
  await assert.rejects(
    config.get("app", "n"),
    (e) => isAicoDataError(e, "CORRUPT_VALUE"),
  );
});

Deno.test("namespace() gives a typed view; delete() and deleteNamespace() remove values", async () => {
  await using store = await openTestStore();
  const config = createConfigRepository(store.storage);
  const ui = config.namespace<{ theme: "dark" | "light"; size: number }>("ui");
  await ui.set("theme", "dark");
  await ui.set("size", 12);
  await config.set("other", "x", 1);
  const theme: "dark" | "light" | undefined = await ui.get("theme");
  assert.equal(theme, "dark");
  assert.deepEqual(await ui.all(), { size: 12, theme: "dark" });
  assert.equal(await ui.delete("size"), true);
  assert.equal(await ui.delete("size"), false);
  assert.equal(await config.deleteNamespace("ui"), 1);
  assert.deepEqual(await ui.all(), {});
  assert.equal(await config.get("other", "x"), 1);
  assert.throws(
    () => config.namespace("bad name"),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});

Deno.test("resolveConfigRepositoryOptions() applies defaults and refuses a bad clock", () => {
  const o = resolveConfigRepositoryOptions();
  assert.equal(o.now, Date.now);
  assert.equal(o.changes, undefined);
  assert.throws(
    () => resolveConfigRepositoryOptions({ now: 1 as never }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});
