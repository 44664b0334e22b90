import { openOsKeyring } from "../_keyring.ts";
import { join } from "node:path";
import { readKeyFileInfo, rememberInKeyring } from "../../crypto/mod.ts";
import { confirm, hasTerminal } from "../_prompt.ts";
import type { Command } from "../_context.ts";

export const rotateKey: Command = {
  name: "rotate-key",
  summary: "re-encrypt everything under a new data key",
  usage: "rotate-key [--yes] [--keyring]",
  help:
    `Makes a new data key, re-encrypts the database and re-seals every sealed
column. Older backups stay under the OLD key: keep the key.json they were made
with (a backup folder holds its own). Asks for confirmation on a terminal.

  --yes       do not ask (scripts)
  --keyring   also replace the key held in the OS keyring`,
  options: { yes: { type: "boolean" } },
  positionals: [0, 0],
  async run(ctx) {
    const dir = ctx.dir();
    ctx.note(
      "note: backups made before this rotation open only with the key.json they were made with",
    );
    // Asked on a terminal only (scripts have no one to ask; nothing is lost:
    // the data is re-encrypted, and the note above says what older backups need).
    if (ctx.values.yes !== true && hasTerminal()) {
      if (!await confirm("rotate the data key now?")) {
        ctx.note("cancelled");
        return 1;
      }
    }
    const passphrase = await ctx.passphrase("passphrase: ");
    const oldId = (await readKeyFileInfo(join(dir, "key.json"))).keyId;
    const useKeyring = ctx.values.keyring === true;
    let newId: string;
    {
      // Rotation must unlock with the passphrase: it re-wraps the new key.
      await using data = await ctx.open({ passphrase });
      newId = await data.rotateKey(passphrase);
    }
    if (useKeyring) {
      const keyring = await openOsKeyring();
      await rememberInKeyring(join(dir, "key.json"), passphrase, keyring);
      await keyring.delete(`aico-data/${oldId}`);
    }
    if (ctx.json) ctx.printJson({ previousKeyId: oldId, keyId: newId });
    else {
      ctx.print(`new data key ${newId} (was ${oldId})`);
      if (useKeyring) ctx.print("the OS keyring now holds the new key");
    }
    return 0;
  },
};
