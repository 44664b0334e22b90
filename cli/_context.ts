// deno-lint-ignore-file no-console
// What every command gets: its parsed arguments, output helpers, the data
// folder, the passphrase and an opened data layer.
import { openOsKeyring } from "./_keyring.ts";
import { join } from "node:path";
import {
  type DataLayer,
  type DataLayerSyncOptions,
  openDataLayer,
} from "../data_layer/mod.ts";
import {
  type DataKey,
  type KdfOptions,
  unlockKeys,
  unlockWithKeyring,
} from "../crypto/mod.ts";
import { type LocalStorage, openStorage } from "../storage/mod.ts";
import {
  type ConversationRepository,
  createConversationRepository,
  createLogRepository,
  type LogRepository,
} from "../repositories/mod.ts";
import { isAicoDataError } from "../errors.ts";
import { IMPORT_SOURCES_SCHEMA } from "../importers/mod.ts";
import { CliError, UsageError } from "./_errors.ts";
import { promptSecret } from "./_prompt.ts";

/** The option values a command receives (global and its own). */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** A command of the dispatch table. */
export interface Command {
  /** The name typed. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The usage line(s) after `aico-data `. */
  readonly usage: string;
  /** Longer help: options and examples. */
  readonly help: string;
  /** Its own options (node:util parseArgs shape). */
  readonly options?: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  >;
  /** How many positional arguments it takes: [min, max]. */
  readonly positionals: readonly [number, number];
  /** Runs it; returns the exit code. */
  run(ctx: Context): Promise<number>;
}

/**
 * What the read-only commands (status, list, show, search, export) need:
 * the data layer, or on a read-only folder the store and repositories
 * opened without any write.
 */
export interface ReadView extends AsyncDisposable {
  readonly dir: string;
  readonly key: DataKey;
  readonly storage: LocalStorage;
  readonly conversations: ConversationRepository;
  readonly logs: LogRepository;
  /** Whether the folder could not be opened for writing. */
  readonly readOnly: boolean;
  /** The data layer, when the folder opened for writing (search, analytics). */
  readonly layer?: DataLayer;
}

/** The state a command runs with. */
export interface Context {
  readonly command: string;
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly json: boolean;
  /** Stops long work on Ctrl-C. */
  readonly signal: AbortSignal;
  /** The data folder (`--dir`, `AICO_DATA_DIR`, or the platform default). */
  dir(): string;
  /** A line of data on stdout. */
  print(line: string): void;
  /** A JSON value on stdout. */
  printJson(value: unknown): void;
  /** A note on stderr. */
  note(line: string): void;
  /** The passphrase: --passphrase-file, AICO_DATA_PASSPHRASE, the terminal, or stdin. */
  passphrase(
    question: string,
    options?: { confirm?: boolean },
  ): Promise<string>;
  /**
   * Opens the folder (with --keyring: through the OS keyring); `create`
   * makes it, with `kdf` for its new key file.
   */
  open(
    options?: {
      create?: boolean;
      passphrase?: string;
      kdf?: KdfOptions;
      sync?: DataLayerSyncOptions;
      /** `false`: without the analytics row (its refresher catches up later). */
      analytics?: false;
    },
  ): Promise<DataLayer>;
  /** Opens the folder for reading; works on a read-only folder too. */
  openRead(): Promise<ReadView>;
}

/** Refuses a --dir that is a file or holds no aico-data folder, with the fix. */
async function checkFolder(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new CliError(
      `No aico-data folder at "${dir}"`,
      "run `aico-data init` first, or pass --dir (or set AICO_DATA_DIR) to your folder",
    );
  }
  if (!info.isDirectory) {
    throw new CliError(
      `"${dir}" is a file, not a folder`,
      "pass --dir with a folder path",
    );
  }
  try {
    await Deno.stat(join(dir, "key.json"));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    try {
      await Deno.stat(join(dir, "data.db"));
    } catch {
      throw new CliError(
        `No aico-data folder at "${dir}"`,
        "run `aico-data init` first, or pass --dir (or set AICO_DATA_DIR) to your folder",
      );
    }
    throw new CliError(
      `"${dir}" has a database but its key file key.json is missing`,
      "restore key.json from a backup",
    );
  }
}

/** Whether files can be created in `dir` (a read-only mount or mode says no). */
async function writable(dir: string): Promise<boolean> {
  const probe = join(dir, `.aico-write-probe-${crypto.randomUUID()}`);
  try {
    const f = await Deno.open(probe, { createNew: true, write: true });
    f.close();
    await Deno.remove(probe);
    return true;
  } catch (err) {
    if (isReadOnlyFailure(err)) return false;
    return true; // another failure: let the real open report it
  }
}

function isReadOnlyFailure(err: unknown): boolean {
  if (err instanceof Deno.errors.PermissionDenied) return true;
  if (isAicoDataError(err)) {
    return /readonly|read-only|read only/i.test(err.message) ||
      (err.cause instanceof Error && /readonly|EROFS/i.test(err.cause.message));
  }
  return err instanceof Error &&
    /EROFS|read-only file system/i.test(err.message);
}

/** The platform's user data folder for aico-data. */
export function defaultDataDir(): string {
  const env = (name: string) => {
    try {
      const v = Deno.env.get(name);
      return v === undefined || v === "" ? undefined : v;
    } catch {
      return undefined;
    }
  };
  const explicit = env("AICO_DATA_DIR");
  if (explicit !== undefined) return explicit;
  const home = env("HOME") ?? env("USERPROFILE");
  switch (Deno.build.os) {
    case "windows": {
      const appData = env("APPDATA") ??
        (home === undefined ? undefined : join(home, "AppData", "Roaming"));
      if (appData !== undefined) return join(appData, "aico-data");
      break;
    }
    case "darwin":
      if (home !== undefined) {
        return join(home, "Library", "Application Support", "aico-data");
      }
      break;
    default: {
      const xdg = env("XDG_DATA_HOME") ??
        (home === undefined ? undefined : join(home, ".local", "share"));
      if (xdg !== undefined) return join(xdg, "aico-data");
    }
  }
  throw new CliError(
    "No data folder",
    "pass --dir DIR or set AICO_DATA_DIR (and --allow-env)",
  );
}

async function readStdinLine(): Promise<string> {
  const reader = Deno.stdin.readable.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < 8192) {
      const r = await reader.read();
      if (r.done) break;
      chunks.push(r.value);
      size += r.value.length;
      if (r.value.includes(0x0a)) break;
    }
  } finally {
    reader.releaseLock();
  }
  const text = new TextDecoder().decode(
    chunks.length === 1 ? chunks[0]! : new Uint8Array(
      chunks.flatMap((c) => [...c]),
    ),
  );
  return text.split(/\r?\n/)[0] ?? "";
}

/** Builds the context of a run. */
export function createContext(
  command: string,
  values: Values,
  positionals: readonly string[],
  signal: AbortSignal,
): Context {
  let cached: string | undefined;
  const ctx: Context = {
    command,
    values,
    positionals,
    json: values.json === true,
    signal,
    dir: () => {
      const d = values.dir;
      if (typeof d === "string") {
        if (d.length === 0) throw new UsageError("--dir is empty", command);
        return d;
      }
      return defaultDataDir();
    },
    print: (line) => console.log(line),
    printJson: (value) => console.log(JSON.stringify(value, null, 2)),
    note: (line) => console.error(line),
    passphrase: async (question, options = {}) => {
      if (cached !== undefined && !options.confirm) return cached;
      const file = values["passphrase-file"];
      if (typeof file === "string") {
        const text = await Deno.readTextFile(file);
        cached = text.replace(/\r?\n$/, "");
        return cached;
      }
      let fromEnv: string | undefined;
      let envDenied = false;
      try {
        fromEnv = Deno.env.get("AICO_DATA_PASSPHRASE");
      } catch {
        envDenied = true;
      }
      if (fromEnv !== undefined && fromEnv.length > 0) {
        return (cached = fromEnv);
      }
      const typed = await promptSecret(question);
      if (typed !== undefined) {
        if (options.confirm) {
          const again = await promptSecret("again: ");
          if (again !== typed) {
            throw new CliError(
              "The two passphrases differ",
              "run the command again and type the same passphrase twice",
            );
          }
        }
        return (cached = typed);
      }
      if (!Deno.stdin.isTerminal() && !positionals.includes("-")) {
        cached = await readStdinLine();
        if (cached.length > 0) return cached;
      }
      if (envDenied) {
        throw new CliError(
          "No passphrase: AICO_DATA_PASSPHRASE cannot be read without --allow-env",
          "run again with --allow-env (or pass --passphrase-file FILE)",
        );
      }
      throw new CliError(
        "No passphrase",
        "pass --passphrase-file FILE, set AICO_DATA_PASSPHRASE, pipe it on stdin or run on a terminal",
      );
    },
    open: async (options = {}) => {
      const dir = ctx.dir();
      if (!options.create) await checkFolder(dir);
      const plugins = [IMPORT_SOURCES_SCHEMA];
      if (values.keyring === true && !options.create) {
        return await openDataLayer(dir, {
          keyring: await openOsKeyring(),
          plugins,
          memory: { background: false },
          ...(options.sync === undefined ? {} : { sync: options.sync }),
        });
      }
      const passphrase = options.passphrase ??
        await ctx.passphrase("passphrase: ");
      return await openDataLayer(dir, {
        passphrase,
        plugins,
        // A command is short-lived: vectors are made by `aico-data index`.
        memory: { background: false },
        ...(options.analytics === false ? { analytics: false as const } : {}),
        ...(options.create ? { create: true } : {}),
        // Only a new key file takes KDF settings (`init`); an existing
        // one records its own, so opening needs none.
        ...(options.create && options.kdf !== undefined
          ? { kdf: options.kdf }
          : {}),
        ...(options.sync === undefined ? {} : { sync: options.sync }),
      });
    },
    openRead: async () => {
      try {
        if (!(await writable(ctx.dir()))) {
          throw new Deno.errors.PermissionDenied();
        }
        const data = await ctx.open();
        return {
          dir: data.dir,
          key: data.key,
          storage: data.storage,
          conversations: data.conversations,
          logs: data.logs,
          readOnly: false,
          layer: data,
          [Symbol.asyncDispose]: () => data.close(),
        };
      } catch (err) {
        if (!isReadOnlyFailure(err)) throw err;
      }
      // A read-only folder: unlock and open without migrating, purging or caching.
      const dir = ctx.dir();
      const keyPath = join(dir, "key.json");
      let key: DataKey;
      if (values.keyring === true) {
        key = await unlockWithKeyring(keyPath, await openOsKeyring());
      } else {
        const keys = await unlockKeys(
          keyPath,
          await ctx.passphrase("passphrase: "),
        );
        if (keys.pending !== undefined) {
          throw new CliError(
            "A key rotation is pending in this read-only folder",
            "open it once where it is writable to finish the rotation",
          );
        }
        key = keys.current;
      }
      const storage = await openStorage(join(dir, "data.db"), { key });
      ctx.note("note: the folder is read-only; opened for reading only");
      return {
        dir,
        key,
        storage,
        conversations: createConversationRepository(storage),
        logs: createLogRepository(storage),
        readOnly: true,
        [Symbol.asyncDispose]: () => storage.close(),
      };
    },
  };
  return ctx;
}
