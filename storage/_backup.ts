// Internal: backup, verify and restore of a local store. Not exported from
// the package (restoreStorage is re-exported by storage.ts).
import { dirname, resolve } from "node:path";
import { AicoDataError } from "../errors.ts";
import {
  createPrivateFile,
  exists,
  fileSize,
  PRIVATE_FILE_MODE,
  restrictMode,
} from "../_internal/fs.ts";
import { requirePermission } from "../_internal/permissions.ts";
import { readSidecar, writeSidecar } from "./_sidecar.ts";
import { type LocalEngine, openLocalEngine } from "./_local.ts";
import { pageKeyOf } from "./_rotation.ts";
import type { ResolvedStorageOptions, VerifyReport } from "./storage.ts";

// Read as bytes: a damaged file may put invalid UTF-8 into the report, and
// the driver aborts the process on such TEXT.
const INTEGRITY_SQL =
  "SELECT CAST(integrity_check AS BLOB) FROM pragma_integrity_check()";

/** The companion files SQLite may create next to a database. */
export const SUFFIXES: readonly string[] = ["-wal", "-shm", "-journal"];

/**
 * Checks the target of a backup before the storage's turn: a string, not the
 * database itself, writable, absent. Returns the absolute target.
 */
export async function checkBackupTarget(
  path: unknown,
  dbPath: string,
): Promise<string> {
  if (typeof path !== "string" || path === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot back up: the path must be a non-empty string",
    );
  }
  const target = resolve(path);
  if (target === dbPath) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot back up: the target is the database itself",
    );
  }
  requirePermission(
    { name: "write", path: dirname(target) },
    `--allow-write=${dirname(target)}`,
    "back up",
  );
  if (await exists(target)) {
    throw new AicoDataError(
      "ALREADY_EXISTS",
      `Cannot back up: "${target}" exists`,
    );
  }
  return target;
}

/**
 * Writes the encrypted, compacted copy (`VACUUM INTO`, which accepts an
 * empty file: it is created 0600 first) and its key record. A failed copy
 * leaves no file behind.
 */
export async function writeBackup(
  engine: LocalEngine,
  target: string,
  keyId: string,
): Promise<void> {
  await createPrivateFile(target);
  try {
    engine.exec(`VACUUM INTO '${target.replaceAll("'", "''")}'`);
    await restrictMode(target, PRIVATE_FILE_MODE);
    await writeSidecar(target, keyId);
  } catch (err) {
    await Deno.remove(target).catch(() => {});
    throw err;
  }
}

/** Runs `PRAGMA integrity_check` and checks the key record. */
export async function verifyStore(
  engine: LocalEngine,
  dbPath: string,
  keyId: string,
): Promise<VerifyReport> {
  const integrity = engine.rawRows(INTEGRITY_SQL).map((r) => textOf(r[0]));
  const sidecar = await readSidecar(dbPath);
  const keyMatches = sidecar !== undefined && sidecar.keyId === keyId &&
    sidecar.pendingKeyId === undefined;
  return {
    ok: keyMatches && integrity.length === 1 && integrity[0] === "ok",
    integrity,
    keyMatches,
  };
}

function textOf(cell: unknown): string {
  return cell instanceof Uint8Array || cell instanceof ArrayBuffer
    ? new TextDecoder().decode(cell)
    : String(cell);
}

/**
 * Restores a backup to `path`; see `restoreStorage()` in storage.ts for the
 * contract. `checkLocalPermissions` is the storage's permission check.
 */
export async function restoreBackup(
  backupPath: string,
  path: string,
  opts: ResolvedStorageOptions,
  checkLocalPermissions: (path: string) => void,
): Promise<void> {
  if (opts.key === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot restore: "key" is required',
    );
  }
  if (
    typeof backupPath !== "string" || typeof path !== "string" || path === ""
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot restore: the paths must be strings",
    );
  }
  const source = resolve(backupPath);
  const target = resolve(path);
  if (await exists(target)) {
    throw new AicoDataError(
      "ALREADY_EXISTS",
      `Cannot restore: "${target}" exists`,
    );
  }
  checkLocalPermissions(target);
  checkLocalPermissions(source);
  if ((await fileSize(source)) === undefined) {
    throw new AicoDataError(
      "NOT_FOUND",
      `Cannot restore: "${source}" does not exist`,
    );
  }
  const sidecar = await readSidecar(source);
  if (sidecar !== undefined && sidecar.keyId !== opts.key.keyId) {
    throw new AicoDataError(
      "WRONG_KEY",
      "Cannot restore: the backup belongs to another key",
    );
  }
  // Check the backup on a private copy so the backup file stays untouched.
  const staging = `${target}.restoring`;
  await createPrivateFile(staging);
  await Deno.copyFile(source, staging);
  await restrictMode(staging, PRIVATE_FILE_MODE);

  try {
    const engine = await openLocalEngine(staging, await pageKeyOf(opts.key), {
      busyTimeoutMs: opts.busyTimeoutMs,
      statementCacheSize: 8,
      safeText: true,
    }, sidecar === undefined ? "WRONG_KEY" : "CORRUPT_STORE");
    try {
      const integrity = engine.rawRows(INTEGRITY_SQL).map((r) => textOf(r[0]));
      if (integrity.length !== 1 || integrity[0] !== "ok") {
        throw new AicoDataError(
          "CORRUPT_STORE",
          "Cannot restore: the backup fails the integrity check",
        );
      }
      engine.pragma("wal_checkpoint(TRUNCATE)");
    } finally {
      engine.close();
    }
    await writeSidecar(target, opts.key.keyId);
    await Deno.rename(staging, target);
  } catch (err) {
    for (const p of [staging, ...SUFFIXES.map((s) => staging + s)]) {
      await Deno.remove(p).catch(() => {});
    }
    throw err;
  } finally {
    for (const s of SUFFIXES) await Deno.remove(staging + s).catch(() => {});
  }
}
