// DataLayer.exportData() / importExport(): the export a user takes away and
// its round trip (byte-exact), sealed by default, the wrong-key, truncation
// and tamper cases, the audit events, and inventory().
import assert from "node:assert/strict";
import { countOccurrences, rejectsWith, withDir } from "./_helpers.ts";
import { LONG, MARKER, open, seed, snapshot } from "./_export_fixture.ts";

Deno.test("exportData() round trip: sealed, into new folders by the key file and by the passphrase, byte-exact", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw-a", true);
    await seed(a);
    const before = await snapshot(a);
    const sealed = `${tmp}/all.sealed`;
    const report = await a.exportData(sealed);
    assert.equal(report.sealed, true);
    assert.equal(report.users, 2);
    assert.equal(report.conversations, 4);
    assert.equal(report.messages, 7);
    assert.equal(report.config, 6);
    assert.equal(report.plugins, 2);
    assert.equal(report.pluginState, 2);
    const bytes = await Deno.readFile(sealed);
    assert.equal(report.bytes, bytes.length);
    assert.equal(
      countOccurrences(bytes, new TextEncoder().encode(MARKER)),
      0,
      "the sealed export holds plaintext",
    );
    assert.ok(
      new TextDecoder().decode(bytes).split("\n").length > 5,
      "the long message spans several chunks",
    );
    assert.equal((await Deno.stat(sealed)).mode! & 0o777, 0o600);

    await t(
      "by the passphrase alone (embedded key file), another passphrase on the new folder",
      async () => {
        await using b = await open(`${tmp}/b`, "pw-b", true);
        const r = await b.importExport(sealed, { passphrase: "pw-a" });
        assert.equal(r.messagesAdded, 7);
        assert.equal(r.usersAdded, 2);
        assert.deepEqual(await snapshot(b), before);
      },
    );
    await t(
      "by the key file, export without the embedded key file",
      async () => {
        const bare = `${tmp}/bare.sealed`;
        await a.exportData(bare, { embedKeyFile: false });
        assert.ok(!(await Deno.readTextFile(bare)).includes("wrappedKey"));
        await using c = await open(`${tmp}/c`, "pw-c", true);
        await rejectsWith(
          c.importExport(bare, { passphrase: "pw-a" }),
          "WRONG_KEY",
        );
        await c.importExport(bare, {
          keyFile: `${tmp}/a/key.json`,
          passphrase: "pw-a",
        });
        assert.deepEqual(await snapshot(c), before);
      },
    );
    await t("plaintext, only when asked", async () => {
      const plain = `${tmp}/plain.json`;
      const r = await a.exportData(plain, { plaintext: true });
      assert.equal(r.sealed, false);
      const doc = JSON.parse(await Deno.readTextFile(plain));
      assert.equal(doc.format, "aico-data-export");
      assert.equal(doc.version, 2);
      assert.ok(!JSON.stringify(doc.users).includes("hash"));
      await using d = await open(`${tmp}/d`, "pw-d", true);
      await d.importExport(plain);
      assert.deepEqual(await snapshot(d), before);
      // A second import adds nothing.
      const again = await d.importExport(plain);
      assert.equal(
        again.messagesAdded + again.usersAdded + again.configAdded,
        0,
      );
      assert.deepEqual(await snapshot(d), before);
    });
    await t("into the same folder after deleting a conversation", async () => {
      assert.equal(await a.conversations.deleteConversation("c1"), true);
      const r = await a.importExport(sealed);
      assert.equal(r.conversationsAdded, 1);
      assert.equal(r.messagesAdded, 4);
      assert.deepEqual(await snapshot(a), before);
    });
  });
});

// Steps without a TestContext at hand: run in order, name in the failure.
async function t(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw new Error(`step "${name}" failed`, { cause: err });
  }
}

Deno.test("exportData() scopes: one user (profile and conversations) and one conversation", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw", true);
    await seed(a);
    const u = await a.exportData(`${tmp}/ada.json`, {
      scope: { user: "ada" },
      plaintext: true,
    });
    assert.deepEqual([u.scope, u.users, u.conversations, u.config], [
      "user",
      1,
      2,
      0,
    ]);
    const doc = JSON.parse(await Deno.readTextFile(`${tmp}/ada.json`));
    assert.deepEqual(
      doc.conversations.map((c: { id: string }) => c.id).sort(),
      ["c1", "imp1"],
    );
    assert.deepEqual(
      doc.conversations.find((c: { id: string }) => c.id === "imp1").messages
        .map((m: { sourceKey: string | null }) => m.sourceKey !== null),
      [true, true],
    );
    const c = await a.exportData(`${tmp}/c3.json`, {
      scope: { conversation: "c3" },
    });
    assert.deepEqual([c.users, c.conversations, c.messages], [0, 1, 1]);
    await rejectsWith(
      a.exportData(`${tmp}/none.json`, { scope: { conversation: "nope" } }),
      "NOT_FOUND",
    );
    await assert.rejects(Deno.stat(`${tmp}/none.json`), Deno.errors.NotFound);
    await rejectsWith(a.exportData(`${tmp}/c3.json`), "ALREADY_EXISTS");
    await rejectsWith(
      a.exportData(`${tmp}/nobody.json`, { scope: { user: "nobody" } }),
      "NOT_FOUND",
    );
    await assert.rejects(Deno.stat(`${tmp}/nobody.json`), Deno.errors.NotFound);
    // An aborted export leaves no file behind.
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await assert.rejects(
      a.exportData(`${tmp}/aborted.json`, { signal: ac.signal }),
      /stop/,
    );
    await assert.rejects(
      Deno.stat(`${tmp}/aborted.json`),
      Deno.errors.NotFound,
    );
    assert.equal(
      (await a.audit.list({ kind: "export" })).length,
      2,
      "only the exports that were written are audited",
    );
    await rejectsWith(
      a.exportData(`${tmp}/x.json`, { format: "pdf" as "json" }),
      "INVALID_INPUT",
    );
    // Markdown is for reading: sealed by default, refused by import.
    const md = await a.exportData(`${tmp}/all.md`, { format: "markdown" });
    assert.equal(md.sealed, true);
    assert.ok(!(await Deno.readTextFile(`${tmp}/all.md`)).includes(MARKER));
    await rejectsWith(a.importExport(`${tmp}/all.md`), "IMPORT_INVALID");
    await a.exportData(`${tmp}/plain.md`, {
      format: "markdown",
      plaintext: true,
    });
    const text = await Deno.readTextFile(`${tmp}/plain.md`);
    assert.match(text, /# Tea ☕[\s\S]*I like green tea/);
  });
});

Deno.test("a plaintext export is never written without plaintext: true", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw", true);
    await seed(a);
    const marker = new TextEncoder().encode(MARKER);
    const options = [
      {},
      { plaintext: false },
      { format: "markdown" as const },
      { scope: { conversation: "c1" } },
    ];
    for (const [i, o] of options.entries()) {
      const f = `${tmp}/e${i}`;
      await a.exportData(f, o);
      assert.equal(
        countOccurrences(await Deno.readFile(f), marker),
        0,
        `option set ${i}`,
      );
      assert.match(
        await Deno.readTextFile(f),
        /^\{"format":"aico-data-export-sealed","version":2,/,
      );
    }
    // A stream target gets the same sealed bytes.
    const chunks: Uint8Array[] = [];
    await a.exportData(
      new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    );
    const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) all.set(c, (at += c.length) - c.length);
    assert.equal(countOccurrences(all, marker), 0);
    await rejectsWith(
      a.exportData(`${tmp}/bad`, { plaintext: "yes" as unknown as boolean }),
      "INVALID_INPUT",
    );
  });
});

Deno.test("a sealed export opened with a wrong passphrase or key gives WRONG_KEY", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw-a", true);
    await seed(a);
    await a.exportData(`${tmp}/s`);
    await a.exportData(`${tmp}/bare`, { embedKeyFile: false });
    await using b = await open(`${tmp}/b`, "pw-b", true);
    await rejectsWith(
      b.importExport(`${tmp}/s`, { passphrase: "wrong" }),
      "WRONG_KEY",
    );
    await rejectsWith(b.importExport(`${tmp}/s`), "WRONG_KEY");
    await rejectsWith(
      b.importExport(`${tmp}/bare`, { passphrase: "pw-a" }),
      "WRONG_KEY",
    );
    // Another folder's key file, even with its right passphrase.
    await rejectsWith(
      b.importExport(`${tmp}/bare`, {
        keyFile: `${tmp}/b/key.json`,
        passphrase: "pw-b",
      }),
      "WRONG_KEY",
    );
    await rejectsWith(
      b.importExport(`${tmp}/bare`, {
        keyFile: `${tmp}/a/key.json`,
        passphrase: "nope",
      }),
      "WRONG_KEY",
    );
    assert.equal((await b.conversations.listConversations()).items.length, 0);
    assert.equal(
      (await b.audit.list({ kind: "restore" })).length,
      0,
      "a refused import is no restore",
    );
  });
});

Deno.test("a sealed export made before a key rotation opens with the passphrase", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw-a", true);
    await seed(a);
    const before = await snapshot(a);
    await a.exportData(`${tmp}/s`);
    await a.rotateKey("pw-a");
    assert.equal(await a.conversations.deleteConversation("c1"), true);
    // The folder's key changed: the embedded key file (the old key) opens it.
    await rejectsWith(a.importExport(`${tmp}/s`), "WRONG_KEY");
    await a.importExport(`${tmp}/s`, { passphrase: "pw-a" });
    assert.deepEqual(await snapshot(a), before);
  });
});

Deno.test("a truncated or tampered sealed export gives a typed error and imports nothing", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw-a", true);
    await seed(a);
    const file = `${tmp}/s`;
    await a.exportData(file);
    const text = await Deno.readTextFile(file);
    const lines = text.split("\n").slice(0, -1);
    assert.ok(lines.length >= 4, `${lines.length} lines`);
    const header = JSON.parse(lines[0]!);
    const flip = (line: string, at: number) => {
      const raw = Uint8Array.fromBase64(line);
      raw[(at + raw.length) % raw.length]! ^= 0x01;
      return raw.toBase64();
    };
    const cases: [string, string, string][] = [
      ["header only", lines[0]! + "\n", "IMPORT_INVALID"],
      [
        "no final chunk",
        lines.slice(0, -1).join("\n") + "\n",
        "IMPORT_INVALID",
      ],
      [
        "cut inside a line",
        text.slice(0, Math.floor(text.length / 2)),
        "IMPORT_INVALID",
      ],
      ["cut inside the header", text.slice(0, 40), "IMPORT_INVALID"],
      [
        "chunks swapped",
        [lines[0], lines[2], lines[1], ...lines.slice(3)].join("\n") + "\n",
        "AUTH_FAILED",
      ],
      [
        "a chunk dropped",
        [lines[0], ...lines.slice(2)].join("\n") + "\n",
        "AUTH_FAILED",
      ],
      [
        "a byte flipped",
        [lines[0], flip(lines[1]!, 100), ...lines.slice(2)].join("\n") + "\n",
        "AUTH_FAILED",
      ],
      [
        "a tag byte flipped in the last chunk",
        [...lines.slice(0, -1), flip(lines.at(-1)!, -1)].join("\n") + "\n",
        "AUTH_FAILED",
      ],
      [
        "export id changed",
        [
          JSON.stringify({ ...header, exportId: "0".repeat(32) }),
          ...lines.slice(1),
        ].join("\n") + "\n",
        "AUTH_FAILED",
      ],
      [
        "content type changed",
        [
          JSON.stringify({ ...header, contentType: "text/markdown" }),
          ...lines.slice(1),
        ].join("\n") + "\n",
        "IMPORT_INVALID",
      ],
      [
        "not base64",
        [lines[0], "!!!", ...lines.slice(2)].join("\n") + "\n",
        "IMPORT_INVALID",
      ],
    ];
    await using b = await open(`${tmp}/b`, "pw-b", true);
    for (const [name, body, code] of cases) {
      const f = `${tmp}/case`;
      await Deno.writeTextFile(f, body);
      await assert.rejects(
        b.importExport(f, { passphrase: "pw-a" }),
        (err: { code?: string }) => {
          assert.equal(err.code, code, name);
          return true;
        },
      );
      await assert.rejects(
        a.importExport(f),
        (err: { code?: string }) => {
          assert.equal(err.code, code, `${name} (same folder)`);
          return true;
        },
      );
    }
    // Cut anywhere (about 100 places): a typed error every time, and the
    // folder keeps exactly what it had (c1 deleted: an import that wrote
    // anything would bring it back).
    assert.equal(await a.conversations.deleteConversation("c1"), true);
    const had = await snapshot(a);
    const step = Math.floor(text.length / 97);
    for (let cut = 1; cut < text.length; cut += step) {
      await Deno.writeTextFile(`${tmp}/cut`, text.slice(0, cut));
      await assert.rejects(
        a.importExport(`${tmp}/cut`), // this folder's key: no Argon2id per try
        (err: { code?: string }) => {
          assert.ok(
            err.code === "IMPORT_INVALID" || err.code === "AUTH_FAILED",
            `cut at ${cut}: ${String(err)}`,
          );
          return true;
        },
      );
    }
    assert.deepEqual(await snapshot(a), had);
    assert.equal((await b.conversations.listConversations()).items.length, 0);
    assert.equal(
      Number(
        (await b.storage.execute("SELECT COUNT(*) AS n FROM users")).rows[0]!.n,
      ),
      0,
    );
    assert.equal(
      Number(
        (await b.storage.execute("SELECT COUNT(*) AS n FROM config")).rows[0]!
          .n,
      ),
      0,
    );
    // A malformed plaintext document names its field, stores nothing.
    const doc = JSON.parse(
      new TextDecoder().decode(
        await Deno.readFile(`${tmp}/plain`).catch(async () => {
          await a.exportData(`${tmp}/plain`, { plaintext: true });
          return await Deno.readFile(`${tmp}/plain`);
        }),
      ),
    );
    doc.conversations.at(-1).messages[0].role = "robot";
    await Deno.writeTextFile(`${tmp}/bad.json`, JSON.stringify(doc));
    await rejectsWith(b.importExport(`${tmp}/bad.json`), "IMPORT_INVALID");
    // A value the store refuses (a malformed config key, late in the
    // document) is IMPORT_INVALID too, and rolls back what came before it.
    const doc2 = JSON.parse(await Deno.readTextFile(`${tmp}/plain`));
    doc2.config.at(-1).key = "bad key!";
    await Deno.writeTextFile(`${tmp}/bad2.json`, JSON.stringify(doc2));
    await rejectsWith(b.importExport(`${tmp}/bad2.json`), "IMPORT_INVALID");
    doc2.config.at(-1).key = "fine";
    doc2.plugins[0].name = "Bad-Name";
    await Deno.writeTextFile(`${tmp}/bad3.json`, JSON.stringify(doc2));
    await rejectsWith(b.importExport(`${tmp}/bad3.json`), "IMPORT_INVALID");
    assert.equal(
      Number(
        (await b.storage.execute("SELECT COUNT(*) AS n FROM users")).rows[0]!.n,
      ),
      0,
    );
  });
});

Deno.test("export and restore enter the audit trail with counts, never content", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw-a", true);
    await seed(a);
    await a.exportData(`${tmp}/s`);
    await a.exportData(`${tmp}/p.md`, {
      plaintext: true,
      format: "markdown",
      scope: { conversation: "c1" },
    });
    const exports = await a.audit.list({ kind: "export" });
    assert.equal(exports.length, 2);
    assert.deepEqual(
      { ...exports[0]!.details },
      {
        scope: "all",
        format: "json",
        sealed: true,
        keyId: a.key.keyId,
        users: 2,
        conversations: 4,
        messages: 7,
        config: 6,
        plugins: 2,
        pluginState: 2,
        bytes: (await Deno.stat(`${tmp}/s`)).size,
      },
    );
    assert.equal(exports[1]!.details.sealed, false);
    assert.equal(exports[1]!.details.scope, "conversation");
    assert.equal(exports[1]!.details.format, "markdown");
    await using b = await open(`${tmp}/b`, "pw-b", true);
    await b.importExport(`${tmp}/s`, { passphrase: "pw-a" });
    const restores = await b.audit.list({ kind: "restore" });
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.details.source, "export");
    assert.equal(restores[0]!.details.messages, 7);
    for (const e of [...await a.audit.list(), ...await b.audit.list()]) {
      const s = JSON.stringify(e);
      for (
        const needle of [
          MARKER,
          "green tea",
          "Ada 🧮",
          "Tea ☕",
          "pw-a",
          "dark",
        ]
      ) {
        assert.ok(!s.includes(needle), `${e.kind} holds "${needle}"`);
      }
    }
    assert.equal((await a.verify()).ok, true);
    assert.equal((await b.verify()).ok, true);
  });
});

Deno.test("inventory() reports real counts, bytes, times, sealed columns and files", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw", true);
    await seed(a);
    await a.search("green tea"); // the keyword index takes the messages
    const inv = await a.inventory();
    const libsql = inv.stores.find((s) => s.name === "libsql")!;
    const table = (n: string) => libsql.tables!.find((t) => t.name === n)!;
    assert.equal(table("users").rows, 2);
    assert.equal(table("conversations").rows, 4);
    assert.equal(table("messages").rows, 7);
    assert.equal(table("config").rows, 6);
    assert.equal(table("plugin_state").rows, 2);
    assert.equal(table("messages").oldest, 1_500_000_000_001);
    assert.equal(table("messages").newest, 1_700_000_001_000);
    assert.equal(table("messages").timeColumn, "created_at");
    assert.deepEqual(table("messages").sealedColumns, ["content"]);
    assert.deepEqual(table("users").sealedColumns, ["profile"]);
    assert.deepEqual(table("audit_events").sealedColumns, ["body"]);
    assert.equal(inv.dbstat, true);
    assert.ok(
      table("messages").bytes! > LONG.length,
      "the long message's pages",
    );
    assert.equal(table("memory_fts").textCopy, true);
    // Every message with text is indexed (the empty one has no terms).
    assert.equal(table("memory_fts").rows, 6);
    assert.equal(table("memory_items").rows, 6);
    assert.ok(libsql.textCopies);
    assert.equal(table("vector_segments").vectors, true);
    assert.ok(inv.stores.find((s) => s.name === "cache")!.textCopies);
    assert.equal(
      inv.stores.find((s) => s.name === "analytics")!.location,
      "none",
    );
    const paths = inv.files.map((f) => f.path);
    for (const p of ["data.db", "key.json", "data.db.aico"]) {
      assert.ok(paths.includes(p), p);
    }
    assert.ok(paths.some((p) => p.startsWith("cache/")));
    const db = inv.files.find((f) => f.path === "data.db")!;
    assert.equal(db.bytes, (await Deno.stat(`${tmp}/a/data.db`)).size);
    assert.equal(inv.totalBytes, inv.files.reduce((s, f) => s + f.bytes, 0));
    // After more inserts the counts follow.
    await a.conversations.appendMessage("c3", {
      role: "user",
      content: "one more",
    });
    const again = await a.inventory();
    assert.equal(
      again.stores[0]!.tables!.find((t) => t.name === "messages")!.rows,
      8,
    );
    assert.ok(!JSON.stringify(again).includes(MARKER));
  });
});

Deno.test("round trip through erase: export, erase (a conversation, then everything), import the export: everything back, byte-exact", async () => {
  await withDir(async (tmp) => {
    await using a = await open(`${tmp}/a`, "pw-a", true);
    await seed(a);
    const before = await snapshot(a);
    const sealed = `${tmp}/all.sealed`;
    await a.exportData(sealed);

    const one = await a.erase({ conversation: "c1" });
    assert.equal(one.messages, 4);
    assert.notDeepEqual(await snapshot(a), before);
    const r1 = await a.importExport(sealed);
    assert.equal(r1.conversationsAdded, 1);
    assert.equal(r1.messagesAdded, 4);
    assert.deepEqual(await snapshot(a), before);
    assert.equal(
      (await a.search("green tea", { mode: "keyword" })).length > 0,
      true,
      "the restored messages are searchable again",
    );

    const all = await a.erase({ all: true });
    assert.equal(all.messages, 7);
    assert.equal(
      (await a.conversations.listConversations()).items.length,
      0,
    );
    const r2 = await a.importExport(sealed, { passphrase: "pw-a" });
    assert.equal(r2.messagesAdded, 7);
    assert.equal(r2.usersAdded, 2);
    assert.deepEqual(await snapshot(a), before);
    assert.equal((await a.verify()).ok, true);
  });
});
