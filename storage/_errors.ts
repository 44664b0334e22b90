// Internal: translation of libSQL driver and client errors. Not exported.
import { AicoDataError } from "../errors.ts";

/** Reads the `code` string of a driver error, if any. */
export function driverCode(err: unknown): string {
  if (err !== null && typeof err === "object" && "code" in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === "string") return code;
  }
  return "";
}

/**
 * The driver's extended result code of an error, as a name
 * (`SQLITE_CONSTRAINT_PRIMARYKEY`): `@libsql/client` gives `extendedCode`,
 * `npm:libsql` gives it as `code`. `undefined` for an error that did not come
 * from the database.
 */
export function extendedCodeOf(err: unknown): string | undefined {
  if (err instanceof AicoDataError) {
    return err.cause === undefined ? undefined : extendedCodeOf(err.cause);
  }
  if (err !== null && typeof err === "object") {
    const extended = (err as { extendedCode?: unknown }).extendedCode;
    if (typeof extended === "string" && extended !== "") return extended;
  }
  const code = driverCode(err);
  return code.startsWith("SQLITE_") ? code : undefined;
}

/** The primary result code of a driver error (`rawCode & 0xff`), or -1. */
function primaryCode(err: unknown): number {
  if (err !== null && typeof err === "object" && "rawCode" in err) {
    const raw = (err as { rawCode: unknown }).rawCode;
    if (typeof raw === "number" && Number.isInteger(raw)) return raw & 0xff;
  }
  return -1;
}

const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_NOTADB = 26;

/**
 * Translates an error thrown by `npm:libsql` or `@libsql/client` into an
 * {@linkcode AicoDataError}, keeping it as `cause`. `notadb` decides what a
 * SQLITE_NOTADB becomes (wrong key or damaged file).
 *
 * The storage-level codes are decided from the primary result code (the
 * name or, for `npm:libsql`, the numeric `rawCode`): SQLITE_FULL is
 * `DISK_FULL`; SQLITE_CORRUPT, and a header SQLite cannot read ("unsupported
 * file format"), are `CORRUPT_STORE`; SQLITE_NOTADB is `notadb`.
 */
export function translateError(
  err: unknown,
  action: string,
  notadb: "WRONG_KEY" | "CORRUPT_STORE" = "CORRUPT_STORE",
): AicoDataError {
  if (err instanceof AicoDataError) return err;
  const code = driverCode(err);
  const primary = primaryCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === "SQLITE_FULL" || primary === SQLITE_FULL) {
    return new AicoDataError(
      "DISK_FULL",
      `Cannot ${action}: the disk is full`,
      { cause: err },
    );
  }
  if (code.startsWith("SQLITE_CONSTRAINT")) {
    return new AicoDataError(
      "CONSTRAINT_VIOLATION",
      `Cannot ${action}: ${detail}`,
      {
        cause: err,
      },
    );
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new AicoDataError(
      "BUSY",
      `Cannot ${action}: the database is locked`,
      { cause: err },
    );
  }
  if (code === "SQLITE_NOTADB" || primary === SQLITE_NOTADB) {
    return new AicoDataError(
      notadb,
      notadb === "WRONG_KEY"
        ? `Cannot ${action}: the key does not open the database`
        : `Cannot ${action}: the database file is damaged or not a database`,
      { cause: err },
    );
  }
  if (
    code.startsWith("SQLITE_CORRUPT") || primary === SQLITE_CORRUPT ||
    /unsupported file format/i.test(detail)
  ) {
    return new AicoDataError(
      "CORRUPT_STORE",
      `Cannot ${action}: the database is damaged`,
      {
        cause: err,
      },
    );
  }
  if (
    code === "HRANA_WEBSOCKET_ERROR" || code === "SERVER_ERROR" ||
    code === "HTTP_ERROR" ||
    /ECONNREFUSED|connection refused|error sending request|fetch failed|connect|network|dns/i
        .test(detail) && !code.startsWith("SQLITE")
  ) {
    return new AicoDataError(
      "CONNECTION_FAILED",
      `Cannot ${action}: ${detail}`,
      { cause: err },
    );
  }
  return new AicoDataError("SQL_ERROR", `Cannot ${action}: ${detail}`, {
    cause: err,
  });
}
