// Internal: retention policies, applied through the erase path at open and
// then on an unref'd interval timer that `close()` clears.
import { AicoDataError } from "../errors.ts";
import type { LocalStorage } from "../storage/mod.ts";
import type { ConversationRepository } from "../repositories/mod.ts";
import type { EraseReport, RetentionPolicy } from "./erase.ts";
import type { Eraser } from "./_erase.ts";

const DAY_MS = 86_400_000;
const ROLES = new Set(["system", "user", "assistant", "tool"]);
const ID_CHUNK = 10_000;

/** A policy with every default applied. */
export interface ResolvedRetention {
  readonly messages:
    | {
      readonly olderThanDays: number;
      readonly roles: readonly string[] | undefined;
    }
    | undefined;
  readonly logs: { readonly olderThanDays: number } | undefined;
  readonly intervalMs: number;
  readonly now: () => number;
}

function invalid(detail: string): AicoDataError {
  return new AicoDataError(
    "INVALID_INPUT",
    `Cannot open data layer: retention ${detail}`,
  );
}

function days(value: unknown, field: string): number {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value <= 0 ||
    value > 36_500
  ) {
    throw invalid(
      `"${field}.olderThanDays" must be a number of days, more than 0 and at most 36500`,
    );
  }
  return value;
}

/** Checks and freezes a retention policy (`undefined` when there is none). */
export function resolveRetention(
  policy: RetentionPolicy | undefined,
): ResolvedRetention | undefined {
  if (policy === undefined) return undefined;
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) {
    throw invalid("must be an object");
  }
  const p = policy as Record<string, unknown>;
  for (const k of Object.keys(p)) {
    if (!["messages", "logs", "intervalMinutes", "now"].includes(k)) {
      throw invalid(`has an unknown field "${k}"`);
    }
  }
  let messages: ResolvedRetention["messages"];
  if (policy.messages !== undefined) {
    const m = policy.messages as Record<string, unknown>;
    if (typeof m !== "object" || m === null) {
      throw invalid('"messages" must be an object');
    }
    let roles: string[] | undefined;
    if (m.roles !== undefined) {
      if (
        !Array.isArray(m.roles) || m.roles.length === 0 ||
        !m.roles.every((r) => typeof r === "string" && ROLES.has(r))
      ) {
        throw invalid(
          '"messages.roles" must list roles of system, user, assistant, tool',
        );
      }
      roles = [...new Set(m.roles as string[])];
    }
    messages = Object.freeze({
      olderThanDays: days(m.olderThanDays, "messages"),
      roles: roles === undefined ? undefined : Object.freeze(roles),
    });
  }
  let logs: ResolvedRetention["logs"];
  if (policy.logs !== undefined) {
    const l = policy.logs as Record<string, unknown>;
    if (typeof l !== "object" || l === null) {
      throw invalid('"logs" must be an object');
    }
    logs = Object.freeze({ olderThanDays: days(l.olderThanDays, "logs") });
  }
  const minutes = policy.intervalMinutes ?? 60;
  if (
    typeof minutes !== "number" || !Number.isFinite(minutes) ||
    minutes < 1 / 60 || minutes > 10_080
  ) {
    throw invalid('"intervalMinutes" must be one second (1/60) to 10080');
  }
  const now = policy.now ?? Date.now;
  if (typeof now !== "function") throw invalid('"now" must be a function');
  return Object.freeze({ messages, logs, intervalMs: minutes * 60_000, now });
}

/** Applies a policy once, through the erase path. */
export function applyRetention(
  eraser: Eraser,
  policy: ResolvedRetention,
  storage: () => LocalStorage,
  conversations: () => ConversationRepository,
): Promise<EraseReport> {
  return eraser.run("retention", async (r) => {
    const now = policy.now();
    if (policy.messages !== undefined) {
      const before = now - policy.messages.olderThanDays * DAY_MS;
      const roles = policy.messages.roles;
      for (;;) {
        const rs = await storage().execute({
          sql: "SELECT id, conversation_id FROM messages WHERE created_at < ?" +
            (roles === undefined
              ? ""
              : ` AND role IN (${roles.map(() => "?").join(", ")})`) +
            " ORDER BY id LIMIT ?",
          args: [before, ...(roles ?? []), ID_CHUNK],
        });
        if (rs.rows.length === 0) break;
        const ids = rs.rows.map((row) => Number(row.id));
        r.messages += await conversations().deleteMessages(ids);
        r.messageIds.push(...ids.map(String));
        r.conversationIds.push(
          ...new Set(rs.rows.map((row) => String(row.conversation_id))),
        );
        if (rs.rows.length < ID_CHUNK) break;
      }
    }
    if (policy.logs !== undefined) {
      r.logs += await eraser.removeLogs(
        now - policy.logs.olderThanDays * DAY_MS,
      );
    }
  });
}

/** The schedule: an unref'd interval; `stop()` clears it. */
export function scheduleRetention(
  intervalMs: number,
  run: () => Promise<unknown>,
  onError: (err: unknown) => void,
): { stop(): void } {
  let running = false;
  const id = setInterval(() => {
    if (running) return;
    running = true;
    run().catch((err) => {
      // No caller to tell: reported to the log; each step of a run is its
      // own transaction, and the next run retries what is left.
      onError(err);
    }).finally(() => {
      running = false;
    });
  }, intervalMs);
  Deno.unrefTimer(id);
  return { stop: () => clearInterval(id) };
}
