// Reliability: the analytics refresher that openDataLayer registers on the
// real change feed is killed with SIGKILL while it applies a batch the feed
// delivered; the store stays intact, its durable cursor is behind the
// events it had not finished, and the next open catches up: the analytics
// tables, fed incrementally by the feed afterwards, equal a full refresh
// and an independent computation over the rows.
//
// What "cursor" means here: DuckDB holds the analytics copy in memory only,
// so a killed refresher loses its copy, never committed data. The next
// open loads the committed state at the first analytics call (one read
// transaction); the feed re-delivers the events after the cursor, which
// are re-applied idempotently (re-reads by key).
import assert from "node:assert/strict";
import { openDataLayer } from "../mod.ts";
import { ANALYTICS_CONSUMER } from "../analytics/mod.ts";
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

const PW = "a long passphrase";
const kdf = { memoryKiB: 19456, iterations: 2 };

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

/** Every analytics table, sorted, as JSON-comparable rows. */
async function tables(
  a: { query(sql: string): Promise<{ rows: unknown[] }> },
): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (
    const [t, order] of [
      ["messages", "id"],
      ["message_text", "id"],
      ["conversations", "id"],
      ["logs", "id"],
      ["users", "id"],
    ]
  ) {
    // conv_key is a surrogate (dense per load): compared as a bijection.
    const cols = t === "messages" ? "* EXCLUDE (conv_key)" : "*";
    out[t!] = (await a.query(`SELECT ${cols} FROM ${t} ORDER BY ${order}`))
      .rows;
  }
  out.convKeyBijection = (await a.query(
    "SELECT (SELECT count(*) FROM (SELECT conversation_id FROM messages GROUP BY 1 HAVING count(DISTINCT conv_key) <> 1 OR count(conv_key) <> count(*))) AS a, " +
      "(SELECT count(*) FROM (SELECT conv_key FROM messages GROUP BY 1 HAVING count(DISTINCT conversation_id) <> 1)) AS b",
  )).rows;
  assert.deepEqual(out.convKeyBijection, [{ a: 0, b: 0 }]);
  return out;
}

Deno.test({
  name:
    "the feed-driven refresher killed with kill -9 mid-refresh catches up at the next openDataLayer",
  sanitizeResources: false,
  async fn() {
    await withDir(async (dir) => {
      let conversationIds: string[];
      {
        await using data = await openDataLayer(dir, {
          passphrase: PW,
          create: true,
          kdf,
          memory: false,
          analytics: false,
        });
        ({ conversationIds } = await seed(data.storage, { conversations: 30 }));
      }

      // Kill the child right after a commit, while the refresher handles
      // the event the feed delivered; a kill that lands before or after
      // that window is retried with another delay.
      const behind: number[] = [];
      for (const delay of [5, 30, 80, 10, 150, 50]) {
        if (behind.length >= 2) break;
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("./_analytics_kill_child.ts", import.meta.url).pathname,
            dir,
            PW,
          ],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = child.stdout.getReader();
        await waitFor(reader, "ready", 1);
        await waitFor(reader, "written", 2);
        await new Promise((r) => setTimeout(r, delay));
        child.kill("SIGKILL");
        const status = await child.status;
        assert.equal(status.signal, "SIGKILL");
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
        // The durable cursor, read with the refresher not registered.
        await using data = await openDataLayer(dir, {
          passphrase: PW,
          kdf,
          memory: false,
          analytics: false,
        });
        const st = (await data.changes.status()).find((s) =>
          s.name === ANALYTICS_CONSUMER
        );
        assert.ok(st, "the refresher has a durable cursor");
        assert.equal(st.active, false);
        if (st.lag > 0) behind.push(st.lag);
        const v = await data.verify();
        assert.ok(v.ok, JSON.stringify(v.storage));
      }
      assert.ok(
        behind.length >= 1,
        "no kill landed before the refresher acknowledged its batch",
      );

      // The next open: the feed re-delivers what the dead refresher had not
      // acknowledged; later writes reach it through the feed.
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        kdf,
        memory: false,
      });
      const a = data.analytics!;
      await a.refresh({ text: true });
      await data.conversations.appendMessages(conversationIds[20]!, [
        { role: "user", content: "nach dem Absturz: Kaffee" },
        { role: "assistant", content: "después del fallo" },
      ]);
      await data.conversations.deleteConversation(conversationIds[3]!);
      const busy = (await data.conversations.listConversations()).items.find((
        c,
      ) => c.title === "busy");
      if (busy) await data.conversations.deleteConversation(busy.id);
      await data.changes.drain();
      const st = (await data.changes.status()).find((s) =>
        s.name === ANALYTICS_CONSUMER
      )!;
      assert.equal(st.lag, 0);
      assert.equal(st.active, true);

      const incremental = await tables(a);
      const truth = await readTruth(data.storage);
      assert.equal(incremental.messages!.length, truth.messages.length);
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
      await a.refresh({ full: true });
      assert.deepEqual(incremental, await tables(a));
    });
  },
});
