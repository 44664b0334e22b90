// Child process of tests/analytics_kill_test.ts: a refresher that keeps
// refreshing (full loads with text, and event batches) until it is killed.
// Args: <db path> <hex data key>.
import { importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { openAnalytics } from "../analytics/mod.ts";

const [path, hex] = Deno.args;
const key = await importDataKey(
  Uint8Array.from(hex!.match(/../g)!.map((b) => parseInt(b, 16))),
);
const storage = await openStorage(path!, { key });
const analytics = await openAnalytics(storage);
const ids = (await storage.execute("SELECT id FROM messages")).rows.map((r) =>
  String(r.id)
);
const out = new TextEncoder();
await Deno.stdout.write(out.encode("started\n"));
let seq = 0;
for (;;) {
  await Deno.stdout.write(out.encode("refreshing\n"));
  await analytics.refresh({ text: true, full: true });
  await analytics.consumer.handle(
    [{
      table: "messages",
      op: "update",
      keys: ids,
      seq: ++seq,
      at: Date.now(),
    }],
    { signal: new AbortController().signal },
  );
}
