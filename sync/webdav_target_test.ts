import assert from "node:assert/strict";
import { rejectsWith } from "../tests/_helpers.ts";
import { syncTargetConformance } from "../tests/_sync_target_conformance.ts";
import { hasRclone, startWebDavServer } from "../tests/_webdav_server.ts";
import {
  openWebDavTarget,
  resolveWebDavTargetOptions,
} from "./webdav_target.ts";

const rclone = hasRclone();
if (!rclone) {
  // deno-lint-ignore no-console
  console.log(
    "rclone is not installed: WebDAV tests ignored (apt-get install rclone)",
  );
}

Deno.test({
  name:
    "openWebDavTarget() passes the SyncTarget conformance suite against rclone serve webdav",
  ignore: !rclone,
  fn: async (t) => {
    const server = await startWebDavServer();
    try {
      let n = 0;
      await syncTargetConformance(
        t,
        () => openWebDavTarget({ url: `${server.url}a/t${n++}` }),
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "openWebDavTarget() writes through MOVE so rclone, which ignores If-None-Match, never replaces",
  ignore: !rclone,
  fn: async () => {
    const server = await startWebDavServer();
    try {
      // The premise: a plain conditional PUT does overwrite on rclone 1.60.
      const url = `${server.url}probe`;
      await (await fetch(url, { method: "PUT", body: "one" })).body?.cancel();
      const again = await fetch(url, {
        method: "PUT",
        body: "two",
        headers: { "If-None-Match": "*" },
      });
      await again.body?.cancel();
      const ignoresIfNoneMatch =
        (await Deno.readTextFile(`${server.dir}/probe`)) === "two";
      await using target = await openWebDavTarget({ url: `${server.url}x` });
      assert.equal(await target.writeIfAbsent("k1", new Uint8Array([1])), true);
      assert.equal(
        await target.writeIfAbsent("k1", new Uint8Array([2])),
        false,
      );
      assert.deepEqual(
        await Deno.readFile(`${server.dir}/x/k1`),
        new Uint8Array([1]),
      );
      const left = [];
      for await (const e of Deno.readDir(`${server.dir}/x`)) left.push(e.name);
      assert.deepEqual(left, ["k1"]);
      // Whatever the server does with If-None-Match, MOVE kept the first bytes.
      assert.equal(typeof ignoresIfNoneMatch, "boolean");
    } finally {
      await server.stop();
    }
  },
});

Deno.test("openWebDavTarget() reports an unreachable server as CONNECTION_FAILED", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await using target = await openWebDavTarget({
    url: `http://127.0.0.1:${port}/x`,
  });
  await rejectsWith(target.list(), "CONNECTION_FAILED");
});

Deno.test("resolveWebDavTargetOptions() normalises the URL and refuses credentials in it", () => {
  const cases: [string, string | undefined][] = [
    ["http://127.0.0.1:1/a", "http://127.0.0.1:1/a/"],
    ["https://h/a/b/?q=1#f", "https://h/a/b/"],
    ["http://u:p@h/a", undefined],
    ["ftp://h/a", undefined],
    ["not a url", undefined],
  ];
  for (const [input, want] of cases) {
    if (want === undefined) {
      assert.throws(() => resolveWebDavTargetOptions({ url: input }), {
        code: "INVALID_INPUT",
      });
    } else {
      assert.equal(resolveWebDavTargetOptions({ url: input }).url.href, want);
    }
  }
  const o = resolveWebDavTargetOptions({
    url: "http://h/",
    username: "me",
    password: "pw",
  });
  assert.equal(o.authorization, `Basic ${btoa("me:pw")}`);
});

Deno.test({
  name:
    "openWebDavTarget() authenticates with Basic credentials; refused ones are WRONG_KEY",
  ignore: !rclone,
  fn: async () => {
    const server = await startWebDavServer({ user: "me", pass: "s3cret" });
    try {
      await using good = await openWebDavTarget({
        url: `${server.url}x`,
        username: "me",
        password: "s3cret",
      });
      assert.equal(await good.writeIfAbsent("a1", new Uint8Array([1])), true);
      assert.deepEqual(await good.list(), ["a1"]);
      await using bad = await openWebDavTarget({
        url: `${server.url}x`,
        username: "me",
        password: "nope",
      });
      await rejectsWith(bad.list(), "WRONG_KEY");
      await rejectsWith(bad.read("a1"), "WRONG_KEY");
      await using none = await openWebDavTarget({ url: `${server.url}x` });
      await rejectsWith(
        none.writeIfAbsent("a2", new Uint8Array([1])),
        "WRONG_KEY",
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "openWebDavTarget() without --allow-net is PERMISSION_DENIED naming the host",
  permissions: { net: false },
  fn: async () => {
    await using target = await openWebDavTarget({
      url: "http://127.0.0.1:9/x",
    });
    await assert.rejects(target.list(), (e: unknown) => {
      assert.equal((e as { code?: string }).code, "PERMISSION_DENIED");
      assert.match((e as Error).message, /--allow-net=127\.0\.0\.1:9/);
      return true;
    });
  },
});
