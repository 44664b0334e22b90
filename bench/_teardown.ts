// Internal to the benches: a last row that closes what a bench file opened.
//
// Deno.bench has no after-all hook, and a data layer (or a vector store
// whose vectors are still loading) left open when the bench runner tears a
// file down crashed the runner with SIGSEGV inside lmdb-js's or npm:libsql's
// native threads (seen 2026-12-02 in erase, export and vector benches), which
// ended `deno task bench` there. Benches run in the order they are
// registered, so a row registered last runs after every other row of its
// file.

/** Registers the file's last row: `close` runs once, the first time it is called. */
export function closeAfterBenches(close: () => Promise<void> | void): void {
  let closed = false;
  Deno.bench({
    name: "teardown: close what the benches opened (not a measurement)",
    group: "teardown",
    n: 1,
    warmup: 0,
    async fn() {
      if (closed) return;
      closed = true;
      await close();
    },
  });
}
