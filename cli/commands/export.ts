import { CliError, UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";
import type { ExportScope } from "../../data_layer/mod.ts";
import { isAicoDataError } from "../../errors.ts";

/** The AAD of a sealed export of layout version 1 (still read back by import). */
export const EXPORT_AAD = "aico-data-export/v1";

/** Standard output as a stream that the export may close without closing stdout. */
function stdoutStream(): WritableStream<Uint8Array> {
  return new WritableStream({
    async write(chunk) {
      let at = 0;
      while (at < chunk.length) {
        at += await Deno.stdout.write(chunk.subarray(at));
      }
    },
  });
}

export const exportCommand: Command = {
  name: "export",
  summary:
    "export a conversation, a user or everything, sealed unless --plaintext",
  usage:
    "export [ID] [--user USER] [--markdown] [--plaintext] [--no-key-file] [--out FILE]",
  help: `Writes everything (or only conversation ID, or one --user: profile and
conversations) as the documented aico-data-export JSON format, version 2
(docs/EXPORT_FORMAT.md: users' profiles without PIN or password hashes,
configuration, plugins and their state, conversations and messages with
roles, times, models and source ids), or, with --markdown, as Markdown for
reading. \`aico-data import FILE\` reads a JSON export back.

By default the export is SEALED with the folder's export key (AES-256-GCM,
64 KiB chunks) and carries the folder's key file, so that it opens in another
folder with this folder's passphrase; --no-key-file leaves the key file out
(then only this folder or --export-key KEYFILE opens it).

  --user USER    one user's profile and conversations
  --markdown     Markdown instead of JSON
  --plaintext    write it unencrypted (a warning is printed)
  --no-key-file  do not embed the key file in a sealed export
  --out FILE     write to FILE (must not exist; default: standard output)`,
  options: {
    user: { type: "string" },
    markdown: { type: "boolean" },
    plaintext: { type: "boolean" },
    "no-key-file": { type: "boolean" },
    out: { type: "string" },
  },
  positionals: [0, 1],
  async run(ctx) {
    const out = ctx.values.out;
    if (out !== undefined && (typeof out !== "string" || out === "")) {
      throw new UsageError("--out needs a file path", "export");
    }
    const user = ctx.values.user;
    if (user !== undefined && (typeof user !== "string" || user === "")) {
      throw new UsageError("--user needs a user id", "export");
    }
    const id = ctx.positionals[0];
    if (id !== undefined && user !== undefined) {
      throw new UsageError(
        "pass a conversation ID or --user, not both",
        "export",
      );
    }
    const scope: ExportScope = id !== undefined
      ? { conversation: id }
      : typeof user === "string"
      ? { user }
      : "all";
    const plaintext = ctx.values.plaintext === true;
    await using data = await ctx.open();
    if (plaintext) {
      ctx.note(
        "warning: this export is NOT encrypted: anyone who can read it reads your conversations",
      );
    }
    let report;
    try {
      report = await data.exportData(
        typeof out === "string" ? out : stdoutStream(),
        {
          scope,
          format: ctx.values.markdown === true ? "markdown" : "json",
          plaintext,
          embedKeyFile: ctx.values["no-key-file"] !== true,
          signal: ctx.signal,
        },
      );
    } catch (err) {
      if (isAicoDataError(err, "ALREADY_EXISTS")) {
        throw new CliError(`"${out}" exists`, "choose another --out file");
      }
      throw err;
    }
    if (typeof out === "string") {
      if (ctx.json) ctx.printJson(report);
      else {
        ctx.note(
          `exported ${report.conversations} conversations, ${report.messages} messages to ${out} (${
            report.sealed ? "sealed" : "NOT encrypted"
          })`,
        );
      }
    }
    return 0;
  },
};
