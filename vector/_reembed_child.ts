// Internal, for tests: runs a slow reembed() that the test kills with
// SIGKILL. Usage: deno run -A _reembed_child.ts <db path> <key hex>
import { importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { openEmbeddedVectorStore } from "./embedded_store.ts";
import { newVector } from "./_reembed_fixture.ts";

const [path, hex] = Deno.args;
const key = await importDataKey(
  Uint8Array.from(hex!.match(/../g)!.map((h) => parseInt(h, 16))),
);
const storage = await openStorage(path!, { key });
const store = await openEmbeddedVectorStore(storage, {
  name: "memory",
  embedderId: "old-4",
  dimensions: 4,
});
const out = Deno.stdout.writable.getWriter();
await store.reembed({
  id: "new-6",
  dimensions: 6,
  async embed(texts) {
    await new Promise((r) => setTimeout(r, 20));
    return texts.map(newVector);
  },
}, {
  batchSize: 10,
  onProgress: (p) =>
    void out.write(new TextEncoder().encode(`step ${p.done}\n`)),
});
await out.write(new TextEncoder().encode("finished\n"));
