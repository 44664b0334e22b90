// Repository inputs are always bound parameters: hostile strings are stored
// verbatim and change nothing else; malformed input stores nothing.
import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import {
  createConfigRepository,
  createConversationRepository,
  createLogRepository,
  createPluginStateRepository,
  createUserService,
} from "../repositories/mod.ts";
import type { Storage } from "../storage/mod.ts";

const HOSTILE = [
  "'; DROP TABLE users; --",
  '"; DROP TABLE messages; --',
  "x' OR '1'='1",
  "1; DELETE FROM config",
  "?, ?, ?); DROP TABLE logs; --",
  ":name $name @name ?1",
  "') ; ATTACH DATABASE '/tmp/evil.db' AS evil; --",
  "\\'; --",
  "/* comment */ SELECT * FROM users",
  "nul\u0000inside",
  "😈 ünïcödé \u202e rtl",
];

async function schemaSnapshot(db: Storage): Promise<string> {
  const rs = await db.execute(
    "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
  );
  return JSON.stringify(rs.rows);
}

Deno.test("hostile strings are stored verbatim by every repository and harm nothing", async () => {
  await using store = await openTestStore();
  const db = store.storage;
  const before = await schemaSnapshot(db);
  const logs = createLogRepository(db);
  const users = createUserService(db, {
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  const config = createConfigRepository(db);
  const plugins = createPluginStateRepository(db);
  const conversations = createConversationRepository(db);
  await plugins.registerPlugin({ name: "p", version: "1" });
  const c = await conversations.createConversation({ id: "c" });
  for (const [i, s] of HOSTILE.entries()) {
    await logs.insertLog({
      level: "info",
      module: "m",
      message: s,
      context: { s },
      ts: i,
    });
    const u = await users.createUser({ profile: { name: s, [s]: s } });
    assert.deepEqual((await users.getUser(u.id)).profile, { name: s, [s]: s });
    if (!s.includes("\u0000")) {
      await users.setCredential(u.id, "password", s.padEnd(8, "_"));
      assert.equal(
        await users.verifyCredential(u.id, "password", s.padEnd(8, "_")),
        true,
      );
    }
    await config.set("ns", `k${i}`, s);
    await config.set("secret", `k${i}`, { s }, { secret: true });
    assert.equal(await config.get("ns", `k${i}`), s);
    assert.deepEqual(await config.get("secret", `k${i}`), { s });
    await plugins.setState("p", `k${i}`, [s]);
    assert.deepEqual(await plugins.getState("p", `k${i}`), [s]);
    await conversations.updateConversation("c", { title: s, metadata: { s } });
    assert.equal((await conversations.getConversation("c")).title, s);
    await conversations.appendMessage(c.id, { role: "user", content: s });
  }
  assert.deepEqual(
    (await logs.queryLogs({ limit: 100 })).records.map((r) => r.message),
    HOSTILE,
  );
  assert.deepEqual(
    (await conversations.listMessages("c", { limit: 100 })).items.map((m) =>
      m.content
    ),
    HOSTILE,
  );
  assert.equal(await schemaSnapshot(db), before);
  const counts = await db.execute(
    "SELECT (SELECT COUNT(*) FROM users) AS u, (SELECT COUNT(*) FROM config) AS c, (SELECT COUNT(*) FROM messages) AS m",
  );
  assert.deepEqual({ ...counts.rows[0] }, {
    u: HOSTILE.length,
    c: 2 * HOSTILE.length,
    m: HOSTILE.length,
  });
  assert.deepEqual(
    (await db.execute("PRAGMA database_list")).rows.map((r) => r.name),
    ["main"],
  );
});

Deno.test("hostile strings where identifiers are expected give INVALID_INPUT and store nothing", async () => {
  await using store = await openTestStore();
  const db = store.storage;
  const before = await schemaSnapshot(db);
  const logs = createLogRepository(db);
  const users = createUserService(db, {
    argon2: { memoryKiB: 64, iterations: 1 },
    allowWeakArgon2: true,
  });
  const config = createConfigRepository(db);
  const plugins = createPluginStateRepository(db);
  const conversations = createConversationRepository(db);
  for (const s of HOSTILE) {
    const attempts: Promise<unknown>[] = [
      logs.insertLog({ level: "info", module: s, message: "x" }),
      logs.insertLog({ level: s as never, module: "m", message: "x" }),
      logs.queryLogs({ module: s }),
      users.createUser({ id: s }),
      users.getUser(s),
      users.setCredential(s, "pin", "1234"),
      config.set(s, "k", 1),
      config.set("ns", s, 1),
      plugins.registerPlugin({ name: s, version: "1" }),
      plugins.setState("p", s, 1),
      conversations.createConversation({ id: s }),
      conversations.appendMessage(s, { role: "user", content: "x" }),
      conversations.appendMessage("c", { role: s as never, content: "x" }),
      conversations.listMessages("c", { cursor: s }),
    ];
    for (const [i, p] of attempts.entries()) {
      await assert.rejects(
        p,
        (e) => isAicoDataError(e, "INVALID_INPUT"),
        `${i}: ${s}`,
      );
    }
  }
  assert.equal(await schemaSnapshot(db), before);
  const total = await db.execute(
    "SELECT (SELECT COUNT(*) FROM logs) + (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM config) + " +
      "(SELECT COUNT(*) FROM plugins) + (SELECT COUNT(*) FROM conversations) + (SELECT COUNT(*) FROM messages) AS n",
  );
  assert.equal(total.rows[0]?.n, 0);
});
