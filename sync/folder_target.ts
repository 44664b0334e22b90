/**
 * A sync target in a local folder: one kept in sync by Syncthing, Dropbox or
 * iCloud Drive, or on a USB stick.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { requirePermission } from "../_internal/permissions.ts";
import { AicoDataError } from "../errors.ts";
import {
  checkBytes,
  checkName,
  checkPrefix,
  closedError,
} from "./_target_common.ts";
import { SYNC_OBJECT_NAME, type SyncTarget } from "./types.ts";

/** Options of {@linkcode openFolderTarget}. */
export interface FolderTargetOptions {
  /**
   * Create the folder (mode 0700) when it does not exist.
   *
   * @default {true}
   */
  readonly create?: boolean;
}

class FolderTarget implements SyncTarget {
  readonly id: string;
  #dir: string;
  #closed = false;

  constructor(dir: string) {
    this.#dir = dir;
    this.id = dir;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #guard(action: string): void {
    if (this.#closed) throw closedError(action);
  }

  async list(prefix = ""): Promise<string[]> {
    this.#guard("list objects");
    checkPrefix(prefix);
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(this.#dir)) {
        if (
          e.isFile && SYNC_OBJECT_NAME.test(e.name) && e.name.startsWith(prefix)
        ) out.push(e.name);
      }
    } catch (cause) {
      throw ioError("list objects", cause);
    }
    return out.sort();
  }

  async read(name: string): Promise<Uint8Array> {
    this.#guard("read object");
    checkName(name, "read object");
    try {
      return await Deno.readFile(join(this.#dir, name));
    } catch (cause) {
      if (cause instanceof Deno.errors.NotFound) {
        throw new AicoDataError(
          "NOT_FOUND",
          `Cannot read object "${name}": not found`,
          { cause },
        );
      }
      throw ioError("read object", cause);
    }
  }

  async writeIfAbsent(name: string, bytes: Uint8Array): Promise<boolean> {
    this.#guard("write object");
    checkName(name, "write object");
    checkBytes(bytes, "write object");
    const final = join(this.#dir, name);
    const tmp = join(this.#dir, `.tmp-${crypto.randomUUID()}`);
    try {
      const file = await Deno.open(tmp, {
        write: true,
        createNew: true,
        mode: 0o600,
      });
      try {
        let off = 0;
        while (off < bytes.length) off += await file.write(bytes.subarray(off));
        await file.sync();
      } finally {
        file.close();
      }
      let written: boolean;
      try {
        // link() never replaces: the name is taken atomically or not at all.
        await Deno.link(tmp, final);
        written = true;
      } catch (cause) {
        if (cause instanceof Deno.errors.AlreadyExists) written = false;
        else if (await exists(final)) written = false;
        else {
          // Filesystems without hard links (FAT, exFAT on USB sticks):
          // check, then rename. Not atomic against a concurrent writer of
          // the same name, which sync never has (names are per device, and
          // a device rewrites only identical bytes).
          await Deno.rename(tmp, final);
          written = true;
        }
      }
      await syncDir(this.#dir);
      return written;
    } catch (cause) {
      throw ioError("write object", cause);
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }

  async delete(name: string): Promise<boolean> {
    this.#guard("delete object");
    checkName(name, "delete object");
    try {
      await Deno.remove(join(this.#dir, name));
      return true;
    } catch (cause) {
      if (cause instanceof Deno.errors.NotFound) return false;
      throw ioError("delete object", cause);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Some filesystems refuse fsync on a folder; the file itself is synced.
  }
}

function ioError(action: string, cause: unknown): AicoDataError {
  if (cause instanceof AicoDataError) return cause;
  if (cause instanceof Deno.errors.NotCapable) {
    return new AicoDataError(
      "PERMISSION_DENIED",
      `Cannot ${action}: missing Deno permission, run with --allow-read and --allow-write on the folder`,
      { cause },
    );
  }
  return new AicoDataError(
    "CONNECTION_FAILED",
    `Cannot ${action}: the folder is not usable: ${
      cause instanceof Error ? cause.name : "error"
    }`,
    { cause },
  );
}

/**
 * Opens a folder as a sync target.
 *
 * Needs `--allow-read` and `--allow-write` on `dir`.
 *
 * @remarks
 * Each object is a file of its name, mode 0600, in a folder of mode 0700.
 * A write goes to a temporary `.tmp-<uuid>` file, is synced, then hard-linked
 * to its name (which fails rather than replace), so readers and folder-sync
 * tools never see a partial object. Interrupted writes may leave `.tmp-*`
 * files: they are never listed and may be removed.
 *
 * @param dir The folder.
 * @param options Whether to create it.
 * @returns The target.
 * @throws {AicoDataError} `PERMISSION_DENIED`, `NOT_FOUND` when the folder
 * is missing and `create` is false, `INVALID_INPUT` when it is not a folder.
 *
 * @example Immutable objects
 * ```ts
 * import { openFolderTarget } from "./folder_target.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using target = await openFolderTarget(`${dir}/sync`);
 *   assert.equal(await target.writeIfAbsent("a1", new Uint8Array([1])), true);
 *   assert.equal(await target.writeIfAbsent("a1", new Uint8Array([2])), false);
 *   assert.deepEqual(await target.read("a1"), new Uint8Array([1]));
 *   assert.deepEqual(await target.list(), ["a1"]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openFolderTarget(
  dir: string,
  options: FolderTargetOptions = {},
): Promise<SyncTarget> {
  if (typeof dir !== "string" || dir.length === 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open folder target: expected a folder path",
    );
  }
  const path = resolve(dir);
  requirePermission(
    { name: "read", path },
    `--allow-read=${path}`,
    "open folder target",
  );
  requirePermission(
    { name: "write", path },
    `--allow-write=${path}`,
    "open folder target",
  );
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(path);
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) {
      throw ioError("open folder target", cause);
    }
  }
  if (info === undefined) {
    if (options.create === false) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open folder target "${path}": not found`,
      );
    }
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  } else if (!info.isDirectory) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open folder target "${path}": not a folder`,
    );
  }
  return new FolderTarget(path);
}
