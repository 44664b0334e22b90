// Child process of sync_crash_test.ts: pushes or pulls once; the parent
// kills it with SIGKILL at a random point. Not part of the package.
import { importDataKey } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  openFolderTarget,
  openSyncDevice,
} from "../sync/mod.ts";

const [mode, journal, targetDir, keyHex, replicaFile] = Deno.args as [
  string,
  string,
  string,
  string,
  string,
];
const dek = new Uint8Array(keyHex.match(/../g)!.map((h) => parseInt(h, 16)));
const keys = await deriveSyncKeys(await importDataKey(dek));
const target = await openFolderTarget(targetDir);
const device = await openSyncDevice(journal, keys);
const enc = new TextEncoder();
if (mode === "push") {
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
  });
}
await Deno.stdout.write(enc.encode("done\n"));
