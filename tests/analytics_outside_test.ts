// Analytics on the DuckDB-WASM engine, run by a script in a temp folder
// OUTSIDE this repository that imports the library by file URL: no import
// map and no node_modules of ours apply there, so the SDK and its wasm file
// must be found through their full `npm:` specifiers (Deno's global npm
// cache). This is also the layout `deno compile` embeds.
import assert from "node:assert/strict";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("analytics (WASM engine) run from a script outside the repository", async () => {
  const lib = (p: string) => pathToFileURL(`${ROOT}${p}`).href;
  const dir = await Deno.makeTempDir({ prefix: "aico-analytics-outside-" });
  try {
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      `
import { generateDataKey, importDataKey } from "${lib("crypto/mod.ts")}";
import { openStorage } from "${lib("storage/mod.ts")}";
import { createSchemaRegistry, openMigrator } from "${lib("schema/mod.ts")}";
import { coreSchema, createConversationRepository } from "${
        lib("repositories/mod.ts")
      }";
import { openAnalytics } from "${lib("analytics/mod.ts")}";
import { ipcToRows } from "${lib("analytics/_arrow.ts")}";

const key = await importDataKey(generateDataKey());
const storage = await openStorage(Deno.cwd() + "/core.db", { key });
await (await openMigrator(storage, createSchemaRegistry([coreSchema]))).migrate();
const repo = createConversationRepository(storage);
const c = await repo.createConversation();
await repo.appendMessages(c.id, [
  { role: "user", content: "Kaffee im Garten?", createdAt: Date.UTC(2025, 0, 6, 9) },
  { role: "assistant", content: "Gern, Kaffee!", createdAt: Date.UTC(2025, 0, 6, 9, 0, 3) },
  { role: "user", content: "garden coffee", createdAt: Date.UTC(2025, 0, 7, 10) },
]);
const a = await openAnalytics(storage, { engine: "wasm", key });
const out = {
  engine: a.engine,
  roles: await a.messagesByRoleAndModel(),
  latency: (await a.responseLatency()).p50,
  terms: (await a.topTerms(2)).map((t) => [t.term, t.count]),
  arrow: (await ipcToRows(
    await a.export("SELECT count(*)::INTEGER AS n FROM messages", { format: "arrow", plaintext: true }),
  )).rows,
};
await a.close();
await storage.close();
console.log(JSON.stringify(out));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-lock",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        "main.ts",
      ],
      cwd: dir,
      stdin: "null",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, err);
    const got = JSON.parse(new TextDecoder().decode(out.stdout).trim());
    assert.deepEqual(got, {
      engine: "wasm",
      roles: [
        { role: "user", model: null, messages: 2 },
        { role: "assistant", model: null, messages: 1 },
      ],
      latency: 3,
      terms: [["kaffee", 2], ["coffee", 1]],
      arrow: [{ n: 3 }],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
