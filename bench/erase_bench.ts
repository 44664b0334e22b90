// Erase benchmarks: `data.erase({ conversation })` of a 10k-message
// conversation in a 1M-message store, next to a raw baseline doing the same
// deletes in the same statement shape on a copy of the same store, in the
// same run:
//
// - "erase 10k of 1M, store only": memory and analytics off. raw = npm:libsql
//   on a copy of the store: PRAGMA secure_delete = ON, one transaction
//   (SELECT the ids, DELETE the messages, gaps and conversation), then
//   PRAGMA wal_checkpoint(TRUNCATE). ours = data.erase() (also: the change
//   events, the drain, the change-feed cleanup, the cache wiped and
//   reopened, the audit event).
// - "erase 10k of 1M, with keyword index": memory on (keyword index only,
//   no vectors: background embedding off). raw = the same plus the keyword
//   rows deleted by rowid and FTS5 `optimize`; ours = data.erase().
//
// Each iteration erases another conversation (100 of 10k messages each);
// the stores are built once per run, with appendMessages (10k per call),
// in a temporary folder removed at the end.
//
//   deno bench -A bench/erase_bench.ts
//   (AICO_BENCH_SCALE=0.1 for a store of 100k messages)
import Database from "libsql";
import { type DataLayer, openDataLayer } from "../mod.ts";
import { closeAfterBenches } from "./_teardown.ts";
import type { NewMessage } from "../repositories/mod.ts";

const SCALE = Number(Deno.env.get("AICO_BENCH_SCALE") ?? "1");
const CONVERSATIONS = 100;
const PER = Math.max(10, Math.round(10_000 * SCALE));

const root = await Deno.makeTempDir({ prefix: "aico_erase_bench_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch {
    // already gone
  }
});

function messages(c: number): NewMessage[] {
  const t0 = Date.UTC(2025, 0, 1) + c * 86_400_000;
  return Array.from({ length: PER }, (_, i) => ({
    role: i % 2 ? "assistant" : "user",
    content: `conversation ${c} message ${i}: the kettle, the garden, word${
      (c * 7919 + i * 104729) % 50_000
    } and the weather today`,
    createdAt: t0 + i * 1000,
  }));
}

interface Built {
  data: DataLayer;
  raw: Database.Database;
  ours: string[];
  rawIds: string[];
}

async function build(name: string, memory: boolean): Promise<Built> {
  const started = performance.now();
  const data = await openDataLayer(`${root}/${name}`, {
    passphrase: "bench passphrase",
    create: true,
    kdf: { memoryKiB: 19456, iterations: 2 },
    memory: memory ? { background: false } : false,
    analytics: false,
  });
  const ids: string[] = [];
  for (let c = 0; c < CONVERSATIONS; c++) {
    const conv = await data.conversations.createConversation({
      id: `c${c}`,
    });
    await data.conversations.appendMessages(conv.id, messages(c));
    ids.push(conv.id);
  }
  await data.changes.drain();
  await data.storage.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  await data.storage.backup(`${root}/${name}-raw.db`);
  const pageBytes = await data.key.purposeKeyBytes("libsql-page");
  const pageKey = String.fromCharCode(...pageBytes.map((b) => b & 0x7f));
  const raw = new Database(
    `${root}/${name}-raw.db`,
    { encryptionKey: pageKey, timeout: 5000 } as never,
  );
  raw.exec(
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
  );
  const n = Number(
    (await data.storage.execute("SELECT COUNT(*) AS n FROM messages")).rows[0]
      ?.n,
  );
  // deno-lint-ignore no-console
  console.log(
    `built ${name}: ${n} messages in ${CONVERSATIONS} conversations in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
  // Erased from the middle of the store first.
  const order = [...ids.slice(50), ...ids.slice(0, 50)];
  return { data, raw, ours: [...order], rawIds: [...order] };
}

function rawErase(raw: Database.Database, id: string, memory: boolean): void {
  raw.exec("PRAGMA secure_delete = ON");
  raw.exec("BEGIN IMMEDIATE");
  const rows = raw.prepare(
    "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id",
  ).all([id]) as { id: number }[];
  raw.prepare("DELETE FROM messages WHERE conversation_id = ?").run([id]);
  raw.prepare("DELETE FROM message_gaps WHERE conversation_id = ?").run([id]);
  raw.prepare("DELETE FROM conversations WHERE id = ?").run([id]);
  if (memory) {
    const fts = raw.prepare("DELETE FROM memory_fts WHERE rowid = ?");
    for (const r of rows) fts.run([r.id]);
    raw.prepare("DELETE FROM memory_items WHERE conversation_id = ?").run([id]);
  }
  raw.exec("COMMIT");
  if (memory) {
    raw.exec("INSERT INTO memory_fts (memory_fts) VALUES ('optimize')");
  }
  raw.prepare("PRAGMA wal_checkpoint(TRUNCATE)").all();
}

const plain = await build("plain", false);
const indexed = await build("indexed", true);

for (
  const [group, b, memory] of [
    ["erase 10k of 1M, store only", plain, false],
    ["erase 10k of 1M, with keyword index", indexed, true],
  ] as const
) {
  Deno.bench({
    name: `raw npm:libsql secure delete + checkpoint${
      memory ? " + FTS optimize" : ""
    }`,
    group,
    baseline: true,
    n: 3,
    warmup: 1,
    fn() {
      rawErase(b.raw, b.rawIds.shift()!, memory);
    },
  });
  Deno.bench({
    name: "ours data.erase({ conversation })",
    group,
    n: 3,
    warmup: 1,
    async fn() {
      const r = await b.data.erase({ conversation: b.ours.shift()! });
      if (r.messages !== PER) throw new Error(`erased ${r.messages}`);
    },
  });
}

closeAfterBenches(async () => {
  for (const b of [plain, indexed]) {
    await b.data.close();
    b.raw.close();
  }
});
