import { openOsKeyring } from "../_keyring.ts";
import { join } from "node:path";
import { readKeyFileInfo, rememberInKeyring } from "../../crypto/mod.ts";
import type { Command } from "../_context.ts";

export const remember: Command = {
  name: "remember",
  summary: "keep the data key in the OS keyring (then --keyring unlocks)",
  usage: "remember",
  help:
    `Stores the data key in the OS keyring (Secret Service on Linux, Keychain on
macOS), so --keyring unlocks without the passphrase. Needs
--allow-run=secret-tool (Linux) or --allow-run=security (macOS).`,
  positionals: [0, 0],
  async run(ctx) {
    const keyFile = join(ctx.dir(), "key.json");
    const passphrase = await ctx.passphrase("passphrase: ");
    const key = await rememberInKeyring(
      keyFile,
      passphrase,
      await openOsKeyring(),
    );
    if (ctx.json) ctx.printJson({ keyId: key.keyId, remembered: true });
    else {
      ctx.print(
        `the OS keyring now holds the data key ${key.keyId}; use --keyring to unlock`,
      );
    }
    return 0;
  },
};

export const forget: Command = {
  name: "forget",
  summary: "remove the data key from the OS keyring",
  usage: "forget",
  help: "Deletes this folder's data key from the OS keyring.",
  positionals: [0, 0],
  async run(ctx) {
    const { keyId } = await readKeyFileInfo(join(ctx.dir(), "key.json"));
    const removed = await (await openOsKeyring()).delete(
      `aico-data/${keyId}`,
    );
    if (ctx.json) ctx.printJson({ keyId, removed });
    else {
      ctx.print(
        removed
          ? `forgot the data key ${keyId}`
          : "the OS keyring held no key for this folder",
      );
    }
    return 0;
  },
};
