// The one conformance suite every SyncTarget passes. Not part of the package.
import assert from "node:assert/strict";
import type { SyncTarget } from "../sync/types.ts";
import { rejectsWith } from "./_helpers.ts";

/** Runs the suite as steps of `t` on a fresh, empty target from `open`. */
export async function syncTargetConformance(
  t: Deno.TestContext,
  open: () => Promise<SyncTarget>,
): Promise<void> {
  await t.step("an empty target lists nothing", async () => {
    await using target = await open();
    assert.deepEqual(await target.list(), []);
  });

  await t.step("writeIfAbsent creates once and never replaces", async () => {
    await using target = await open();
    assert.equal(
      await target.writeIfAbsent("obj1", new Uint8Array([1, 2, 3])),
      true,
    );
    assert.equal(
      await target.writeIfAbsent("obj1", new Uint8Array([9])),
      false,
    );
    assert.deepEqual(await target.read("obj1"), new Uint8Array([1, 2, 3]));
  });

  await t.step(
    "concurrent writers of one name: exactly one wins, intact",
    async () => {
      await using target = await open();
      const payloads = Array.from(
        { length: 8 },
        (_, i) => new Uint8Array(4096).fill(i + 1),
      );
      const results = await Promise.all(
        payloads.map((p) => target.writeIfAbsent("race", p)),
      );
      assert.equal(
        results.filter((r) => r).length,
        1,
      );
      const winner = payloads[results.indexOf(true)]!;
      assert.deepEqual(await target.read("race"), winner);
    },
  );

  await t.step(
    "list filters by prefix, sorts, and hides temporary files",
    async () => {
      await using target = await open();
      for (const n of ["m2", "s1", "m1", "keyfile", "s0.x_y-z"]) {
        assert.equal(await target.writeIfAbsent(n, new Uint8Array([0])), true);
      }
      assert.deepEqual(await target.list("m"), ["m1", "m2"]);
      assert.deepEqual(await target.list(), [
        "keyfile",
        "m1",
        "m2",
        "s0.x_y-z",
        "s1",
      ]);
    },
  );

  await t.step("empty and large objects round-trip byte for byte", async () => {
    await using target = await open();
    const big = crypto.getRandomValues(new Uint8Array(65536));
    const large = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < large.length; i += big.length) large.set(big, i);
    assert.equal(await target.writeIfAbsent("empty", new Uint8Array()), true);
    assert.equal(await target.writeIfAbsent("large", large), true);
    assert.deepEqual(await target.read("empty"), new Uint8Array());
    assert.deepEqual(await target.read("large"), large);
  });

  await t.step(
    "read of a missing object is NOT_FOUND; delete tells whether it existed",
    async () => {
      await using target = await open();
      await rejectsWith(target.read("missing"), "NOT_FOUND");
      await target.writeIfAbsent("gone", new Uint8Array([1]));
      assert.equal(await target.delete("gone"), true);
      assert.equal(await target.delete("gone"), false);
      await rejectsWith(target.read("gone"), "NOT_FOUND");
      assert.equal(
        await target.writeIfAbsent("gone", new Uint8Array([2])),
        true,
      );
    },
  );

  await t.step(
    "malformed names are INVALID_INPUT and change nothing",
    async () => {
      await using target = await open();
      for (
        const bad of [
          "",
          ".tmp-x",
          "UPPER",
          "a/b",
          "../x",
          "a b",
          "x".repeat(201),
        ]
      ) {
        await rejectsWith(
          target.writeIfAbsent(bad, new Uint8Array([1])),
          "INVALID_INPUT",
        );
        await rejectsWith(target.read(bad), "INVALID_INPUT");
        await rejectsWith(target.delete(bad), "INVALID_INPUT");
      }
      await rejectsWith(target.list("A"), "INVALID_INPUT");
      await rejectsWith(
        target.writeIfAbsent("ok", "text" as unknown as Uint8Array),
        "INVALID_INPUT",
      );
      assert.deepEqual(await target.list(), []);
    },
  );

  await t.step(
    "close is safe twice and later calls are STORE_CLOSED",
    async () => {
      const target = await open();
      await target.close();
      await target.close();
      assert.equal(target.closed, true);
      await rejectsWith(target.list(), "STORE_CLOSED");
      await rejectsWith(target.read("a"), "STORE_CLOSED");
      await rejectsWith(
        target.writeIfAbsent("a", new Uint8Array()),
        "STORE_CLOSED",
      );
      await rejectsWith(target.delete("a"), "STORE_CLOSED");
    },
  );
}
