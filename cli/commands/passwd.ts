import { join } from "node:path";
import { changePassphrase } from "../../crypto/mod.ts";
import { CliError } from "../_errors.ts";
import { weakness } from "./init.ts";
import type { Command } from "../_context.ts";
import { promptSecret } from "../_prompt.ts";

export const passwd: Command = {
  name: "passwd",
  summary: "change the passphrase (re-wraps the data key; data untouched)",
  usage: "passwd [--new-passphrase-file FILE]",
  help:
    `Changes the passphrase of the key file. Only the wrapped data key changes;
the database, backups' data and the OS keyring entry stay valid. Older copies
of key.json keep opening with the OLD passphrase.

  --new-passphrase-file FILE   read the new passphrase from FILE (scripts)`,
  options: { "new-passphrase-file": { type: "string" } },
  positionals: [0, 0],
  async run(ctx) {
    const keyFile = join(ctx.dir(), "key.json");
    const old = await ctx.passphrase("current passphrase: ");
    let next: string | undefined;
    const file = ctx.values["new-passphrase-file"];
    if (typeof file === "string") {
      next = (await Deno.readTextFile(file)).replace(/\r?\n$/, "");
    } else {
      next = await promptSecret("new passphrase: ");
      if (next !== undefined && await promptSecret("again: ") !== next) {
        throw new CliError("The two passphrases differ", "run passwd again");
      }
    }
    if (next === undefined || next.length === 0) {
      throw new CliError(
        "No new passphrase",
        "type it on a terminal or pass --new-passphrase-file FILE",
      );
    }
    const weak = weakness(next);
    if (weak !== undefined) ctx.note(`warning: weak passphrase (${weak})`);
    await changePassphrase(keyFile, old, next);
    if (ctx.json) ctx.printJson({ changed: true });
    else ctx.print("passphrase changed (the data key is the same)");
    return 0;
  },
};
