// Internal: the key record kept next to a local database (`<db>.aico`). It
// names the data key that encrypts the file, so that a key that does not
// open the file is told apart from a damaged file. Not exported.
import { AicoDataError } from "../errors.ts";
import { PRIVATE_FILE_MODE, restrictMode } from "../_internal/fs.ts";

/** The sidecar format marker. */
export const SIDECAR_FORMAT = "aico-storage";
/** The sidecar format version. */
export const SIDECAR_VERSION = 1;

/** The content of `<db>.aico`. */
export interface Sidecar {
  readonly format: typeof SIDECAR_FORMAT;
  readonly version: typeof SIDECAR_VERSION;
  /** keyId of the data key whose `libsql-page` key encrypts the file. */
  readonly keyId: string;
  /** keyId of the data key a rotation in progress moves to. */
  readonly pendingKeyId?: string;
  /** The page cipher and how the page key is handed to it. */
  readonly cipher: "aes256cbc";
  readonly keyEncoding: "ascii7-v1";
}

/** The sidecar path of a database path. */
export function sidecarPath(dbPath: string): string {
  return `${dbPath}.aico`;
}

/** Reads the sidecar; `undefined` when absent, `CORRUPT_STORE` when unreadable. */
export async function readSidecar(
  dbPath: string,
): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(sidecarPath(dbPath));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new AicoDataError(
      "CORRUPT_STORE",
      `Cannot read key record "${sidecarPath(dbPath)}"`,
      { cause: err },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_STORE",
      `Cannot read key record "${sidecarPath(dbPath)}": not JSON`,
      { cause },
    );
  }
  const v = value as Partial<Sidecar> | null;
  if (
    v === null || typeof v !== "object" || v.format !== SIDECAR_FORMAT ||
    v.version !== SIDECAR_VERSION || typeof v.keyId !== "string" ||
    (v.pendingKeyId !== undefined && typeof v.pendingKeyId !== "string")
  ) {
    throw new AicoDataError(
      "CORRUPT_STORE",
      `Cannot read key record "${sidecarPath(dbPath)}": unknown format`,
    );
  }
  return v as Sidecar;
}

/** Writes the sidecar atomically (temporary file, fsync, rename). */
export async function writeSidecar(
  dbPath: string,
  keyId: string,
  pendingKeyId?: string,
): Promise<void> {
  const record: Sidecar = {
    format: SIDECAR_FORMAT,
    version: SIDECAR_VERSION,
    keyId,
    ...(pendingKeyId === undefined ? {} : { pendingKeyId }),
    cipher: "aes256cbc",
    keyEncoding: "ascii7-v1",
  };
  const target = sidecarPath(dbPath);
  const tmp = `${target}.tmp`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: PRIVATE_FILE_MODE,
  });
  try {
    await file.write(
      new TextEncoder().encode(JSON.stringify(record, null, 2) + "\n"),
    );
    await file.sync();
  } finally {
    file.close();
  }
  // The mode given at creation is reduced by the umask and does not apply
  // to a leftover temporary file: set it exactly.
  await restrictMode(tmp, PRIVATE_FILE_MODE);
  await Deno.rename(tmp, target);
}
