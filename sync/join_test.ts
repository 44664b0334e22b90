import assert from "node:assert/strict";
import { join } from "node:path";
import { createKeyFile, unlockKeyFile } from "../crypto/mod.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { openFolderTarget } from "./folder_target.ts";
import { fetchKeyFile, KEY_FILE_OBJECT, publishKeyFile } from "./join.ts";

const kdf = { memoryKiB: 19456, iterations: 2 };

Deno.test("fetchKeyFile() joins with the passphrase; a wrong one is WRONG_KEY and writes nothing", async () => {
  await withDir(async (dir) => {
    const passphrase = "correct horse battery staple";
    const key = await createKeyFile(join(dir, "key.json"), passphrase, { kdf });
    await using target = await openFolderTarget(join(dir, "target"));
    assert.equal(await publishKeyFile(target, join(dir, "key.json")), true);
    await Deno.mkdir(join(dir, "new"));
    await rejectsWith(
      fetchKeyFile(target, join(dir, "new", "key.json"), "wrong horse"),
      "WRONG_KEY",
    );
    const left = [];
    for await (const e of Deno.readDir(join(dir, "new"))) left.push(e.name);
    assert.deepEqual(
      left,
      [],
      "no key file and no temporary file after a wrong passphrase",
    );
    const joined = await fetchKeyFile(
      target,
      join(dir, "new", "key.json"),
      passphrase,
    );
    assert.equal(joined.keyId, key.keyId);
    assert.equal(
      (await Deno.stat(join(dir, "new", "key.json"))).mode! & 0o777,
      0o600,
    );
    assert.equal(
      (await unlockKeyFile(join(dir, "new", "key.json"), passphrase)).keyId,
      key.keyId,
    );
    await rejectsWith(
      fetchKeyFile(target, join(dir, "new", "key.json"), passphrase),
      "ALREADY_EXISTS",
    );
    // The target never holds the passphrase.
    const onTarget = new TextDecoder().decode(
      await target.read(KEY_FILE_OBJECT),
    );
    assert.ok(!onTarget.includes(passphrase));
    assert.ok(!onTarget.includes("horse"));
  });
});

Deno.test("publishKeyFile() refuses to stand beside another data key's file; fetch from an empty target is NOT_FOUND", async () => {
  await withDir(async (dir) => {
    await createKeyFile(join(dir, "a.json"), "pw", { kdf });
    await createKeyFile(join(dir, "b.json"), "pw", { kdf });
    await using target = await openFolderTarget(join(dir, "target"));
    await rejectsWith(
      fetchKeyFile(target, join(dir, "x.json"), "pw"),
      "NOT_FOUND",
    );
    await publishKeyFile(target, join(dir, "a.json"));
    assert.equal(await publishKeyFile(target, join(dir, "a.json")), false);
    await rejectsWith(
      publishKeyFile(target, join(dir, "b.json")),
      "ALREADY_EXISTS",
    );
  });
});
