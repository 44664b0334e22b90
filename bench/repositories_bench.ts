// Repository benchmarks, each next to its baseline in the same run:
//
// - "insert logs": batched LogRepository.insertLogs of 10k rows vs a raw
//   `npm:libsql` prepared insert loop of the same rows in one transaction.
//   Goal: ours >= 0.5x the baseline.
// - "append messages": 100k messages with sealed content through
//   ConversationRepository.appendMessages vs the raw prepared insert of the
//   same rows unsealed. Goal: ours >= 0.4x the baseline.
//
// Both sides use encrypted files (same page key), WAL, synchronous=FULL and
// the core schema's tables and indexes.
//
//   deno bench -A bench/repositories_bench.ts
import Database from "libsql";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { CORE_V1_UP, coreSchema } from "../repositories/core_schema.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { openStorage } from "../storage/mod.ts";
import {
  createConversationRepository,
  createLogRepository,
  type LogInput,
  type NewMessage,
} from "../repositories/mod.ts";

const LOG_ROWS = 10_000;
const MESSAGES = 100_000;

const dir = await Deno.makeTempDir({ prefix: "aico_repo_bench_" });
const key = await importDataKey(generateDataKey());
const pageBytes = await key.purposeKeyBytes("libsql-page");
const pageKey = String.fromCharCode(...pageBytes.map((b) => b & 0x7f));

const raw = new Database(
  `${dir}/raw.db`,
  { encryptionKey: pageKey, timeout: 5000 } as never,
);
raw.exec(
  "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
);
for (const sql of CORE_V1_UP) raw.exec(sql);

const storage = await openStorage(`${dir}/ours.db`, { key });
await (await openMigrator(storage, createSchemaRegistry([coreSchema])))
  .migrate();
const logs = createLogRepository(storage);
const conversations = createConversationRepository(storage);

const LEVELS = ["debug", "info", "warn", "error"] as const;
let tsBase = 1_700_000_000_000;

function logRows(): LogInput[] {
  const rows = new Array<LogInput>(LOG_ROWS);
  for (let i = 0; i < LOG_ROWS; i++) {
    rows[i] = {
      ts: tsBase + i,
      level: LEVELS[i % 4]!,
      module: `module.${i % 12}`,
      message: `request ${i} handled in ${i % 97} ms for session abc-${i % 31}`,
      context: { i, route: "/api/chat", ok: i % 5 !== 0 },
    };
  }
  tsBase += LOG_ROWS;
  return rows;
}

const MESSAGE_TEXT = "I think we should plan the trip for next weekend, " +
  "the weather looks fine and the trains are not too busy then. ";

function messageRows(): NewMessage[] {
  const rows = new Array<NewMessage>(MESSAGES);
  for (let i = 0; i < MESSAGES; i++) {
    rows[i] = {
      role: i % 2 ? "assistant" : "user",
      content: `${i}: ${MESSAGE_TEXT}`,
      createdAt: tsBase + i,
    };
  }
  tsBase += MESSAGES;
  return rows;
}

Deno.bench({
  name: "raw npm:libsql prepared insert loop, 10k logs, one transaction",
  group: "insert logs",
  baseline: true,
  n: 30,
  warmup: 3,
  fn(b) {
    const rows = logRows();
    b.start();
    const stmt = raw.prepare(
      "INSERT INTO logs (ts, level, module, message, context, trace_id) VALUES (?, ?, ?, ?, ?, ?)",
    );
    raw.exec("BEGIN IMMEDIATE");
    for (const r of rows) {
      stmt.run([
        r.ts!,
        r.level,
        r.module,
        r.message,
        JSON.stringify(r.context),
        null,
      ]);
    }
    raw.exec("COMMIT");
    b.end();
  },
});

Deno.bench({
  name: "LogRepository.insertLogs, 10k logs (validated, one transaction)",
  group: "insert logs",
  n: 30,
  warmup: 3,
  async fn(b) {
    const rows = logRows();
    b.start();
    await logs.insertLogs(rows);
    b.end();
  },
});

let rawConversation = 0;
Deno.bench({
  name: "raw npm:libsql prepared insert loop, 100k messages unsealed",
  group: "append messages",
  baseline: true,
  n: 5,
  warmup: 1,
  fn(b) {
    const rows = messageRows();
    const id = `raw-${rawConversation++}`;
    raw.prepare(
      "INSERT INTO conversations (id, created_at, updated_at) VALUES (?, 0, 0)",
    ).run([id]);
    const encoder = new TextEncoder();
    b.start();
    const stmt = raw.prepare(
      "INSERT INTO messages (conversation_id, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)",
    );
    raw.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < rows.length; i++) {
      const m = rows[i]!;
      stmt.run([id, i + 1, m.role, encoder.encode(m.content), m.createdAt!]);
    }
    raw.exec(
      "UPDATE conversations SET last_seq = 100000, message_count = 100000 WHERE id = 'x'",
    );
    raw.exec("COMMIT");
    b.end();
  },
});

Deno.bench({
  name: "ConversationRepository.appendMessages, 100k messages sealed",
  group: "append messages",
  n: 5,
  warmup: 1,
  async fn(b) {
    const rows = messageRows();
    const c = await conversations.createConversation();
    b.start();
    await conversations.appendMessages(c.id, rows);
    b.end();
  },
});

// Where the time of the sealed append goes: sealing alone, no insert, in the
// stages appendMessages uses (SealedColumn.sealBatch of 1024 values).
const column = storage.sealedColumn("bench_only", "content");
Deno.bench({
  name:
    "(breakdown) SealedColumn.sealBatch of the same 100k contents, stages of 1024, no insert",
  group: "append messages",
  n: 3,
  warmup: 1,
  async fn(b) {
    const rows = messageRows();
    b.start();
    for (let s = 0; s < rows.length; s += 1024) {
      await column.sealBatch(
        rows.slice(s, s + 1024).map((m, j) => ({
          rowKey: s + j + 1,
          value: m.content,
        })),
      );
    }
    b.end();
  },
});

globalThis.addEventListener("unload", () => {
  raw.close();
  Deno.removeSync(dir, { recursive: true });
});
