import { openOsKeyring } from "../_keyring.ts";
import { join } from "node:path";
import { rememberInKeyring } from "../../crypto/mod.ts";
import { CliError } from "../_errors.ts";
import type { Command } from "../_context.ts";
import { joinFromSync } from "./sync.ts";

/** Why a passphrase is weak, or undefined. */
export function weakness(passphrase: string): string | undefined {
  const chars = [...passphrase];
  if (chars.length < 12) return "shorter than 12 characters";
  if (new Set(chars).size < 6) return "too few different characters";
  if (/^[a-z]+$/i.test(passphrase) && chars.length < 20) {
    return "letters only (add words, digits or symbols)";
  }
  return undefined;
}

async function kind(path: string): Promise<"file" | "dir" | undefined> {
  try {
    return (await Deno.stat(path)).isDirectory ? "dir" : "file";
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

export const init: Command = {
  name: "init",
  summary: "create an encrypted data folder (asks for a new passphrase twice)",
  usage:
    "init [--dir DIR] [--remember] [--passphrase-file FILE] [--from-sync TARGET]",
  help:
    `Creates key.json (the data key, wrapped by your passphrase with Argon2id
64 MiB, t=3) and data.db (the encrypted database) in the folder. Refuses a
folder that is initialised already.

  --remember   also keep the data key in the OS keyring (then --keyring unlocks)
  --from-sync TARGET
               join your other devices: fetch the passphrase-wrapped key file
               from the sync target (asks its passphrase), then pull everything`,
  options: {
    remember: { type: "boolean" },
    "from-sync": { type: "string" },
  },
  positionals: [0, 0],
  async run(ctx) {
    const dir = ctx.dir();
    const k = await kind(dir);
    if (k === "file") {
      throw new CliError(
        `"${dir}" is a file, not a folder`,
        "pass --dir with a folder path",
      );
    }
    if (
      k === "dir" &&
      (await kind(join(dir, "key.json")) !== undefined ||
        await kind(join(dir, "data.db")) !== undefined)
    ) {
      throw new CliError(
        `"${dir}" is initialised already`,
        "use it as it is, or choose another --dir",
      );
    }
    if (typeof ctx.values["from-sync"] === "string") {
      return await joinFromSync(ctx, ctx.values["from-sync"], k === "dir");
    }
    const passphrase = await ctx.passphrase("new passphrase: ", {
      confirm: true,
    });
    if (passphrase.length === 0) {
      throw new CliError("The passphrase is empty", "type a passphrase");
    }
    const weak = weakness(passphrase);
    if (weak !== undefined) {
      ctx.note(
        `warning: weak passphrase (${weak}); consider \`aico-data passwd\``,
      );
    }
    await using data = await ctx.open({ create: true, passphrase });
    let remembered = false;
    if (ctx.values.remember === true) {
      await rememberInKeyring(
        join(dir, "key.json"),
        passphrase,
        await openOsKeyring(),
      );
      remembered = true;
    }
    if (ctx.json) {
      ctx.printJson({ dir, keyId: data.key.keyId, remembered });
    } else {
      ctx.print(`created ${dir} (data key ${data.key.keyId})`);
      if (remembered) {
        ctx.print("the OS keyring holds the data key; use --keyring to unlock");
      }
    }
    return 0;
  },
};
