/**
 * Import of conversation history: ChatGPT and Claude exports
 * (`conversations.json` or the `.zip` the service sends) and JSON Lines,
 * streamed (memory bounded by the largest conversation, whatever the file
 * size), idempotent and atomic per file.
 *
 * - {@linkcode readExport} streams the conversations of a file (no storage).
 * - {@linkcode openImporter} stores them through the conversation repository;
 *   `import_sources` ({@linkcode IMPORT_SOURCES_SCHEMA}) maps source ids to
 *   what they became, so a re-import adds only what is new.
 *
 * ## Rules
 *
 * **ChatGPT.** The `mapping` tree is followed from `current_node` up to the
 * root: the conversation as the user last saw it. Without a (known)
 * `current_node`, the newest leaf (by `create_time`) is taken. With
 * `allBranches`, every other leaf's path is its own conversation titled
 * `<title> (branch N)`. Skipped: nodes whose `message` is null, messages
 * with `metadata.is_visually_hidden_from_conversation`, the model's
 * reasoning and hidden context (`thoughts`, `reasoning_recap`,
 * `user_editable_context`, `model_editable_context`), and messages whose
 * text is empty. Text comes from the string parts of `text` and
 * `multimodal_text` (asset pointers, i.e. images and files, are ignored;
 * audio transcripts are kept), else from `text` / `result`. Code the
 * assistant sends to a tool and tool output (`code`, `execution_output`,
 * browsing results, `system_error`) and every `author.role` "tool" message
 * are kept under role `tool`. Times are seconds (float or integer; values
 * above 1e11 are taken as ms); a null time takes the previous message's (or
 * the conversation's). `metadata.model_slug` is the message's model. Source
 * ids: `chatgpt:<conversation id>:<node id>`.
 *
 * **Claude.** `chat_messages` with `sender` human (→ user) or assistant;
 * ISO `created_at`. Consecutive `text` blocks of `content[]` make one
 * message; `thinking` blocks are not answer text and are skipped; each
 * `tool_use` (`tool_use <name>: <input JSON>`) and `tool_result`
 * (`tool_result <name>: <text>`) block is a message of role `tool` in its
 * place. Without `content[]`, the top-level `text` is used. Attachments with
 * `extracted_content` become a message of the sender's role before the
 * message (`[attachment: <file name>]` and the text); `files` (images) carry
 * no content and are skipped. A conversation without a name has no title;
 * one without messages is imported empty. Source ids:
 * `claude:<conversation uuid>:<message uuid>:<block index | text | attachmentN>`.
 *
 * **JSON Lines.** One `{"conversation","role","content","ts"?,"title"?}` per
 * line; the conversation id is the `conversation` value. Source ids: the
 * line's position in its conversation and a SHA-256 of role, time and
 * content.
 *
 * **aico-data exports.** `aico-data export` files (`aico-data-export` JSON,
 * or `aico-data-export-sealed` opened through the `unseal` option) are read
 * whole; source ids `aico:<conversation id>:<seq>`. Into the folder they came
 * from, a conversation's messages up to its last seq count as stored.
 *
 * **Atomicity.** One transaction per file (see {@linkcode openImporter}).
 * Source keys (ids, and hashes for JSON Lines) are stored in the encrypted
 * database, unsealed.
 *
 * Permissions: `--allow-read` on the files; the store's own.
 *
 * @example Importing a Claude export
 * ```ts
 * import { openImporter } from "./mod.ts";
 * import { createConversationRepository } from "../repositories/mod.ts";
 * import { openTestStore } from "../repositories/_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * await using importer = await openImporter(store.storage);
 * const file = await Deno.makeTempFile({ suffix: ".json" });
 * try {
 *   await Deno.writeTextFile(file, JSON.stringify([{
 *     uuid: "9b1d", name: "Hiking", created_at: "2025-03-01T10:00:00Z",
 *     chat_messages: [
 *       { uuid: "m1", sender: "human", created_at: "2025-03-01T10:00:00Z",
 *         content: [{ type: "text", text: "Alps or Pyrenees?" }] },
 *       { uuid: "m2", sender: "assistant", created_at: "2025-03-01T10:00:05Z",
 *         content: [{ type: "thinking", thinking: "weigh it" }, { type: "text", text: "The Alps." }] },
 *     ],
 *   }]));
 *   const report = await importer.importFile(file);
 *   assert.equal(report.format, "claude");
 *   const conversations = createConversationRepository(store.storage);
 *   const { items } = await conversations.listMessages("9b1d");
 *   assert.deepEqual(items.map((m) => m.content), ["Alps or Pyrenees?", "The Alps."]);
 * } finally {
 *   await Deno.remove(file);
 * }
 * ```
 *
 * @module
 */
export type {
  ImportedConversation,
  ImportedMessage,
  ImportFormat,
  Unseal,
} from "./types.ts";
export { readExport, type ReadExportOptions } from "./read_export.ts";
export {
  IMPORT_SOURCES_SCHEMA,
  type Importer,
  type ImporterOptions,
  type ImportFileOptions,
  type ImportProgress,
  type ImportReport,
  openImporter,
  resolveImporterOptions,
} from "./importer.ts";
