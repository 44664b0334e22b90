// Internal: checks a MetadataFilter over the fields semantic memory records
// and compiles it to SQL over memory_items (for the keyword side; the vector
// store applies the same filter to the same metadata names).
import { AicoDataError } from "../../errors.ts";
import type { MetadataFilter } from "../types.ts";

/** The filterable fields: metadata name -> column and type. */
export const FILTER_FIELDS: Readonly<
  Record<string, { column: string; type: "string" | "number" }>
> = Object.freeze({
  conversationId: { column: "i.conversation_id", type: "string" },
  role: { column: "i.role", type: "string" },
  createdAt: { column: "i.created_at", type: "number" },
  messageId: { column: "i.message_id", type: "number" },
});

const OPS: Readonly<Record<string, string>> = {
  $eq: "=",
  $ne: "<>",
  $gt: ">",
  $gte: ">=",
  $lt: "<",
  $lte: "<=",
};

export interface CompiledFilter {
  readonly sql: string;
  readonly args: (string | number)[];
}

const MAX_DEPTH = 16;
const MAX_IN = 1000;

function bad(detail: string): AicoDataError {
  return new AicoDataError(
    "INVALID_INPUT",
    `Cannot search: malformed filter: ${detail}`,
  );
}

/** Checks and compiles a filter; throws `INVALID_INPUT` when malformed. */
export function compileFilter(filter: unknown, depth = 0): CompiledFilter {
  if (depth > MAX_DEPTH) throw bad("nested too deeply");
  if (typeof filter !== "object" || filter === null || Array.isArray(filter)) {
    throw bad("expected an object");
  }
  const entries = Object.entries(filter);
  if (entries.length === 0) throw bad("empty object");
  const parts: string[] = [];
  const args: (string | number)[] = [];
  for (const [key, cond] of entries) {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(cond) || cond.length === 0) {
        throw bad(`"${key}" needs a non-empty array`);
      }
      const subs = cond.map((c) => compileFilter(c, depth + 1));
      parts.push(
        `(${subs.map((s) => s.sql).join(key === "$and" ? " AND " : " OR ")})`,
      );
      for (const s of subs) args.push(...s.args);
      continue;
    }
    const f = FILTER_FIELDS[key];
    if (f === undefined) {
      throw bad(
        `unknown field "${key.slice(0, 64)}" (known: ${
          Object.keys(FILTER_FIELDS).join(", ")
        })`,
      );
    }
    const value = (v: unknown): string | number => {
      if (
        f.type === "number"
          ? typeof v === "number" && Number.isFinite(v)
          : typeof v === "string"
      ) {
        return v as string | number;
      }
      throw bad(`"${key}" takes a ${f.type}`);
    };
    if (typeof cond !== "object" || cond === null) {
      parts.push(`${f.column} = ?`);
      args.push(value(cond));
      continue;
    }
    const ops = Object.entries(cond as Record<string, unknown>);
    if (ops.length !== 1) throw bad(`"${key}" needs exactly one operator`);
    const [op, v] = ops[0]!;
    if (op === "$in" || op === "$nin") {
      if (!Array.isArray(v) || v.length === 0 || v.length > MAX_IN) {
        throw bad(`"${op}" needs an array of 1 to ${MAX_IN} values`);
      }
      parts.push(
        `${f.column} ${op === "$in" ? "IN" : "NOT IN"} (${
          v.map(() => "?").join(", ")
        })`,
      );
      for (const x of v) args.push(value(x));
      continue;
    }
    const sqlOp = OPS[op];
    if (sqlOp === undefined) throw bad(`unknown operator "${op.slice(0, 16)}"`);
    if (op !== "$eq" && op !== "$ne" && f.type !== "number") {
      throw bad(`"${op}" needs a number field`);
    }
    parts.push(`${f.column} ${sqlOp} ?`);
    args.push(value(v));
  }
  return {
    sql: parts.length === 1 ? parts[0]! : `(${parts.join(" AND ")})`,
    args,
  };
}

/** The checked filter as the vector store takes it. */
export function storeFilter(filter: unknown): MetadataFilter {
  compileFilter(filter);
  return filter as MetadataFilter;
}
