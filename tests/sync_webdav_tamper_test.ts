// Tampering on a real WebDAV server (rclone serve webdav): edits of the
// served files are detected by pull, nothing is applied.
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  manifestName,
  openSyncDevice,
  openWebDavTarget,
  segmentName,
} from "../sync/mod.ts";
import { rejectsWith, withDir } from "./_helpers.ts";
import { hasRclone, startWebDavServer } from "./_webdav_server.ts";

Deno.test({
  name:
    "tampering with segments and manifests on a real WebDAV server is detected and applies nothing",
  ignore: !hasRclone(),
  fn: async (t) => {
    const server = await startWebDavServer();
    try {
      await withDir(async (dir) => {
        const keys = await deriveSyncKeys(
          await importDataKey(generateDataKey()),
        );
        await using target = await openWebDavTarget({
          url: `${server.url}aico/`,
        });
        await using a = await openSyncDevice(join(dir, "a"), keys, {
          deviceId: "a",
        });
        const served = (name: string) => join(server.dir, "aico", name);
        // The attacker edits objects through the server itself (rclone keeps
        // its own view of file sizes, so edits behind its back are not served).
        const put = async (name: string, bytes: Uint8Array) => {
          const res = await fetch(`${server.url}aico/${name}`, {
            method: "PUT",
            body: bytes as BodyInit,
          });
          await res.body?.cancel();
          assert.ok(res.ok);
        };
        const del = async (name: string) => {
          const res = await fetch(`${server.url}aico/${name}`, {
            method: "DELETE",
          });
          await res.body?.cancel();
        };
        const manifests: Uint8Array[] = [];
        for (let n = 1; n <= 3; n++) {
          await a.stage([{
            op: "put",
            table: "config",
            key: `k${n}`,
            hlc: a.clock.now(),
            value: { v: n },
          }]);
          await a.push(target);
          manifests.push(
            await Deno.readFile(served(manifestName(keys, "a", n))),
          );
        }
        const seg2 = segmentName(keys, "a", 2);
        const original = await Deno.readFile(served(seg2));
        await using b = await openSyncDevice(join(dir, "b"), keys, {
          deviceId: "b",
        });
        const replica = createReplica();
        const pull = () => b.pull(target, (c) => void replica.apply(c));
        await t.step("a flipped byte", async () => {
          const bad = original.slice();
          bad[bad.length - 1]! ^= 0x10;
          await put(seg2, bad);
          await rejectsWith(pull(), "AUTH_FAILED");
          assert.equal(replica.versions().length, 0);
        });
        await t.step("a truncated segment", async () => {
          await put(seg2, original.subarray(0, 100));
          await rejectsWith(pull(), "AUTH_FAILED");
          assert.equal(replica.versions().length, 0);
        });
        await t.step("an old segment in place of a newer one", async () => {
          await put(
            seg2,
            await Deno.readFile(served(segmentName(keys, "a", 1))),
          );
          await rejectsWith(pull(), "AUTH_FAILED");
          assert.equal(replica.versions().length, 0);
        });
        await t.step(
          "repaired, then an old manifest replayed: SYNC_REPLAY",
          async () => {
            await put(seg2, original);
            assert.equal((await pull()).applied[0]?.to, 3);
            assert.equal(replica.versions().length, 3);
            await del(manifestName(keys, "a", 3));
            await put(manifestName(keys, "a", 1), manifests[0]!);
            await rejectsWith(pull(), "SYNC_REPLAY");
            assert.equal(replica.versions().length, 3);
          },
        );
      });
    } finally {
      await server.stop();
    }
  },
});
