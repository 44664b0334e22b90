// The data set of the export tests: every kind of value an export carries
// (unicode, empty strings, a long message, times, titles, roles, models,
// secret and plain configuration, plugin state, imported source ids), and a
// snapshot of everything a user would miss, to compare after a round trip.
import { type DataLayer, openDataLayer } from "../data_layer/mod.ts";
import { IMPORT_SOURCES_SCHEMA, openImporter } from "../importers/mod.ts";

export const KDF = { memoryKiB: 19456, iterations: 2 };
export const MARKER = "ZQX-export-marker-7f3a";
export const LONG = "長い".repeat(1000) + "x".repeat(300_000) + MARKER;

/** Opens (or creates) a test folder with the importer's table and keyword index. */
export function open(dir: string, passphrase: string, create = false) {
  return openDataLayer(dir, {
    passphrase,
    kdf: KDF,
    plugins: [IMPORT_SOURCES_SCHEMA],
    memory: { background: false },
    analytics: false,
    ...(create ? { create: true } : {}),
  });
}

/** Fills a folder with every kind of value the export carries. */
export async function seed(data: DataLayer): Promise<void> {
  const ada = await data.users.createUser({
    id: "ada",
    profile: {
      name: "Ada 🧮",
      note: "",
      langs: ["en", "fr"],
      nested: { a: 1 },
    },
  });
  await data.users.setCredential(ada.id, "pin", "1234");
  await data.users.createUser({ id: "bob", profile: {} });
  await data.config.set("ui", "theme", "dark");
  await data.config.set("ui", "empty", "");
  await data.config.set("ui", "unicode", "ñ 中文 עברית 👩‍👩‍👧");
  await data.config.set("ui", "obj", { a: [1, 2.5, null, true], b: "" });
  await data.config.set("ui", "nothing", null);
  await data.config.set("sec", "token", `secret-${MARKER}`, { secret: true });
  await data.plugins.registerPlugin({
    name: "notes",
    version: "1.2.3",
    metadata: { author: "ü" },
  });
  await data.plugins.setState("notes", "list", ["a", "", "ü", MARKER]);
  await data.plugins.setState("notes", "n", 42);
  await data.plugins.registerPlugin({
    name: "off",
    version: "0.1.0",
    enabled: false,
  });
  const c1 = await data.conversations.createConversation({
    id: "c1",
    userId: "ada",
    title: 'Tea ☕ «quotes» "x"',
    metadata: { tag: "t" },
    createdAt: 1_600_000_000_000,
  });
  await data.conversations.appendMessages(c1.id, [
    { role: "system", content: "", createdAt: 1_600_000_000_001 },
    {
      role: "user",
      content: `I like green tea ${MARKER} \u0000 \n\t "q" \\ 😀`,
      createdAt: 1_600_000_000_002,
    },
    {
      role: "assistant",
      content: "Green tea has less caffeine.",
      createdAt: 1_600_000_000_003,
      model: "gpt-4o",
    },
    { role: "tool", content: LONG, createdAt: 1_600_000_000_004 },
  ]);
  await data.conversations.createConversation({
    id: "c2",
    userId: "bob",
    title: "",
    createdAt: 1_600_000_100_000,
    updatedAt: 1_600_000_200_000,
  });
  const c3 = await data.conversations.createConversation({
    id: "c3",
    createdAt: 1_500_000_000_000,
  });
  await data.conversations.appendMessage(c3.id, {
    role: "user",
    content: "untitled, no user",
    createdAt: 1_500_000_000_001,
  });
  // An imported conversation carries its source ids.
  const importer = await openImporter(data.storage, {
    userId: "ada",
    changes: data.changes,
  });
  const file = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(
      file,
      [
        '{"conversation":"imp1","role":"user","content":"imported one","ts":1700000000000,"title":"Imported"}',
        '{"conversation":"imp1","role":"assistant","content":"imported two","ts":1700000001000}',
      ].join("\n"),
    );
    await importer.importFile(file);
  } finally {
    await Deno.remove(file);
    await importer.close();
  }
}

/** Everything a user would miss, read through the public API and plain SQL. */
export async function snapshot(data: DataLayer): Promise<unknown> {
  const db = data.storage;
  const users = [];
  for (const r of (await db.execute("SELECT id FROM users ORDER BY id")).rows) {
    users.push(await data.users.getUser(String(r.id)));
  }
  const config = [];
  for (
    const r of (await db.execute(
      "SELECT DISTINCT namespace FROM config ORDER BY namespace",
    )).rows
  ) config.push(...await data.config.list(String(r.namespace)));
  const plugins = [];
  for (const p of await data.plugins.listPlugins()) {
    plugins.push({
      ...p,
      state: await data.plugins.listState(p.name),
      times: (await db.execute({
        sql:
          "SELECT key, updated_at FROM plugin_state WHERE plugin = ? ORDER BY key",
        args: [p.name],
      })).rows.map((r) => [r.key, r.updated_at]),
    });
  }
  const conversations = [];
  for (
    const r of (await db.execute("SELECT id FROM conversations ORDER BY id"))
      .rows
  ) {
    const c = await data.conversations.getConversation(String(r.id));
    const { items } = await data.conversations.listMessages(c.id, {
      limit: 1000,
    });
    const sources = (await db.execute({
      sql:
        "SELECT s.source_key, m.seq FROM import_sources s LEFT JOIN messages m ON m.id = s.message_id WHERE s.conversation_id = ? ORDER BY s.source_key",
      args: [c.id],
    })).rows.map((x) => [x.source_key, x.seq]);
    conversations.push({
      ...c,
      sources,
      messages: items.map((m) => ({
        seq: m.seq,
        role: m.role,
        content: m.content,
        createdAt: m.createdAt,
        model: m.model,
      })),
    });
  }
  return { users, config, plugins, conversations };
}
