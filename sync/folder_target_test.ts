import assert from "node:assert/strict";
import { syncTargetConformance } from "../tests/_sync_target_conformance.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { openFolderTarget } from "./folder_target.ts";

Deno.test("openFolderTarget() passes the SyncTarget conformance suite", async (t) => {
  await withDir(async (dir) => {
    let n = 0;
    await syncTargetConformance(t, () => openFolderTarget(`${dir}/t${n++}`));
  });
});

Deno.test("openFolderTarget() creates the folder 0700 and objects 0600, leaving no temporary file", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(`${dir}/a/b`);
    await target.writeIfAbsent("x1", new Uint8Array([1]));
    await target.writeIfAbsent("x1", new Uint8Array([2]));
    assert.equal((await Deno.stat(`${dir}/a/b`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dir}/a/b/x1`)).mode! & 0o777, 0o600);
    const names = [];
    for await (const e of Deno.readDir(`${dir}/a/b`)) names.push(e.name);
    assert.deepEqual(names, ["x1"]);
  });
});

Deno.test("openFolderTarget() refuses a file, and a missing folder without create", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "");
    await rejectsWith(openFolderTarget(`${dir}/f`), "INVALID_INPUT");
    await rejectsWith(
      openFolderTarget(`${dir}/none`, { create: false }),
      "NOT_FOUND",
    );
    await rejectsWith(openFolderTarget(""), "INVALID_INPUT");
  });
});

Deno.test("openFolderTarget() ignores stray files a folder-sync tool leaves", async () => {
  await withDir(async (dir) => {
    await using target = await openFolderTarget(dir);
    await Deno.writeTextFile(`${dir}/.tmp-123`, "partial");
    await Deno.writeTextFile(`${dir}/m1.sync-conflict-20260101-ABC`, "x");
    await Deno.mkdir(`${dir}/sub`);
    await target.writeIfAbsent("m1", new Uint8Array([1]));
    assert.deepEqual(await target.list(), ["m1"]);
  });
});

Deno.test({
  name: "openFolderTarget() without --allow-write is PERMISSION_DENIED",
  permissions: { read: true, write: false },
  fn: async () => {
    await rejectsWith(openFolderTarget(Deno.cwd()), "PERMISSION_DENIED");
  },
});
