// Child process of tests/analytics_kill_test.ts: a data layer whose
// analytics refresher (the durable change-feed consumer that openDataLayer
// registers) is kept busy by real writes until the parent kills it.
// It starts the analytics (engine up, text on), then appends big batches of
// messages through the repository; each commit records a change event, the
// feed wakes the refresher, which re-reads the rows, opens their text and
// replaces them in DuckDB. "written" is printed after each commit, before
// the feed has delivered it.
//
//   deno run -A tests/_analytics_kill_child.ts <dir> <passphrase>
import { openDataLayer } from "../mod.ts";

const [dir, passphrase] = Deno.args;
const data = await openDataLayer(dir!, {
  passphrase: passphrase!,
  kdf: { memoryKiB: 19456, iterations: 2 },
  memory: false,
  analytics: { engine: "wasm" },
});
const out = new TextEncoder();
await data.analytics!.refresh({ text: true });
await Deno.stdout.write(out.encode("ready\n"));
const conv = await data.conversations.createConversation({ title: "busy" });
for (let round = 0;; round++) {
  await data.conversations.appendMessages(
    conv.id,
    Array.from({ length: 3000 }, (_, i) => ({
      role: i % 2 ? "assistant" as const : "user" as const,
      content: `round ${round} message ${i} about gardens and Kaffee`,
      createdAt: 1.76e12 + round * 3_600_000 + i * 1000,
    })),
  );
  await Deno.stdout.write(out.encode("written\n"));
  await data.changes.drain();
}
