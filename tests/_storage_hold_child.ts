// Child process of storage_release_test.ts ("process A"): opens a store,
// writes and reads through the statement cache, closes it, prints CLOSED and
// stays alive until its stdin closes.
import { importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const [path, keyHex] = Deno.args as [string, string];
const bytes = new Uint8Array(32);
for (let i = 0; i < 32; i++) {
  bytes[i] = parseInt(keyHex.slice(2 * i, 2 * i + 2), 16);
}
const key = await importDataKey(bytes);
const db = await openStorage(path, { key });
await db.execute(
  "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, x TEXT)",
);
await db.transaction(async (tx) => {
  for (let i = 0; i < 20; i++) {
    await tx.execute("INSERT INTO t (x) VALUES (?)", [`row ${i}`]);
  }
});
await db.execute("SELECT x FROM t WHERE id = ?", [1]);
await db.execute("SELECT id, x FROM t ORDER BY id");
await db.close();
Deno.stdout.writeSync(new TextEncoder().encode("CLOSED\n"));
// Stay alive (holding whatever the driver still holds) until told to go.
for await (const _ of Deno.stdin.readable) {
  // Drain.
}
