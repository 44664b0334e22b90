// deno-lint-ignore-file no-console
/**
 * `aico-data`: the command that runs the toolkit on a user's own data. A
 * thin dispatch table over one file per command (`cli/commands/`).
 *
 * ```
 * aico-data init                  create an encrypted data folder
 * aico-data import FILE...        ChatGPT / Claude exports (.json, .zip), JSON Lines
 * aico-data list | show ID | search "TEXT" | index
 * aico-data report [--html FILE] sealed unless --plaintext
 * aico-data export [ID]           sealed unless --plaintext
 * aico-data inventory | audit     what is stored; the security events
 * aico-data status | doctor
 * aico-data backup --to DIR | restore DIR
 * aico-data passwd | rotate-key | remember | forget
 * aico-data migrate | plan | rollback SCHEMA VERSION
 * aico-data demo
 * aico-data sync [init TARGET] [--watch]
 * aico-data sync compact | sync remove-device ID
 * aico-data erase --message ID | --conversation ID | --user ID | --all
 * ```
 *
 * The data folder is `--dir`, else `AICO_DATA_DIR`, else the platform's user
 * data folder. Exit codes: 0 ok, 1 failure, 2 usage error, 130 interrupted.
 *
 * @example Running the command from code
 * ```ts
 * import { main } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--version"]), 0);
 * assert.equal(await main(["no-such-command"]), 2);
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Command, createContext } from "./_context.ts";
import { Interrupted, reportFailure, UsageError } from "./_errors.ts";
import { VERSION } from "./_version.ts";
import { init } from "./commands/init.ts";
import { importCommand } from "./commands/import.ts";
import { list } from "./commands/list.ts";
import { show } from "./commands/show.ts";
import { search } from "./commands/search.ts";
import { report } from "./commands/report.ts";
import { index } from "./commands/index_cmd.ts";
import { exportCommand } from "./commands/export.ts";
import { status } from "./commands/status.ts";
import { doctor } from "./commands/doctor.ts";
import { passwd } from "./commands/passwd.ts";
import { rotateKey } from "./commands/rotate_key.ts";
import { backup, restore } from "./commands/backup.ts";
import { migrate, plan, rollback } from "./commands/migrate.ts";
import { forget, remember } from "./commands/keyring.ts";
import { demo } from "./commands/demo.ts";
import { sync } from "./commands/sync.ts";
import { inventory } from "./commands/inventory.ts";
import { audit } from "./commands/audit.ts";
import { erase } from "./commands/erase.ts";

const COMMANDS: readonly Command[] = [
  init,
  importCommand,
  list,
  show,
  search,
  index,
  report,
  exportCommand,
  status,
  doctor,
  backup,
  restore,
  passwd,
  rotateKey,
  remember,
  forget,
  migrate,
  plan,
  rollback,
  demo,
  sync,
  inventory,
  audit,
  erase,
];
const BY_NAME = new Map(COMMANDS.map((c) => [c.name, c]));

const GLOBAL_OPTIONS = {
  dir: { type: "string" },
  json: { type: "boolean" },
  debug: { type: "boolean" },
  keyring: { type: "boolean" },
  "passphrase-file": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

const GLOBAL_HELP = `global options:
  --dir DIR               the data folder (default: $AICO_DATA_DIR, else the
                          platform's user data folder, e.g. ~/.local/share/aico-data)
  --keyring               unlock with the key kept in the OS keyring
  --passphrase-file FILE  read the passphrase from FILE (else AICO_DATA_PASSPHRASE,
                          the terminal, or the first line of standard input)
  --json                  print data as JSON
  --debug                 print stack traces of failures
  -h, --help              help (never runs the command)
  --version               the version`;

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `aico-data ${VERSION}: your companion's memory, encrypted on your device

usage: aico-data COMMAND [options]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}
  ${"help".padEnd(width)}  help of a command: aico-data help import

${GLOBAL_HELP}

exit codes: 0 ok, 1 failure, 2 usage error, 130 interrupted`;
}

function commandHelp(c: Command): string {
  return `usage: aico-data ${c.usage}\n\n${c.summary}\n\n${c.help}\n\n${GLOBAL_HELP}`;
}

/** Edit distance with transpositions (optimal string alignment). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from(
    { length: a.length + 1 },
    (_, i) =>
      Array.from(
        { length: b.length + 1 },
        (_, j) => i === 0 ? j : j === 0 ? i : 0,
      ),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        d[i - 1]![j]! + 1,
        d[i]![j - 1]! + 1,
        d[i - 1]![j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function suggest(name: string): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of [...BY_NAME.keys(), "help"]) {
    const d = distance(name, c);
    if (d < bestD || (c.startsWith(name) && name.length >= 2 && d < 5)) {
      best = c;
      bestD = Math.min(d, bestD);
    }
  }
  return best;
}

/** The command name: the first argument that is not a global option or its value. */
function findCommand(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return i + 1 < args.length ? i + 1 : -1;
    if (a === "--dir" || a === "--passphrase-file") {
      i++;
      continue;
    }
    if (!a.startsWith("-") || a === "-") return i;
  }
  return -1;
}

function unknownCommand(name: string): UsageError {
  const s = suggest(name);
  return new UsageError(
    `unknown command "${name}"${
      s === undefined ? "" : `; did you mean "${s}"?`
    }`,
  );
}

/**
 * Runs the command line.
 *
 * @param argv The arguments (without the program name).
 * @returns The exit code: 0 ok, 1 failed, 2 usage error, 130 interrupted.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const args = argv[0] === "--" ? argv.slice(1) : [...argv];
  const debug = args.includes("--debug");
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) Deno.exit(130);
    // Long work stops at its next check (an import rolls back); a command
    // blocked elsewhere (a y/N question) is ended after a grace period.
    controller.abort(new Interrupted());
    Deno.unrefTimer(setTimeout(() => Deno.exit(130), 2000));
  };
  let listening = false;
  try {
    const at = findCommand(args);
    const before = at < 0 ? args : args.slice(0, at);
    if (before.includes("--version")) {
      console.log(`aico-data ${VERSION}`);
      return 0;
    }
    if (at < 0) {
      if (
        before.some((a) => a === "-h" || a === "--help") || args.length === 0
      ) {
        console.log(usage());
        return 0;
      }
      throw new UsageError("no command given");
    }
    const name = args[at]!;
    const rest = [...args.slice(0, at), ...args.slice(at + 1)];
    if (name === "help") {
      const topic = rest.find((a) => !a.startsWith("-"));
      if (topic === undefined) {
        console.log(usage());
        return 0;
      }
      const c = BY_NAME.get(topic);
      if (c === undefined) throw unknownCommand(topic);
      console.log(commandHelp(c));
      return 0;
    }
    const command = BY_NAME.get(name);
    if (command === undefined) throw unknownCommand(name);
    const dashdash = rest.indexOf("--");
    const flags = dashdash < 0 ? rest : rest.slice(0, dashdash);
    if (flags.includes("-h") || flags.includes("--help")) {
      console.log(commandHelp(command));
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        allowPositionals: true,
        strict: true,
        options: { ...GLOBAL_OPTIONS, ...(command.options ?? {}) },
      });
    } catch (err) {
      throw new UsageError(
        (err as Error).message.replace(/\. To specify a positional.*$/s, ""),
        command.name,
      );
    }
    const [min, max] = command.positionals;
    const n = parsed.positionals.length;
    if (n < min) {
      throw new UsageError(
        `missing arguments: aico-data ${command.usage}`,
        command.name,
      );
    }
    if (n > max) {
      throw new UsageError(
        `unexpected argument "${parsed.positionals[max]}"`,
        command.name,
      );
    }
    try {
      Deno.addSignalListener("SIGINT", onInterrupt);
      listening = true;
    } catch {
      // Signals unavailable (some platforms): Ctrl-C ends the process.
    }
    const ctx = createContext(
      command.name,
      parsed.values,
      parsed.positionals,
      controller.signal,
    );
    return await command.run(ctx);
  } catch (err) {
    if (controller.signal.aborted) {
      return reportFailure(new Interrupted(), debug);
    }
    return reportFailure(err, debug);
  } finally {
    if (listening) Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
