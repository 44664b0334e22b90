import { openOsKeyring } from "../_keyring.ts";
import { confirm, hasTerminal } from "../_prompt.ts";
import { CliError, UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";
import type { EraseReport, EraseScope } from "../../data_layer/mod.ts";
import type { KeyringBackend } from "../../crypto/mod.ts";
import {
  type BackupEntry,
  backupExists,
  listBackups,
  saveBackups,
} from "../_backups.ts";

function scopeOf(values: Record<string, unknown>): EraseScope {
  const given: EraseScope[] = [];
  if (typeof values.message === "string") {
    const id = Number(values.message);
    if (
      !/^[1-9][0-9]{0,15}$/.test(values.message) || !Number.isSafeInteger(id)
    ) {
      throw new UsageError(
        "--message needs a message id (a positive integer)",
        "erase",
      );
    }
    given.push({ message: id });
  }
  if (typeof values.conversation === "string") {
    given.push({ conversation: values.conversation });
  }
  if (typeof values.user === "string") given.push({ user: values.user });
  if (values.all === true) given.push({ all: true });
  if (given.length !== 1) {
    throw new UsageError(
      "erase needs exactly one of --message ID, --conversation ID, --user ID, --all",
      "erase",
    );
  }
  return given[0]!;
}

function describe(scope: EraseScope): string {
  if ("message" in scope) return `message ${scope.message}`;
  if ("conversation" in scope) return `conversation "${scope.conversation}"`;
  if ("user" in scope) return `user "${scope.user}" and everything they own`;
  return "EVERYTHING in this folder (and the key's copies in the OS keyring)";
}

export const erase: Command = {
  name: "erase",
  summary:
    "erase a message, conversation, user or everything, from every store",
  usage: "erase --message ID | --conversation ID | --user ID | --all [--yes]",
  help:
    `Erases from every store of the folder: the database rows (secure delete, the
WAL truncated), the keyword index, the vectors, the analytics copy, the cache
(its file zeroed) and the change feed; --all also erases logs, configuration
and plugin state, and deletes the data key's copies from the OS keyring
(when its tool is installed). This cannot be undone. The audit trail keeps
an "erase" event with counts only.

Erase cannot reach copies made before it: it lists the backups that
\`aico-data backup\` recorded (still holding the erased data, under the key
they were made with), and it knows nothing of copies you made yourself. The
list of backups itself survives --all.

Asks for confirmation on a terminal; without a terminal it refuses unless
--yes is given.

  --message ID        one message (its id, as \`show\` prints it)
  --conversation ID   one conversation with its messages
  --user ID           one user with their conversations and credentials
  --all               everything
  --yes               do not ask (scripts)`,
  options: {
    message: { type: "string" },
    conversation: { type: "string" },
    user: { type: "string" },
    all: { type: "boolean" },
    yes: { type: "boolean" },
  },
  positionals: [0, 0],
  async run(ctx) {
    const scope = scopeOf(ctx.values as Record<string, unknown>);
    if (ctx.values.yes !== true) {
      if (!hasTerminal()) {
        throw new CliError(
          "erase cannot be undone and there is no terminal to confirm it on",
          "run it on a terminal, or pass --yes",
        );
      }
      if (!await confirm(`erase ${describe(scope)}? this cannot be undone`)) {
        ctx.note("cancelled");
        return 1;
      }
    }
    await using data = await ctx.open();
    // Read before erasing: `--all` erases the list with the configuration.
    const backups: BackupEntry[] = await listBackups(data);
    let keyring: KeyringBackend | undefined;
    let keyringProblem: string | undefined;
    if ("all" in scope) {
      try {
        keyring = await openOsKeyring();
      } catch (err) {
        keyringProblem = err instanceof Error ? err.message : String(err);
      }
    }
    const report: EraseReport = await data.erase(
      scope,
      keyring === undefined ? {} : { keyring },
    );
    if ("all" in scope && backups.length > 0) await saveBackups(data, backups);
    const listed = await Promise.all(
      backups.map(async (b) => ({ ...b, exists: await backupExists(b.path) })),
    );
    const unreached = [
      ...report.unreached.filter((u) =>
        keyringProblem === undefined || !/keyring/.test(u)
      ),
      ...(keyringProblem === undefined ? [] : [
        `the OS keyring was not reached (${keyringProblem}): copies of the data key there were not deleted`,
      ]),
    ];
    if (ctx.json) {
      ctx.printJson({
        erased: {
          kind: report.kind,
          messages: report.messages,
          conversations: report.conversations,
          users: report.users,
          logs: report.logs,
          settings: report.settings,
          changeEvents: report.changeEvents,
          keyringCopies: report.keyringCopies,
        },
        checkpointed: report.checkpointed,
        unreached,
        backups: listed.map((b) => ({
          path: b.path,
          at: new Date(b.at).toISOString(),
          keyId: b.keyId,
          exists: b.exists,
        })),
      });
      return 0;
    }
    const parts = [
      `${report.messages} messages`,
      `${report.conversations} conversations`,
      `${report.users} users`,
    ];
    if (report.kind === "all") {
      parts.push(
        `${report.logs} log rows`,
        `${report.settings} settings`,
        `${report.keyringCopies} keyring copies of the key`,
      );
    }
    ctx.print(`erased ${parts.join(", ")}`);
    for (const u of unreached) ctx.print(`not reached: ${u}`);
    const live = listed.filter((b) => b.exists);
    if (live.length > 0) {
      ctx.print(
        `${live.length} backups made earlier still hold the erased data (erase cannot reach them; delete them yourself):`,
      );
      for (const b of live) {
        ctx.print(
          `  ${b.path}  (${new Date(b.at).toISOString()}, key ${b.keyId})`,
        );
      }
    }
    ctx.print(
      "copies you made yourself (exports, file copies, synced folders) are not reached either",
    );
    return 0;
  },
};
