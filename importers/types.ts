/**
 * The shapes every import format is read into.
 *
 * @module
 */
import type { MessageRole } from "../repositories/mod.ts";

/** A file format that {@linkcode readExport} understands. */
export type ImportFormat = "chatgpt" | "claude" | "jsonl" | "aico";

/** One message read from an export, before it is stored. */
export interface ImportedMessage {
  /**
   * The stable id of the message in its source (`chatgpt:<conversation>:<node>`,
   * `claude:<conversation>:<message>:<part>`, `jsonl:<conversation>:<hash>:<n>`).
   * Re-importing skips every message whose key is stored already.
   */
  readonly sourceKey: string;
  /** The role. */
  readonly role: MessageRole;
  /** The text. */
  readonly content: string;
  /** When it was written, ms since the epoch, when the export says. */
  readonly createdAt?: number;
  /** The model that wrote it (ChatGPT `metadata.model_slug`), when known. */
  readonly model?: string;
}

/** One conversation read from an export (or a run of JSON Lines of one conversation). */
export interface ImportedConversation {
  /** The stable id of the conversation in its source. */
  readonly sourceKey: string;
  /** The id to give a new conversation when it is free (`[A-Za-z0-9_-]`, ≤ 128). */
  readonly preferredId: string;
  /** The title, when the export has one. */
  readonly title?: string;
  /** When it was created, ms since the epoch. */
  readonly createdAt?: number;
  /** When it was last updated, ms since the epoch. */
  readonly updatedAt?: number;
  /** Its messages in order. */
  readonly messages: readonly ImportedMessage[];
}

/**
 * Opens a sealed aico-data export: given the sealed bytes and the key id the
 * export names, returns the plaintext (the CLI opens it with the export
 * purpose key).
 */
export type Unseal = (sealed: Uint8Array, keyId: string) => Promise<Uint8Array>;
