// Internal: data-key rotation of a local store (`LocalStorage.rekey`) and
// the completion of a rotation cut short, at the next open. Not exported from
// the package.
//
// Steps: checkpoint + DELETE journal (fails with BUSY unless this is the only
// connection) → dry run: every listed sealed value opens → the columns to
// re-seal are recorded in the database and the key record marks the new key
// pending → PRAGMA rekey → re-seal in one transaction, recording the sealed
// key → the key record names the new key → WAL again.
import { AicoDataError } from "../errors.ts";
import type { DataKey, Sealer } from "../crypto/mod.ts";
import { abortError } from "../_internal/abort.ts";
import { quoteIdent } from "../_internal/sql_lexer.ts";
import { type Sidecar, writeSidecar } from "./_sidecar.ts";
import {
  checkName,
  checkSchemaVersion,
  sealedColumnAad,
} from "./_sealed_column.ts";
import type { LocalEngine } from "./_local.ts";
import type { RowKey, SealedColumnSpec } from "./storage.ts";

/** The table where the storage keeps its own records. */
export const META_TABLE = "_aico_storage_meta";

/** How many rows are re-sealed between two checks of the abort signal. */
export const RESEAL_PAGE_ROWS = 256;

/** A step after which a test simulates a crash. */
export type RotationStep = "pending" | "rekey" | "reseal";

/** What a rotation works on. */
export interface RotationContext {
  readonly path: string;
  readonly engine: LocalEngine;
  readonly busyTimeoutMs: number;
  readonly key: DataKey;
}

/** Checks the list of sealed columns of a rotation (`INVALID_INPUT`). */
export function checkSpecs(specs: unknown): SealedColumnSpec[] {
  if (!Array.isArray(specs)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot rekey: "sealedColumns" must be an array',
    );
  }
  return specs.map((s: Partial<SealedColumnSpec> | undefined) => ({
    table: checkName("table", s?.table),
    column: checkName("column", s?.column),
    rowKey: checkName("row key column", s?.rowKey),
    schemaVersion: checkSchemaVersion(s?.schemaVersion),
  }));
}

/** Encodes the page key as the driver's key string: 32 ASCII characters. */
export async function pageKeyOf(key: DataKey): Promise<string> {
  const bytes = await key.purposeKeyBytes("libsql-page");
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b & 0x7f);
  bytes.fill(0);
  return out;
}

function hexOf(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    out += text.charCodeAt(i).toString(16).padStart(2, "0");
  }
  return out;
}

/**
 * Rotates the store of `ctx` to `next`. Resolves with `"done"`, or with
 * `"crashed"` when `stopAfter` asked to stop after a step (the caller closes
 * the connection then, as a crash would).
 *
 * An abort through `signal` is honoured while the listed values are checked
 * and between pages of the re-seal: the store is then put back as it was
 * (pages under the old key, the key record naming it, sealed values
 * untouched) and the rotation rejects with `ABORTED`.
 */
export async function rotate(
  ctx: RotationContext,
  next: DataKey,
  specs: readonly SealedColumnSpec[],
  signal: AbortSignal | undefined,
  stopAfter: RotationStep | undefined,
): Promise<"done" | "crashed"> {
  const { engine, key, path } = ctx;
  const oldSealer = specs.length > 0
    ? await key.sealer("field-aead")
    : undefined;
  const newSealer = specs.length > 0
    ? await next.sealer("field-aead")
    : undefined;
  const newPage = await pageKeyOf(next);
  if (signal?.aborted) throw abortError("rekey", signal);
  let mode: string;
  try {
    engine.pragma("wal_checkpoint(TRUNCATE)");
    mode = String(engine.pragma("journal_mode = DELETE")).toLowerCase();
  } catch (err) {
    throw new AicoDataError(
      "BUSY",
      "Cannot rekey: another connection has the database open",
      { cause: err },
    );
  }
  if (mode !== "delete") {
    throw new AicoDataError(
      "BUSY",
      "Cannot rekey: another connection has the database open",
    );
  }
  // Every listed value must open before anything changes.
  try {
    await resealAll(engine, specs, oldSealer, undefined, key.keyId, signal);
  } catch (err) {
    engine.configure(ctx.busyTimeoutMs);
    throw err;
  }
  // The columns to re-seal are recorded first so that an interrupted
  // rotation can be finished at the next open.
  engine.begin("write");
  try {
    ensureMeta(engine);
    writeMeta(engine, "reseal_specs", JSON.stringify(specs));
    engine.end("write", true);
  } catch (err) {
    engine.end("write", false);
    engine.configure(ctx.busyTimeoutMs);
    throw err;
  }
  await writeSidecar(path, key.keyId, next.keyId);
  if (stopAfter === "pending") return "crashed";
  engine.clearCache();
  engine.exec(`PRAGMA hexrekey = '${hexOf(newPage)}'`);
  if (stopAfter === "rekey") return "crashed";
  try {
    await resealAll(engine, specs, oldSealer, newSealer, next.keyId, signal);
  } catch (err) {
    if (!(err instanceof AicoDataError && err.code === "ABORTED")) throw err;
    // Put the store back as it was: old page key, old key record.
    engine.clearCache();
    engine.exec(`PRAGMA hexrekey = '${hexOf(await pageKeyOf(key))}'`);
    await writeSidecar(path, key.keyId);
    engine.configure(ctx.busyTimeoutMs);
    throw err;
  }
  if (stopAfter === "reseal") return "crashed";
  await writeSidecar(path, next.keyId);
  engine.configure(ctx.busyTimeoutMs);
  return "done";
}

/** At open: completes or clears a rotation the key record says is pending. */
export async function finishRotation(
  ctx: RotationContext,
  sidecar: Sidecar,
  previousKey: DataKey | undefined,
): Promise<void> {
  const { engine, key, path } = ctx;
  if (sidecar.pendingKeyId === undefined) {
    const sealedId = readMeta(engine, "sealed_key_id");
    if (sealedId !== undefined && sealedId !== key.keyId) {
      throw new AicoDataError(
        "CORRUPT_STORE",
        "Cannot open storage: sealed values are under another key than the pages",
      );
    }
    return;
  }
  if (key.keyId === sidecar.keyId) {
    // The page key never changed: the rotation stopped before rekey.
    await writeSidecar(path, key.keyId);
    return;
  }
  // The pages are under the new key; sealed values may still be old.
  const sealedId = readMeta(engine, "sealed_key_id");
  if (sealedId === undefined || sealedId !== key.keyId) {
    const specs = readMeta(engine, "reseal_specs");
    if (previousKey === undefined || previousKey.keyId !== sidecar.keyId) {
      throw new AicoDataError(
        "WRONG_KEY",
        'Cannot open storage: a key rotation is unfinished, pass the previous key as "previousKey"',
      );
    }
    let list: SealedColumnSpec[] = [];
    if (specs !== undefined) {
      try {
        list = checkSpecs(JSON.parse(specs));
      } catch (cause) {
        throw new AicoDataError(
          "CORRUPT_STORE",
          "Cannot open storage: the record of an unfinished rotation is damaged",
          { cause },
        );
      }
    }
    await resealAll(
      engine,
      list,
      await previousKey.sealer("field-aead"),
      await key.sealer("field-aead"),
      key.keyId,
      undefined,
    );
  }
  await writeSidecar(path, key.keyId);
  engine.configure(ctx.busyTimeoutMs);
}

function ensureMeta(engine: LocalEngine): void {
  engine.exec(
    `CREATE TABLE IF NOT EXISTS ${META_TABLE} (k TEXT PRIMARY KEY, v TEXT) STRICT`,
  );
}

function writeMeta(engine: LocalEngine, k: string, v: string): void {
  engine.run(`INSERT OR REPLACE INTO ${META_TABLE} (k, v) VALUES (?, ?)`, [
    k,
    v,
  ]);
}

/** Reads one record of the storage's own table (TEXT read as bytes). */
export function readMeta(engine: LocalEngine, key: string): string | undefined {
  const exists = engine.rawRows(
    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
    [META_TABLE],
  );
  if (exists.length === 0) return undefined;
  const rows = engine.rawRows(
    `SELECT CAST(v AS BLOB) FROM ${META_TABLE} WHERE k = ?`,
    [key],
  );
  const cell = rows[0]?.[0];
  if (cell === undefined || cell === null) return undefined;
  return new TextDecoder().decode(cell as Uint8Array);
}

/**
 * Re-seals every listed column from `oldSealer` to `newSealer` and records
 * the sealed key, in one transaction; without `newSealer` only checks that
 * every value opens (and rolls back). The signal is checked between pages of
 * {@linkcode RESEAL_PAGE_ROWS} rows; an abort rolls the transaction back.
 */
async function resealAll(
  engine: LocalEngine,
  specs: readonly SealedColumnSpec[],
  oldSealer: Sealer | undefined,
  newSealer: Sealer | undefined,
  newKeyId: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  engine.begin("write");
  try {
    ensureMeta(engine);
    writeMeta(engine, "reseal_specs", JSON.stringify(specs));
    for (const spec of specs) {
      const t = quoteIdent(spec.table);
      const c = quoteIdent(spec.column);
      const k = quoteIdent(spec.rowKey);
      const version = spec.schemaVersion ?? 1;
      const rows = engine.run(
        `SELECT ${k} AS k, ${c} AS v FROM ${t} WHERE ${c} IS NOT NULL`,
        undefined,
      ).rows;
      const update = `UPDATE ${t} SET ${c} = ? WHERE ${k} = ?`;
      for (let start = 0; start < rows.length; start += RESEAL_PAGE_ROWS) {
        if (signal?.aborted) throw abortError("rekey", signal);
        const end = Math.min(rows.length, start + RESEAL_PAGE_ROWS);
        for (let i = start; i < end; i++) {
          const row = rows[i]!;
          const rowKey = row.k as RowKey;
          const aad = sealedColumnAad(spec.table, spec.column, rowKey, version);
          const plain = await oldSealer!.open(row.v as Uint8Array, aad);
          if (newSealer === undefined) {
            plain.fill(0);
            continue;
          }
          const sealed = await newSealer.seal(plain, aad);
          plain.fill(0);
          engine.run(update, [sealed, rowKey]);
        }
      }
    }
    if (signal?.aborted) throw abortError("rekey", signal);
    if (newSealer === undefined) {
      // Dry run: only check that every value opens.
      engine.end("write", false);
      return;
    }
    writeMeta(engine, "sealed_key_id", newKeyId);
    engine.end("write", true);
  } catch (err) {
    engine.end("write", false);
    throw err;
  }
}
