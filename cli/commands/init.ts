import { openOsKeyring } from "../_keyring.ts";
import { join } from "node:path";
import {
  DEFAULT_KDF_COST,
  type KdfOptions,
  MIN_KDF_COST,
  rememberInKeyring,
} from "../../crypto/mod.ts";
import { CliError, UsageError } from "../_errors.ts";
import type { Command, Context } from "../_context.ts";
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

/** The largest Argon2id memory accepted, in MiB (the KDF's own limit: 4 GiB). */
const MAX_KDF_MEMORY_MIB = 4096;

function whole(
  value: unknown,
  flag: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${flag} must be a whole number from ${min} to ${max}, got "${text}"`,
      "init",
    );
  }
  return n;
}

/**
 * The Argon2id cost of the new key file from `--kdf-memory` (MiB) and
 * `--kdf-iterations`: the library's default (64 MiB, t=3) when absent; a
 * cost below OWASP's minimum (19 MiB, t=2) only with `--allow-weak-kdf`,
 * with a warning. The key file records the cost, so nothing is needed to
 * open it later; no environment variable changes it.
 */
export function kdfOf(ctx: Pick<Context, "values" | "note">): KdfOptions {
  const memoryMiB = whole(
    ctx.values["kdf-memory"],
    "--kdf-memory",
    1,
    MAX_KDF_MEMORY_MIB,
  );
  const iterations = whole(
    ctx.values["kdf-iterations"],
    "--kdf-iterations",
    1,
    1000,
  );
  const memoryKiB = memoryMiB === undefined
    ? DEFAULT_KDF_COST.memoryKiB
    : memoryMiB * 1024;
  const t = iterations ?? DEFAULT_KDF_COST.iterations;
  const weak = memoryKiB < MIN_KDF_COST.memoryKiB ||
    t < MIN_KDF_COST.iterations;
  if (weak) {
    const cost = `${memoryKiB / 1024} MiB, t=${t}`;
    const minimum = `${
      MIN_KDF_COST.memoryKiB / 1024
    } MiB, t=${MIN_KDF_COST.iterations}`;
    if (ctx.values["allow-weak-kdf"] !== true) {
      throw new UsageError(
        `the Argon2id cost ${cost} is below the minimum ${minimum}; pass --allow-weak-kdf to accept a key file that is cheaper to guess`,
        "init",
      );
    }
    ctx.note(
      `warning: the key file is made with Argon2id ${cost}, below the minimum ${minimum}: a stolen key.json is cheaper to guess; \`aico-data passwd\` re-wraps it at the default cost`,
    );
  }
  return {
    memoryKiB,
    iterations: t,
    ...(weak ? { allowWeakParams: true } : {}),
  };
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
    "init [--dir DIR] [--remember] [--passphrase-file FILE] [--kdf-memory MIB] [--kdf-iterations N] [--from-sync TARGET]",
  help:
    `Creates key.json (the data key, wrapped by your passphrase with Argon2id
64 MiB, t=3) and data.db (the encrypted database) in the folder. Refuses a
folder that is initialised already.

  --remember            also keep the data key in the OS keyring (then
                        --keyring unlocks)
  --kdf-memory MIB      Argon2id memory of the key file (default 64)
  --kdf-iterations N    Argon2id passes (default 3)
  --allow-weak-kdf      accept a cost below OWASP's minimum (19 MiB, t=2);
                        for throwaway test folders only
  --from-sync TARGET    join your other devices: fetch the passphrase-wrapped
                        key file from the sync target (asks its passphrase),
                        then pull everything

key.json records its Argon2id cost: opening the folder needs no flag, and
\`aico-data passwd\` re-wraps the key at the default cost.`,
  options: {
    remember: { type: "boolean" },
    "kdf-memory": { type: "string" },
    "kdf-iterations": { type: "string" },
    "allow-weak-kdf": { type: "boolean" },
    "from-sync": { type: "string" },
  },
  positionals: [0, 0],
  async run(ctx) {
    const kdf = kdfOf(ctx);
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
    await using data = await ctx.open({ create: true, passphrase, kdf });
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
