// The backups `aico-data backup` made, kept as a sealed configuration value
// of the folder (namespace `aico`, key `backups`, secret: sealed in the
// store, never cached), so that `erase` can name the copies it cannot reach.
import type { DataLayer } from "../data_layer/mod.ts";

const NAMESPACE = "aico";
const KEY = "backups";
const MAX_ENTRIES = 1000;

/** One recorded backup. */
export interface BackupEntry {
  /** The backup folder, absolute. */
  readonly path: string;
  /** When it was made, ms since the epoch. */
  readonly at: number;
  /** The data key it is encrypted under. */
  readonly keyId: string;
}

/** The recorded backups, oldest first. */
export async function listBackups(data: DataLayer): Promise<BackupEntry[]> {
  const value = await data.config.get(NAMESPACE, KEY);
  if (!Array.isArray(value)) return [];
  const out: BackupEntry[] = [];
  for (const v of value) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) continue;
    const e = v as Record<string, unknown>;
    if (
      typeof e.path === "string" && typeof e.at === "number" &&
      typeof e.keyId === "string"
    ) out.push({ path: e.path, at: e.at, keyId: e.keyId });
  }
  return out;
}

/** Replaces the recorded list (the newest `MAX_ENTRIES`). */
export async function saveBackups(
  data: DataLayer,
  entries: readonly BackupEntry[],
): Promise<void> {
  await data.config.set(
    NAMESPACE,
    KEY,
    entries.slice(-MAX_ENTRIES).map((e) => ({ ...e })),
    { secret: true },
  );
}

/** Records one more backup. */
export async function recordBackup(
  data: DataLayer,
  entry: BackupEntry,
): Promise<void> {
  await saveBackups(data, [...await listBackups(data), entry]);
}

/** Whether a recorded backup folder is still there. */
export async function backupExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}
