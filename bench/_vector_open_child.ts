// deno-lint-ignore-file no-console
// Child of bench/vector_bench.ts: the first open of a collection in a fresh
// process (nothing compiled, no statement prepared yet). Reads the raw data
// key (hex) from stdin; prints JSON with the open time, the first query's
// time and when every vector was in memory.
import { importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { openEmbeddedVectorStore } from "../vector/embedded_store.ts";
import { clusters } from "../vector/_clustered_test_data.ts";

const [path, name, dims] = Deno.args;
const hex = (await new Response(Deno.stdin.readable).text()).trim();
const raw = Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
const key = await importDataKey(raw);
const query = clusters(Number(dims), 1000).query(0);
const t0 = performance.now();
await using db = await openStorage(path!, { key });
await using store = await openEmbeddedVectorStore(db, {
  name: name!,
  embedderId: "synthetic-512",
  dimensions: Number(dims),
});
const t1 = performance.now();
await store.query({ vector: query, k: 10 });
const t2 = performance.now();
await store.whenLoaded();
const t3 = performance.now();
console.log(JSON.stringify({
  openMs: t1 - t0,
  firstQueryMs: t2 - t1,
  loadedMs: t3 - t0,
}));
