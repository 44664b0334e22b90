// Internal: a storage over a local file (`LocalStorage`): the open sequence
// (permissions, key record, companions, an interrupted rotation), and the
// local-only operations backup, verify and rekey over the native engine.
// Not exported from the package.
import { dirname, resolve } from "node:path";
import { AicoDataError, isAicoDataError } from "../errors.ts";
import type { DataKey } from "../crypto/mod.ts";
import { checkSignal } from "../_internal/abort.ts";
import { createPrivateFile, exists, fileSize } from "../_internal/fs.ts";
import { requirePermission } from "../_internal/permissions.ts";
import {
  checkBackupTarget,
  SUFFIXES,
  verifyStore,
  writeBackup,
} from "./_backup.ts";
import type { Engine, EngineTx } from "./_engine.ts";
import {
  type LocalEngine,
  type LocalEngineOptions,
  openLocalEngine,
} from "./_local.ts";
import {
  checkSpecs,
  finishRotation,
  pageKeyOf,
  rotate,
  type RotationContext,
  type RotationStep,
} from "./_rotation.ts";
import {
  readSidecar,
  type Sidecar,
  sidecarPath,
  writeSidecar,
} from "./_sidecar.ts";
import { StorageImpl } from "./_storage_impl.ts";
import type {
  BackupOptions,
  LocalStorage,
  RekeyOptions,
  ResolvedStorageOptions,
  VerifyOptions,
  VerifyReport,
} from "./storage.ts";
import type { InArgs, ResultSet, TransactionMode } from "./types.ts";

/** Adapts the synchronous local engine to the {@linkcode Engine} shape. */
class LocalEngineAdapter implements Engine {
  readonly kind = "local" as const;
  readonly #engine: LocalEngine;

  constructor(engine: LocalEngine) {
    this.#engine = engine;
  }

  run(sql: string, args: InArgs | undefined): ResultSet {
    return this.#engine.run(sql, args);
  }

  exec(sql: string): void {
    this.#engine.exec(sql);
  }

  begin(mode: TransactionMode): EngineTx {
    const engine = this.#engine;
    if (engine.inTransaction) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        "Cannot start transaction: a transaction was opened with SQL, end it first",
      );
    }
    engine.begin(mode);
    return {
      run: (sql, args) => engine.run(sql, args),
      commit: () => engine.end(mode, true),
      rollback: () => engine.end(mode, false),
    };
  }

  close(): void {
    this.#engine.close();
  }
}

/** A storage over a local file, with backup, verify and rekey. */
class LocalStorageImpl extends StorageImpl implements LocalStorage {
  readonly path: string;
  readonly #engine: LocalEngine;
  readonly #options: LocalEngineOptions;

  constructor(
    engine: LocalEngine,
    key: DataKey,
    path: string,
    options: LocalEngineOptions,
  ) {
    super(new LocalEngineAdapter(engine), key);
    this.#engine = engine;
    this.path = path;
    this.#options = options;
  }

  override get kind(): "local" {
    return "local";
  }

  #context(): RotationContext {
    return {
      path: this.path,
      engine: this.#engine,
      busyTimeoutMs: this.#options.busyTimeoutMs,
      key: this.key!,
    };
  }

  async backup(path: string, options: BackupOptions = {}): Promise<void> {
    this.checkOpen("back up");
    const signal = checkSignal("back up", options?.signal);
    const target = await checkBackupTarget(path, this.path);
    await this.exclusive(
      "back up",
      () => writeBackup(this.#engine, target, this.key!.keyId),
      signal,
    );
  }

  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    this.checkOpen("verify");
    const signal = checkSignal("verify", options?.signal);
    return await this.exclusive(
      "verify",
      () => verifyStore(this.#engine, this.path, this.key!.keyId),
      signal,
    );
  }

  async rekey(newKey: DataKey, options: RekeyOptions = {}): Promise<void> {
    await this.rekeySteps(newKey, options, undefined);
  }

  /**
   * The rotation, step by step. `stopAfter` (tests only) simulates a crash
   * after a step by closing the connection there.
   */
  async rekeySteps(
    newKey: DataKey,
    options: RekeyOptions,
    stopAfter: RotationStep | undefined,
  ): Promise<void> {
    this.checkOpen("rekey");
    const next = checkDataKey("rekey", "newKey", newKey);
    const specs = checkSpecs(options?.sealedColumns ?? []);
    const signal = checkSignal("rekey", options?.signal);
    if (next.keyId === this.key!.keyId) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot rekey: the new key is the current key",
      );
    }
    await this.exclusive("rekey", async () => {
      const outcome = await rotate(
        this.#context(),
        next,
        specs,
        signal,
        stopAfter,
      );
      if (outcome === "crashed") return this.crash();
      this.key = next;
    }, signal);
  }

  /** At open: completes or clears a rotation the key record says is pending. */
  async finishRotation(
    sidecar: Sidecar,
    previousKey: DataKey | undefined,
  ): Promise<void> {
    await finishRotation(this.#context(), sidecar, previousKey);
  }

  protected override beforeEngineClose(): void {
    try {
      this.#engine.pragma("wal_checkpoint(TRUNCATE)");
      // npm:libsql frees a closed connection only once its statements are
      // garbage-collected, and until then the connection keeps its WAL
      // shared-memory lock, which makes another process's rekey (or any
      // switch out of WAL) fail with BUSY. Out of WAL mode an idle
      // connection holds no lock at all, so the file is released at once.
      // When another connection has the file open this switch is refused
      // (the mode stays WAL), which is harmless.
      this.#engine.clearCache();
      this.#engine.pragma("journal_mode = DELETE");
    } catch {
      // Best effort: the WAL is replayed at the next open.
    }
  }
}

/** Checks that `value` is a DataKey (`INVALID_INPUT` naming `name`). */
export function checkDataKey(
  action: string,
  name: string,
  value: unknown,
): DataKey {
  const k = value as Partial<DataKey> | null | undefined;
  if (
    k === null || typeof k !== "object" || typeof k.keyId !== "string" ||
    typeof k.purposeKeyBytes !== "function" || typeof k.sealer !== "function"
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: "${name}" is not a DataKey`,
    );
  }
  return value as DataKey;
}

/** Checks the Deno permissions the local path needs, before the driver loads. */
export function checkLocalPermissions(path: string): void {
  const dir = dirname(path);
  requirePermission(
    { name: "read", path: dir },
    `--allow-read=${dir}`,
    "open storage",
  );
  requirePermission(
    { name: "write", path: dir },
    `--allow-write=${dir}`,
    "open storage",
  );
  requirePermission({ name: "ffi" }, "--allow-ffi", "open storage");
  requirePermission({ name: "sys" }, "--allow-sys", "open storage");
  requirePermission(
    { name: "env", variable: "LIBSQL_JS_DEV" },
    "--allow-env=LIBSQL_JS_DEV",
    "open storage",
  );
}

/** Removes `-wal`/`-shm`/`-journal` files that a failed open created. */
async function removeNewCompanions(
  path: string,
  before: Set<string>,
): Promise<void> {
  for (const suffix of SUFFIXES) {
    const p = path + suffix;
    if (!before.has(p) && await exists(p)) await Deno.remove(p).catch(() => {});
  }
}

async function companionsPresent(path: string): Promise<Set<string>> {
  const present = new Set<string>();
  for (const suffix of SUFFIXES) {
    if (await exists(path + suffix)) present.add(path + suffix);
  }
  return present;
}

/** Turns a path or `file:` URL into an absolute path. */
export function localPath(pathOrUrl: string): string {
  return resolve(
    pathOrUrl.startsWith("file:") ? new URL(pathOrUrl).pathname : pathOrUrl,
  );
}

/** Opens (or creates) a local store; see `openStorage()` in storage.ts. */
export async function openLocalStorage(
  path: string,
  opts: ResolvedStorageOptions,
): Promise<LocalStorage> {
  const key = opts.key;
  if (key === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot open storage: a local file needs "key"',
    );
  }
  checkLocalPermissions(path);

  const size = await fileSize(path);
  const sidecar = await readSidecar(path);
  const engineOptions: LocalEngineOptions = {
    busyTimeoutMs: opts.busyTimeoutMs,
    statementCacheSize: opts.statementCacheSize,
    safeText: opts.safeText,
  };
  if (size === undefined || size === 0) {
    if (size === undefined && !opts.create) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open storage: "${path}" does not exist`,
      );
    }
    if (sidecar !== undefined && sidecar.keyId !== key.keyId) {
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot open storage: "${path}" belongs to another key`,
      );
    }
    if (!(await exists(dirname(path)))) {
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot open storage: the folder "${dirname(path)}" does not exist`,
      );
    }
    // New database: write the key record first so the file never exists
    // without it, and create the file 0600 so that SQLite gives its -wal,
    // -shm and -journal files the same mode.
    await writeSidecar(path, key.keyId);
    await createPrivateFile(path);
    const engine = await openLocalEngine(
      path,
      await pageKeyOf(key),
      engineOptions,
      "CORRUPT_STORE",
    );
    return new LocalStorageImpl(engine, key, path, engineOptions);
  }
  if (sidecar === undefined) {
    throw new AicoDataError(
      "CORRUPT_STORE",
      `Cannot open storage: the key record "${sidecarPath(path)}" is missing`,
    );
  }
  if (key.keyId !== sidecar.keyId && key.keyId !== sidecar.pendingKeyId) {
    throw new AicoDataError(
      "WRONG_KEY",
      `Cannot open storage: the key does not open "${path}"`,
    );
  }
  const before = await companionsPresent(path);
  let engine: LocalEngine;
  try {
    engine = await openLocalEngine(
      path,
      await pageKeyOf(key),
      engineOptions,
      "CORRUPT_STORE",
    );
  } catch (err) {
    await removeNewCompanions(path, before);
    if (
      isAicoDataError(err, "CORRUPT_STORE") &&
      sidecar.pendingKeyId !== undefined
    ) {
      // A rotation was started: the file is under the other key of the two.
      throw new AicoDataError(
        "WRONG_KEY",
        `Cannot open storage: a key rotation of "${path}" is in progress and this key does not open it, use the other key`,
        { cause: err },
      );
    }
    throw err;
  }
  const storage = new LocalStorageImpl(engine, key, path, engineOptions);
  try {
    await storage.finishRotation(sidecar, opts.previousKey);
  } catch (err) {
    await storage.close();
    throw err;
  }
  return storage;
}
