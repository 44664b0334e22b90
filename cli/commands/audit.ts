import type { Command } from "../_context.ts";
import { UsageError } from "../_errors.ts";
import {
  AUDIT_KINDS,
  type AuditEvent,
  type AuditKind,
} from "../../repositories/mod.ts";

export const audit: Command = {
  name: "audit",
  summary:
    "the audit trail: unlocks, failed unlocks, key changes, exports, restores",
  usage: "audit [--kind KIND] [--limit N] [--json]",
  help:
    `Lists the security events of the folder's audit trail, oldest first (sealed
and hash-chained in the store; \`aico-data doctor\` checks the chain). Events
hold times, kinds, counts and key fingerprints, never content or secrets.

  --kind KIND  only events of KIND (${AUDIT_KINDS.join(", ")})
  --limit N    at most the newest N events (default: all)`,
  options: { kind: { type: "string" }, limit: { type: "string" } },
  positionals: [0, 0],
  async run(ctx) {
    const kind = ctx.values.kind;
    if (
      kind !== undefined &&
      !(AUDIT_KINDS as readonly unknown[]).includes(kind)
    ) {
      throw new UsageError(
        `--kind must be one of ${AUDIT_KINDS.join(", ")}`,
        "audit",
      );
    }
    const limitText = ctx.values.limit;
    let limit = Infinity;
    if (limitText !== undefined) {
      limit = Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new UsageError("--limit must be a positive integer", "audit");
      }
    }
    await using data = await ctx.open();
    const events: AuditEvent[] = [];
    let after = 0;
    for (;;) {
      const page = await data.audit.list({
        after,
        limit: 10_000,
        ...(kind === undefined ? {} : { kind: kind as AuditKind }),
      });
      events.push(...page);
      if (events.length > limit) events.splice(0, events.length - limit);
      if (page.length < 10_000) break;
      after = page[page.length - 1]!.seq;
    }
    if (ctx.json) {
      ctx.printJson(events);
      return 0;
    }
    for (const e of events) {
      const details = Object.entries(e.details).map(([k, v]) => `${k}=${v}`)
        .join(" ");
      ctx.print(
        `${String(e.seq).padStart(6)}  ${new Date(e.at).toISOString()}  ${
          e.kind.padEnd(17)
        } ${details}`,
      );
    }
    return 0;
  },
};
