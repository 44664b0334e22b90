import assert from "node:assert/strict";
import { seeded } from "../tests/_sync_random.ts";
import {
  compareHlc,
  createHlc,
  formatHlc,
  parseHlc,
  resolveHlcOptions,
} from "./hlc.ts";

Deno.test("createHlc() readings strictly increase whatever the wall clock and remote readings do", () => {
  const rand = seeded(7);
  let wall = 1_700_000_000_000;
  const clock = createHlc("dev-a", {
    wallClock: () => wall,
    maxDriftMs: 60_000,
  });
  let prev = clock.now();
  for (let i = 0; i < 5000; i++) {
    const r = rand();
    if (r < 0.3) wall -= Math.floor(rand() * 10_000); // clock jumps back
    else if (r < 0.6) wall += Math.floor(rand() * 100);
    let next: string;
    if (rand() < 0.3) {
      const remote = formatHlc({
        wall: wall + Math.floor((rand() - 0.5) * 120_000),
        counter: Math.floor(rand() * 10),
        node: "dev-b",
      });
      next = clock.receive(remote);
      if (parseHlc(remote).wall <= wall + 60_000) {
        assert.equal(compareHlc(next, remote), 1);
      }
    } else next = clock.now();
    assert.equal(compareHlc(prev, next), -1, `${prev} then ${next}`);
    assert.ok(prev < next, "string form sorts like the clock for one node");
    prev = next;
  }
});

Deno.test("createHlc() follows the wall clock when it moves forward", () => {
  let wall = 5_000;
  const clock = createHlc("n1", { wallClock: () => wall });
  assert.deepEqual(parseHlc(clock.now()), {
    wall: 5_000,
    counter: 0,
    node: "n1",
  });
  assert.deepEqual(parseHlc(clock.now()), {
    wall: 5_000,
    counter: 1,
    node: "n1",
  });
  wall = 6_000;
  assert.deepEqual(parseHlc(clock.now()), {
    wall: 6_000,
    counter: 0,
    node: "n1",
  });
});

Deno.test("createHlc() does not adopt a remote reading beyond maxDriftMs", () => {
  const clock = createHlc("n1", { wallClock: () => 1_000, maxDriftMs: 500 });
  const far = formatHlc({ wall: 10_000_000, counter: 0, node: "n2" });
  assert.equal(parseHlc(clock.receive(far)).wall, 1_000);
  const near = formatHlc({ wall: 1_400, counter: 3, node: "n2" });
  assert.deepEqual(parseHlc(clock.receive(near)), {
    wall: 1_400,
    counter: 4,
    node: "n1",
  });
});

Deno.test("createHlc() restored from last() never repeats a reading after a restart", () => {
  const a = createHlc("n1", { wallClock: () => 9_000 });
  a.now();
  const last = a.now();
  const b = createHlc("n1", { wallClock: () => 1_000, last: a.last()! });
  assert.equal(compareHlc(b.now(), last), 1);
  assert.equal(createHlc("n1").last(), undefined);
});

Deno.test("createHlc() carries a full counter into the wall time", () => {
  const clock = createHlc("n1", {
    wallClock: () => 0,
    last: formatHlc({ wall: 0, counter: 0xffff, node: "n1" }),
  });
  assert.deepEqual(parseHlc(clock.now()), { wall: 1, counter: 0, node: "n1" });
});

Deno.test("HLC functions refuse malformed input with INVALID_INPUT", () => {
  for (
    const bad of [
      "",
      "0000000000000000",
      "0000000000000000.UP",
      "zz00000000000000.a",
    ]
  ) {
    assert.throws(() => parseHlc(bad), { code: "INVALID_INPUT" });
  }
  assert.throws(() => formatHlc({ wall: -1, counter: 0, node: "a" }), {
    code: "INVALID_INPUT",
  });
  assert.throws(() => formatHlc({ wall: 0, counter: 70_000, node: "a" }), {
    code: "INVALID_INPUT",
  });
  assert.throws(() => createHlc("Bad Id"), { code: "INVALID_INPUT" });
  assert.throws(() => resolveHlcOptions({ maxDriftMs: -1 }), {
    code: "INVALID_INPUT",
  });
  assert.throws(() => createHlc("a").receive("nope"), {
    code: "INVALID_INPUT",
  });
});
