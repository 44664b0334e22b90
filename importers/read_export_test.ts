import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readExport, type ReadExportOptions } from "./read_export.ts";
import type { ImportedConversation } from "./types.ts";
import { isAicoDataError } from "../errors.ts";

const DATA = fileURLToPath(new URL("../testdata/exports/", import.meta.url));

async function read(
  name: string,
  options: ReadExportOptions = {},
): Promise<ImportedConversation[]> {
  const out: ImportedConversation[] = [];
  for await (const c of readExport(`${DATA}${name}`, options)) out.push(c);
  return out;
}

function byKey(all: ImportedConversation[], key: string): ImportedConversation {
  const c = all.find((c) => c.sourceKey === key);
  assert.ok(c, `no conversation ${key}`);
  return c;
}

async function rejects(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(isAicoDataError(err, code as never), String(err));
    return err as Error;
  }
  assert.fail(`expected ${code}`);
}

Deno.test("readExport() follows current_node to the root and skips hidden and null nodes", async () => {
  const c = byKey(
    await read("chatgpt_conversations.json"),
    "chatgpt:cg-branches",
  );
  assert.equal(c.title, "Tea or coffee");
  assert.deepEqual(c.messages.map((m) => [m.role, m.content]), [
    ["user", "Should I drink tea or coffee?"],
    ["assistant", "Green tea has less caffeine."],
  ]);
  assert.equal(c.createdAt, 1_700_000_000_250);
  assert.equal(c.messages[0]?.createdAt, 1_700_000_001_500);
  assert.equal(c.messages[1]?.model, "gpt-4o");
  assert.equal(c.messages[0]?.sourceKey, "chatgpt:cg-branches:u1");
});

Deno.test("readExport() keeps other branches only with allBranches", async () => {
  const main = await read("chatgpt_conversations.json");
  assert.equal(
    main.filter((c) => c.sourceKey.includes("cg-branches")).length,
    1,
  );
  const all = await read("chatgpt_conversations.json", { allBranches: true });
  const branch = byKey(all, "chatgpt:cg-branches~a1b");
  assert.equal(branch.title, "Tea or coffee (branch 2)");
  assert.deepEqual(branch.messages.map((m) => m.content), [
    "Tea or coffee before running?",
    "Coffee, an hour before.",
  ]);
  assert.equal(branch.messages[1]?.model, "gpt-4o-mini");
  // cg-multimodal has two leaves: its other branch appears too.
  assert.ok(all.some((c) => c.sourceKey === "chatgpt:cg-multimodal~x"));
});

Deno.test("readExport() takes the newest leaf without current_node, multimodal text, null times", async () => {
  const c = byKey(
    await read("chatgpt_conversations.json"),
    "chatgpt:cg-multimodal",
  );
  assert.equal(c.title, undefined);
  assert.deepEqual(c.messages.map((m) => m.content), [
    "What is in this photo?",
    "A mountain lake.",
    "Which mountain?",
  ]);
  // A null time stays undefined here (the importer takes the previous one).
  assert.equal(c.messages[2]?.createdAt, undefined);
  assert.equal(c.messages[0]?.createdAt, 1_700_000_201_000);
});

Deno.test("readExport() keeps code and execution output as role tool, skips thoughts and hidden context", async () => {
  const c = byKey(await read("chatgpt_conversations.json"), "chatgpt:cg-tools");
  assert.deepEqual(c.messages.map((m) => [m.role, m.content]), [
    ["user", "Plot my weekly km: 10, 12, 15"],
    ["tool", "plt.plot([10, 12, 15])"],
    ["tool", "<Figure size 640x480>"],
    ["assistant", "Here is your plot: a steady rise."],
  ]);
  const empty = byKey(
    await read("chatgpt_conversations.json"),
    "chatgpt:cg-empty",
  );
  assert.equal(empty.messages.length, 0);
  assert.equal(empty.title, "Empty chat");
});

Deno.test("readExport() reads Claude text blocks, not thinking; tool blocks and attachments by rule", async () => {
  const all = await read("claude_conversations.json");
  const t = byKey(all, "claude:cl-thinking");
  assert.deepEqual(t.messages.map((m) => [m.role, m.content]), [
    ["user", "Does tea help me sleep?"],
    ["assistant", "Chamomile can help."],
  ]);
  assert.equal(t.messages[1]?.createdAt, Date.parse("2025-01-10T08:00:05Z"));
  const tools = byKey(all, "claude:cl-tools");
  assert.deepEqual(tools.messages.map((m) => [m.role, m.content]), [
    ["user", "[attachment: plan.txt]\nDay 1: Gornergrat"],
    ["user", "Weather in Zermatt tomorrow?"],
    ["assistant", "Let me check."],
    ["tool", 'tool_use web_search: {"query":"Zermatt weather"}'],
    ["tool", "tool_result web_search: Sunny, 5°C"],
    ["assistant", "Sunny and 5°C: good for hiking."],
  ]);
  const noName = byKey(all, "claude:cl-noname");
  assert.equal(noName.title, undefined);
  assert.deepEqual(noName.messages.map((m) => m.content), [
    "Remind me to call Anna",
  ]);
  assert.equal(byKey(all, "claude:cl-empty").messages.length, 0);
});

Deno.test("readExport() reads the same conversations from the ZIP exports as from their JSON", async () => {
  assert.deepEqual(
    await read("chatgpt_export.zip"),
    await read("chatgpt_conversations.json"),
  );
  assert.deepEqual(
    await read("claude_export.zip"),
    await read("claude_conversations.json"),
  );
});

Deno.test("readExport() detects each format and honours a forced one", async () => {
  const formats: string[] = [];
  const onFormat = (f: string) => formats.push(f);
  await read("chatgpt_export.zip", { onFormat });
  await read("claude_conversations.json", { onFormat });
  await read("messages.jsonl", { onFormat });
  assert.deepEqual(formats, ["chatgpt", "claude", "jsonl"]);
  // Forcing Claude on a ChatGPT file: its conversations lack "uuid".
  await rejects(
    read("chatgpt_conversations.json", { format: "claude" }),
    "IMPORT_INVALID",
  );
});

Deno.test("readExport() reads JSON Lines with position-and-hash source keys", async () => {
  const all = await read("messages.jsonl");
  assert.deepEqual(all.map((c) => c.preferredId), ["jl-1", "jl-2"]);
  const keys = all[0]!.messages.map((m) => m.sourceKey);
  assert.equal(new Set(keys).size, 3, "identical lines get distinct keys");
  assert.equal(all[0]!.title, "Short");
  assert.equal(all[1]!.messages[0]?.content, "🌱 é");
});

Deno.test("readExport() reads standard input for -", async () => {
  const bytes = await Deno.readFile(`${DATA}claude_conversations.json`);
  const out: ImportedConversation[] = [];
  const stdin = new Blob([bytes]).stream();
  for await (const c of readExport("-", { stdin })) out.push(c);
  assert.equal(out.length, 4);
});

Deno.test("readExport() names the file, the conversation and the field of a malformed export", async () => {
  const e1 = await rejects(read("malformed_chatgpt.json"), "IMPORT_INVALID");
  assert.match(
    e1.message,
    /malformed_chatgpt\.json.*cg-multimodal.*mapping\["y"\]\.message\.create_time/,
  );
  const e2 = await rejects(read("malformed_claude.json"), "IMPORT_INVALID");
  assert.match(e2.message, /cl-tools.*chat_messages\[1\]\.sender/);
  const e3 = await rejects(read("malformed.jsonl"), "IMPORT_INVALID");
  assert.match(e3.message, /line 6/);
  await rejects(read("truncated.json"), "IMPORT_INVALID");
  await rejects(read("corrupt_crc.zip"), "IMPORT_INVALID");
  await rejects(read("no-such-file.json"), "NOT_FOUND");
});

Deno.test("readExport() stops with the signal's reason", async () => {
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(
    read("sample_chatgpt_export.json", { signal: controller.signal }),
    /stop/,
  );
});

Deno.test("readExport() splits an array whose elements straddle chunk boundaries", async () => {
  const text = JSON.stringify([
    { uuid: "a", name: 'q"uo\\te [x] {y}', chat_messages: [] },
    { uuid: "b", name: "é", chat_messages: [] },
    { uuid: "c", name: "ends in \\", chat_messages: [] },
    { uuid: "d", name: '\\"}]\\\\', chat_messages: [] },
  ]);
  const bytes = new TextEncoder().encode(text);
  // One byte per chunk: every state crosses a boundary.
  const stdin = new ReadableStream<Uint8Array>({
    start(c) {
      for (const b of bytes) c.enqueue(new Uint8Array([b]));
      c.close();
    },
  });
  const out: ImportedConversation[] = [];
  for await (const c of readExport("-", { stdin })) out.push(c);
  assert.deepEqual(out.map((c) => c.title), [
    'q"uo\\te [x] {y}',
    "é",
    "ends in \\",
    '\\"}]\\\\',
  ]);
  // The same bytes in chunks of every size from 2 to 9.
  for (let size = 2; size < 10; size++) {
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += size) {
          c.enqueue(bytes.slice(i, i + size));
        }
        c.close();
      },
    });
    const titles: (string | undefined)[] = [];
    for await (const c of readExport("-", { stdin: chunked })) {
      titles.push(c.title);
    }
    assert.deepEqual(titles, out.map((c) => c.title), `chunks of ${size}`);
  }
});
