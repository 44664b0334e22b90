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
for (const page of [65536, 262144]) {
  const t = performance.now();
  let last = 0, n = 0, parse = 0;
  for (;;) {
    const rs = await storage.execute({
      sql:
        `SELECT json_group_array(json_array(id, conversation_id, seq, role, NULL, created_at)) AS j, max(id) AS last, count(*) AS n FROM (SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT ${page})`,
      args: [last],
    });
    const row = rs.rows[0]!;
    const t1 = performance.now();
    const arr = JSON.parse(row.j as string) as unknown[][];
    parse += performance.now() - t1;
    n += arr.length;
    if (arr.length < page) break;
    last = Number(row.last);
  }
  console.log(
    page,
    n,
    (performance.now() - t).toFixed(0),
    "parse",
    parse.toFixed(0),
  );
}
