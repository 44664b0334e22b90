import assert from "node:assert/strict";
import { openDataLayer } from "../mod.ts";
import { openSealedExport } from "../analytics/mod.ts";
import { withDir } from "./_helpers.ts";

const kdf = { memoryKiB: 19456, iterations: 2 };
const PW = "a long passphrase";

function count(
  rows: readonly { role: string; messages: number }[],
  role: string,
): number {
  return rows.filter((r) => r.role === role).reduce(
    (n, r) => n + r.messages,
    0,
  );
}

Deno.test("openDataLayer() analytics follow the change feed: appends and deletes show in the next analysis, exports stay sealed after rotation", async () => {
  await withDir(async (dir) => {
    await using data = await openDataLayer(dir, {
      passphrase: PW,
      create: true,
      kdf,
      memory: false,
    });
    const a = await data.conversations.createConversation({ title: "a" });
    await data.conversations.appendMessages(a.id, [
      { role: "user", content: "hello" },
      { role: "assistant", content: "hi", model: "gpt-x" },
    ]);
    const analytics = data.analytics!;
    let rows = await analytics.messagesByRoleAndModel();
    assert.equal(count(rows, "user"), 1);
    assert.equal(count(rows, "assistant"), 1);
    const b = await data.conversations.createConversation({ title: "b" });
    await data.conversations.appendMessages(b.id, [
      { role: "user", content: "one" },
      { role: "user", content: "two" },
    ]);
    await data.changes.drain();
    rows = await data.analytics!.messagesByRoleAndModel();
    assert.equal(count(rows, "user"), 3);
    await data.conversations.deleteConversation(a.id);
    await data.changes.drain();
    rows = await data.analytics!.messagesByRoleAndModel();
    assert.equal(count(rows, "user"), 2);
    assert.equal(count(rows, "assistant"), 0);
    await data.rotateKey(PW);
    const sealed = await data.analytics!.export(
      "SELECT count(*) AS n FROM messages",
      { format: "csv" },
    );
    const opened = await openSealedExport(data.key, sealed);
    assert.equal(opened.format, "csv");
    assert.equal(new TextDecoder().decode(opened.data), "n\r\n2\r\n");
  });
});
