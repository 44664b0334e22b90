// Internal: file-system helpers shared by the modules. Every file the toolkit
// writes is private to the user (0600) and every folder it creates is 0700.
// Not exported from the package.

/** The mode of every file the toolkit writes. */
export const PRIVATE_FILE_MODE = 0o600;
/** The mode of every folder the toolkit creates. */
export const PRIVATE_DIR_MODE = 0o700;

/** Whether `path` exists (a dangling symlink counts: it is not followed). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** The size of the file at `path`, `undefined` when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Creates `path` as an empty 0600 file when it does not exist, so that a
 * driver that opens it afterwards (SQLite, which gives its `-wal`, `-shm`
 * and `-journal` files the database file's mode) never creates it with the
 * default mode. Leaves an existing file as it is.
 */
export async function createPrivateFile(path: string): Promise<void> {
  try {
    const file = await Deno.open(path, {
      write: true,
      createNew: true,
      mode: PRIVATE_FILE_MODE,
    });
    file.close();
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return;
    throw err;
  }
  await restrictMode(path, PRIVATE_FILE_MODE);
}

/** Creates a folder (and missing parents) with mode 0700. */
export async function createPrivateDir(path: string): Promise<void> {
  const existed = await exists(path);
  await Deno.mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  // The mode given to mkdir is reduced by the umask: set it exactly.
  if (!existed) await restrictMode(path, PRIVATE_DIR_MODE);
}

/**
 * Sets `mode` on `path` when it exists (the umask cannot widen it then).
 * No-op on Windows, where modes do not apply.
 */
export async function restrictMode(path: string, mode: number): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    await Deno.chmod(path, mode);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
}

/** Sets 0600 on every regular file directly inside `dir`. */
export async function restrictFilesIn(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) {
      await restrictMode(`${dir}/${entry.name}`, PRIVATE_FILE_MODE);
    }
  }
}
