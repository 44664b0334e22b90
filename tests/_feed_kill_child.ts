// Child process of feed_kill_test.ts: a durable consumer that appends the
// keys of every event it handles to a file, slowly, so that the parent can
// kill it with SIGKILL in the middle of a batch. Not part of the package.
//
//   deno run -A tests/_feed_kill_child.ts <db> <out> run|drain
// The data key comes hex-encoded in AICO_TEST_KEY.
import { importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { openChangeFeed } from "../changes/mod.ts";

const [dbPath, outPath, mode] = Deno.args;
const hex = Deno.env.get("AICO_TEST_KEY") ?? "";
const key = await importDataKey(
  new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16))),
);
const db = await openStorage(dbPath!, { key });
const feed = await openChangeFeed(db, { retryBaseMs: 10 });
const out = await Deno.open(outPath!, { append: true, create: true });
const encoder = new TextEncoder();
const reg = await feed.register({
  name: "killme",
  batchSize: 10,
  async handle(batch) {
    await Deno.stdout.write(encoder.encode("batch\n"));
    for (const e of batch) {
      await out.write(encoder.encode(e.keys.join("\n") + "\n"));
      await out.sync();
      if (mode === "run") await new Promise((r) => setTimeout(r, 15));
    }
  },
});
await reg.catchUp();
await feed.close();
out.close();
await db.close();
await Deno.stdout.write(encoder.encode("done\n"));
