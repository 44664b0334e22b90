// Writes the import fixtures of this folder (all written by us, from the
// documented shapes of ChatGPT and Claude exports). Run from the repository
// root:  deno run --allow-write=testdata/exports testdata/exports/generate.ts
// The bench imports writeChatgptExport() to make large exports.
import { crc32 } from "node:zlib";
import { SAMPLE_TOPICS as TOPICS, sampleChatgptExport } from "../../cli/_sample.ts";

export { sampleChatgptExport };

const HERE = new URL(".", import.meta.url);

type Json = unknown;

function node(
  id: string,
  parent: string | null,
  children: string[],
  message: Json,
): Json {
  return { id, parent, children, message };
}

function msg(
  id: string,
  role: string,
  parts: Json[] | undefined,
  createTime: number | null,
  extra: Record<string, Json> = {},
): Json {
  return {
    id,
    author: { role, name: null, metadata: {} },
    create_time: createTime,
    update_time: null,
    content: parts === undefined
      ? extra.content
      : { content_type: extra.content_type ?? "text", parts },
    status: "finished_successfully",
    end_turn: true,
    weight: 1.0,
    metadata: extra.metadata ?? {},
    recipient: extra.recipient ?? "all",
  };
}

/** The ChatGPT fixture: every case of the importer's rules. */
export function chatgptFixture(): Json[] {
  const t0 = 1_700_000_000;
  return [
    {
      // Branches: the user edited their question; current_node is on the
      // FIRST branch (older), so the newest leaf is not what they last saw.
      title: "Tea or coffee",
      create_time: t0 + 0.25,
      update_time: t0 + 100.5,
      id: "cg-branches",
      conversation_id: "cg-branches",
      current_node: "a1",
      default_model_slug: "gpt-4o",
      mapping: {
        root: node("root", null, ["sys"], null),
        sys: node(
          "sys",
          "root",
          ["u1", "u1b"],
          msg("sys", "system", [""], null, {
            metadata: { is_visually_hidden_from_conversation: true },
          }),
        ),
        u1: node(
          "u1",
          "sys",
          ["a1"],
          msg("u1", "user", ["Should I drink tea or coffee?"], t0 + 1.5),
        ),
        a1: node(
          "a1",
          "u1",
          [],
          msg("a1", "assistant", ["Green tea has less caffeine."], t0 + 2.75, {
            metadata: { model_slug: "gpt-4o" },
          }),
        ),
        u1b: node(
          "u1b",
          "sys",
          ["a1b"],
          msg("u1b", "user", ["Tea or coffee before running?"], t0 + 50),
        ),
        a1b: node(
          "a1b",
          "u1b",
          [],
          msg("a1b", "assistant", ["Coffee, an hour before."], t0 + 51, {
            metadata: { model_slug: "gpt-4o-mini" },
          }),
        ),
      },
    },
    {
      // No current_node: the newest leaf wins. Multimodal parts with an image
      // asset pointer, integer and null timestamps, a null title.
      title: null,
      create_time: t0 + 200,
      update_time: t0 + 300,
      id: "cg-multimodal",
      mapping: {
        r: node("r", null, ["u"], null),
        u: node(
          "u",
          "r",
          ["x", "y"],
          msg("u", "user", [
            {
              content_type: "image_asset_pointer",
              asset_pointer: "file-service://file-abc",
              size_bytes: 1234,
              width: 10,
              height: 10,
            },
            "What is in this photo?",
          ], t0 + 201, { content_type: "multimodal_text" }),
        ),
        x: node(
          "x",
          "u",
          [],
          msg("x", "assistant", ["An older answer."], t0 + 202),
        ),
        y: node(
          "y",
          "u",
          ["z"],
          msg("y", "assistant", ["A mountain lake."], t0 + 210),
        ),
        z: node(
          "z",
          "y",
          [],
          msg("z", "user", ["Which mountain?"], null),
        ),
      },
    },
    {
      // Code the assistant runs, its execution output, the model's hidden
      // reasoning, custom instructions and a tool message.
      title: "Plot my runs",
      create_time: t0 + 400,
      update_time: t0 + 500,
      id: "cg-tools",
      current_node: "a2",
      mapping: {
        r: node("r", null, ["ctx"], null),
        ctx: node(
          "ctx",
          "r",
          ["u"],
          msg("ctx", "user", undefined, t0 + 400, {
            content: {
              content_type: "user_editable_context",
              user_profile: "I run",
              user_instructions: "Be brief",
            },
            metadata: { is_visually_hidden_from_conversation: true },
          }),
        ),
        u: node(
          "u",
          "ctx",
          ["th"],
          msg("u", "user", ["Plot my weekly km: 10, 12, 15"], t0 + 401),
        ),
        th: node(
          "th",
          "u",
          ["code"],
          msg("th", "assistant", undefined, t0 + 402, {
            content: {
              content_type: "thoughts",
              thoughts: [{ summary: "plan", content: "use matplotlib" }],
            },
          }),
        ),
        code: node(
          "code",
          "th",
          ["out"],
          msg("code", "assistant", undefined, t0 + 403, {
            content: {
              content_type: "code",
              language: "python",
              text: "plt.plot([10, 12, 15])",
            },
            recipient: "python",
          }),
        ),
        out: node(
          "out",
          "code",
          ["a2"],
          msg("out", "tool", undefined, t0 + 404, {
            content: {
              content_type: "execution_output",
              text: "<Figure size 640x480>",
            },
          }),
        ),
        a2: node(
          "a2",
          "out",
          [],
          msg("a2", "assistant", ["Here is your plot: a steady rise."], 1_700_000_405, {
            metadata: { model_slug: "gpt-4o" },
          }),
        ),
      },
    },
    {
      // An empty conversation: only the root.
      title: "Empty chat",
      create_time: t0 + 600,
      update_time: t0 + 600,
      id: "cg-empty",
      current_node: "r",
      mapping: { r: node("r", null, [], null) },
    },
  ];
}

/** The Claude fixture: every case of the importer's rules. */
export function claudeFixture(): Json[] {
  return [
    {
      uuid: "cl-thinking",
      name: "Sleep and tea",
      summary: "",
      created_at: "2025-01-10T08:00:00.000000Z",
      updated_at: "2025-01-10T08:05:00.000000Z",
      account: { uuid: "acc-1" },
      chat_messages: [
        {
          uuid: "m1",
          text: "Does tea help me sleep?",
          content: [{
            type: "text",
            text: "Does tea help me sleep?",
            citations: [],
          }],
          sender: "human",
          created_at: "2025-01-10T08:00:00.000000Z",
          updated_at: "2025-01-10T08:00:00.000000Z",
          attachments: [],
          files: [],
        },
        {
          uuid: "m2",
          // The top-level text holds the thinking too: not answer text.
          text: "Let me think about caffeine. Chamomile can help.",
          content: [
            { type: "thinking", thinking: "Let me think about caffeine." },
            { type: "text", text: "Chamomile can help.", citations: [] },
          ],
          sender: "assistant",
          created_at: "2025-01-10T08:00:05.000000Z",
          updated_at: "2025-01-10T08:00:05.000000Z",
          attachments: [],
          files: [],
        },
      ],
    },
    {
      uuid: "cl-tools",
      name: "Weather in Zermatt",
      created_at: "2025-02-01T12:00:00Z",
      updated_at: "2025-02-01T12:01:00Z",
      chat_messages: [
        {
          uuid: "t1",
          text: "",
          content: [{ type: "text", text: "Weather in Zermatt tomorrow?" }],
          sender: "human",
          created_at: "2025-02-01T12:00:00Z",
          attachments: [{
            file_name: "plan.txt",
            file_size: 20,
            file_type: "txt",
            extracted_content: "Day 1: Gornergrat",
          }],
          files: [{ file_name: "photo.jpg" }],
        },
        {
          uuid: "t2",
          text: "",
          content: [
            { type: "text", text: "Let me check." },
            {
              type: "tool_use",
              name: "web_search",
              input: { query: "Zermatt weather" },
            },
            {
              type: "tool_result",
              name: "web_search",
              content: [{ type: "text", text: "Sunny, 5°C" }],
              is_error: false,
            },
            { type: "text", text: "Sunny and 5°C: good for hiking." },
          ],
          sender: "assistant",
          created_at: "2025-02-01T12:00:10Z",
        },
      ],
    },
    {
      // No name; an old-format message with only the top-level text.
      uuid: "cl-noname",
      name: "",
      created_at: "2025-03-01T09:00:00Z",
      updated_at: "2025-03-01T09:00:00Z",
      chat_messages: [
        {
          uuid: "o1",
          text: "Remind me to call Anna",
          sender: "human",
          created_at: "2025-03-01T09:00:00Z",
        },
      ],
    },
    {
      // No messages.
      uuid: "cl-empty",
      name: "Nothing yet",
      created_at: "2025-03-02T09:00:00Z",
      updated_at: "2025-03-02T09:00:00Z",
      chat_messages: [],
    },
  ];
}

/** JSON Lines in the CLI's own format. */
export function jsonlFixture(): string {
  return [
    { conversation: "jl-1", role: "user", content: "ok", title: "Short" },
    { conversation: "jl-1", role: "assistant", content: "ok" },
    { conversation: "jl-1", role: "user", content: "ok" },
    { conversation: "jl-2", role: "user", content: "🌱 é", ts: 1_700_000_000_000 },
  ].map((l) => JSON.stringify(l)).join("\n") + "\n";
}

/**
 * Streams a large ChatGPT-format export to `path`: `conversations` of
 * `messagesPerConversation` messages each (a linear tree).
 */
export async function writeChatgptExport(
  path: string,
  conversations: number,
  messagesPerConversation: number,
): Promise<number> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let bytes = 0;
  const w = async (s: string) => {
    const b = enc.encode(s);
    bytes += b.length;
    let o = 0;
    while (o < b.length) o += await f.write(b.subarray(o));
  };
  try {
    await w("[");
    for (let c = 0; c < conversations; c++) {
      const mapping: Record<string, Json> = {
        root: node("root", null, ["n0"], null),
      };
      const t = 1_700_000_000 + c * 1000;
      for (let k = 0; k < messagesPerConversation; k++) {
        const id = `n${k}`;
        mapping[id] = node(
          id,
          k === 0 ? "root" : `n${k - 1}`,
          k === messagesPerConversation - 1 ? [] : [`n${k + 1}`],
          msg(
            id,
            k % 2 === 0 ? "user" : "assistant",
            [
              `Message ${k} of conversation ${c}: ${
                TOPICS[(c + k) % TOPICS.length]![k % 2 === 0 ? 1 : 2]
              } Some more words so that a message has a realistic length for a chat.`,
            ],
            t + k + 0.125,
            { metadata: k % 2 === 1 ? { model_slug: "gpt-4o" } : {} },
          ),
        );
      }
      await w(
        (c === 0 ? "" : ",") + JSON.stringify({
          title: `Conversation ${c}`,
          create_time: t,
          update_time: t + messagesPerConversation,
          id: `bench-${c}`,
          current_node: `n${messagesPerConversation - 1}`,
          mapping,
        }),
      );
    }
    await w("]");
  } finally {
    f.close();
  }
  return bytes;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(
    new CompressionStream("deflate-raw"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A ZIP archive of deflated entries (a test writer, not a general one). */
export async function zip(
  entries: readonly { name: string; data: Uint8Array; crc?: number }[],
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = await deflateRaw(e.data);
    const crc = e.crc ?? crc32(e.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, 8, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const cd = new Uint8Array(46 + name.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, 8, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    cd.set(name, 46);
    parts.push(local, body);
    central.push(cd);
    offset += local.length + body.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of all) (out.set(p, o), o += p.length);
  return out;
}

async function writeAll(): Promise<void> {
  const enc = new TextEncoder();
  const put = (name: string, text: string | Uint8Array) =>
    typeof text === "string"
      ? Deno.writeTextFile(new URL(name, HERE), text)
      : Deno.writeFile(new URL(name, HERE), text);
  const chatgpt = JSON.stringify(chatgptFixture(), null, 1);
  const claude = JSON.stringify(claudeFixture(), null, 1);
  await put("chatgpt_conversations.json", chatgpt);
  await put("claude_conversations.json", claude);
  await put("messages.jsonl", jsonlFixture());
  await put(
    "chatgpt_export.zip",
    await zip([
      { name: "user.json", data: enc.encode('{"id":"user-1"}') },
      { name: "conversations.json", data: enc.encode(chatgpt) },
      { name: "chat.html", data: enc.encode("<html></html>") },
    ]),
  );
  await put(
    "claude_export.zip",
    await zip([
      { name: "users.json", data: enc.encode("[]") },
      { name: "projects.json", data: enc.encode("[]") },
      { name: "conversations.json", data: enc.encode(claude) },
    ]),
  );
  await put("sample_chatgpt_export.json", JSON.stringify(sampleChatgptExport()));
  // Malformed files: each fails on its SECOND conversation or a late line,
  // so a partial import would be visible.
  const badChatgpt = chatgptFixture() as Record<string, Json>[];
  const broken = structuredClone(badChatgpt[1]!) as {
    mapping: Record<string, { message: Record<string, Json> }>;
  };
  broken.mapping.y!.message.create_time = "yesterday";
  await put(
    "malformed_chatgpt.json",
    JSON.stringify([badChatgpt[0], broken]),
  );
  const badClaude = claudeFixture() as Record<string, Json>[];
  const c2 = structuredClone(badClaude[1]!) as {
    chat_messages: Record<string, Json>[];
  };
  c2.chat_messages[1]!.sender = "robot";
  await put("malformed_claude.json", JSON.stringify([badClaude[0], c2]));
  await put("truncated.json", chatgpt.slice(0, Math.floor(chatgpt.length * 0.8)));
  await put(
    "malformed.jsonl",
    jsonlFixture() + '{"conversation":"jl-3","role":"user","content":"x"}\n{oops\n',
  );
  await put(
    "corrupt_crc.zip",
    await zip([{ name: "conversations.json", data: enc.encode(chatgpt), crc: 1 }]),
  );
}

if (import.meta.main) await writeAll();
