import { importDataKey } from "../../crypto/mod.ts";
import { openStorage } from "../../storage/mod.ts";
const N = 1000000;
const raw = Uint8Array.from(
  (await Deno.readTextFile(`.bench-out/analytics_${N}.key`)).match(/../g)!.map((
    b,
  ) => parseInt(b, 16)),
);
const key = await importDataKey(raw);
const storage = await openStorage(`.bench-out/analytics_${N}.db`, { key });
async function scan(sel: string) {
  const t = performance.now();
  let last = 0, n = 0;
  for (;;) {
    const rs = await storage.execute({
      sql: `SELECT ${sel} FROM messages m WHERE id > ? ORDER BY id LIMIT 65536`,
      args: [last],
    });
    n += rs.rows.length;
    if (rs.rows.length < 65536) break;
    last = Number(rs.rows[rs.rows.length - 1]!.id);
  }
  console.log(sel.slice(0, 60), n, (performance.now() - t).toFixed(0));
}
await scan("id, conversation_id, seq, role, NULL AS model, created_at");
await scan("id, seq, created_at");
await scan(
  "id, seq, created_at, CASE role WHEN 'system' THEN 0 WHEN 'user' THEN 1 WHEN 'assistant' THEN 2 ELSE 3 END AS r",
);
await scan(
  "id, seq, created_at, (SELECT rowid FROM conversations c WHERE c.id = m.conversation_id) AS cr",
);
await scan("id, seq, created_at, CAST(conversation_id AS BLOB) AS cb");
