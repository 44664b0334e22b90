import assert from "node:assert/strict";
import { withDir } from "../tests/_helpers.ts";
import { toBase64, toHex } from "./_bytes.ts";
import {
  beginKeyRotation,
  changePassphrase,
  completeKeyRotation,
  createKeyFile,
  readKeyFileInfo,
  rememberInKeyring,
  unlockKeyFile,
  unlockKeys,
  unlockWithKeyring,
} from "./key_file.ts";

const kdf = { memoryKiB: 19456, iterations: 2 } as const;

async function sha256(path: string): Promise<string> {
  return toHex(
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", await Deno.readFile(path)),
    ),
  );
}

Deno.test("unlockKeyFile() gives WRONG_KEY for a wrong passphrase and leaves the file byte-identical", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    await createKeyFile(path, "right passphrase", { kdf });
    const before = await sha256(path);
    const stat = await Deno.stat(path);
    for (
      const wrong of [
        "wrong passphrase",
        "right passphrase ",
        "Right passphrase",
      ]
    ) {
      await assert.rejects(unlockKeyFile(path, wrong), { code: "WRONG_KEY" });
    }
    assert.equal(await sha256(path), before);
    assert.equal(
      (await Deno.stat(path)).mtime?.getTime(),
      stat.mtime?.getTime(),
    );
    assert.equal(stat.mode! & 0o777, 0o600);
  });
});

Deno.test("changePassphrase() re-wraps the data key: old passphrase fails, sealed values still open", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    const key = await createKeyFile(path, "old passphrase", { kdf });
    const sealer = await key.sealer("field-aead");
    const values = Array.from({ length: 50 }, (_, i) => `memory number ${i}`);
    const sealed = await sealer.sealBatch(
      values.map((v, i) => ({ plaintext: v, aad: `m|${i}` })),
    );
    const saltBefore = (await readKeyFileInfo(path)).kdf.salt;

    await assert.rejects(
      changePassphrase(path, "not it", "new passphrase", { kdf }),
      {
        code: "WRONG_KEY",
      },
    );
    await changePassphrase(path, "old passphrase", "new passphrase", { kdf });

    await assert.rejects(unlockKeyFile(path, "old passphrase"), {
      code: "WRONG_KEY",
    });
    const reopened = await unlockKeyFile(path, "new passphrase");
    assert.equal(reopened.keyId, key.keyId);
    assert.notDeepEqual((await readKeyFileInfo(path)).kdf.salt, saltBefore);
    const s2 = await reopened.sealer("field-aead");
    for (let i = 0; i < values.length; i++) {
      assert.equal(await s2.openText(sealed[i]!, `m|${i}`), values[i]);
    }
  });
});

Deno.test("createKeyFile() never replaces an existing file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    await Deno.writeTextFile(path, "precious");
    await assert.rejects(createKeyFile(path, "pw", { kdf }), {
      code: "ALREADY_EXISTS",
    });
    assert.equal(await Deno.readTextFile(path), "precious");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "key.json",
    ]);
  });
});

Deno.test("createKeyFile() refuses weak KDF parameters unless allowed", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      createKeyFile(`${dir}/k`, "pw", {
        kdf: { memoryKiB: 1024, iterations: 1 },
      }),
      { code: "WEAK_KDF_PARAMS" },
    );
    await assert.rejects(Deno.stat(`${dir}/k`), Deno.errors.NotFound);
    const weak = { memoryKiB: 1024, iterations: 1, allowWeakParams: true };
    await createKeyFile(`${dir}/k`, "pw", { kdf: weak });
    assert.equal((await readKeyFileInfo(`${dir}/k`)).kdf.memoryKiB, 1024);
  });
});

Deno.test("A damaged or edited key file gives KEY_FILE_CORRUPT or WRONG_KEY, never a key", async (t) => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    await createKeyFile(path, "pw", { kdf });
    const original = JSON.parse(await Deno.readTextFile(path));
    const cases: [string, (j: Record<string, unknown>) => unknown, string][] = [
      ["not JSON", () => "{", "KEY_FILE_CORRUPT"],
      ["another format", (j) => ({ ...j, format: "x" }), "KEY_FILE_CORRUPT"],
      ["a future version", (j) => ({ ...j, version: 2 }), "KEY_FILE_CORRUPT"],
      [
        "a malformed slot",
        (j) => ({ ...j, current: { keyId: "zz" } }),
        "KEY_FILE_CORRUPT",
      ],
      ["a malformed salt", (j) => ({
        ...j,
        kdf: { ...(j.kdf as object), salt: "!!" },
      }), "KEY_FILE_CORRUPT"],
      ["memory lowered in the header", (j) => ({
        ...j,
        kdf: { ...(j.kdf as object), memoryKiB: 19457 },
      }), "WRONG_KEY"],
      ["keyId swapped", (j) => ({
        ...j,
        current: { ...(j.current as object), keyId: "0".repeat(32) },
      }), "WRONG_KEY"],
    ];
    for (const [name, edit, code] of cases) {
      await t.step(name, async () => {
        const edited = edit(original);
        await Deno.writeTextFile(
          path,
          typeof edited === "string" ? edited : JSON.stringify(edited),
        );
        await assert.rejects(unlockKeyFile(path, "pw"), { code });
      });
    }
    await assert.rejects(unlockKeyFile(`${dir}/missing`, "pw"), {
      code: "NOT_FOUND",
    });
  });
});

Deno.test("Key rotation keeps both keys until completed", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    const old = await createKeyFile(path, "pw", { kdf });
    const begun = await beginKeyRotation(path, "pw");
    assert.equal(begun.current.keyId, old.keyId);
    const pendingId = begun.pending!.keyId;
    // Resuming an interrupted rotation keeps the same pending key.
    const resumed = await unlockKeys(path, "pw");
    assert.equal(resumed.pending?.keyId, pendingId);
    assert.equal(
      (await beginKeyRotation(path, "pw")).pending?.keyId,
      pendingId,
    );
    assert.equal((await readKeyFileInfo(path)).pendingKeyId, pendingId);
    // A passphrase change mid-rotation keeps both slots.
    await changePassphrase(path, "pw", "pw2", { kdf });
    const done = await completeKeyRotation(path, "pw2");
    assert.equal(done.keyId, pendingId);
    const after = await unlockKeys(path, "pw2");
    assert.equal(after.current.keyId, pendingId);
    assert.equal(after.pending, undefined);
  });
});

Deno.test("Keyring round trip stores the key under the file's fingerprint", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    const secrets = new Map<string, Uint8Array>();
    const keyring = {
      get: (a: string) => Promise.resolve(secrets.get(a)?.slice()),
      set: (a: string, s: Uint8Array) =>
        Promise.resolve(void secrets.set(a, s.slice())),
    };
    const key = await createKeyFile(path, "pw", { kdf });
    await assert.rejects(unlockWithKeyring(path, keyring), {
      code: "NOT_FOUND",
    });
    await rememberInKeyring(path, "pw", keyring);
    assert.deepEqual([...secrets.keys()], [`aico-data/${key.keyId}`]);
    assert.equal((await unlockWithKeyring(path, keyring)).keyId, key.keyId);
    secrets.set(
      `aico-data/${key.keyId}`,
      crypto.getRandomValues(new Uint8Array(32)),
    );
    await assert.rejects(unlockWithKeyring(path, keyring), {
      code: "WRONG_KEY",
    });
    secrets.set(`aico-data/${key.keyId}`, new Uint8Array(5));
    await assert.rejects(unlockWithKeyring(path, keyring), {
      code: "WRONG_KEY",
    });
  });
});

Deno.test("No key material appears in crypto error messages", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.json`;
    const key = await createKeyFile(path, "hunter2-passphrase", { kdf });
    const raws = await Promise.all(
      (["libsql-page", "field-aead", "cache", "vector-doc", "export"] as const)
        .map((p) => key.purposeKeyBytes(p)),
    );
    const secrets = raws.flatMap((
      r,
    ) => [toHex(r), toBase64(r), toBase64(r).replace(/=+$/, "")]);
    secrets.push("hunter2-passphrase");
    const errors: unknown[] = [];
    const collect = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        errors.push(err);
      }
    };
    const sealer = await key.sealer("field-aead");
    const sealed = await sealer.seal("plaintext-secret", "ctx");
    await collect(unlockKeyFile(path, "hunter2-passphrase-wrong"));
    await collect(sealer.open(sealed, "other ctx"));
    await collect(sealer.open(sealed.subarray(0, 10), "ctx"));
    await collect(changePassphrase(path, "wrong", "x", { kdf }));
    await collect(createKeyFile(path, "hunter2-passphrase", { kdf }));
    await collect(completeKeyRotation(path, "hunter2-passphrase"));
    assert.equal(errors.length, 6);
    const text = errors.map((e) => {
      const err = e as Error & { cause?: Error };
      return [String(err), err.stack, String(err.cause), err.cause?.stack].join(
        "\n",
      );
    }).join("\n");
    for (const s of [...secrets, "plaintext-secret"]) {
      assert.ok(!text.includes(s), "an error message leaks secret material");
    }
  });
});
