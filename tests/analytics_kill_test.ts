// Reliability: a refresher killed with SIGKILL in the middle of a refresh
// leaves the store intact, and the next open catches up with everything
// committed, including what was written while it was dead.
//
// What "cursor" means here: DuckDB holds the analytics copy in memory only,
// so a killed refresher loses its copy, never committed data. The next
// open loads the committed state (one read transaction) and then applies
// the events after its durable feed cursor (idempotent re-reads by key).
// This test drives the consumer directly (the feed is wired at merge): it
// checks that a refresher dying mid-load or mid-batch does not damage the
// store, and that the next open equals an independent computation over
// the rows as they are afterwards.
import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { coreSchema } from "../repositories/core_schema.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { createConversationRepository } from "../repositories/mod.ts";
import { openAnalytics } from "../analytics/mod.ts";
import { STOP_WORDS } from "../analytics/_stop_words.ts";
import { withDir } from "./_helpers.ts";
import {
  readTruth,
  refActivity,
  refLengths,
  refRoles,
  refTopTerms,
  seed,
} from "./_analytics_fixture.ts";

async function waitFor(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  word: string,
  times: number,
): Promise<void> {
  const dec = new TextDecoder();
  let text = "";
  let seen = 0;
  while (seen < times) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child ended before "${word}"`);
    text += dec.decode(value);
    seen = text.split("\n").filter((l) => l === word).length;
  }
}

Deno.test({
  name:
    "a refresher killed with kill -9 mid-refresh catches up at the next open",
  sanitizeResources: false,
  async fn() {
    await withDir(async (dir) => {
      const path = `${dir}/core.db`;
      const raw = generateDataKey();
      const key = await importDataKey(raw);
      let storage = await openStorage(path, { key });
      {
        await using m = await openMigrator(
          storage,
          createSchemaRegistry([coreSchema]),
        );
        await m.migrate();
      }
      const { conversationIds } = await seed(storage, { conversations: 40 });
      // more rows so that one refresh takes a while
      const repo = createConversationRepository(storage);
      for (const id of conversationIds.slice(0, 10)) {
        await repo.appendMessages(
          id,
          Array.from({ length: 1500 }, (_, i) => ({
            role: i % 2 ? "assistant" as const : "user" as const,
            content: `filler message ${i} about gardens and Kaffee`,
            createdAt: 1.75e12 + i * 1000,
          })),
        );
      }
      await storage.close();
      const hex = [...raw].map((b) => b.toString(16).padStart(2, "0")).join("");

      for (const delay of [150, 900]) {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("./_analytics_kill_child.ts", import.meta.url).pathname,
            path,
            hex,
          ],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = child.stdout.getReader();
        await waitFor(reader, "refreshing", 2);
        await new Promise((r) => setTimeout(r, delay));
        child.kill("SIGKILL");
        const status = await child.status;
        assert.equal(status.signal, "SIGKILL");
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
      }

      // written after the refresher died
      storage = await openStorage(path, { key });
      try {
        const v = await storage.verify();
        assert.ok(v.ok, v.integrity.join("; "));
        const repo2 = createConversationRepository(storage);
        await repo2.appendMessages(conversationIds[20]!, [
          { role: "user", content: "nach dem Absturz: Kaffee" },
          { role: "assistant", content: "después del fallo" },
        ]);
        await repo2.deleteConversation(conversationIds[3]!);
        await using a = await openAnalytics(storage);
        const truth = await readTruth(storage);
        assert.deepEqual(
          (await a.query("SELECT count(*) AS n FROM messages")).rows[0]!.n,
          truth.messages.length,
        );
        assert.deepEqual(
          await a.activity("day"),
          refActivity(truth.messages, "day"),
        );
        assert.deepEqual(
          await a.conversationLengths(),
          refLengths(truth.messages),
        );
        assert.deepEqual(
          await a.messagesByRoleAndModel(),
          refRoles(truth.messages),
        );
        assert.deepEqual(
          await a.topTerms(10),
          refTopTerms(truth.messages, new Set(STOP_WORDS), 10),
        );
      } finally {
        await storage.close();
      }
    });
  },
});
