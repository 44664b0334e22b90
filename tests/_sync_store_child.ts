// Child process of sync_store_crash_test.ts: opens a real data layer with
// sync on a folder or WebDAV target (its text) and runs one sync (stage, push, pull, apply)
// or, with a fifth argument `compact`, one compaction. It
// SIGKILLs itself at the k-th call to the target (k = -1: never); the
// parent may also kill it at a random time. Not part of the package.
import type { SyncTarget } from "../sync/mod.ts";
import { openSyncTarget } from "../sync/mod.ts";
import { openDevice } from "./_sync_store.ts";

const [dir, targetDir, deviceId, killAtText, mode] = Deno.args as [
  string,
  string,
  string,
  string,
  string | undefined,
];
const killAt = Number(killAtText);
const inner = await openSyncTarget(targetDir);
let calls = 0;
const counted = <T>(result: Promise<T>): Promise<T> =>
  result.then((v) => {
    if (++calls === killAt) Deno.kill(Deno.pid, "SIGKILL");
    return v;
  });
const target: SyncTarget = {
  id: inner.id,
  get closed() {
    return inner.closed;
  },
  list: (p) => counted(inner.list(p)),
  read: (n) => counted(inner.read(n)),
  writeIfAbsent: (n, b) => counted(inner.writeIfAbsent(n, b)),
  delete: (n) => counted(inner.delete(n)),
  close: () => inner.close(),
  [Symbol.asyncDispose]: () => inner.close(),
};
const data = await openDevice(dir, deviceId, target);
await Deno.stdout.write(new TextEncoder().encode("ready\n"));
// `compact` as a fifth argument: compact instead of one sync.
const report = mode === "compact"
  ? await data.sync!.compact()
  : await data.sync!.run();
await data.close();
await Deno.stdout.write(
  new TextEncoder().encode(`done ${JSON.stringify(report)}\n`),
);
