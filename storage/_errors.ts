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
 * Translates an error thrown by `npm:libsql` or `@libsql/client` into an
 * {@linkcode AicoDataError}, keeping it as `cause`. `notadb` decides what a
 * SQLITE_NOTADB becomes (wrong key or damaged file).
 */
export function translateError(
  err: unknown,
  action: string,
  notadb: "WRONG_KEY" | "CORRUPT_STORE" = "CORRUPT_STORE",
): AicoDataError {
  if (err instanceof AicoDataError) return err;
  const code = driverCode(err);
  const detail = err instanceof Error ? err.message : String(err);
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
  if (code === "SQLITE_NOTADB") {
    return new AicoDataError(
      notadb,
      notadb === "WRONG_KEY"
        ? `Cannot ${action}: the key does not open the database`
        : `Cannot ${action}: the database file is damaged or not a database`,
      { cause: err },
    );
  }
  if (code.startsWith("SQLITE_CORRUPT")) {
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
  if (
    code === "SQLITE_CANTOPEN" || code === "SQLITE_PERM" ||
    code === "SQLITE_READONLY"
  ) {
    return new AicoDataError("SQL_ERROR", `Cannot ${action}: ${detail}`, {
      cause: err,
    });
  }
  return new AicoDataError("SQL_ERROR", `Cannot ${action}: ${detail}`, {
    cause: err,
  });
}
