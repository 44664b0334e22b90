import assert from "node:assert/strict";
import { openDataLayer } from "../mod.ts";
import { beginKeyRotation, readKeyFileInfo } from "../crypto/mod.ts";
import { CORE_SEALED_COLUMNS } from "../schema/core.ts";

const kdf = { memoryKiB: 19456, iterations: 2 } as const;
const PW = "a long test passphrase";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    const d = await crypto.subtle.digest(
      "SHA-256",
      await Deno.readFile(`${dir}/${e.name}`),
    );
    out[e.name] = [...new Uint8Array(d)].map((b) => b.toString(16)).join("");
  }
  return out;
}

/** A user with one conversation of three messages; returns the conversation id. */
async function seed(dir: string): Promise<string> {
  await using data = await openDataLayer(dir, {
    passphrase: PW,
    create: true,
    kdf,
  });
  const user = await data.users.createUser({ profile: { name: "Ada" } });
  const chat = await data.conversations.createConversation({
    userId: user.id,
    title: "Tea",
  });
  for (const content of ["I like green tea", "Sencha, mostly", "🍵 e\u0301"]) {
    await data.conversations.appendMessage(chat.id, { role: "user", content });
  }
  await data.config.set("ui", "theme", "dark");
  return chat.id;
}

async function messages(dir: string, chatId: string): Promise<string[]> {
  await using data = await openDataLayer(dir, { passphrase: PW });
  return (await data.conversations.listMessages(chatId)).items.map((m) =>
    m.content
  );
}

Deno.test("openDataLayer() creates a folder and reads everything back after reopening", async () => {
  await withDir(async (dir) => {
    const chatId = await seed(dir);
    assert.deepEqual(await messages(dir, chatId), [
      "I like green tea",
      "Sencha, mostly",
      "🍵 e\u0301",
    ]);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.ok(
      names.includes("key.json") && names.includes("data.db") &&
        names.includes("cache"),
    );
    // The message text is sealed and page-encrypted: it is in no file.
    for (const name of names.filter((n) => n.startsWith("data.db"))) {
      const bytes = await Deno.readFile(`${dir}/${name}`);
      assert.ok(
        !new TextDecoder("latin1").decode(bytes).includes("green tea"),
        name,
      );
    }
  });
});

Deno.test("openDataLayer() refuses a wrong passphrase with WRONG_KEY and changes no file", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    const before = await hashTree(dir);
    await assert.rejects(openDataLayer(dir, { passphrase: "not it" }), {
      code: "WRONG_KEY",
    });
    assert.deepEqual(await hashTree(dir), before);
  });
});

Deno.test("openDataLayer() refuses a missing folder, a missing passphrase and a bad path", async () => {
  await withDir(async (dir) => {
    await assert.rejects(openDataLayer(`${dir}/none`, { passphrase: PW }), {
      code: "NOT_FOUND",
    });
    await assert.rejects(openDataLayer(`${dir}/new`, { create: true }), {
      code: "INVALID_INPUT",
    });
    await assert.rejects(openDataLayer("", { passphrase: PW }), {
      code: "INVALID_INPUT",
    });
    await seed(dir);
    await assert.rejects(openDataLayer(dir), { code: "INVALID_INPUT" });
  });
});

Deno.test("A cached configuration value is not served after the stored value changed", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    await using data = await openDataLayer(dir, { passphrase: PW });
    const cached = data.cache!.namespace("config");
    const read = () =>
      cached.getOrSet("ui/theme", () => data.config.get("ui", "theme"));
    assert.equal(await read(), "dark");
    assert.equal(await cached.get("ui/theme"), "dark");
    await data.config.set("ui", "theme", "light");
    assert.equal(await cached.get("ui/theme"), undefined);
    assert.equal(await read(), "light");
  });
});

Deno.test("Logs published on the bus are in the store after close", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    {
      await using data = await openDataLayer(dir, { passphrase: PW });
      for (let i = 0; i < 500; i++) {
        data.bus.publish("log.info", { module: "test", message: `event ${i}` });
      }
    }
    await using data = await openDataLayer(dir, { passphrase: PW });
    assert.equal(
      (await data.logs.queryLogs({ module: "test", limit: 1000 })).records
        .length,
      500,
    );
  });
});

Deno.test("rotateKey() re-encrypts under a new data key; everything still reads", async () => {
  await withDir(async (dir) => {
    const chatId = await seed(dir);
    const oldId = (await readKeyFileInfo(`${dir}/key.json`)).keyId;
    {
      await using data = await openDataLayer(dir, { passphrase: PW });
      const newId = await data.rotateKey(PW);
      assert.notEqual(newId, oldId);
      assert.equal(data.key.keyId, newId);
      assert.equal(
        (await data.conversations.listMessages(chatId)).items.length,
        3,
      );
    }
    const info = await readKeyFileInfo(`${dir}/key.json`);
    assert.notEqual(info.keyId, oldId);
    assert.equal(info.pendingKeyId, undefined);
    assert.deepEqual((await messages(dir, chatId)).length, 3);
  });
});

Deno.test("An interrupted key rotation leaves a folder that opens and loses nothing", async (t) => {
  await t.step(
    "crash after the key file got its pending key, before rekey",
    async () => {
      await withDir(async (dir) => {
        const chatId = await seed(dir);
        const oldId = (await readKeyFileInfo(`${dir}/key.json`)).keyId;
        await beginKeyRotation(`${dir}/key.json`, PW);
        assert.equal((await messages(dir, chatId)).length, 3);
        await using data = await openDataLayer(dir, { passphrase: PW });
        assert.equal(data.key.keyId, oldId);
        const pending = (await readKeyFileInfo(`${dir}/key.json`)).pendingKeyId;
        assert.equal(await data.rotateKey(PW), pending);
      });
    },
  );
  await t.step(
    "crash after the database was rekeyed, before the key file was completed",
    async () => {
      await withDir(async (dir) => {
        const chatId = await seed(dir);
        const { pending } = await beginKeyRotation(`${dir}/key.json`, PW);
        {
          await using data = await openDataLayer(dir, { passphrase: PW });
          await data.storage.rekey(pending!, {
            sealedColumns: CORE_SEALED_COLUMNS,
          });
        }
        assert.deepEqual(await messages(dir, chatId), [
          "I like green tea",
          "Sencha, mostly",
          "🍵 e\u0301",
        ]);
        const info = await readKeyFileInfo(`${dir}/key.json`);
        assert.equal(info.keyId, pending!.keyId);
        assert.equal(info.pendingKeyId, undefined);
      });
    },
  );
});
