// Repository benchmarks through openDataLayer (change feed and cache on, as
// users get it), each next to a raw baseline doing the same work in the
// same statement shape, in the same run:
//
// - "insert logs": 10k logs; raw = 128-row multi-VALUES inserts on
//   npm:libsql in one transaction; ours = data.logs.insertLogs.
// - "append messages": 100k sealed messages; raw = 128-row multi-VALUES
//   inserts with node:crypto AES-256-GCM sealing (random nonce, the same
//   row-bound AAD) in the same loop, one transaction; ours =
//   data.conversations.appendMessages. Goal: ours >= 0.9x raw.
// - "point read by id": 1000 lookups per iteration of a sealed message by
//   id, opened; raw = prepared get + decipher; ours =
//   data.conversations.getMessage. Goal: ours <= 1.2x raw.
// - "list messages": all of a 10k conversation in pages of 1000; raw =
//   the same keyset-paged select + decipher; ours =
//   data.conversations.listMessages. Goal: ours <= 1.1x raw.
//
// Both sides use encrypted files (the same page key), WAL,
// synchronous=FULL and the core schema's tables and indexes.
//
//   deno bench -A bench/repositories_bench.ts
//   (AICO_BENCH_SCALE=0.1 for a quick run at a tenth of the sizes)
import Database from "libsql";
import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import { openDataLayer } from "../mod.ts";
import { CORE_V1_UP, CORE_V2_UP } from "../repositories/core_schema.ts";
import { sealedColumnAad } from "../storage/mod.ts";
import type { LogInput, NewMessage } from "../repositories/mod.ts";

const SCALE = Number(Deno.env.get("AICO_BENCH_SCALE") ?? "1");
const LOG_ROWS = Math.round(10_000 * SCALE);
const MESSAGES = Math.round(100_000 * SCALE);
const LIST_SIZE = Math.round(10_000 * SCALE);
const LOOKUPS = 1000;
const CHUNK = 128;
const PAGE = 1000;

const dir = await Deno.makeTempDir({ prefix: "aico_repo_bench_" });
// The semantic-memory indexer and the analytics refresher are consumers of
// the feed with benches of their own (vector, embedding, analytics): off
// here, so ours does the same work as the baseline plus the feed and cache.
const data = await openDataLayer(`${dir}/layer`, {
  passphrase: "bench passphrase",
  create: true,
  kdf: { memoryKiB: 19456, iterations: 2 },
  memory: false,
  analytics: false,
});
const pageBytes = await data.key.purposeKeyBytes("libsql-page");
const pageKey = String.fromCharCode(...pageBytes.map((b) => b & 0x7f));
const fieldKey = await data.key.purposeKeyBytes("field-aead");

const raw = new Database(
  `${dir}/raw.db`,
  { encryptionKey: pageKey, timeout: 5000 } as never,
);
raw.exec(
  "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
);
for (const sql of [...CORE_V1_UP, ...CORE_V2_UP]) raw.exec(sql);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The sealed value layout of SealedColumn: 0x01 ‖ nonce ‖ ciphertext ‖ tag. */
function rawSeal(id: number, text: string): Uint8Array {
  const nonce = new Uint8Array(12);
  randomFillSync(nonce);
  const cipher = createCipheriv("aes-256-gcm", fieldKey, nonce);
  cipher.setAAD(sealedColumnAad("messages", "content", id, 1));
  const body = cipher.update(encoder.encode(text));
  const last = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(1 + 12 + body.length + last.length + 16);
  out[0] = 1;
  out.set(nonce, 1);
  out.set(body, 13);
  out.set(last, 13 + body.length);
  out.set(tag, 13 + body.length + last.length);
  return out;
}

function rawOpen(id: number, cell: Uint8Array | ArrayBuffer): string {
  // The driver gives a Buffer from get() and an ArrayBuffer from all().
  const sealed = cell instanceof Uint8Array ? cell : new Uint8Array(cell);
  const decipher = createDecipheriv(
    "aes-256-gcm",
    fieldKey,
    sealed.subarray(1, 13),
  );
  decipher.setAAD(sealedColumnAad("messages", "content", id, 1));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const a = decipher.update(sealed.subarray(13, sealed.length - 16));
  const b = decipher.final();
  return decoder.decode(b.length === 0 ? a : Buffer.concat([a, b]));
}

function multi(head: string, columns: number, rows: number): string {
  const one = `(${Array.from({ length: columns }, () => "?").join(", ")})`;
  return head + Array.from({ length: rows }, () => one).join(", ");
}

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

function messageRows(n: number): NewMessage[] {
  const rows = new Array<NewMessage>(n);
  for (let i = 0; i < n; i++) {
    rows[i] = {
      role: i % 2 ? "assistant" : "user",
      content: `${i}: ${MESSAGE_TEXT}`,
      createdAt: tsBase + i,
    };
  }
  tsBase += n;
  return rows;
}

const LOG_HEAD =
  "INSERT INTO logs (ts, level, module, message, context, trace_id) VALUES ";
const rawLogChunk = raw.prepare(multi(LOG_HEAD, 6, CHUNK));

Deno.bench({
  name: "raw npm:libsql 128-row inserts, 10k logs, one transaction",
  group: "insert logs",
  baseline: true,
  n: 30,
  warmup: 3,
  fn(b) {
    const rows = logRows();
    b.start();
    raw.exec("BEGIN IMMEDIATE");
    for (let c = 0; c < rows.length; c += CHUNK) {
      const part = rows.slice(c, c + CHUNK);
      const args: unknown[] = [];
      for (const r of part) {
        args.push(
          r.ts!,
          r.level,
          r.module,
          r.message,
          JSON.stringify(r.context),
          null,
        );
      }
      (part.length === CHUNK
        ? rawLogChunk
        : raw.prepare(multi(LOG_HEAD, 6, part.length))).run(args);
    }
    raw.exec("COMMIT");
    b.end();
  },
});

Deno.bench({
  name: "ours: data.logs.insertLogs, 10k logs (validated, one transaction)",
  group: "insert logs",
  n: 30,
  warmup: 3,
  async fn(b) {
    const rows = logRows();
    b.start();
    await data.logs.insertLogs(rows);
    b.end();
  },
});

const MSG_HEAD =
  "INSERT INTO messages (id, conversation_id, seq, role, content, created_at, model) VALUES ";
const rawMsgChunk = raw.prepare(multi(MSG_HEAD, 7, CHUNK));
let rawNextId = 1;
let rawConversation = 0;

/** Raw append with sealing: what appendMessages does, by hand. */
function rawAppend(id: string, rows: readonly NewMessage[]): void {
  raw.exec("BEGIN IMMEDIATE");
  const base = rawNextId;
  for (let c = 0; c < rows.length; c += CHUNK) {
    const stop = Math.min(rows.length, c + CHUNK);
    const args: unknown[] = [];
    for (let i = c; i < stop; i++) {
      const m = rows[i]!;
      const rowId = base + i;
      args.push(
        rowId,
        id,
        i + 1,
        m.role,
        rawSeal(rowId, m.content),
        m.createdAt!,
        null,
      );
    }
    (stop - c === CHUNK
      ? rawMsgChunk
      : raw.prepare(multi(MSG_HEAD, 7, stop - c)))
      .run(args);
  }
  raw.prepare(
    "UPDATE conversations SET last_seq = ?, message_count = ?, updated_at = ? WHERE id = ?",
  ).run([rows.length, rows.length, tsBase, id]);
  raw.exec("COMMIT");
  rawNextId += rows.length;
}

function rawConversationId(): string {
  const id = `raw-${rawConversation++}`;
  raw.prepare(
    "INSERT INTO conversations (id, created_at, updated_at) VALUES (?, 0, 0)",
  ).run([id]);
  return id;
}

Deno.bench({
  name: "raw npm:libsql 128-row inserts + node:crypto sealing, 100k messages",
  group: "append messages",
  baseline: true,
  n: 5,
  warmup: 1,
  fn(b) {
    const rows = messageRows(MESSAGES);
    const id = rawConversationId();
    b.start();
    rawAppend(id, rows);
    b.end();
  },
});

Deno.bench({
  name:
    "ours: data.conversations.appendMessages, 100k sealed (feed + cache on)",
  group: "append messages",
  n: 5,
  warmup: 1,
  async fn(b) {
    const rows = messageRows(MESSAGES);
    const c = await data.conversations.createConversation();
    b.start();
    await data.conversations.appendMessages(c.id, rows);
    b.end();
  },
});

// What the cache costs an append: the same append through a data layer
// without a cache (its subscriber skips insert events, so this should match).
const noCache = await openDataLayer(`${dir}/nocache`, {
  passphrase: "bench passphrase",
  create: true,
  kdf: { memoryKiB: 19456, iterations: 2 },
  cache: false,
  memory: false,
  analytics: false,
});
Deno.bench({
  name: "(breakdown) ours with cache: false, 100k sealed (feed on)",
  group: "append messages",
  n: 3,
  warmup: 1,
  async fn(b) {
    const rows = messageRows(MESSAGES);
    const c = await noCache.conversations.createConversation();
    b.start();
    await noCache.conversations.appendMessages(c.id, rows);
    b.end();
  },
});

// A 10k conversation on each side for reads.
const rawListId = rawConversationId();
const rawFirst = rawNextId;
rawAppend(rawListId, messageRows(LIST_SIZE));
const oursList = await data.conversations.createConversation();
const oursRange = await data.conversations.appendMessages(
  oursList.id,
  messageRows(LIST_SIZE),
);

let seed = 1;
function nextOffset(): number {
  seed = (seed * 48271) % 2147483647;
  return seed % LIST_SIZE;
}

const rawGet = raw.prepare(
  "SELECT id, conversation_id, seq, role, content, created_at, model FROM messages WHERE id = ?",
);

Deno.bench({
  name: "raw npm:libsql prepared get + decipher, 1000 lookups",
  group: "point read by id",
  baseline: true,
  n: 200,
  warmup: 20,
  fn() {
    for (let i = 0; i < LOOKUPS; i++) {
      const id = rawFirst + nextOffset();
      const row = rawGet.get([id]) as Record<string, unknown>;
      rawOpen(id, row.content as Uint8Array);
    }
  },
});

Deno.bench({
  name: "ours: data.conversations.getMessage, 1000 lookups",
  group: "point read by id",
  n: 200,
  warmup: 20,
  async fn() {
    for (let i = 0; i < LOOKUPS; i++) {
      await data.conversations.getMessage(oursRange.firstId + nextOffset());
    }
  },
});

const rawPage = raw.prepare(
  "SELECT id, seq, role, content, created_at, model FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
);

Deno.bench({
  name: "raw npm:libsql paged select + decipher, 10k messages",
  group: "list messages",
  baseline: true,
  n: 20,
  warmup: 3,
  fn() {
    let after = 0;
    let seen = 0;
    for (;;) {
      const rows = rawPage.all([rawListId, after, PAGE + 1]) as Record<
        string,
        unknown
      >[];
      const page = rows.slice(0, PAGE);
      for (const r of page) rawOpen(r.id as number, r.content as Uint8Array);
      seen += page.length;
      if (rows.length <= PAGE) break;
      after = page[page.length - 1]!.seq as number;
    }
    if (seen !== LIST_SIZE) throw new Error(`listed ${seen}`);
  },
});

Deno.bench({
  name: "ours: data.conversations.listMessages, 10k messages",
  group: "list messages",
  n: 20,
  warmup: 3,
  async fn() {
    let cursor: string | undefined;
    let seen = 0;
    do {
      const page = await data.conversations.listMessages(oursList.id, {
        limit: PAGE,
        ...(cursor === undefined ? {} : { cursor }),
      });
      seen += page.items.length;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    if (seen !== LIST_SIZE) throw new Error(`listed ${seen}`);
  },
});

globalThis.addEventListener("unload", () => {
  raw.close();
  // The data layer is left to the process exit (unload cannot await).
  Deno.removeSync(dir, { recursive: true });
});
