import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { createMessageBus } from "../bus/message_bus.ts";
import { openTestStore } from "./_doc_helpers.ts";
import { createConfigRepository } from "./config_repository.ts";
import { createConversationRepository } from "./conversation_repository.ts";
import { openOutbox, resolveOutboxOptions } from "./outbox.ts";
import { createPluginStateRepository } from "./plugin_state_repository.ts";
import { createUserService } from "./user_service.ts";

Deno.test("repository writes publish data.changed.<table> after commit", async () => {
  await using store = await openTestStore();
  await using bus = createMessageBus();
  const events: [string, unknown][] = [];
  bus.subscribe(
    "data.changed.*",
    (payload, { topic }) => void events.push([topic, payload]),
  );
  await using outbox = await openOutbox(store.storage, bus);
  const config = createConfigRepository(store.storage, { outbox });
  const users = createUserService(store.storage, {
    outbox,
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  const plugins = createPluginStateRepository(store.storage, { outbox });
  const conversations = createConversationRepository(store.storage, { outbox });
  await config.set("ui", "theme", "dark");
  await config.delete("ui", "theme");
  await config.delete("ui", "theme"); // nothing deleted: no event
  await users.createUser({ id: "u" });
  await users.updateProfile("u", { a: 1 });
  await plugins.registerPlugin({ name: "p", version: "1" });
  await plugins.setState("p", "k", 1);
  const c = await conversations.createConversation({ id: "c" });
  await conversations.appendMessages(c.id, [{ role: "user", content: "a" }, {
    role: "user",
    content: "b",
  }]);
  await conversations.deleteConversation(c.id);
  assert.deepEqual(events, [
    ["data.changed.config", { keys: ["ui/theme"] }],
    ["data.changed.config", { keys: ["ui/theme"] }],
    ["data.changed.users", { keys: ["u"] }],
    ["data.changed.users", { keys: ["u"] }],
    ["data.changed.plugins", { keys: ["p"] }],
    ["data.changed.plugin_state", { keys: ["p/k"] }],
    ["data.changed.conversations", { keys: ["c"] }],
    ["data.changed.messages", { keys: ["1", "2"] }],
    ["data.changed.conversations", { keys: ["c"] }],
  ]);
  assert.equal(await outbox.pending(), 0);
  const marked = await store.storage.execute(
    "SELECT COUNT(*) AS n FROM outbox WHERE processed_at IS NOT NULL",
  );
  assert.equal(marked.rows[0]?.n, 9);
});

Deno.test("a failed write publishes nothing and leaves no outbox row", async () => {
  await using store = await openTestStore();
  await using bus = createMessageBus();
  let events = 0;
  bus.subscribe("*", () => void events++);
  await using outbox = await openOutbox(store.storage, bus);
  const users = createUserService(store.storage, {
    outbox,
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  await users.createUser({ id: "u" });
  await assert.rejects(
    users.createUser({ id: "u" }),
    (e) => isAicoDataError(e, "ALREADY_EXISTS"),
  );
  await assert.rejects(
    users.updateProfile("ghost", {}),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  assert.equal(events, 1);
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM outbox")).rows[0]
      ?.n,
    1,
  );
});

Deno.test("rows left pending by a crash are published at the next openOutbox()", async () => {
  await using store = await openTestStore();
  {
    // A writer whose process died after commit, before dispatch: the rows
    // were inserted in the write's transaction and never published.
    await using bus = createMessageBus();
    await using outbox = await openOutbox(store.storage, bus);
    await store.storage.transaction(async (tx) => {
      await tx.execute(
        "INSERT INTO config (row_key, namespace, key, type, value, updated_at) VALUES ('a/b', 'a', 'b', 'number', '1', 0)",
      );
      await outbox.enqueue(tx, "config", ["a/b"]);
      await outbox.enqueue(tx, "users", ["x", "y"]);
    });
    assert.equal(await outbox.pending(), 2);
  }
  const storage = await store.reopen();
  await using bus = createMessageBus();
  const events: [string, unknown][] = [];
  bus.subscribe(
    "data.changed.*",
    (payload, { topic }) => void events.push([topic, payload]),
  );
  await using outbox = await openOutbox(storage, bus);
  assert.deepEqual(events, [
    ["data.changed.config", { keys: ["a/b"] }],
    ["data.changed.users", { keys: ["x", "y"] }],
  ]);
  assert.equal(await outbox.pending(), 0);
});

Deno.test("openOutbox() deletes processed rows older than keepProcessedMs", async () => {
  await using store = await openTestStore();
  let now = 1_000;
  await using bus = createMessageBus();
  {
    await using outbox = await openOutbox(store.storage, bus, {
      now: () => now,
    });
    const config = createConfigRepository(store.storage, {
      outbox,
      now: () => now,
    });
    await config.set("a", "b", 1);
    now = 5_000;
    await config.set("a", "b", 2);
  }
  now = 6_000;
  await using outbox = await openOutbox(store.storage, bus, {
    now: () => now,
    keepProcessedMs: 2_000,
  });
  const rows = await store.storage.execute("SELECT processed_at FROM outbox");
  assert.deepEqual(rows.rows.map((r) => r.processed_at), [5_000]);
  await outbox.close();
  assert.equal(await outbox.dispatch(), 0);
});

Deno.test("a subscriber that throws does not block the outbox", async () => {
  await using store = await openTestStore();
  const errors: unknown[] = [];
  await using bus = createMessageBus({ onError: (e) => void errors.push(e) });
  bus.subscribe("data.changed.config", () => {
    throw new Error("consumer bug");
  });
  await using outbox = await openOutbox(store.storage, bus);
  const config = createConfigRepository(store.storage, { outbox });
  await config.set("a", "b", 1);
  assert.equal(errors.length, 1);
  assert.equal(await outbox.pending(), 0);
});

Deno.test("openOutbox() and enqueue() refuse malformed input", async () => {
  await using store = await openTestStore();
  await assert.rejects(
    openOutbox(store.storage, {} as never),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await using bus = createMessageBus();
  await using outbox = await openOutbox(store.storage, bus);
  await assert.rejects(
    store.storage.transaction((tx) => outbox.enqueue(tx, "Bad Table", [])),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.throws(
    () => resolveOutboxOptions({ keepProcessedMs: -1 }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.equal(resolveOutboxOptions().keepProcessedMs, 86_400_000);
});
