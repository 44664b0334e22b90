// Key rotation over every declared sealed column, in fresh processes: a
// plugin schema declares a sealed column (registerSchema sealedColumns), its
// values are written through storage.sealedColumn, the key is rotated, and
// a fresh process opens every value. A crash at each step of a rotation
// still loses nothing and leaves a folder under exactly one key.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { withDir } from "./_helpers.ts";
import { NOTES, notesSchema, PW } from "./_rotation_child.ts";
import { openDataLayer } from "../mod.ts";
import { readKeyFileInfo } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const CHILD = fileURLToPath(new URL("./_rotation_child.ts", import.meta.url));

async function child(dir: string, step: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, dir, step],
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(
    out.code,
    0,
    `${step}: ${text}${new TextDecoder().decode(out.stderr)}`,
  );
  return text;
}

async function verify(dir: string): Promise<{ keyId: string }> {
  const line = (await child(dir, "verify")).trim().split("\n").pop()!;
  const got = JSON.parse(line);
  assert.deepEqual(got.notes, NOTES);
  assert.deepEqual(got.messages, NOTES);
  assert.equal(got.title, "Tea");
  assert.deepEqual(got.profile, { name: "Ada" });
  assert.equal(got.apiKey, "sk-secret");
  // Exactly one key: the database's key record names only the key in use.
  const record = JSON.parse(await Deno.readTextFile(`${dir}/data.db.aico`));
  assert.equal(record.keyId, got.keyId);
  assert.equal(record.pendingKeyId, undefined);
  return got;
}

Deno.test("rotateKey() re-seals a plugin's declared sealed column; a fresh process opens every value", async () => {
  await withDir(async (dir) => {
    await child(dir, "seed");
    const before = await verify(dir);
    await child(dir, "rotate");
    const info = await readKeyFileInfo(`${dir}/key.json`);
    assert.notEqual(info.keyId, before.keyId);
    assert.equal(info.pendingKeyId, undefined);
    const after = await verify(dir);
    assert.equal(after.keyId, info.keyId);
  });
});

Deno.test("A crash at each step of a rotation loses nothing and opens with exactly one key", async (t) => {
  for (
    const step of [
      "crash-pending",
      "crash-rekey",
      "crash-reseal",
      "crash-before-complete",
    ]
  ) {
    await t.step(step, async () => {
      await withDir(async (dir) => {
        await child(dir, "seed");
        const old = (await readKeyFileInfo(`${dir}/key.json`)).keyId;
        await child(dir, step);
        const pending = (await readKeyFileInfo(`${dir}/key.json`))
          .pendingKeyId;
        assert.ok(pending !== undefined);
        const opened = await verify(dir);
        const info = await readKeyFileInfo(`${dir}/key.json`);
        if (step === "crash-pending") {
          // The store never took the new key up: it is under the old one,
          // and the rotation resumes with the same pending key.
          assert.equal(opened.keyId, old);
          await child(dir, "rotate");
          assert.equal(
            (await readKeyFileInfo(`${dir}/key.json`)).keyId,
            pending,
          );
        } else {
          // The open finished the rotation, key file included.
          assert.equal(opened.keyId, pending);
          assert.equal(info.keyId, pending);
          assert.equal(info.pendingKeyId, undefined);
        }
        const final = await verify(dir);
        const done = await readKeyFileInfo(`${dir}/key.json`);
        assert.equal(final.keyId, done.keyId);
        assert.equal(done.pendingKeyId, undefined);
      });
    });
  }
});

Deno.test("A rotation refused with BUSY leaves the key file byte for byte as it was", async () => {
  await withDir(async (dir) => {
    const kdf = { memoryKiB: 19456, iterations: 2 } as const;
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      plugins: [notesSchema],
    });
    await data.config.set("ui", "theme", "dark");
    const before = await Deno.readFile(`${dir}/key.json`);
    // A second connection to the database: PRAGMA rekey is refused.
    const other = await openStorage(`${dir}/data.db`, { key: data.key });
    try {
      await assert.rejects(data.rotateKey(PW), { code: "BUSY" });
    } finally {
      await other.close();
    }
    assert.deepEqual(await Deno.readFile(`${dir}/key.json`), before);
    assert.equal(
      (await readKeyFileInfo(`${dir}/key.json`)).pendingKeyId,
      undefined,
    );
    assert.equal(await data.config.get("ui", "theme"), "dark");
  });
});

Deno.test("rotateKey() reopens the cache under the new key and refuses after close", async () => {
  await withDir(async (dir) => {
    const kdf = { memoryKiB: 19456, iterations: 2 } as const;
    const data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
    });
    await data.config.set("ui", "theme", "dark");
    assert.equal(await data.config.get("ui", "theme"), "dark");
    const oldCache = data.cache!;
    await data.rotateKey(PW);
    assert.notEqual(data.cache, oldCache);
    assert.equal(oldCache.closed, true);
    assert.equal(data.cache!.closed, false);
    // Read-through works under the new cache, and stays fresh.
    assert.equal(await data.config.get("ui", "theme"), "dark");
    await data.config.set("ui", "theme", "light");
    assert.equal(await data.config.get("ui", "theme"), "light");
    await data.close();
    await assert.rejects(data.rotateKey(PW), { code: "STORE_CLOSED" });
  });
});

Deno.test("rotateKey() with an aborted signal changes nothing", async () => {
  await withDir(async (dir) => {
    const kdf = { memoryKiB: 19456, iterations: 2 } as const;
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
    });
    const before = await Deno.readFile(`${dir}/key.json`);
    const keyId = data.key.keyId;
    const abort = new AbortController();
    abort.abort(new Error("stop"));
    await assert.rejects(
      data.rotateKey(PW, { signal: abort.signal }),
      /stop/,
    );
    assert.deepEqual(await Deno.readFile(`${dir}/key.json`), before);
    assert.equal(data.key.keyId, keyId);
  });
});
