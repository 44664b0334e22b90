// Sealer.sealBatch returns views into one buffer: every layer that stores
// them must respect the view's offset and length.
import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

Deno.test("Values from sealBatch are stored and read back as exactly their own bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/v.db`, { key });
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
    const sealer = await key.sealer("field-aead");
    const texts = ["first", "second value", "🍵 third"];
    const sealed = await sealer.sealBatch(
      texts.map((plaintext, i) => ({ plaintext, aad: `t|${i}` })),
    );
    assert.ok(sealed.every((s) => s.buffer === sealed[0]!.buffer));
    for (let i = 0; i < sealed.length; i++) {
      await db.execute("INSERT INTO t VALUES (?, ?)", [i, sealed[i]!]);
    }
    const { rows } = await db.execute(
      "SELECT id, v, length(v) AS n FROM t ORDER BY id",
    );
    for (const row of rows) {
      const i = row.id as number;
      assert.equal(row.n, sealed[i]!.length);
      assert.deepEqual(row.v, sealed[i]!.slice());
      assert.equal(
        await sealer.openText(row.v as Uint8Array, `t|${i}`),
        texts[i],
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
