import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { fileURLToPath } from "node:url";
import { type DataLayer, openDataLayer } from "../mod.ts";
import { beginKeyRotation, readKeyFileInfo } from "../crypto/mod.ts";

const kdf = { memoryKiB: 19456, iterations: 2 } as const;
const PW = "a long test passphrase";

/**
 * Hashes the files that hold data. SQLite's side files of a closed
 * connection are housekeeping, not data: `-shm` (an index rebuilt at open)
 * and an empty `-wal` (close checkpoints it to zero bytes) are deleted when
 * npm:libsql finally releases the connection, which happens when its
 * statements are garbage-collected, at any time. So they are skipped, and a
 * file that vanishes while listing counts as absent.
 */
async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || e.name.endsWith("-shm")) continue;
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(`${dir}/${e.name}`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    if (e.name.endsWith("-wal") && bytes.length === 0) continue;
    const d = await crypto.subtle.digest("SHA-256", bytes);
    out[e.name] = [...new Uint8Array(d)].map((b) => b.toString(16)).join("");
  }
  return out;
}

const CONTENTS = ["I like green tea", "Sencha, mostly", "🍵 e\u0301"];

/** A user with one conversation of three messages; returns the conversation id. */
async function seedInto(data: DataLayer): Promise<string> {
  const user = await data.users.createUser({ profile: { name: "Ada" } });
  const chat = await data.conversations.createConversation({
    userId: user.id,
    title: "Tea",
  });
  for (const content of CONTENTS) {
    await data.conversations.appendMessage(chat.id, { role: "user", content });
  }
  await data.config.set("ui", "theme", "dark");
  return chat.id;
}

async function seed(dir: string): Promise<string> {
  await using data = await openDataLayer(dir, {
    passphrase: PW,
    create: true,
    kdf,
  });
  return await seedInto(data);
}

/** Runs the CLI in a fresh process, as a user would. */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-ffi",
      "--allow-sys",
      fileURLToPath(new URL("../cli/main.ts", import.meta.url)),
      ...args,
    ],
    env: { AICO_DATA_PASSPHRASE: PW, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return { code: out.code, out: text };
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
    // The one addition: the failed unlock waits in audit-pending.jsonl (a
    // time and a reason code) for the next successful open's audit trail.
    const after = await hashTree(dir);
    const pending = await Deno.readTextFile(`${dir}/audit-pending.jsonl`);
    assert.match(pending, /^\{"at":\d+,"reason":"WRONG_KEY"\}\n$/);
    delete after["audit-pending.jsonl"];
    assert.deepEqual(after, before);
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

Deno.test("openDataLayer() never makes a new key beside a database whose key file is gone", async () => {
  await withDir(async (dir) => {
    await seed(dir);
    await Deno.rename(`${dir}/key.json`, `${dir}/key.json.lost`);
    const before = await hashTree(dir);
    await assert.rejects(
      openDataLayer(dir, { passphrase: PW, create: true, kdf }),
      {
        code: "NOT_FOUND",
      },
    );
    assert.deepEqual(await hashTree(dir), before);
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

// npm:libsql releases a closed connection only when its statements are
// garbage-collected, and PRAGMA rekey needs the only connection to the file:
// each rotation below runs on the first handle of its file in this process,
// or in a fresh process (the CLI), as documented on Storage.rekey().
Deno.test("rotateKey() re-encrypts under a new data key; everything still reads", async () => {
  await withDir(async (dir) => {
    let chatId: string;
    let newId: string;
    {
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        create: true,
        kdf,
      });
      chatId = await seedInto(data);
      const oldId = data.key.keyId;
      newId = await data.rotateKey(PW);
      assert.notEqual(newId, oldId);
      assert.equal(data.key.keyId, newId);
      assert.deepEqual(
        (await data.conversations.listMessages(chatId)).items.map((m) =>
          m.content
        ),
        CONTENTS,
      );
    }
    const info = await readKeyFileInfo(`${dir}/key.json`);
    assert.equal(info.keyId, newId);
    assert.equal(info.pendingKeyId, undefined);
    assert.deepEqual(await messages(dir, chatId), CONTENTS);
  });
});

/** Seeds a folder through the CLI in fresh processes; returns the conversation id. */
async function seedViaCli(dir: string): Promise<string> {
  assert.equal((await cli(["init", "--dir", dir])).code, 0);
  const lines = CONTENTS.map((content) =>
    JSON.stringify({ conversation: "tea", role: "user", content })
  );
  await Deno.writeTextFile(`${dir}/in.jsonl`, lines.join("\n"));
  assert.equal(
    (await cli(["import", "--dir", dir, `${dir}/in.jsonl`])).code,
    0,
  );
  return "tea";
}

Deno.test("aico-data rotate-key rotates a folder in a fresh process", async () => {
  await withDir(async (dir) => {
    const chatId = await seedViaCli(dir);
    const oldId = (await readKeyFileInfo(`${dir}/key.json`)).keyId;
    const r = await cli(["rotate-key", "--dir", dir]);
    assert.equal(r.code, 0, r.out);
    const info = await readKeyFileInfo(`${dir}/key.json`);
    assert.notEqual(info.keyId, oldId);
    assert.match(r.out, new RegExp(info.keyId));
    assert.deepEqual(await messages(dir, chatId), CONTENTS);
  });
});

Deno.test("An interrupted key rotation leaves a folder that opens and loses nothing", async (t) => {
  await t.step(
    "crash after the key file got its pending key, before rekey",
    async () => {
      await withDir(async (dir) => {
        const chatId = await seedViaCli(dir);
        const oldId = (await readKeyFileInfo(`${dir}/key.json`)).keyId;
        const { pending } = await beginKeyRotation(`${dir}/key.json`, PW);
        // It opens under the old key, rotation pending, nothing lost.
        const status = await cli(["status", "--dir", dir]);
        assert.equal(status.code, 0, status.out);
        assert.match(status.out, new RegExp(`key\\s+${oldId}`));
        assert.match(
          status.out,
          new RegExp(`rotation\\s+pending to ${pending!.keyId}`),
        );
        assert.match(status.out, /conversations 1\n/);
        assert.equal(
          (await readKeyFileInfo(`${dir}/key.json`)).pendingKeyId,
          pending!.keyId,
        );
        // The next rotation resumes with the same pending key.
        const rotated = await cli(["rotate-key", "--dir", dir]);
        assert.equal(rotated.code, 0, rotated.out);
        assert.equal(
          (await readKeyFileInfo(`${dir}/key.json`)).keyId,
          pending!.keyId,
        );
        assert.deepEqual(await messages(dir, chatId), CONTENTS);
      });
    },
  );
  await t.step(
    "crash after the database was rekeyed, before the key file was completed",
    async () => {
      await withDir(async (dir) => {
        let chatId: string;
        let pendingId: string;
        {
          await using data = await openDataLayer(dir, {
            passphrase: PW,
            create: true,
            kdf,
          });
          chatId = await seedInto(data);
          const { pending } = await beginKeyRotation(`${dir}/key.json`, PW);
          pendingId = pending!.keyId;
          await data.storage.rekey(pending!, {
            sealedColumns: data.registry.sealedColumns,
          });
        }
        assert.deepEqual(await messages(dir, chatId), CONTENTS);
        const info = await readKeyFileInfo(`${dir}/key.json`);
        assert.equal(info.keyId, pendingId);
        assert.equal(info.pendingKeyId, undefined);
      });
    },
  );
});
