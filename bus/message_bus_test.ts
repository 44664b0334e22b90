import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { createMessageBus, resolveMessageBusOptions } from "./message_bus.ts";

Deno.test("createMessageBus() delivers exact, prefix and '*' subscriptions", async (t) => {
  await using bus = createMessageBus();
  const seen: string[] = [];
  bus.subscribe(
    "log.info",
    (_p, { topic }) => void seen.push(`exact:${topic}`),
  );
  bus.subscribe("log.*", (_p, { topic }) => void seen.push(`prefix:${topic}`));
  bus.subscribe("*", (_p, { topic }) => void seen.push(`all:${topic}`));
  await t.step(
    "a prefix matches deeper topics but not the bare prefix nor a longer word",
    () => {
      assert.equal(bus.publish("log.info", {}), 3);
      assert.equal(bus.publish("log.a.b", {}), 2);
      assert.equal(bus.publish("log", {}), 1);
      assert.equal(bus.publish("logs.x", {}), 1);
      assert.deepEqual(seen, [
        "prefix:log.info",
        "all:log.info",
        "exact:log.info",
        "prefix:log.a.b",
        "all:log.a.b",
        "all:log",
        "all:logs.x",
      ]);
    },
  );
  await t.step("payloads arrive unchanged", () => {
    const got: unknown[] = [];
    bus.subscribe("user.created", (p) => void got.push(p));
    const payload = { id: "u1", name: "'; DROP TABLE users; --" };
    bus.publish("user.created", payload);
    assert.deepEqual(got, [payload]);
  });
});

Deno.test("subscribe() returns an unsubscribe that is idempotent", async () => {
  await using bus = createMessageBus();
  let n = 0;
  const off = bus.subscribe("a.*", () => void n++);
  bus.publish("a.b", 1);
  off();
  off();
  bus.publish("a.b", 1);
  assert.equal(n, 1);
  assert.equal(bus.subscriberCount, 0);
});

Deno.test("a failing handler is reported to onError and does not stop the others", async () => {
  const errors: [unknown, string][] = [];
  await using bus = createMessageBus({
    onError: (e, topic) => void errors.push([e, topic]),
  });
  let reached = 0;
  bus.subscribe("t.x", () => {
    throw new Error("sync boom");
  });
  bus.subscribe("t.x", () => Promise.reject(new Error("async boom")));
  bus.subscribe("t.x", () => void reached++);
  assert.equal(bus.publish("t.x", null), 3);
  assert.equal(reached, 1);
  await bus.publishAsync("t.x", null);
  assert.equal(reached, 2);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(
    errors.map(([e, topic]) => `${(e as Error).message}@${topic}`).sort(),
    ["async boom@t.x", "async boom@t.x", "sync boom@t.x", "sync boom@t.x"],
  );
});

Deno.test("publishAsync() waits for handler promises and tells handlers they are awaited", async () => {
  await using bus = createMessageBus();
  const order: string[] = [];
  bus.subscribe("job.*", async (_p, info) => {
    order.push(`start:${info.awaited}`);
    await new Promise((r) => setTimeout(r, 10));
    order.push("end");
  });
  await bus.publishAsync("job.run", {});
  order.push("after");
  assert.deepEqual(order, ["start:true", "end", "after"]);
  bus.publish("job.run", {});
  order.push("sync-returned");
  assert.deepEqual(order.slice(3), ["start:false", "sync-returned"]);
});

Deno.test("publish() and subscribe() reject malformed topics with INVALID_INPUT", async () => {
  await using bus = createMessageBus();
  for (
    const bad of [
      "",
      "a..b",
      ".a",
      "a.",
      "a b",
      "a.*",
      "*",
      "x".repeat(300),
      42,
    ]
  ) {
    assert.throws(
      () => bus.publish(bad as string, null),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      String(bad),
    );
  }
  for (const bad of ["", "a..*", "a.b*", "**"]) {
    assert.throws(
      () => bus.subscribe(bad as "*", () => {}),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      bad,
    );
  }
  assert.throws(
    // @ts-expect-error: not a function
    () => bus.subscribe("a.b", "nope"),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
});

Deno.test("close() waits for pending handlers, then refuses use with STORE_CLOSED", async () => {
  const bus = createMessageBus();
  let done = false;
  bus.subscribe("slow.x", async () => {
    await new Promise((r) => setTimeout(r, 20));
    done = true;
  });
  bus.publish("slow.x", null);
  await bus.close();
  assert.ok(done);
  assert.ok(bus.closed);
  await bus.close();
  assert.throws(
    () => bus.publish("slow.x", null),
    (e) => isAicoDataError(e, "STORE_CLOSED"),
  );
  assert.throws(
    () => bus.subscribe("slow.x", () => {}),
    (e) => isAicoDataError(e, "STORE_CLOSED"),
  );
  await assert.rejects(
    bus.publishAsync("slow.x", null),
    (e) => isAicoDataError(e, "STORE_CLOSED"),
  );
});

Deno.test("a handler subscribing or unsubscribing during delivery does not disturb it", async () => {
  await using bus = createMessageBus();
  const seen: string[] = [];
  let offB = (): void => {};
  bus.subscribe("e.x", () => {
    seen.push("a");
    offB();
    bus.subscribe("e.x", () => void seen.push("late"));
  });
  offB = bus.subscribe("e.x", () => void seen.push("b"));
  bus.publish("e.x", null);
  assert.deepEqual(seen, ["a"]);
  bus.publish("e.x", null);
  assert.deepEqual(seen, ["a", "a", "late"]);
});

Deno.test("typed topics constrain payloads at compile time", async () => {
  type Topics = {
    "user.created": { id: string };
    "log.info": { message: string };
  };
  await using bus = createMessageBus<Topics>();
  let id = "";
  bus.subscribe("user.created", (p) => {
    id = p.id;
  });
  bus.publish("user.created", { id: "u7" });
  // @ts-expect-error: wrong payload type
  assert.throws(() => bus.publish("nope topic", { id: 1 }));
  assert.equal(id, "u7");
});

Deno.test("resolveMessageBusOptions() refuses a non-function onError", () => {
  // @ts-expect-error: not a function
  assert.throws(() => resolveMessageBusOptions({ onError: 1 }), TypeError);
  assert.equal(typeof resolveMessageBusOptions({}).onError, "function");
});
