import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "./_doc_helpers.ts";
import { createLogRepository } from "./log_repository.ts";
import type { RepositoryStorage } from "./_storage.ts";
import type { Transaction } from "../storage/types.ts";
import {
  createLogPersistence,
  resolveLogPersistenceOptions,
} from "./log_persistence.ts";
import { createMessageBus } from "../bus/message_bus.ts";

/** Delegates to the real store and counts write transactions. */
function countingStore(
  storage: RepositoryStorage,
): RepositoryStorage & { transactions: number } {
  const counter = {
    transactions: 0,
    execute: storage.execute.bind(storage),
    batch: storage.batch.bind(storage),
    sealedColumn: storage.sealedColumn.bind(storage),
    transaction<T>(
      fn: (tx: Transaction) => Promise<T> | T,
      mode?: "write" | "read" | "deferred",
    ) {
      counter.transactions++;
      return storage.transaction(fn, mode);
    },
  };
  return counter;
}

Deno.test("log persistence writes one transaction per batch and everything by close()", async () => {
  await using store = await openTestStore();
  const db = countingStore(store.storage);
  const logs = createLogRepository(db);
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, {
    batchSize: 100,
    flushIntervalMs: 60_000,
  });
  for (let i = 0; i < 1050; i++) {
    bus.publish(`log.${i % 2 ? "info" : "debug"}`, {
      module: "app",
      message: `m${i}`,
      ts: i,
    });
  }
  await persistence.close();
  assert.equal(persistence.written, 1050);
  assert.equal(persistence.dropped, 0);
  assert.equal((await logs.stats()).total, 1050);
  assert.ok(
    db.transactions >= 11 && db.transactions <= 12,
    `transactions: ${db.transactions}`,
  );
  const first = await logs.queryLogs({ limit: 1 });
  assert.equal(first.records[0]?.level, "debug");
  assert.equal(first.records[0]?.message, "m0");
});

Deno.test("a partial batch is written after flushIntervalMs", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, { flushIntervalMs: 20 });
  bus.publish("log.info", { module: "app", message: "soon" });
  assert.equal((await logs.stats()).total, 0);
  // Written by the timer, without flush() or close(); poll (slow machines).
  const deadline = Date.now() + 10_000;
  while ((await logs.stats()).total === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal((await logs.stats()).total, 1);
  assert.equal(persistence.written, 1);
  await persistence.close();
});

Deno.test("a full queue drops synchronous publishes with QUEUE_FULL and counts them", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  const errors: unknown[] = [];
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, {
    batchSize: 1000,
    maxQueue: 10,
    flushIntervalMs: 60_000,
    onError: (e) => void errors.push(e),
  });
  for (let i = 0; i < 25; i++) {
    bus.publish("log.info", { module: "app", message: `m${i}` });
  }
  assert.equal(persistence.dropped, 15);
  assert.equal(errors.length, 15);
  assert.ok(errors.every((e) => isAicoDataError(e, "QUEUE_FULL")));
  await persistence.close();
  assert.equal((await logs.stats()).total, 10);
});

Deno.test("publishAsync() waits for room: nothing is dropped with a tiny queue", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, {
    batchSize: 4,
    maxQueue: 5,
  });
  const pending: Promise<number>[] = [];
  for (let i = 0; i < 200; i++) {
    pending.push(
      bus.publishAsync("log.warn", { module: "app", message: `m${i}` }),
    );
    assert.ok(persistence.queued <= 5 + pending.length);
  }
  await Promise.all(pending);
  await persistence.close();
  assert.equal(persistence.dropped, 0);
  assert.equal((await logs.stats()).total, 200);
  const all = await logs.queryLogs({ limit: 1000 });
  assert.deepEqual(
    all.records.map((r) => r.message),
    pending.map((_, i) => `m${i}`),
  );
});

Deno.test("malformed log events are reported as INVALID_INPUT and never fail a batch", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  const errors: unknown[] = [];
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, {
    onError: (e) => void errors.push(e),
  });
  bus.publish("log.info", { module: "app", message: "good 1" });
  bus.publish("log.info", { module: "app", message: 42 });
  bus.publish("log.custom", { module: "app", message: "no level anywhere" });
  bus.publish("log.info", "not an object");
  bus.publish("log.info", { module: "app", message: "x".repeat(70_000) });
  bus.publish("log.info", {
    module: "app",
    message: "good 2",
    context: { ok: true },
  });
  await persistence.close();
  assert.equal(errors.length, 4);
  assert.ok(errors.every((e) => isAicoDataError(e, "INVALID_INPUT")));
  assert.deepEqual((await logs.queryLogs()).records.map((r) => r.message), [
    "good 1",
    "good 2",
  ]);
});

Deno.test("accept() validates, waits for room and refuses after close()", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, {
    batchSize: 2,
    maxQueue: 2,
  });
  await Promise.all(
    Array.from(
      { length: 9 },
      (_, i) =>
        persistence.accept({ level: "info", module: "m", message: `${i}` }),
    ),
  );
  await assert.rejects(
    // @ts-expect-error: bad level
    persistence.accept({ level: "loud", module: "m", message: "x" }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await persistence.close();
  await persistence.close();
  assert.equal((await logs.stats()).total, 9);
  await assert.rejects(
    persistence.accept({ level: "info", module: "m", message: "late" }),
    (e) => isAicoDataError(e, "STORE_CLOSED"),
  );
  // Unsubscribed: later publishes are not persisted.
  bus.publish("log.info", { module: "m", message: "after close" });
  assert.equal((await logs.stats()).total, 9);
});

Deno.test("close() rejects with the store's error when the final write fails", async () => {
  await using store = await openTestStore();
  const logs = createLogRepository(store.storage);
  await using bus = createMessageBus();
  const persistence = createLogPersistence(bus, logs, {
    flushIntervalMs: 60_000,
  });
  bus.publish("log.info", { module: "m", message: "x" });
  await store.closeStorage();
  await assert.rejects(
    persistence.close(),
    (e) => isAicoDataError(e, "STORE_CLOSED"),
  );
  assert.equal(persistence.queued, 1);
  await store.reopen();
});

Deno.test("resolveLogPersistenceOptions() applies defaults and refuses bad values", () => {
  assert.deepEqual(
    { ...resolveLogPersistenceOptions(), onError: undefined },
    {
      batchSize: 500,
      flushIntervalMs: 200,
      maxQueue: 10_000,
      pattern: "log.*",
      onError: undefined,
    },
  );
  for (
    const bad of [
      { batchSize: 0 },
      { maxQueue: -1 },
      { flushIntervalMs: 1.5 },
      { pattern: "log" },
      {
        onError: 3,
      },
    ]
  ) {
    assert.throws(
      () => resolveLogPersistenceOptions(bad as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      JSON.stringify(bad),
    );
  }
});
