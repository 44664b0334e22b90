// deno-lint-ignore-file no-console
// Export benchmark: 100k messages (100 conversations of 1,000, ~200 B each)
// exported sealed as JSON, next to a raw baseline doing the same work in the
// same run:
//
// - ours = data.exportData(file) (sealed JSON, format v2: conversations read
//   a page of 1,000 messages at a time through the repository, contents
//   opened, JSON streamed into 64 KiB chunks sealed with the export key,
//   written as they fill).
// - raw = one npm:libsql SELECT of the same rows on the same file (a second
//   connection), every content opened with node:crypto AES-256-GCM (the
//   same row-bound AAD), the whole array JSON.stringify'd at once, sealed in
//   64 KiB chunks with the same export key, written with one writeFile.
//
// Besides the time, the peak JS heap growth of each side is printed
// (sampled every 5 ms, so a lower bound): the streamed export should hold one page and one chunk, the
// raw one holds every row, the JSON string and the sealed output at once.
//
//   deno bench -A bench/export_bench.ts
//   (AICO_BENCH_SCALE=0.1 for a quick run at a tenth of the size)
import Database from "libsql";
import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import { openDataLayer } from "../mod.ts";
import { sealedColumnAad } from "../storage/mod.ts";
import type { NewMessage } from "../repositories/mod.ts";
import { closeAfterBenches } from "./_teardown.ts";

const SCALE = Number(Deno.env.get("AICO_BENCH_SCALE") ?? "1");
const CONVERSATIONS = Math.max(1, Math.round(100 * SCALE));
const PER = 1000;
const MESSAGES = CONVERSATIONS * PER;
const CHUNK = 65_536;

const dir = await Deno.makeTempDir({ prefix: "aico_export_bench_" });
const data = await openDataLayer(`${dir}/layer`, {
  passphrase: "bench passphrase",
  create: true,
  kdf: { memoryKiB: 19456, iterations: 2 },
  memory: false,
  analytics: false,
});
const words =
  "the quick brown fox jumps over a lazy dog while we talk about tea"
    .split(" ");
for (let c = 0; c < CONVERSATIONS; c++) {
  const chat = await data.conversations.createConversation({
    title: `Conversation ${c}`,
    createdAt: 1_700_000_000_000 + c,
  });
  const batch: NewMessage[] = [];
  for (let i = 0; i < PER; i++) {
    let text = `${c}/${i}: `;
    while (text.length < 200) text += words[(i * 7 + text.length) % 13] + " ";
    batch.push({
      role: i % 2 === 0 ? "user" : "assistant",
      content: text,
      createdAt: 1_700_000_000_000 + c * PER + i,
    });
  }
  await data.conversations.appendMessages(chat.id, batch);
}

const pageBytes = await data.key.purposeKeyBytes("libsql-page");
const pageKey = String.fromCharCode(...pageBytes.map((b) => b & 0x7f));
const fieldKey = await data.key.purposeKeyBytes("field-aead");
const exportKey = await data.key.purposeKeyBytes("export");
const raw = new Database(
  `${dir}/layer/data.db`,
  { encryptionKey: pageKey, timeout: 5000 } as never,
);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function rawOpen(id: number, cell: Uint8Array | ArrayBuffer): string {
  // The driver gives an ArrayBuffer from all().
  const sealed = cell instanceof Uint8Array ? cell : new Uint8Array(cell);
  const d = createDecipheriv("aes-256-gcm", fieldKey, sealed.subarray(1, 13));
  d.setAAD(sealedColumnAad("messages", "content", id, 1));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = d.update(sealed.subarray(13, sealed.length - 16));
  d.final();
  return decoder.decode(body);
}

function rawSealChunk(plain: Uint8Array, aad: string): Uint8Array {
  const nonce = new Uint8Array(12);
  randomFillSync(nonce);
  const c = createCipheriv("aes-256-gcm", exportKey, nonce);
  c.setAAD(encoder.encode(aad));
  const body = c.update(plain);
  c.final();
  const out = new Uint8Array(1 + 12 + body.length + 16);
  out[0] = 1;
  out.set(nonce, 1);
  out.set(body, 13);
  out.set(c.getAuthTag(), 13 + body.length);
  return out;
}

let run = 0;
async function rawExport(): Promise<number> {
  const rows = raw.prepare(
    "SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.created_at, m.model FROM messages m ORDER BY m.conversation_id, m.seq",
  ).all([]) as {
    id: number;
    conversation_id: string;
    seq: number;
    role: string;
    content: ArrayBuffer;
    created_at: number;
    model: string | null;
  }[];
  const messages = rows.map((r) => ({
    conversationId: r.conversation_id,
    seq: r.seq,
    role: r.role,
    content: rawOpen(r.id, r.content),
    createdAt: r.created_at,
    model: r.model,
  }));
  const plain = encoder.encode(JSON.stringify({ messages }));
  const lines: string[] = ['{"format":"raw"}'];
  for (let at = 0, i = 0; at < plain.length || i === 0; at += CHUNK, i++) {
    lines.push(
      rawSealChunk(plain.subarray(at, at + CHUNK), `raw/${i}`).toBase64(),
    );
  }
  const file = `${dir}/raw-${run++}.json`;
  await Deno.writeTextFile(file, lines.join("\n") + "\n");
  await Deno.remove(file);
  return messages.length;
}

async function oursExport(): Promise<number> {
  const file = `${dir}/ours-${run++}.json`;
  const r = await data.exportData(file);
  await Deno.remove(file);
  return r.messages;
}

/** Runs `fn`, sampling the JS heap; returns the time and the peak heap growth. */
async function measure(
  fn: () => Promise<number>,
): Promise<{ ms: number; peakMiB: number; n: number }> {
  const start = Deno.memoryUsage().heapUsed;
  let peak = start;
  const sample = () => {
    peak = Math.max(peak, Deno.memoryUsage().heapUsed);
  };
  const timer = setInterval(sample, 5);
  const t0 = performance.now();
  const n = await fn();
  const ms = performance.now() - t0;
  clearInterval(timer);
  sample();
  return { ms, peakMiB: (peak - start) / 1048576, n };
}

// A summary printed before Deno.bench's own table: three runs each,
// alternating, medians.
{
  const r: { ms: number; peakMiB: number }[] = [];
  const o: { ms: number; peakMiB: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const b = await measure(oursExport);
    const a = await measure(rawExport);
    if (a.n !== MESSAGES || b.n !== MESSAGES) {
      throw new Error(`exported ${a.n} / ${b.n} of ${MESSAGES} messages`);
    }
    r.push(a);
    o.push(b);
  }
  const med = (xs: number[]) => xs.sort((x, y) => x - y)[1]!;
  const rawMs = med(r.map((x) => x.ms));
  const oursMs = med(o.map((x) => x.ms));
  console.log(
    `export ${MESSAGES} messages sealed JSON: ours ${oursMs.toFixed(0)} ms (${
      (MESSAGES / oursMs * 1000).toFixed(0)
    } msg/s, peak heap +${med(o.map((x) => x.peakMiB)).toFixed(0)} MiB), raw ${
      rawMs.toFixed(0)
    } ms (peak heap +${
      med(r.map((x) => x.peakMiB)).toFixed(0)
    } MiB), ours/raw ${(oursMs / rawMs).toFixed(2)}x; load ${
      Deno.loadavg().map((x) => x.toFixed(2)).join(" ")
    }`,
  );
}

Deno.bench({
  name: `raw SELECT + open + JSON.stringify + seal, ${MESSAGES} messages`,
  group: "export",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn() {
    await rawExport();
  },
});

Deno.bench({
  name: `data.exportData() sealed JSON, ${MESSAGES} messages`,
  group: "export",
  n: 3,
  warmup: 1,
  async fn() {
    await oursExport();
  },
});

closeAfterBenches(async () => {
  raw.close();
  await data.close();
});
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // already gone
  }
});
