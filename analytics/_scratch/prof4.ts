import { importDataKey } from "../../crypto/mod.ts";
import { openStorage } from "../../storage/mod.ts";
import Database from "libsql";
const N = 1000000;
const raw = Uint8Array.from(
  (await Deno.readTextFile(`.bench-out/analytics_${N}.key`)).match(/../g)!.map((
    b,
  ) => parseInt(b, 16)),
);
const key = await importDataKey(raw);
const storage = await openStorage(`.bench-out/analytics_${N}.db`, { key });
const pageBytes = await key.purposeKeyBytes("libsql-page");
const pageKey = String.fromCharCode(...pageBytes.map((b) => b & 0x7f));
const rawDb = new Database(
  `.bench-out/analytics_${N}.db`,
  { encryptionKey: pageKey, readonly: true } as never,
);
for (let rep = 0; rep < 2; rep++) {
  let t = performance.now();
  let n = 0;
  for (
    const _ of rawDb.prepare(
      `SELECT id, conversation_id, seq, role, NULL AS model, created_at FROM messages`,
    ).raw(true).iterate()
  ) n++;
  console.log("raw", (performance.now() - t).toFixed(0));
  t = performance.now();
  let last = 0;
  for (;;) {
    const rs = await storage.execute({
      sql:
        `SELECT json_group_array(json_array(id, conversation_id, seq, role, NULL, created_at)) AS j, max(id) AS last FROM (SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT 65536)`,
      args: [last],
    });
    const arr = JSON.parse(rs.rows[0]!.j as string) as unknown[][];
    if (arr.length < 65536) break;
    last = Number(rs.rows[0]!.last);
  }
  console.log("json", (performance.now() - t).toFixed(0));
  t = performance.now();
  last = 0;
  for (;;) {
    const rs = await storage.execute({
      sql:
        `SELECT id, conversation_id, seq, role, NULL AS model, created_at FROM messages WHERE id > ? ORDER BY id LIMIT 65536`,
      args: [last],
    });
    if (rs.rows.length < 65536) break;
    last = Number(rs.rows[rs.rows.length - 1]!.id);
  }
  console.log("rows", (performance.now() - t).toFixed(0));
}
