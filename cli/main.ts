// deno-lint-ignore-file no-console
/**
 * `aico-data`: the command that runs the toolkit on a user's own data.
 *
 * ```
 * aico-data demo [--dir DIR]            the whole toolkit on sample data (a temp folder by default)
 * aico-data init --dir DIR              create a key file and an encrypted store
 * aico-data import --dir DIR FILE       import conversations from JSON Lines
 * aico-data status --dir DIR            key, schema, counts and integrity
 * aico-data rotate-key --dir DIR        re-encrypt everything under a new data key
 * aico-data backup --dir DIR --to FILE  an encrypted, verified copy of the database
 * aico-data remember --dir DIR          keep the data key in the OS keyring
 * aico-data forget --dir DIR            remove it from the OS keyring
 * ```
 *
 * `init --remember` stores the key in the OS keyring at once; `import`,
 * `status`, `backup` and `rotate-key` take `--keyring` to use it (this needs
 * `--allow-run=secret-tool` on Linux, `--allow-run=security` on macOS).
 *
 * The passphrase comes from `AICO_DATA_PASSPHRASE`, or is asked for on the
 * terminal (not echoed). `demo` uses a fixed demo passphrase.
 *
 * Permissions: `--allow-read --allow-write` on the folder, `--allow-ffi`,
 * `--allow-sys`, `--allow-env`.
 *
 * @example Running the command from code
 * ```ts
 * import { main } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["help"]), 0);
 * assert.equal(await main(["no-such-command"]), 2);
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { AicoDataError, isAicoDataError } from "../errors.ts";
import { type DataLayer, openDataLayer } from "../data_layer/mod.ts";
import {
  openKeyring,
  readKeyFileInfo,
  rememberInKeyring,
} from "../crypto/mod.ts";
import type { MessageRole } from "../repositories/mod.ts";

const USAGE = `aico-data: your companion's memory, encrypted on your device

usage:
  aico-data demo [--dir DIR]            run the whole toolkit on sample data
  aico-data init --dir DIR              create a key file and an encrypted store
  aico-data import --dir DIR FILE       import conversations from JSON Lines
                                        ({"conversation":"id","role":"user","content":"...","ts":1700000000000})
  aico-data status --dir DIR            key, schema, counts and integrity
  aico-data rotate-key --dir DIR        re-encrypt everything under a new data key
  aico-data backup --dir DIR --to FILE  an encrypted, verified copy of the database
  aico-data remember --dir DIR          keep the data key in the OS keyring (Secret Service, Keychain)
  aico-data forget --dir DIR            remove it from the OS keyring

  init --remember stores the key in the OS keyring at once; import, status and
  backup take --keyring to unlock through it instead of the passphrase
  (needs --allow-run=secret-tool on Linux, --allow-run=security on macOS).

The passphrase is read from AICO_DATA_PASSPHRASE or asked for on the terminal.`;

const DEMO_PASSPHRASE = "demo passphrase: use your own";
const ROLES: readonly MessageRole[] = ["system", "user", "assistant", "tool"];

async function readPassphrase(question: string): Promise<string> {
  const fromEnv = Deno.env.get("AICO_DATA_PASSPHRASE");
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot read passphrase: set AICO_DATA_PASSPHRASE or run in a terminal",
    );
  }
  await Deno.stdout.write(new TextEncoder().encode(question));
  Deno.stdin.setRaw(true);
  const chars: number[] = [];
  const buf = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null || buf[0] === 0x0d || buf[0] === 0x0a) break;
      if (buf[0] === 0x03) {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot read passphrase: cancelled",
        );
      }
      if (buf[0] === 0x7f) chars.pop();
      else chars.push(buf[0]!);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stdout.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(chars));
}

/** Opens a folder with the passphrase, or through the OS keyring. */
async function openFolder(
  dir: string,
  useKeyring: boolean,
): Promise<DataLayer> {
  if (useKeyring) {
    return await openDataLayer(dir, { keyring: await openKeyring("auto") });
  }
  return await openDataLayer(dir, {
    passphrase: await readPassphrase("passphrase: "),
  });
}

function requireDir(dir: string | undefined): string {
  if (dir === undefined || dir.length === 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot run command: --dir DIR is required",
    );
  }
  return dir;
}

function progress(label: string, done: number, total: number): void {
  if (!Deno.stdout.isTerminal()) return;
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  Deno.stdout.writeSync(
    new TextEncoder().encode(`\r${label} [${bar}] ${done}/${total}`),
  );
  if (done === total) Deno.stdout.writeSync(new TextEncoder().encode("\n"));
}

interface ImportLine {
  conversation: string;
  role: MessageRole;
  content: string;
  ts?: number;
  title?: string;
}

function parseLine(text: string, lineNo: number): ImportLine {
  let v: Partial<ImportLine>;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot import line ${lineNo}: not JSON`,
      { cause },
    );
  }
  if (
    typeof v !== "object" || v === null || typeof v.conversation !== "string" ||
    typeof v.content !== "string" || !ROLES.includes(v.role as MessageRole) ||
    (v.ts !== undefined && typeof v.ts !== "number")
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot import line ${lineNo}: expected {"conversation", "role", "content", "ts"?}`,
    );
  }
  return v as ImportLine;
}

/** Imports JSON Lines; every line is validated before anything is written. */
async function importLines(
  data: DataLayer,
  text: string,
): Promise<{ conversations: number; messages: number }> {
  const lines = text.split("\n").map((l) => l.trim());
  const byConversation = new Map<string, ImportLine[]>();
  lines.forEach((l, i) => {
    if (l.length === 0) return;
    const line = parseLine(l, i + 1);
    const list = byConversation.get(line.conversation) ?? [];
    list.push(line);
    byConversation.set(line.conversation, list);
  });
  // Imported conversations belong to the folder's owner, made on first import.
  let userId = await data.config.get<string>("cli", "owner");
  if (userId === undefined) {
    userId = (await data.users.createUser({ profile: { name: "me" } })).id;
    await data.config.set("cli", "owner", userId);
  }
  let done = 0;
  let messages = 0;
  for (const [id, list] of byConversation) {
    let exists = true;
    try {
      await data.conversations.getConversation(id);
    } catch (err) {
      if (!isAicoDataError(err, "NOT_FOUND")) throw err;
      exists = false;
    }
    if (!exists) {
      await data.conversations.createConversation({
        id,
        userId,
        title: list[0]!.title ?? id,
      });
    }
    await data.conversations.appendMessages(
      id,
      list.map((m) => ({
        role: m.role,
        content: m.content,
        ...(m.ts === undefined ? {} : { createdAt: m.ts }),
      })),
    );
    messages += list.length;
    progress("importing", ++done, byConversation.size);
  }
  return { conversations: byConversation.size, messages };
}

async function status(data: DataLayer): Promise<void> {
  const info = await readKeyFileInfo(`${data.dir}/key.json`);
  const plan = await data.migrator.plan();
  const verify = await data.storage.verify();
  const conversations = await data.conversations.listConversations({
    limit: 1000,
  });
  const logs = await data.logs.stats();
  console.log(
    `key         ${info.keyId} (Argon2id m=${info.kdf.memoryKiB} KiB t=${info.kdf.iterations})`,
  );
  if (info.pendingKeyId !== undefined) {
    console.log(`rotation    pending to ${info.pendingKeyId}`);
  }
  for (const s of plan) {
    console.log(
      `schema      ${s.schema} v${s.current}/${s.latest}${
        s.pending.length ? " (pending)" : ""
      }`,
    );
  }
  console.log(`integrity   ${verify.ok ? "ok" : verify.integrity.join("; ")}`);
  console.log(
    `conversations ${conversations.items.length}${
      conversations.nextCursor ? "+" : ""
    }`,
  );
  console.log(`logs        ${logs.total}`);
  if (data.cache !== undefined) {
    const s = data.cache.stats();
    console.log(
      `cache       ${s.entries} entries, ${s.hits} hits, ${s.misses} misses`,
    );
  }
}

const SAMPLE: readonly ImportLine[] = [
  {
    conversation: "tea",
    role: "user",
    content: "I switched from coffee to green tea this week.",
  },
  {
    conversation: "tea",
    role: "assistant",
    content: "How is it going? Sencha or something else?",
  },
  {
    conversation: "tea",
    role: "user",
    content: "Sencha, mostly. 🍵 It helps me sleep.",
  },
  {
    conversation: "trip",
    role: "user",
    content: "Remind me: my sister's birthday is on 12 March.",
  },
  {
    conversation: "trip",
    role: "assistant",
    content: "Noted. Shall I suggest a gift closer to the date?",
  },
  {
    conversation: "trip",
    role: "user",
    content: "Yes; she loves hiking in the Alps.",
  },
];

async function demo(dirArg: string | undefined): Promise<void> {
  const dir = dirArg ?? await Deno.makeTempDir({ prefix: "aico-data-demo-" });
  const started = performance.now();
  try {
    console.log(
      `1. creating an encrypted folder in ${dir} (Argon2id 64 MiB, t=3)`,
    );
    {
      await using data = await openDataLayer(dir, {
        passphrase: DEMO_PASSPHRASE,
        create: true,
      });
      console.log(
        `   data key ${data.key.keyId}; schema applied: ${data.applied.length} version(s)`,
      );
      console.log(
        "2. importing sample conversations (message content sealed with AES-256-GCM)",
      );
      const r = await importLines(
        data,
        SAMPLE.map((l) => JSON.stringify(l)).join("\n"),
      );
      console.log(
        `   ${r.conversations} conversations, ${r.messages} messages`,
      );
      data.bus.publish("log.info", {
        module: "demo",
        message: "imported sample data",
      });
      await data.config.set("companion", "voice", "warm");
      // Rotation needs the only connection to the file, so it runs on the
      // first handle of this process (see Storage.rekey()).
      console.log(
        "3. rotating the data key (re-encrypts pages and sealed columns)",
      );
      const before = data.key.keyId;
      console.log(`   ${before} -> ${await data.rotateKey(DEMO_PASSPHRASE)}`);
    }
    console.log("4. reopening with the passphrase and reading back");
    await using data = await openDataLayer(dir, {
      passphrase: DEMO_PASSPHRASE,
    });
    for (const c of (await data.conversations.listConversations()).items) {
      const { items } = await data.conversations.listMessages(c.id);
      console.log(
        `   [${c.title}] ${
          items.map((m) => `${m.role}: ${m.content}`).join(" | ")
        }`,
      );
    }
    console.log("5. the plaintext is in no file of the folder");
    let hits = 0;
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue;
      const bytes = new TextDecoder("latin1").decode(
        await Deno.readFile(`${dir}/${e.name}`),
      );
      if (bytes.includes("green tea") || bytes.includes("SQLite format 3")) {
        hits++;
      }
    }
    console.log(
      `   files containing "green tea" or a plain SQLite header: ${hits}`,
    );
    console.log(
      "6. session cache (encrypted LMDB), kept fresh by change events",
    );
    const cfg = data.cache!.namespace("config");
    const load = () =>
      cfg.getOrSet(
        "companion/voice",
        () => data.config.get("companion", "voice"),
      );
    console.log(
      `   voice: ${await load()} (cached: ${await cfg.get("companion/voice")})`,
    );
    await data.config.set("companion", "voice", "calm");
    console.log(
      `   after a change, cached: ${await cfg.get(
        "companion/voice",
      )}; reload: ${await load()}`,
    );
    console.log("7. status");
    await status(data);
    if (hits !== 0) throw new Error("plaintext found in the folder");
    console.log(
      `done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    if (dirArg === undefined) await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs the command line.
 *
 * @param args The arguments (without the program name).
 * @returns The exit code: 0 ok, 1 failed, 2 usage error.
 */
export async function main(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        dir: { type: "string" },
        to: { type: "string" },
        keyring: { type: "boolean" },
        remember: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (err) {
    console.error(String((err as Error).message));
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  const { dir, to } = parsed.values;
  const useKeyring = parsed.values.keyring === true;
  try {
    switch (command) {
      case undefined:
      case "help":
        console.log(USAGE);
        return 0;
      case "demo":
        await demo(dir);
        return 0;
      case "init": {
        const d = requireDir(dir);
        const passphrase = await readPassphrase("new passphrase: ");
        await using data = await openDataLayer(d, { passphrase, create: true });
        console.log(`created ${d} (data key ${data.key.keyId})`);
        if (parsed.values.remember === true) {
          await rememberInKeyring(
            `${d}/key.json`,
            passphrase,
            await openKeyring("auto"),
          );
          console.log(
            "the OS keyring holds the data key; use --keyring to unlock",
          );
        }
        return 0;
      }
      case "import": {
        const file = rest[0];
        if (file === undefined) {
          throw new AicoDataError(
            "INVALID_INPUT",
            "Cannot import: FILE is required",
          );
        }
        const text = await Deno.readTextFile(file);
        await using data = await openFolder(requireDir(dir), useKeyring);
        const r = await importLines(data, text);
        console.log(
          `imported ${r.messages} messages in ${r.conversations} conversations`,
        );
        return 0;
      }
      case "status": {
        await using data = await openFolder(requireDir(dir), useKeyring);
        await status(data);
        return 0;
      }
      case "rotate-key": {
        const d = requireDir(dir);
        const passphrase = await readPassphrase("passphrase: ");
        const oldId = (await readKeyFileInfo(`${d}/key.json`)).keyId;
        await using data = await openDataLayer(d, { passphrase });
        console.log(`new data key ${await data.rotateKey(passphrase)}`);
        if (useKeyring) {
          // The keyring held the old key: replace it with the new one.
          const keyring = await openKeyring("auto");
          await rememberInKeyring(`${d}/key.json`, passphrase, keyring);
          await keyring.delete(`aico-data/${oldId}`);
          console.log("the OS keyring now holds the new key");
        }
        return 0;
      }
      case "remember": {
        const d = requireDir(dir);
        const passphrase = await readPassphrase("passphrase: ");
        const key = await rememberInKeyring(
          `${d}/key.json`,
          passphrase,
          await openKeyring("auto"),
        );
        console.log(
          `the OS keyring now holds the data key ${key.keyId}; use --keyring to unlock`,
        );
        return 0;
      }
      case "forget": {
        const d = requireDir(dir);
        const { keyId } = await readKeyFileInfo(`${d}/key.json`);
        const removed = await (await openKeyring("auto")).delete(
          `aico-data/${keyId}`,
        );
        console.log(
          removed
            ? `forgot the data key ${keyId}`
            : "the OS keyring held no key for this folder",
        );
        return 0;
      }
      case "backup": {
        if (to === undefined) {
          throw new AicoDataError(
            "INVALID_INPUT",
            "Cannot back up: --to FILE is required",
          );
        }
        await using data = await openFolder(requireDir(dir), useKeyring);
        await data.storage.backup(to);
        console.log(`backed up to ${to} (encrypted with the same data key)`);
        return 0;
      }
      default:
        console.error(`unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (isAicoDataError(err)) {
      console.error(`error ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
