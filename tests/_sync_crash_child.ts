// Child process of sync_crash_test.ts: pushes or pulls once and is killed
// with SIGKILL at a chosen point: after the k-th call to the target (its own
// SIGKILL, so the point is exact), k = 0 for a pull meaning right after the
// applied changes were saved but before the journal records them. The
// parent may also kill it at a random time. Not part of the package.
import { importDataKey } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  openFolderTarget,
  openSyncDevice,
  openWebDavTarget,
  type SyncTarget,
} from "../sync/mod.ts";

const [mode, journal, targetDir, keyHex, replicaFile, killAtText] = Deno
  .args as [string, string, string, string, string, string];
const killAt = Number(killAtText);
const dek = new Uint8Array(keyHex.match(/../g)!.map((h) => parseInt(h, 16)));
const keys = await deriveSyncKeys(await importDataKey(dek));
const inner = targetDir.startsWith("http")
  ? await openWebDavTarget({ url: targetDir })
  : await openFolderTarget(targetDir);
let calls = 0;
const die = () => Deno.kill(Deno.pid, "SIGKILL");
const counted = <T>(result: Promise<T>): Promise<T> =>
  result.then((v) => {
    if (++calls === killAt) die();
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
const device = await openSyncDevice(journal, keys);
const enc = new TextEncoder();
if (mode === "hold") {
  await Deno.stdout.write(enc.encode("ready\n"));
  await new Promise((r) => setTimeout(r, 300));
  await Deno.stdout.write(enc.encode("released\n"));
  await device.close();
} else if (mode === "push") {
  await Deno.stdout.write(enc.encode("ready\n"));
  await device.push(target);
} else {
  let versions = [];
  try {
    versions = JSON.parse(await Deno.readTextFile(replicaFile));
  } catch { /* first run */ }
  const replica = createReplica(versions);
  await Deno.stdout.write(enc.encode("ready\n"));
  await device.pull(target, async (changes) => {
    replica.apply(changes);
    const tmp = `${replicaFile}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(replica.versions()));
    await Deno.rename(tmp, replicaFile);
    if (killAt === 0) die();
  });
}
await Deno.stdout.write(enc.encode("done\n"));
