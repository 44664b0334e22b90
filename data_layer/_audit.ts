// Internal: the `audit` row of the component table, and the file of failed
// unlocks. A failed unlock cannot be sealed (no key), so it is appended to
// `<dir>/audit-pending.jsonl` as a time and a reason code only (no secret, no
// content), and moved into the sealed, hash-chained trail at the next
// successful open.
import { join } from "node:path";
import { PRIVATE_FILE_MODE } from "../_internal/fs.ts";
import {
  type AuditKind,
  type AuditLog,
  auditSchema,
  createAuditLog,
} from "../repositories/mod.ts";
import type { DataLayerComponent } from "./components.ts";

/** The file of unlock failures waiting to enter the audit trail. */
export const AUDIT_PENDING_FILE = "audit-pending.jsonl";

const MAX_PENDING_LINES = 10_000;

/**
 * Appends a failed unlock to the pending file. Never throws: a folder that
 * cannot be written to (read-only, missing) keeps no record.
 */
export async function notePendingFailure(
  dir: string,
  reason: string,
  at: number = Date.now(),
): Promise<void> {
  try {
    await Deno.writeTextFile(
      join(dir, AUDIT_PENDING_FILE),
      JSON.stringify({ at, reason: reason.slice(0, 40) }) + "\n",
      { append: true, create: true, mode: PRIVATE_FILE_MODE },
    );
  } catch {
    // Nothing to record into: the open fails with its own error anyway.
  }
}

/** Moves the pending failures into the trail, then empties the file. */
async function ingestPending(dir: string, audit: AuditLog): Promise<void> {
  const path = join(dir, AUDIT_PENDING_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const lines = text.split("\n").filter((l) => l.length > 0).slice(
    -MAX_PENDING_LINES,
  );
  for (const line of lines) {
    let entry: { at?: unknown; reason?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      entry = {};
    }
    const at = typeof entry.at === "number" && Number.isSafeInteger(entry.at) &&
        entry.at >= 0
      ? entry.at
      : Date.now();
    const reason = typeof entry.reason === "string" &&
        /^[A-Z_]{1,40}$/.test(entry.reason)
      ? entry.reason
      : "UNKNOWN";
    await audit.record("unlock_failed", { reason }, { at });
  }
  await Deno.remove(path);
}

/**
 * The `audit` row: the trail over the store (schema `audit`, its sealed
 * `body` re-sealed by rotation), the pending failures moved in, and this
 * unlock recorded.
 */
export function auditComponent(
  method: string,
): DataLayerComponent<AuditLog> {
  return {
    name: "audit",
    schemas: [auditSchema],
    async open(ctx) {
      const audit = createAuditLog(ctx.storage);
      await ingestPending(ctx.dir, audit);
      await audit.record("unlock", { method, keyId: ctx.key.keyId });
      return audit;
    },
    close: () => Promise.resolve(),
  };
}

/** Records an event, never failing the operation it reports on. */
export async function auditQuietly(
  audit: AuditLog,
  kind: AuditKind,
  details: Record<string, string | number | boolean | null>,
  onError: (err: unknown) => void = () => {},
): Promise<void> {
  try {
    await audit.record(kind, details);
  } catch (err) {
    onError(err);
  }
}
