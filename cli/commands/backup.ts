import { join, resolve } from "node:path";
import { CliError } from "../_errors.ts";
import type { Command } from "../_context.ts";
import { recordBackup } from "../_backups.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

export const backup: Command = {
  name: "backup",
  summary:
    "a backup folder that restores on its own (database, key record, key file)",
  usage: "backup --to DIR",
  help:
    `Writes a new folder DIR holding an encrypted, verified copy of the database
(data.db), its key record (data.db.aico) and the key file (key.json). It opens
with the passphrase the folder had at backup time; restore it with
\`aico-data restore DIR --dir NEW\`. Its location is recorded (sealed) in the
folder, so that \`aico-data erase\` can list the backups it cannot reach.

  --to DIR   the backup folder (must not exist)`,
  options: { to: { type: "string" } },
  positionals: [0, 0],
  async run(ctx) {
    const to = ctx.values.to;
    if (typeof to !== "string" || to === "") {
      throw new CliError(
        "backup needs --to DIR",
        "pass --to with a new folder",
      );
    }
    if (await exists(to)) {
      throw new CliError(`"${to}" exists`, "choose a new folder for --to");
    }
    await using data = await ctx.open();
    await Deno.mkdir(to, { recursive: true, mode: 0o700 });
    try {
      await data.storage.backup(join(resolve(to), "data.db"));
      await Deno.copyFile(join(data.dir, "key.json"), join(to, "key.json"));
    } catch (err) {
      await Deno.remove(to, { recursive: true }).catch(() => {});
      throw err;
    }
    // Recorded (sealed) so that `erase` can list the copies it cannot reach.
    await recordBackup(data, {
      path: resolve(to),
      at: Date.now(),
      keyId: data.key.keyId,
    });
    await data.audit.record("backup", { keyId: data.key.keyId });
    if (ctx.json) ctx.printJson({ backup: to, keyId: data.key.keyId });
    else ctx.print(`backed up to ${to} (data key ${data.key.keyId})`);
    return 0;
  },
};

export const restore: Command = {
  name: "restore",
  summary: "restore a backup folder into a new data folder",
  usage: "restore BACKUP --dir NEW",
  help:
    `Copies the backup folder BACKUP (from \`aico-data backup\`) into the data
folder, which must not be initialised, then opens it with the passphrase and
checks its integrity.`,
  positionals: [1, 1],
  async run(ctx) {
    const from = ctx.positionals[0]!;
    const dir = ctx.dir();
    for (const f of ["key.json", "data.db", "data.db.aico"]) {
      if (!await exists(join(from, f))) {
        throw new CliError(
          `"${from}" is not a backup folder (no ${f})`,
          "pass a folder made by `aico-data backup`",
        );
      }
    }
    if (
      await exists(join(dir, "key.json")) || await exists(join(dir, "data.db"))
    ) {
      throw new CliError(
        `"${dir}" is initialised already`,
        "restore into a new --dir",
      );
    }
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    for (const f of ["key.json", "data.db", "data.db.aico"]) {
      await Deno.copyFile(join(from, f), join(dir, f));
    }
    try {
      await using data = await ctx.open();
      const v = await data.storage.verify();
      if (!v.ok) {
        throw new CliError(
          `the restored database fails its check: ${v.integrity.join("; ")}`,
          "try an older backup",
        );
      }
      // Recorded in the restored store, at restore time: the backup's trail
      // came along in data.db, so the event extends its chain.
      await data.audit.record("restore", {
        source: "backup",
        keyId: data.key.keyId,
        integrity: v.ok,
      });
      if (ctx.json) ctx.printJson({ restored: dir, keyId: data.key.keyId });
      else ctx.print(`restored ${from} into ${dir} (integrity ok)`);
    } catch (err) {
      for (const f of ["key.json", "data.db", "data.db.aico"]) {
        await Deno.remove(join(dir, f)).catch(() => {});
      }
      throw err;
    }
    return 0;
  },
};
