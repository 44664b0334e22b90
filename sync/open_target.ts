/**
 * Opening a sync target from its text form (a folder path or an
 * `http(s)://` WebDAV URL) and keeping that form in the store.
 *
 * @module
 */
import { resolve } from "node:path";
import { AicoDataError } from "../errors.ts";
import type { SqlExecutor } from "../storage/types.ts";
import { openFolderTarget } from "./folder_target.ts";
import type { SyncTarget } from "./types.ts";
import { openWebDavTarget } from "./webdav_target.ts";

/** Options of {@linkcode openSyncTarget}. */
export interface OpenSyncTargetOptions {
  /**
   * Aborts WebDAV requests.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
  /**
   * Create a missing target folder.
   *
   * @default {true}
   */
  readonly create?: boolean;
}

/**
 * Whether a target text names a WebDAV server.
 *
 * @param spec The target text.
 * @returns `true` for `http://` and `https://` URLs.
 *
 * @example
 * ```ts
 * import { isWebDavSpec } from "./open_target.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isWebDavSpec("https://cloud.example.org/dav/"), true);
 * assert.equal(isWebDavSpec("/media/usb/aico"), false);
 * ```
 */
export function isWebDavSpec(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/**
 * The form of a target text kept in the store: a folder path made
 * absolute; a URL as given (user name and password in it stay in the
 * encrypted store only).
 *
 * @param spec The target text.
 * @returns The normalised text.
 * @throws {AicoDataError} `INVALID_INPUT` for an empty text or a malformed URL.
 *
 * @example
 * ```ts
 * import { normaliseTargetSpec } from "./open_target.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normaliseTargetSpec("/tmp/t/"), "/tmp/t");
 * assert.throws(() => normaliseTargetSpec(""), { code: "INVALID_INPUT" });
 * ```
 */
export function normaliseTargetSpec(spec: string): string {
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot use sync target: expected a folder path or an http(s):// URL",
    );
  }
  if (isWebDavSpec(spec)) {
    try {
      return new URL(spec).href;
    } catch (cause) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot use sync target: malformed URL",
        { cause },
      );
    }
  }
  return resolve(spec);
}

/**
 * Opens a target from its text: an `http(s)://` URL opens a WebDAV target
 * (user name and password taken from the URL, never kept in its id), any
 * other text a folder target.
 *
 * Needs `--allow-net=<host>` for WebDAV, `--allow-read`/`--allow-write`
 * on a folder.
 *
 * @param spec The target text.
 * @param options Signal, folder creation.
 * @returns The target.
 * @throws {AicoDataError} `INVALID_INPUT`, `NOT_FOUND`, `PERMISSION_DENIED`.
 *
 * @example A folder target
 * ```ts
 * import { openSyncTarget } from "./open_target.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using target = await openSyncTarget(`${dir}/t`);
 *   assert.deepEqual(await target.list(), []);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openSyncTarget(
  spec: string,
  options: OpenSyncTargetOptions = {},
): Promise<SyncTarget> {
  const text = normaliseTargetSpec(spec);
  if (!isWebDavSpec(text)) {
    return await openFolderTarget(
      text,
      options.create === false ? { create: false } : {},
    );
  }
  const url = new URL(text);
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = "";
  url.password = "";
  return await openWebDavTarget({
    url: url.href,
    ...(username === "" ? {} : { username }),
    ...(password === "" ? {} : { password }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
}

/**
 * Keeps the target text in the store (`sync_settings`, inside the
 * encrypted database).
 *
 * @param db The store (sync schema migrated).
 * @param spec The target text.
 * @returns When saved.
 * @throws {AicoDataError} `INVALID_INPUT`.
 *
 * @example See {@linkcode loadTargetSpec}.
 * ```ts ignore
 * await saveTargetSpec(data.storage, "/media/usb/aico");
 * ```
 */
export async function saveTargetSpec(
  db: SqlExecutor,
  spec: string,
): Promise<void> {
  const text = normaliseTargetSpec(spec);
  await db.execute({
    sql:
      "INSERT INTO sync_settings (name, value) VALUES ('target', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    args: [text],
  });
}

/**
 * The target text kept in the store.
 *
 * @param db The store (sync schema migrated).
 * @returns The text, or `undefined` when none was saved.
 *
 * @example
 * ```ts ignore
 * const spec = await loadTargetSpec(data.storage);
 * ```
 */
export async function loadTargetSpec(
  db: SqlExecutor,
): Promise<string | undefined> {
  const rs = await db.execute(
    "SELECT value FROM sync_settings WHERE name = 'target'",
  );
  const v = rs.rows[0]?.value;
  return typeof v === "string" ? v : undefined;
}
