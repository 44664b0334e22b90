/**
 * Sync of the REAL data layer (repositories, change feed, sync consumer and
 * applier) through a folder target and a localhost WebDAV server (`rclone
 * serve webdav`, when installed), in the same run:
 *
 * - once, at load: a device holding SYNC_BENCH_MESSAGES (default 100,000)
 *   messages in 500 conversations sets up sync (first snapshot staged,
 *   pushed), and a new device joins and pulls everything; times, and bytes
 *   on the target against the sealed data (each message's content sealed as
 *   a column value: content + 29 bytes; goal ≤ 1.5x). Baseline in the same
 *   process: the same messages appended to a store with `appendMessages`
 *   (what the import of the same data costs locally), and the same objects
 *   written and read raw through the same target.
 * - `Deno.bench`: an incremental sync of 100 messages (append on one
 *   device, its `sync.run()`, then the other's `sync.run()`) against the
 *   same 100 appended to a store without sync plus a raw write + read of
 *   their bytes as one object. Goal: under 1 s on localhost WebDAV.
 * - "new device after compaction" (folder target): a history of
 *   SYNC_BENCH_COMPACT_MESSAGES (default 20,000) messages in 200
 *   conversations, 80% of them deleted afterwards and a config key edited
 *   500 times; printed: a new device's pull time and bytes before and after
 *   `sync.compact()`, and the compaction time; `Deno.bench`: a new device
 *   joining the compacted target against one joining a copy of the same
 *   target uncompacted (baseline), in the same run.
 *
 * Run: `deno bench --allow-all bench/sync_store_bench.ts`
 */
import { join } from "node:path";
import { type DataLayer, openDataLayer } from "../data_layer/mod.ts";
import {
  fetchKeyFile,
  openFolderTarget,
  openWebDavTarget,
  publishKeyFile,
  type SyncTarget,
} from "../sync/mod.ts";
import { hasRclone, startWebDavServer } from "../tests/_webdav_server.ts";

const N = Number(Deno.env.get("SYNC_BENCH_MESSAGES") ?? 100_000);
const CONVERSATIONS = 500;
const PASS = "bench passphrase";
const KDF = { memoryKiB: 19456, iterations: 2 };
const dir = await Deno.makeTempDir({ prefix: "aico_sync_store_bench_" });
const words = (
  "the a to and of remember trip tomorrow coffee meeting call mom project " +
  "deadline weather train ticket book music dinner recipe garden walk " +
  "doctor appointment birthday gift idea notes summary plan weekend"
).split(" ");
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const sentence = () =>
  Array.from(
    { length: 20 + Math.floor(rand() * 40) },
    () => words[Math.floor(rand() * words.length)],
  ).join(" ");

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function open(
  d: string,
  sync?: { target: SyncTarget; deviceId: string },
): Promise<DataLayer> {
  return openDataLayer(d, {
    passphrase: PASS,
    create: true,
    kdf: KDF,
    cache: false,
    memory: false,
    analytics: false,
    ...(sync === undefined ? {} : { sync }),
  });
}

async function fill(data: DataLayer, n: number): Promise<number> {
  let sealed = 0;
  const per = Math.ceil(n / CONVERSATIONS);
  for (let c = 0; c < CONVERSATIONS && c * per < n; c++) {
    const id = `conv-${c}`;
    await data.conversations.createConversation({ id, title: `Topic ${c}` });
    const batch = Array.from(
      { length: Math.min(per, n - c * per) },
      (_, i) => {
        const content = sentence();
        sealed += new TextEncoder().encode(content).length + 29;
        return {
          role: i % 2 ? "assistant" as const : "user" as const,
          content,
          createdAt: 1_700_000_000_000 + c * per + i,
        };
      },
    );
    await data.conversations.appendMessages(id, batch);
  }
  return sealed;
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

async function count(data: DataLayer): Promise<number> {
  const rs = await data.storage.execute("SELECT COUNT(*) AS n FROM messages");
  return Number(rs.rows[0]!.n);
}

async function initial(
  label: string,
  openTarget: (name: string) => Promise<SyncTarget>,
  storedDir: (name: string) => string,
): Promise<void> {
  const target = await openTarget("initial");
  const aDir = join(dir, `${label}-a`), bDir = join(dir, `${label}-b`);
  // The history exists before sync is set up (as with `sync init`).
  let plain = await open(aDir);
  seed = 1;
  let t = performance.now();
  const sealed = await fill(plain, N);
  const importMs = performance.now() - t;
  await plain.close();
  t = performance.now();
  const a = await open(aDir, { target, deviceId: "a" });
  await publishKeyFile(target, join(aDir, "key.json"));
  await a.sync!.run();
  const pushMs = performance.now() - t;
  await a.close();
  await Deno.mkdir(bDir);
  await fetchKeyFile(target, join(bDir, "key.json"), PASS);
  t = performance.now();
  const b = await open(bDir, { target, deviceId: "b" });
  await b.sync!.run();
  const pullMs = performance.now() - t;
  const got = await count(b);
  await b.close();
  if (got !== N) throw new Error(`pull gave ${got} messages, not ${N}`);
  const stored = await dirBytes(storedDir("initial"));
  // Baselines: the same history appended to a store; the same objects raw.
  plain = await open(join(dir, `${label}-plain`));
  seed = 1;
  t = performance.now();
  await fill(plain, N);
  const appendMs = performance.now() - t;
  await plain.close();
  const names = await target.list();
  const blobs = await Promise.all(names.map((n) => target.read(n)));
  const raw = await openTarget("raw");
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
    `${label}: ${N} messages in ${CONVERSATIONS} conversations: ` +
      `first sync of the device holding them ${fmt(pushMs)} (import ${
        fmt(importMs)
      }), ` +
      `new device joins and pulls ${
        fmt(pullMs)
      }; baseline: appendMessages of the same ${fmt(appendMs)}, ` +
      `raw write of the same ${names.length} objects ${
        fmt(rawWriteMs)
      }, raw read ${fmt(rawReadMs)}; ` +
      `on the target ${
        mib(stored.bytes)
      } in ${stored.files} files, sealed data ${mib(sealed)}: ` +
      `${(stored.bytes / sealed).toFixed(2)}x (goal <= 1.5x)`,
  );
}

async function incrementalPair(label: string, target: SyncTarget) {
  const aDir = join(dir, `${label}-inc-a`), bDir = join(dir, `${label}-inc-b`);
  const a = await open(aDir, { target, deviceId: "a" });
  await publishKeyFile(target, join(aDir, "key.json"));
  await Deno.mkdir(bDir);
  await fetchKeyFile(target, join(bDir, "key.json"), PASS);
  const b = await open(bDir, { target, deviceId: "b" });
  const plain = await open(join(dir, `${label}-inc-plain`));
  // Some history first, so a pull reads only what is new.
  await fill(a, 2000);
  await fill(plain, 2000);
  await a.sync!.run();
  await b.sync!.run();
  const hundred = () =>
    Array.from({ length: 100 }, (_, i) => ({
      role: i % 2 ? "assistant" as const : "user" as const,
      content: sentence(),
    }));
  let n = 0;
  return {
    async sync() {
      await a.conversations.appendMessages("conv-0", hundred());
      await a.sync!.run();
      const r = await b.sync!.run();
      if (r.pulled.changes < 100) {
        throw new Error("incremental pull lost messages");
      }
    },
    async baseline() {
      const batch = hundred();
      await plain.conversations.appendMessages("conv-0", batch);
      const bytes = new TextEncoder().encode(JSON.stringify(batch));
      const name = `raw${n++}`;
      await target.writeIfAbsent(name, bytes);
      await target.read(name);
    },
  };
}

await initial(
  "folder",
  (name) => openFolderTarget(join(dir, "folder", name)),
  (name) => join(dir, "folder", name),
);
const folderInc = await incrementalPair(
  "folder",
  await openFolderTarget(join(dir, "folder", "inc")),
);
Deno.bench({
  name: "folder: incremental sync of 100 messages (real data layers)",
  group: "folder",
  fn: folderInc.sync,
});
Deno.bench({
  name:
    "folder: the same 100 appended without sync + raw write/read of their bytes",
  group: "folder",
  baseline: true,
  fn: folderInc.baseline,
});

// ---- new device after compaction -------------------------------------
const COMPACT_N = Number(Deno.env.get("SYNC_BENCH_COMPACT_MESSAGES") ?? 20_000);

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

async function joinAndPull(
  target: SyncTarget,
  name: string,
): Promise<{ ms: number; bytes: number; messages: number }> {
  const d = join(dir, name);
  await Deno.mkdir(d);
  await fetchKeyFile(target, join(d, "key.json"), PASS);
  const t = performance.now();
  const data = await open(d, { target, deviceId: "n" });
  const r = await data.sync!.run();
  const ms = performance.now() - t;
  const messages = await count(data);
  await data.close();
  await Deno.remove(d, { recursive: true });
  return { ms, bytes: r.pulled.bytes, messages };
}

const compacted = await (async () => {
  const tdir = join(dir, "compact", "target");
  const target = await openFolderTarget(tdir);
  const aDir = join(dir, "compact-a");
  const a = await open(aDir, { target, deviceId: "a" });
  await publishKeyFile(target, join(aDir, "key.json"));
  const per = Math.ceil(COMPACT_N / 200);
  for (let c = 0; c < 200; c++) {
    await a.conversations.createConversation({ id: `h${c}`, title: `T${c}` });
    await a.conversations.appendMessages(
      `h${c}`,
      Array.from({ length: per }, (_, i) => ({
        role: i % 2 ? "assistant" as const : "user" as const,
        content: sentence(),
      })),
    );
    if (c % 20 === 19) await a.sync!.run();
  }
  for (let c = 0; c < 160; c++) {
    await a.conversations.deleteConversation(`h${c}`);
  }
  for (let i = 0; i < 500; i++) {
    await a.config.set("ui", "theme", `v${i}`);
    if (i % 100 === 99) await a.sync!.run();
  }
  await a.sync!.run();
  const before = await dirBytes(tdir);
  const udir = join(dir, "compact", "uncompacted");
  await copyDir(tdir, udir);
  const uncompacted = await openFolderTarget(udir);
  const full = await joinAndPull(uncompacted, "compact-full");
  let t = performance.now();
  const report = await a.sync!.compact();
  const compactMs = performance.now() - t;
  await a.close();
  const after = await dirBytes(tdir);
  t = performance.now();
  const fresh = await joinAndPull(target, "compact-new");
  if (fresh.messages !== full.messages) {
    throw new Error(
      `compacted pull gave ${fresh.messages} messages, not ${full.messages}`,
    );
  }
  // deno-lint-ignore no-console
  console.log(
    `new device after compaction: history of ${
      200 * per
    } messages, ${full.messages} live; uncompacted pull ${fmt(full.ms)}, ${
      mib(full.bytes)
    } read, ${
      mib(before.bytes)
    } in ${before.files} files on the target; compaction ${
      fmt(compactMs)
    } (snapshot ${
      mib(report.bytes)
    }, ${report.deletedSegments} segments deleted); ` +
      `pull after compaction ${fmt(fresh.ms)}, ${mib(fresh.bytes)} read, ${
        mib(after.bytes)
      } in ${after.files} files: ${
        (full.bytes / fresh.bytes).toFixed(1)
      }x fewer bytes, ${(full.ms / fresh.ms).toFixed(1)}x faster`,
  );
  return { target, uncompacted };
})();
let joins = 0;
Deno.bench({
  name: "new device after compaction: join and pull the compacted target",
  group: "new device after compaction",
  n: 3,
  warmup: 0,
  async fn() {
    await joinAndPull(compacted.target, `bench-join-${joins++}`);
  },
});
Deno.bench({
  name:
    "new device after compaction: join and pull the same target uncompacted",
  group: "new device after compaction",
  baseline: true,
  n: 3,
  warmup: 0,
  async fn() {
    await joinAndPull(compacted.uncompacted, `bench-join-${joins++}`);
  },
});

const server = hasRclone() ? await startWebDavServer() : undefined;
if (server !== undefined) {
  await initial(
    "webdav",
    (name) => openWebDavTarget({ url: `${server.url}${name}/` }),
    (name) => join(server.dir, name),
  );
  const davInc = await incrementalPair(
    "webdav",
    await openWebDavTarget({ url: `${server.url}inc/` }),
  );
  Deno.bench({
    name: "webdav: incremental sync of 100 messages (real data layers)",
    group: "webdav",
    fn: davInc.sync,
  });
  Deno.bench({
    name:
      "webdav: the same 100 appended without sync + raw PUT/GET of their bytes",
    group: "webdav",
    baseline: true,
    fn: davInc.baseline,
  });
} else {
  // deno-lint-ignore no-console
  console.log(
    "rclone is not installed: WebDAV benches skipped (apt-get install rclone)",
  );
}

globalThis.addEventListener("unload", () => {
  // Deno.bench gives no teardown hook: stop the server and remove the folder
  // synchronously (open layers end with the process).
  if (server !== undefined) {
    try {
      Deno.kill(server.pid, "SIGTERM");
    } catch { /* gone */ }
    Deno.removeSync(server.dir, { recursive: true });
  }
  Deno.removeSync(dir, { recursive: true });
});
