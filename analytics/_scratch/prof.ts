import { importDataKey } from "../../crypto/mod.ts";
import { openStorage } from "../../storage/mod.ts";
import { readAll, TABLES, toBatch } from "../_tables.ts";
import { openAnalytics } from "../mod.ts";
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
let t = performance.now();
let n = 0;
for (const s of TABLES) {
  for (
    const _ of rawDb.prepare(`SELECT ${s.select(false)} FROM ${s.name}`).raw(
      true,
    ).iterate()
  ) n++;
}
console.log("raw scan", performance.now() - t, n);
t = performance.now();
let rd = 0, tb = 0;
for (const s of TABLES) {
  let t1 = performance.now();
  for await (const rows of readAll(storage, s, false)) {
    rd += performance.now() - t1;
    const t2 = performance.now();
    toBatch(s, rows);
    tb += performance.now() - t2;
    t1 = performance.now();
  }
}
console.log("storage read", rd, "toBatch", tb);
for (const engine of ["wasm", "native"] as const) {
  const a = await openAnalytics(storage, { engine });
  t = performance.now();
  await a.refresh();
  console.log(engine, "first refresh", performance.now() - t);
  t = performance.now();
  await a.refresh({ full: true });
  console.log(engine, "full refresh", performance.now() - t);
  t = performance.now();
  await a.refresh({ text: true });
  console.log(engine, "text", performance.now() - t);
  await a.close();
}
