import { openImporter } from "../../importers/mod.ts";
import type { ImportFormat, ImportReport } from "../../importers/mod.ts";
import type { DataLayer } from "../../data_layer/mod.ts";
import { type DataKey, unlockKeys } from "../../crypto/mod.ts";
import { CliError, UsageError } from "../_errors.ts";
import { isAicoDataError } from "../../errors.ts";
import { EXPORT_AAD } from "./export.ts";
import { createProgress } from "../_progress.ts";
import { isExportV2 } from "../../data_layer/mod.ts";
import type { Command } from "../_context.ts";

const FORMATS = ["chatgpt", "claude", "jsonl", "aico"];

/** The folder owner's user id (made on first import). */
export async function ownerOf(data: DataLayer): Promise<string> {
  let userId = await data.config.get<string>("cli", "owner");
  if (userId === undefined) {
    userId = (await data.users.createUser({ profile: { name: "me" } })).id;
    await data.config.set("cli", "owner", userId);
  }
  return userId;
}

export const importCommand: Command = {
  name: "import",
  summary: "import ChatGPT or Claude exports (.json or .zip) or JSON Lines",
  usage:
    "import FILE... [--format chatgpt|claude|jsonl|aico] [--all-branches] [--export-key KEYFILE]",
  help:
    `Imports each FILE (or - for standard input) in one transaction: a malformed
file imports nothing and names the conversation and field; Ctrl-C stores
nothing of the file being read, and the next run completes it. Importing the
same or an updated export again adds only what is new.

  --format F           chatgpt, claude, jsonl or aico (detected when absent)
  --all-branches       ChatGPT: also import the branches you did not keep
  --export-key KEYFILE a sealed aico-data export made under another key: the
                       key.json it was made with (same passphrase asked)
  --export-passphrase-file FILE
                       the passphrase of a sealed export made in another
                       folder (default: this folder's passphrase); it opens
                       the key file embedded in the export or --export-key

Formats: ChatGPT conversations.json or the export .zip; Claude
conversations.json or the export .zip; JSON Lines, one
{"conversation":"id","role":"user","content":"...","ts":1700000000000} a line;
aico-data's own export (sealed or --plaintext JSON) read back: version 2
restores users' profiles, configuration, plugins and their state,
conversations and messages with their times; what is stored already is kept.`,
  options: {
    format: { type: "string" },
    "all-branches": { type: "boolean" },
    "export-key": { type: "string" },
    "export-passphrase-file": { type: "string" },
  },
  positionals: [1, Infinity],
  async run(ctx) {
    const format = ctx.values.format;
    if (format !== undefined && !FORMATS.includes(String(format))) {
      throw new UsageError(
        `--format must be one of ${FORMATS.join(", ")}, got "${
          String(format)
        }"`,
        "import",
      );
    }
    if (ctx.positionals.filter((p) => p === "-").length > 1) {
      throw new UsageError("standard input (-) can be read once", "import");
    }
    // Analytics is not needed to import (DuckDB would cost ~37 MiB of the
    // peak); its refresher takes the new rows at the next `report`.
    await using data = await ctx.open({ analytics: false });
    const importer = await openImporter(data.storage, {
      userId: await ownerOf(data),
      changes: data.changes,
    });
    let other: DataKey | undefined;
    const keyFile = ctx.values["export-key"];
    const otherKey = async (): Promise<DataKey | undefined> => {
      if (other === undefined && typeof keyFile === "string") {
        other =
          (await unlockKeys(keyFile, await ctx.passphrase("passphrase: ")))
            .current;
      }
      return other;
    };
    const head = async (file: string): Promise<string> => {
      try {
        using f = await Deno.open(file);
        const buf = new Uint8Array(256);
        const n = await f.read(buf);
        return new TextDecoder().decode(buf.subarray(0, n ?? 0));
      } catch {
        return ""; // the importer reports the file's own error
      }
    };
    const restoreExport = async (file: string) => {
      const pwFile = ctx.values["export-passphrase-file"];
      const passphrase = typeof pwFile === "string"
        ? (await Deno.readTextFile(pwFile)).replace(/\r?\n$/, "")
        : await ctx.passphrase("passphrase of the export: ");
      const owner = await data.config.get<string>("cli", "owner");
      let r;
      try {
        r = await data.importExport(file, {
          passphrase,
          ...(typeof keyFile === "string" ? { keyFile } : {}),
          // Conversations of users absent from both keep no user, unless
          // this folder has its owner already (the export may bring one).
          ...(owner === undefined ? {} : { userId: owner }),
          signal: ctx.signal,
        });
      } catch (err) {
        if (isAicoDataError(err, "WRONG_KEY")) {
          throw new CliError(
            `${err.message} [WRONG_KEY]`,
            "pass --export-passphrase-file with the passphrase of the folder it was made in, or --export-key with the key.json it was made with",
          );
        }
        throw err;
      }
      return {
        file: r.file,
        format: "aico",
        sealed: r.sealed,
        usersAdded: r.usersAdded,
        configAdded: r.configAdded,
        pluginsAdded: r.pluginsAdded,
        pluginStateAdded: r.pluginStateAdded,
        conversationsAdded: r.conversationsAdded,
        messagesAdded: r.messagesAdded,
        messagesSkipped: r.skipped,
      };
    };
    const unseal = async (sealed: Uint8Array, keyId: string) => {
      const key = (await otherKey()) ?? data.key;
      if (keyId !== key.keyId) {
        throw new CliError(
          `This export was sealed with the data key ${keyId}, not ${key.keyId}`,
          "pass --export-key with the key.json it was made with (a backup folder holds one)",
        );
      }
      return await (await key.sealer("export")).open(sealed, EXPORT_AAD);
    };
    const reports: (ImportReport | Record<string, unknown>)[] = [];
    for (const file of ctx.positionals) {
      if (
        file !== "-" && (format === undefined || format === "aico") &&
        isExportV2(await head(file))
      ) {
        reports.push(await restoreExport(file));
        continue;
      }
      const progress = createProgress(
        `importing ${file === "-" ? "stdin" : file}`,
      );
      try {
        reports.push(
          await importer.importFile(file, {
            ...(format === undefined
              ? {}
              : { format: String(format) as ImportFormat }),
            allBranches: ctx.values["all-branches"] === true,
            unseal,
            signal: ctx.signal,
            onProgress: (p) =>
              progress.update(
                `${p.conversations} conversations, ${p.messages} messages`,
              ),
          }),
        );
      } finally {
        progress.done();
      }
    }
    await importer.close();
    if (ctx.json) {
      ctx.printJson(reports);
    } else {
      for (const r of reports) {
        ctx.print(
          `imported ${r.messagesAdded} messages in ${r.conversationsAdded} new conversations from ${r.file} (${r.format}; ${r.messagesSkipped} already stored)`,
        );
      }
    }
    return 0;
  },
};
