// erase() and retention against the real components: libSQL (its decrypted
// pages read through sqlite_dbpage, free pages included), the FTS5 index,
// the embedded vector store with the real USE-lite embedder, DuckDB
// analytics, the LMDB cache, the change feed, and the files of the folder.
import assert from "node:assert/strict";
import { type DataLayer, openDataLayer } from "../mod.ts";
import { countOccurrences, rejectsWith, withDir } from "./_helpers.ts";
import { scanFor } from "./_scan.ts";

const kdf = { memoryKiB: 19456, iterations: 2 };
const PW = "a long passphrase";

/** A marker FTS5 keeps as one token (letters and digits only). */
function newMarker(): string {
  return `zq${crypto.randomUUID().replaceAll("-", "")}`;
}

/**
 * Occurrences of each needle in every decrypted page of the database
 * (`sqlite_dbpage`: live, free and overflow pages as the pager sees them).
 */
async function scanPages(
  data: DataLayer,
  needles: readonly Uint8Array[],
): Promise<number[]> {
  const hits = needles.map(() => 0);
  const pages = Number(
    (await data.storage.execute("SELECT COUNT(*) AS n FROM sqlite_dbpage"))
      .rows[0]?.n,
  );
  for (let p = 1; p <= pages; p += 256) {
    const rs = await data.storage.execute({
      sql: "SELECT data FROM sqlite_dbpage WHERE pgno >= ? AND pgno < ?",
      args: [p, p + 256],
    });
    for (const row of rs.rows) {
      const page = row.data as Uint8Array;
      needles.forEach((n, i) => hits[i]! += countOccurrences(page, n));
    }
  }
  return hits;
}

/** The pages of `after` that differ from `before` (4 KiB pages, metas excluded). */
function changedPages(before: Uint8Array, after: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 2 * 4096; at + 4096 <= after.length; at += 4096) {
    const a = after.subarray(at, at + 4096);
    const b = before.subarray(at, at + 4096);
    if (b.length !== a.length || a.some((x, i) => x !== b[i])) {
      // 64 bytes from the middle of the page: its ciphertext, not padding.
      const slice = a.slice(2048, 2112);
      if (slice.some((x) => x !== 0)) out.push(slice);
    }
  }
  return out;
}

async function readOr(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch {
    return new Uint8Array();
  }
}

async function walSize(dir: string): Promise<number> {
  try {
    return (await Deno.stat(`${dir}/data.db-wal`)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

Deno.test("erase({ conversation }) leaves the marker and its ciphertexts nowhere in the folder, and no read returns it", async () => {
  await withDir(async (dir) => {
    const marker = newMarker();
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: { useLite: { workers: 0 }, background: false },
    });
    const c = data.conversations;
    const secret = await c.createConversation({ title: "private" });
    const keep = await c.createConversation({ title: "keep" });
    await c.appendMessages(
      secret.id,
      Array.from({ length: 20 }, (_, i) => ({
        role: i % 2 ? "assistant" as const : "user" as const,
        content: `note ${i} ${marker} about the blue kettle`,
      })),
    );
    await c.appendMessages(keep.id, [
      { role: "user", content: "we planted tulips in the garden" },
    ]);
    // Every store holds a copy: keyword index, vectors, analytics (with
    // text), the cache (read through).
    assert.equal(
      (await data.search(marker, { mode: "keyword" })).length > 0,
      true,
    );
    await data.memory!.indexPending();
    assert.equal((await data.memory!.status()).embedded >= 21, true);
    const analytics = data.analytics!;
    await analytics.refresh({ text: true });
    const counted = async () =>
      Number(
        (await analytics.query(
          "SELECT count(*) AS n FROM messages WHERE conversation_id = ?",
          [secret.id],
        )).rows[0]?.n,
      );
    assert.equal(await counted(), 20);
    assert.ok((await analytics.topTerms(50)).some((t) => t.term === marker));
    const lmdbBefore = await readOr(`${dir}/cache/cache.mdb`);
    assert.equal((await data.recentMessages(secret.id, 10)).length, 10);
    const lmdbAfter = await readOr(`${dir}/cache/cache.mdb`);
    const lmdbPages = changedPages(lmdbBefore, lmdbAfter);
    assert.ok(lmdbPages.length > 0, "the cached entry changed LMDB pages");
    assert.ok(
      data.cache!.namespace("recent").get(`${secret.id}/10`) !== undefined,
    );
    const sealed = (await data.storage.execute({
      sql: "SELECT content FROM messages WHERE conversation_id = ?",
      args: [secret.id],
    })).rows.map((r) => new Uint8Array(r.content as Uint8Array));
    assert.equal(sealed.length, 20);
    const enc = new TextEncoder();
    // FTS5 prefix-compresses terms: the tail of the token is stored as is.
    const token = enc.encode(marker.slice(6));
    const before = await scanPages(data, [token, ...sealed]);
    assert.ok(before[0]! > 0, "the page scan sees the keyword index (control)");
    assert.ok(before.slice(1).every((n) => n > 0), "and every ciphertext");

    const report = await data.erase({ conversation: secret.id });
    assert.equal(report.kind, "conversation");
    assert.equal(report.messages, 20);
    assert.equal(report.conversations, 1);
    assert.equal(report.checkpointed, true);
    assert.deepEqual(report.unreached, []);
    assert.equal(
      data.cache!.namespace("recent").get(`${secret.id}/10`),
      undefined,
    );

    // Nowhere in the decrypted pages, nor in any file (scanned before any
    // read refills the cache); the WAL is empty.
    const after = await scanPages(data, [token, ...sealed]);
    assert.deepEqual(after, after.map(() => 0));
    assert.equal(await walSize(dir), 0);
    const files = await scanFor(dir, [marker, token, ...sealed, ...lmdbPages]);
    assert.ok(files.files >= 3);
    assert.deepEqual(
      Object.values(files.hits),
      Object.values(files.hits).map(() => 0),
    );
    // No read returns it.
    assert.deepEqual(await data.search(marker, { mode: "keyword" }), []);
    const byMeaning = await data.search("the blue kettle", { k: 10 });
    assert.ok(byMeaning.every((h) => h.conversationId !== secret.id));
    assert.equal((await c.listMessages(secret.id)).items.length, 0);
    assert.deepEqual(await data.recentMessages(secret.id, 10), []);
    await rejectsWith(c.getConversation(secret.id), "NOT_FOUND");
    assert.deepEqual(
      (await c.listConversations()).items.map((x) => x.id),
      [keep.id],
    );
    assert.equal(await counted(), 0);
    assert.ok(!(await analytics.topTerms(50)).some((t) => t.term === marker));
    assert.equal(
      Number(
        (await data.storage.execute({
          sql:
            "SELECT COUNT(*) AS n FROM memory_items WHERE conversation_id = ?",
          args: [secret.id],
        })).rows[0]?.n,
      ),
      0,
    );
    // The other conversation is untouched.
    assert.equal((await data.search("tulips", { mode: "keyword" })).length, 1);
    assert.equal((await c.listMessages(keep.id)).items.length, 1);

    // The change feed keeps nothing about the erased rows.
    const events = (await data.storage.execute(
      "SELECT tbl, op, keys, scope FROM change_events",
    )).rows;
    assert.ok(
      events.every((e) =>
        e.scope !== secret.id && !String(e.keys).includes(secret.id)
      ),
    );
    // Audited with counts only.
    const audit = await data.audit.list({ kind: "erase" });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.details.scope, "conversation");
    assert.equal(audit[0]!.details.messages, 20);
    const trail = JSON.stringify(await data.audit.list({ limit: 1000 }));
    assert.ok(!trail.includes(secret.id) && !trail.includes(marker));
    assert.equal((await data.verify()).ok, true);
  }, "aico_erase_");
});

Deno.test("erase({ all: true }) removes every row of every store and keeps only the audit trail", async () => {
  await withDir(async (dir) => {
    const marker = newMarker();
    {
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        create: true,
        kdf,
        memory: { useLite: { workers: 0 }, background: false },
      });
      const user = await data.users.createUser({ profile: { name: marker } });
      await data.users.setCredential(user.id, "pin", "123456");
      const chat = await data.conversations.createConversation({
        userId: user.id,
        title: marker,
      });
      const loose = await data.conversations.createConversation();
      await data.conversations.appendMessages(chat.id, [
        { role: "user", content: `first ${marker}` },
        { role: "assistant", content: `second ${marker}` },
      ]);
      await data.conversations.appendMessages(loose.id, [
        { role: "user", content: `loose ${marker}` },
      ]);
      await data.config.set("ui", "name", marker);
      await data.config.set("ui", "token", marker, { secret: true });
      await data.logs.insertLog({
        level: "info",
        module: "test",
        message: `log line ${marker}`,
      });
      await data.changes.drain(); // the indexer took the appends
      assert.ok(await data.memory!.indexPending() >= 3);
      await data.analytics!.refresh({ text: true });
      assert.equal((await data.users.getUser(user.id)).profile.name, marker);
      await data.recentMessages(chat.id, 5);
      const sealed = (await data.storage.execute(
        "SELECT content FROM messages",
      )).rows.map((r) => new Uint8Array(r.content as Uint8Array));
      const token = new TextEncoder().encode(marker.slice(6));
      assert.ok((await scanPages(data, [token]))[0]! > 0);

      const report = await data.erase({ all: true });
      assert.equal(report.kind, "all");
      assert.equal(report.messages, 3);
      assert.equal(report.conversations, 2);
      assert.equal(report.users, 1);
      assert.equal(report.logs >= 1, true);
      assert.equal(report.settings, 2);
      assert.equal(report.checkpointed, true);
      // No keyring was given: said, not hidden.
      assert.equal(report.unreached.length, 1);
      assert.match(report.unreached[0]!, /keyring/);

      for (
        const t of [
          "messages",
          "conversations",
          "users",
          "user_credentials",
          "config",
          "logs",
          "memory_items",
          "message_gaps",
        ]
      ) {
        const n = Number(
          (await data.storage.execute(`SELECT COUNT(*) AS n FROM ${t}`))
            .rows[0]?.n,
        );
        assert.equal(n, 0, `${t} is empty`);
      }
      assert.deepEqual(await data.search(marker, { mode: "keyword" }), []);
      assert.equal(
        Number(
          (await data.analytics!.query("SELECT count(*) AS n FROM messages"))
            .rows[0]?.n,
        ),
        0,
      );
      assert.equal(
        Number(
          (await data.analytics!.query(
            "SELECT count(*) AS n FROM logs WHERE message LIKE ?",
            [`%${marker}%`],
          ))
            .rows[0]?.n,
        ),
        0,
      );
      await rejectsWith(data.users.getUser(user.id), "NOT_FOUND");
      assert.equal(await data.config.get("ui", "name"), undefined);
      assert.deepEqual(
        await scanPages(data, [token, ...sealed]),
        [0, ...sealed.map(() => 0)],
      );
      assert.equal(await walSize(dir), 0);
      const files = await scanFor(dir, [marker, token, ...sealed]);
      assert.deepEqual(
        Object.values(files.hits),
        Object.values(files.hits).map(() => 0),
      );
      // The trail stays whole and records the erase.
      assert.equal((await data.verify()).ok, true);
      const [erased] = await data.audit.list({ kind: "erase" });
      assert.equal(erased?.details.scope, "all");
      // The emptied store still works.
      const again = await data.conversations.createConversation();
      await data.conversations.appendMessage(again.id, {
        role: "user",
        content: "a fresh start",
      });
      assert.equal((await data.search("fresh", { mode: "keyword" })).length, 1);
    }
    // Reopened: still nothing of it.
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      analytics: false,
    });
    assert.deepEqual(await data.search(marker, { mode: "keyword" }), []);
    const files = await scanFor(dir, [marker]);
    assert.equal(files.hits[marker], 0);
  }, "aico_erase_all_");
});

Deno.test("erase({ message }) keeps listMessages' continuity check valid, and damage is still detected", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: { background: false },
      analytics: false,
    });
    const c = data.conversations;
    const chat = await c.createConversation();
    const marker = newMarker();
    await c.appendMessages(
      chat.id,
      Array.from({ length: 7 }, (_, i) => ({
        role: "user" as const,
        content: i === 2 ? `third ${marker}` : `message ${i + 1}`,
      })),
    );
    const third = (await c.listMessages(chat.id)).items[2]!;
    const last = (await c.listMessages(chat.id)).items[6]!;
    // Its neighbours' context rows may hold its text too.
    assert.ok((await data.search(marker, { mode: "keyword" })).length >= 1);
    assert.equal((await data.recentMessages(chat.id, 7)).length, 7);

    const report = await data.erase({ message: third.id });
    assert.equal(report.messages, 1);
    assert.equal(report.conversations, 0);
    // The last message too: the end of the run is a gap as well.
    assert.equal((await data.erase({ message: last.id })).messages, 1);
    assert.equal((await data.erase({ message: last.id })).messages, 0);

    const seqs = async (o: { order?: "asc" | "desc"; limit?: number }) => {
      const out: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await c.listMessages(chat.id, {
          ...o,
          ...(cursor === undefined ? {} : { cursor }),
        });
        out.push(...page.items.map((m) => m.seq));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return out;
    };
    assert.deepEqual(await seqs({}), [1, 2, 4, 5, 6]);
    assert.deepEqual(await seqs({ order: "desc" }), [6, 5, 4, 2, 1]);
    assert.deepEqual(await seqs({ limit: 2 }), [1, 2, 4, 5, 6]);
    assert.deepEqual(await seqs({ limit: 1, order: "desc" }), [6, 5, 4, 2, 1]);
    assert.deepEqual(
      (await data.recentMessages(chat.id, 3)).map((m) => m.seq),
      [4, 5, 6],
    );
    const conv = await c.getConversation(chat.id);
    assert.equal(conv.messageCount, 5);
    assert.equal(conv.lastSeq, 7);
    assert.deepEqual(await data.search(marker, { mode: "keyword" }), []);
    await rejectsWith(c.getMessage(third.id), "NOT_FOUND");
    // A new message continues after the erased position.
    const next = await c.appendMessage(chat.id, { role: "user", content: "8" });
    assert.equal(next.seq, 8);
    assert.deepEqual(await seqs({ limit: 3 }), [1, 2, 4, 5, 6, 8]);

    // A row that vanished without a recorded gap is still damage.
    await data.storage.execute({
      sql: "DELETE FROM messages WHERE conversation_id = ? AND seq = 5",
      args: [chat.id],
    });
    await rejectsWith(c.listMessages(chat.id), "CORRUPT_STORE");
    await rejectsWith(
      c.listMessages(chat.id, { order: "desc" }),
      "CORRUPT_STORE",
    );
    await rejectsWith(data.erase({ message: 0 }), "INVALID_INPUT");
    await rejectsWith(
      data.erase({ conversation: "a b" } as never),
      "INVALID_INPUT",
    );
    await rejectsWith(
      data.erase({ message: 1, user: "x" } as never),
      "INVALID_INPUT",
    );
    await rejectsWith(data.erase({ all: false } as never), "INVALID_INPUT");
  }, "aico_erase_msg_");
});

Deno.test("erase({ user }) removes the user, their conversations and credentials, and nothing else", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: { background: false },
      analytics: false,
    });
    const ada = await data.users.createUser({ profile: { name: "Ada" } });
    const bob = await data.users.createUser({ profile: { name: "Bob" } });
    await data.users.setCredential(ada.id, "pin", "123456");
    for (const u of [ada, bob]) {
      const chat = await data.conversations.createConversation({
        userId: u.id,
      });
      await data.conversations.appendMessages(chat.id, [
        { role: "user", content: `hello from ${u.profile.name}` },
      ]);
    }
    await data.users.getUser(ada.id); // cached
    const report = await data.erase({ user: ada.id });
    assert.deepEqual(
      [report.users, report.conversations, report.messages],
      [1, 1, 1],
    );
    await rejectsWith(data.users.getUser(ada.id), "NOT_FOUND");
    assert.deepEqual(await data.search("Ada", { mode: "keyword" }), []);
    assert.equal((await data.search("Bob", { mode: "keyword" })).length, 1);
    assert.equal(
      (await data.conversations.listConversations()).items.length,
      1,
    );
    assert.equal(
      (await data.erase({ user: ada.id })).users,
      0,
    );
    await data.close();
    await rejectsWith(data.erase({ user: bob.id }), "STORE_CLOSED");
  }, "aico_erase_user_");
});

Deno.test("retention erases old messages (per role) and old logs at open and on demand, with an injected clock", async () => {
  await withDir(async (dir) => {
    const DAY = 86_400_000;
    let clock = Date.UTC(2026, 0, 31);
    const now = () => clock;
    let chatId: string;
    {
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        create: true,
        kdf,
        memory: { background: false },
        analytics: false,
      });
      const chat = await data.conversations.createConversation();
      chatId = chat.id;
      await data.conversations.appendMessages(chat.id, [
        { role: "user", content: "old question", createdAt: clock - 40 * DAY },
        {
          role: "tool",
          content: "old tool output",
          createdAt: clock - 40 * DAY,
        },
        {
          role: "tool",
          content: "recent tool output",
          createdAt: clock - 2 * DAY,
        },
        { role: "user", content: "new question", createdAt: clock - DAY },
      ]);
      await data.logs.insertLogs([
        {
          level: "info",
          module: "t",
          message: "old log",
          ts: clock - 10 * DAY,
        },
        { level: "info", module: "t", message: "new log", ts: clock - DAY },
      ]);
    }
    const retention = {
      messages: { olderThanDays: 30, roles: ["tool" as const] },
      logs: { olderThanDays: 7 },
      now,
    };
    await rejectsWith(
      openDataLayer(dir, {
        passphrase: PW,
        retention: { messages: { olderThanDays: -1 } },
      }),
      "INVALID_INPUT",
    );
    await rejectsWith(
      openDataLayer(dir, {
        passphrase: PW,
        retention: {
          messages: { olderThanDays: 3, roles: ["robot" as never] },
        },
      }),
      "INVALID_INPUT",
    );
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      memory: { background: false },
      analytics: false,
      retention,
    });
    const contents = async () =>
      (await data.conversations.listMessages(chatId)).items.map((m) =>
        m.content
      );
    // At open: the old tool output (only tool messages are covered) and the old log.
    assert.deepEqual(await contents(), [
      "old question",
      "recent tool output",
      "new question",
    ]);
    const logs = async () =>
      (await data.logs.queryLogs({ module: "t" })).records.map((l) => l.message)
        .sort();
    assert.deepEqual(await logs(), ["new log"]);
    assert.deepEqual(
      await data.search("output", { mode: "keyword" }).then((h) =>
        h.map((x) => x.content)
      ),
      ["recent tool output"],
    );
    // Time passes: the next application takes what became old.
    clock += 29 * DAY;
    const report = await data.applyRetention();
    assert.equal(report.kind, "retention");
    assert.equal(report.messages, 1);
    assert.equal(report.logs, 1);
    assert.deepEqual(await contents(), ["old question", "new question"]);
    assert.deepEqual(await logs(), []);
    const audited = await data.audit.list({ kind: "retention" });
    assert.equal(audited.length, 2);
    assert.deepEqual(
      audited.map((e) => [e.details.messages, e.details.logs]),
      [[1, 1], [1, 1]],
    );
    // Nothing left: a third application erases nothing.
    assert.equal((await data.applyRetention()).messages, 0);
    // The schedule applies it again without being asked.
    await data.conversations.appendMessage(chatId, {
      role: "tool",
      content: "soon old",
      createdAt: clock,
    });
    await data.close();
    await using scheduled = await openDataLayer(dir, {
      passphrase: PW,
      memory: false,
      analytics: false,
      retention: { ...retention, intervalMinutes: 1 / 60 },
    });
    clock += 31 * DAY;
    const deadline = Date.now() + 20_000;
    while (
      (await scheduled.conversations.listMessages(chatId)).items.some((m) =>
        m.content === "soon old"
      )
    ) {
      assert.ok(Date.now() < deadline, "the schedule never ran");
      await new Promise((r) => setTimeout(r, 100));
    }
    // Open, two on demand and the third above, the next open, the
    // scheduled run, and this one (queued after the scheduled run).
    assert.equal((await scheduled.applyRetention()).messages, 0);
    assert.ok(
      (await scheduled.audit.list({ kind: "retention", limit: 1000 })).length >=
        6,
    );
  }, "aico_retention_");
});

Deno.test("a component's erased hook runs after every erase and reports what it could not reach", async () => {
  await withDir(async (dir) => {
    const seen: string[] = [];
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: false,
      analytics: false,
      cache: false,
      components: [{
        name: "mirror",
        schemas: [],
        open: () => Promise.resolve({ copies: 1 }),
        close: () => Promise.resolve(),
        erased(instance: { copies: number }, ctx, unreached) {
          // The rows are gone from the store when the hook runs.
          return ctx.storage.execute("SELECT COUNT(*) AS n FROM messages")
            .then((rs) => {
              seen.push(`messages=${rs.rows[0]?.n}`);
              unreached("a copy on the phone");
              return { copies: instance.copies - 1 };
            });
        },
      }],
    });
    const chat = await data.conversations.createConversation();
    await data.conversations.appendMessage(chat.id, {
      role: "user",
      content: "x",
    });
    const report = await data.erase({ conversation: chat.id });
    assert.deepEqual(seen, ["messages=0"]);
    assert.deepEqual(report.unreached, ["mirror: a copy on the phone"]);
    assert.deepEqual(data.component<{ copies: number }>("mirror"), {
      copies: 0,
    });
  }, "aico_erase_hook_");
});

Deno.test("erase() says when another handle keeps the cache open, and still erases the rows", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: false,
      analytics: false,
    });
    const { openCache } = await import("../cache/mod.ts");
    // A second handle on the same cache, as another process would hold it.
    await using other = await openCache({
      path: `${dir}/cache`,
      key: data.key,
    });
    const chat = await data.conversations.createConversation();
    await data.conversations.appendMessage(chat.id, {
      role: "user",
      content: "x",
    });
    await data.recentMessages(chat.id, 5);
    const report = await data.erase({ conversation: chat.id });
    assert.equal(report.messages, 1);
    assert.equal(report.unreached.length, 1);
    assert.match(report.unreached[0]!, /^cache: another process/);
    assert.equal(other.namespace("recent").get(`${chat.id}/5`), undefined);
    assert.deepEqual(await data.recentMessages(chat.id, 5), []);
  }, "aico_erase_shared_cache_");
});
