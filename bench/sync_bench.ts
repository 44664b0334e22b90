/**
 * Sync through a folder target and a localhost WebDAV server (`rclone serve
 * webdav`, when installed), in the same run:
 *
 * - once, at load: initial sync of SYNC_BENCH_MESSAGES (default 100,000)
 *   messages: stage + push on one device, pull on a new one; time, and bytes
 *   on the target against the sealed data (each message's content sealed as
 *   a column value: content + 29 bytes). Goal: target bytes ≤ 1.5x sealed.
 *   Baseline: the same objects (same count, same bytes) written and read
 *   raw through the same target. Content is word salad from a small
 *   vocabulary (compresses far better than real text) and, for the folder,
 *   random base64 (near incompressible: the worst case for bytes on the target).
 * - `Deno.bench`: an incremental sync of 100 messages (stage + push, pull on
 *   the other device) against the raw write + read of the same bytes as one
 *   object. Goal: under 1 s on localhost WebDAV.
 *
 * Run: `deno bench --allow-all bench/sync_bench.ts`
 */
import { join } from "node:path";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  createReplica,
  deriveSyncKeys,
  openFolderTarget,
  openSyncDevice,
  openWebDavTarget,
  type SyncChange,
  type SyncDevice,
  type SyncTarget,
} from "../sync/mod.ts";
import { hasRclone, startWebDavServer } from "../tests/_webdav_server.ts";

const N = Number(Deno.env.get("SYNC_BENCH_MESSAGES") ?? 100_000);
const dir = await Deno.makeTempDir({ prefix: "aico_sync_bench_" });
const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));
const words = (
  "the a to and of remember trip tomorrow coffee meeting call mom project " +
  "deadline weather train ticket book music dinner recipe garden walk " +
  "doctor appointment birthday gift idea notes summary plan weekend"
).split(" ");
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const sentence = () => {
  const n = 20 + Math.floor(rand() * 40);
  return Array.from(
    { length: n },
    () => words[Math.floor(rand() * words.length)],
  )
    .join(" ");
};

/** Random base64: the (near) incompressible worst case for bytes on the target. */
const noise = () => {
  const b = new Uint8Array(50 + Math.floor(rand() * 100));
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b));
};
let content = sentence;

function messages(device: SyncDevice, n: number, from: number): SyncChange[] {
  return Array.from({ length: n }, (_, i) => ({
    op: "append",
    table: "messages",
    key: `${device.deviceId}/${from + i}`,
    hlc: device.clock.now(),
    parent: {
      table: "conversations",
      key: `conv-${Math.floor((from + i) / 200)}`,
    },
    value: {
      role: i % 2 ? "assistant" : "user",
      content: content(),
      created_at: 1_700_000_000_000 + i,
    },
  }));
}

function sealedSize(changes: SyncChange[]): number {
  let n = 0;
  for (const c of changes) {
    if (c.op === "append") {
      n += new TextEncoder().encode(String(c.value.content)).length + 29;
    }
  }
  return n;
}

async function dirBytes(
  path: string,
): Promise<{ bytes: number; files: number }> {
  let bytes = 0, files = 0;
  for await (const e of Deno.readDir(path)) {
    const p = join(path, e.name);
    if (e.isDirectory) {
      const sub = await dirBytes(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (e.isFile) {
      bytes += (await Deno.stat(p)).size;
      files++;
    }
  }
  return { bytes, files };
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function initial(
  label: string,
  open: (name: string) => Promise<SyncTarget>,
  storedDir: (name: string) => string,
): Promise<void> {
  const target = await open("initial");
  const a = await openSyncDevice(join(dir, `${label}-a`), keys, {
    deviceId: "a",
  });
  const b = await openSyncDevice(join(dir, `${label}-b`), keys, {
    deviceId: "b",
  });
  const changes = messages(a, N, 0);
  const sealed = sealedSize(changes);
  let t = performance.now();
  await a.stage(changes);
  const stageMs = performance.now() - t;
  t = performance.now();
  await a.push(target);
  const pushMs = performance.now() - t;
  const replica = createReplica();
  t = performance.now();
  await b.pull(target, (c) => void replica.apply(c));
  const pullMs = performance.now() - t;
  if (replica.rows("messages").length !== N) {
    throw new Error("pull lost messages");
  }
  const stored = await dirBytes(storedDir("initial"));
  // Baseline: the same objects, raw, through the same target.
  const names = await target.list();
  const blobs = await Promise.all(names.map((n) => target.read(n)));
  const raw = await open("raw");
  t = performance.now();
  for (let i = 0; i < blobs.length; i++) {
    await raw.writeIfAbsent(`r${i}`, blobs[i]!);
  }
  const rawWriteMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < blobs.length; i++) await raw.read(`r${i}`);
  const rawReadMs = performance.now() - t;
  // deno-lint-ignore no-console
  console.log(
    `${label}: ${N} messages: stage ${fmt(stageMs)}, push ${fmt(pushMs)} ` +
      `(raw write of the same ${names.length} objects ${
        fmt(rawWriteMs)
      }), pull ${fmt(pullMs)} ` +
      `(raw read ${fmt(rawReadMs)}); on the target ${
        mib(stored.bytes)
      } in ${stored.files} files, ` +
      `sealed data ${mib(sealed)}: ${
        (stored.bytes / sealed).toFixed(2)
      }x (goal <= 1.5x)`,
  );
  await a.close();
  await b.close();
}

async function incrementalPair(label: string, target: SyncTarget) {
  const a = await openSyncDevice(join(dir, `${label}-inc-a`), keys, {
    deviceId: "a",
  });
  const b = await openSyncDevice(join(dir, `${label}-inc-b`), keys, {
    deviceId: "b",
  });
  const replica = createReplica();
  let next = 0;
  // Some history first, so the pull reads only what is new.
  await a.stage(messages(a, 1000, next));
  next += 1000;
  await a.push(target);
  await b.pull(target, (c) => void replica.apply(c));
  return {
    async sync() {
      await a.stage(messages(a, 100, next));
      next += 100;
      await a.push(target);
      await b.pull(target, (c) => void replica.apply(c));
    },
    async raw() {
      const bytes = new TextEncoder().encode(
        JSON.stringify(messages(a, 100, 0)),
      );
      const name = `raw${next++}`;
      await target.writeIfAbsent(name, bytes);
      await target.read(name);
    },
  };
}

content = noise;
await initial(
  "folder, incompressible content",
  (name) => openFolderTarget(join(dir, "folder-noise", name)),
  (name) => join(dir, "folder-noise", name),
);
content = sentence;
await initial(
  "folder, text content",
  (name) => openFolderTarget(join(dir, "folder", name)),
  (name) => join(dir, "folder", name),
);
const folderInc = await incrementalPair(
  "folder",
  await openFolderTarget(join(dir, "folder", "inc")),
);
Deno.bench({
  name: "folder: incremental sync of 100 messages",
  group: "folder",
  fn: folderInc.sync,
});
Deno.bench({
  name: "folder: raw write + read of the same messages as one object",
  group: "folder",
  baseline: true,
  fn: folderInc.raw,
});

const server = hasRclone() ? await startWebDavServer() : undefined;
if (server !== undefined) {
  await initial(
    "webdav, text content",
    (name) => openWebDavTarget({ url: `${server.url}${name}/` }),
    (name) => join(server.dir, name),
  );
  const davInc = await incrementalPair(
    "webdav",
    await openWebDavTarget({ url: `${server.url}inc/` }),
  );
  Deno.bench({
    name: "webdav: incremental sync of 100 messages",
    group: "webdav",
    fn: davInc.sync,
  });
  Deno.bench({
    name: "webdav: raw PUT + GET of the same messages as one object",
    group: "webdav",
    baseline: true,
    fn: davInc.raw,
  });
} else {
  // deno-lint-ignore no-console
  console.log(
    "rclone is not installed: WebDAV benches skipped (apt-get install rclone)",
  );
}

globalThis.addEventListener("unload", () => {
  // Deno.bench gives no teardown hook: stop the server and remove the folder synchronously.
  if (server !== undefined) {
    try {
      Deno.kill(server.pid, "SIGTERM");
    } catch { /* gone */ }
    Deno.removeSync(server.dir, { recursive: true });
  }
  Deno.removeSync(dir, { recursive: true });
});
