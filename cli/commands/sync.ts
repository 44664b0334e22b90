import { join } from "node:path";
import {
  deriveSyncKeys,
  fetchKeyFile,
  loadTargetSpec,
  openSyncDevice,
  openSyncTarget,
  publishKeyFile,
  saveTargetSpec,
} from "../../sync/mod.ts";
import type { DataLayer, SyncRunReport } from "../../data_layer/mod.ts";
import type { CompactReport } from "../../sync/mod.ts";
import { CliError } from "../_errors.ts";
import type { Command, Context } from "../_context.ts";

function line(r: SyncRunReport): string {
  return `pushed ${r.pushed.segments} segment(s) (${r.pushed.bytes} bytes), pulled ${r.pulled.changes} change(s) from ${r.pulled.devices} device(s)${
    r.incomplete.length > 0
      ? `; ${r.incomplete.length} device(s) still arriving`
      : ""
  }`;
}

function compactLine(r: CompactReport): string {
  return `snapshot written: ${r.changes} row version(s) in ${r.parts} part(s) (${r.bytes} bytes); deleted ${r.deletedSegments} segment(s), ${r.deletedSnapshots} older snapshot(s), ${r.deletedManifests} manifest(s) of removed devices`;
}

async function syncCompact(ctx: Context, remove?: string): Promise<number> {
  await using data = await openSynced(ctx);
  const r = remove === undefined
    ? await data.sync!.compact({ signal: ctx.signal })
    : await data.sync!.removeDevice(remove);
  if (ctx.json) {
    ctx.printJson(remove === undefined ? r : { removed: remove, ...r });
  } else {
    if (remove !== undefined) {
      ctx.print(
        `device ${remove} removed: the other devices refuse its changes from now on`,
      );
      ctx.print(
        "it still holds the data key: to lock it out for good, rotate the key (aico-data rotate-key) and set up sync on a new target",
      );
    }
    ctx.print(compactLine(r));
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", stop, { once: true });
  });
}

async function syncInit(ctx: Context, spec: string): Promise<number> {
  // Check the target before anything is saved.
  await using target = await openSyncTarget(spec);
  const dir = ctx.dir();
  await using data = await ctx.open({ sync: { target: spec } });
  await saveTargetSpec(data.storage, spec);
  const published = await publishKeyFile(target, join(dir, "key.json"));
  const report = await data.sync!.run({ signal: ctx.signal });
  if (ctx.json) {
    ctx.printJson({
      target: target.id,
      deviceId: data.sync!.deviceId,
      keyFilePublished: published,
      ...report,
    });
  } else {
    ctx.print(
      `sync target set: ${target.id} (this device: ${data.sync!.deviceId})`,
    );
    ctx.print(
      published
        ? "the passphrase-wrapped key file is on the target: join with `aico-data init --from-sync TARGET`"
        : "the target holds this folder's key file already",
    );
    ctx.print(line(report));
  }
  return 0;
}

/** Opens the folder with its saved target, or explains how to set one. */
export async function openSynced(ctx: Context): Promise<DataLayer> {
  const data = await ctx.open({ sync: {} });
  if (data.sync === undefined) {
    await data.close();
    throw new CliError(
      "No sync target is set for this folder",
      "run `aico-data sync init TARGET` (a folder path or an http(s):// WebDAV URL)",
    );
  }
  return data;
}

export const sync: Command = {
  name: "sync",
  summary: "sync end-to-end encrypted with your other devices",
  usage:
    "sync [init TARGET | compact | remove-device ID] [--watch [--interval SECONDS]] [--json]",
  help: `aico-data sync init TARGET   set the target (a folder kept in sync by
                             Syncthing/Dropbox/iCloud, a USB stick, or an
                             http(s):// WebDAV URL such as Nextcloud; user and
                             password may be in the URL), put the
                             passphrase-wrapped key file on it, sync once
aico-data sync               sync once: push this device's changes, pull the others'
aico-data sync --watch       keep syncing until Ctrl-C (exit 130)
aico-data sync compact       fold the history into a snapshot on the target and
                             delete the segments it covers (a new device then
                             pulls the live data, not the history); \`sync\`
                             does it by itself past 256 uncovered segments
aico-data sync remove-device ID
                             the other devices refuse that device's changes
                             from now on; its segments are compacted away (it
                             keeps the data key: rotate the key to lock it out)

The target only ever sees sealed, opaquely named files. Join another device
with \`aico-data init --from-sync TARGET\`; \`aico-data doctor\` checks the target.
WebDAV needs --allow-net=HOST.

  --watch            keep going
  --interval SECONDS between two syncs with --watch (default 10)`,
  options: {
    watch: { type: "boolean" },
    interval: { type: "string" },
  },
  positionals: [0, 2],
  async run(ctx) {
    const [sub, spec] = ctx.positionals;
    if (
      sub !== undefined && sub !== "init" && sub !== "compact" &&
      sub !== "remove-device"
    ) {
      throw new CliError(
        `Unknown sync command "${sub}"`,
        "use `aico-data sync`, `sync init TARGET`, `sync compact` or `sync remove-device ID`",
      );
    }
    if (sub === "compact") {
      if (spec !== undefined) {
        throw new CliError(
          `Unexpected argument "${spec}"`,
          "use `aico-data sync compact`",
        );
      }
      return await syncCompact(ctx);
    }
    if (sub === "remove-device") {
      if (spec === undefined) {
        throw new CliError(
          "sync remove-device needs a device ID",
          "the ids are in `aico-data sync --json` (pulled devices) and `doctor`",
        );
      }
      return await syncCompact(ctx, spec);
    }
    if (sub === "init") {
      if (spec === undefined) {
        throw new CliError(
          "sync init needs a TARGET",
          "pass a folder path or an http(s):// WebDAV URL",
        );
      }
      return await syncInit(ctx, spec);
    }
    if (spec !== undefined) {
      throw new CliError(
        `Unexpected argument "${spec}"`,
        "use `aico-data sync` or `aico-data sync init TARGET`",
      );
    }
    const interval = ctx.values.interval === undefined
      ? 10
      : Number(ctx.values.interval);
    if (!Number.isFinite(interval) || interval <= 0 || interval > 86400) {
      throw new CliError(
        `Invalid --interval "${String(ctx.values.interval)}"`,
        "pass a number of seconds between 0 and 86400",
      );
    }
    await using data = await openSynced(ctx);
    for (;;) {
      const report = await data.sync!.run({ signal: ctx.signal });
      if (ctx.json) ctx.printJson(report);
      else ctx.print(line(report));
      if (ctx.values.watch !== true) return 0;
      await sleep(interval * 1000, ctx.signal);
    }
  },
};

/** `aico-data init --from-sync TARGET`: joins this folder to the target. */
export async function joinFromSync(
  ctx: Context,
  spec: string,
  existed: boolean,
): Promise<number> {
  const dir = ctx.dir();
  await using target = await openSyncTarget(spec, { create: false });
  const passphrase = await ctx.passphrase("passphrase of your synced data: ");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await fetchKeyFile(target, join(dir, "key.json"), passphrase);
  } catch (err) {
    // Nothing was written: leave no empty folder behind.
    if (!existed) await Deno.remove(dir).catch(() => {});
    throw err;
  }
  await using data = await ctx.open({
    create: true,
    passphrase,
    sync: { target: spec },
  });
  await saveTargetSpec(data.storage, spec);
  const report = await data.sync!.run({ signal: ctx.signal });
  if (ctx.json) {
    ctx.printJson({
      dir,
      keyId: data.key.keyId,
      deviceId: data.sync!.deviceId,
      ...report,
    });
  } else {
    ctx.print(
      `joined ${target.id} in ${dir} (data key ${data.key.keyId}, this device: ${
        data.sync!.deviceId
      })`,
    );
    ctx.print(line(report));
  }
  return 0;
}

/** The `doctor` check of the sync target, when one is set. */
export async function syncCheck(
  data: DataLayer,
): Promise<
  { status: "ok" | "warn" | "fail"; detail: string } | undefined
> {
  const spec = await loadTargetSpec(data.storage);
  if (spec === undefined) return undefined;
  try {
    await using device = await openSyncDevice(
      join(data.dir, "sync"),
      await deriveSyncKeys(data.key),
    );
    await using target = await openSyncTarget(spec, { create: false });
    const v = await device.verify(target);
    if (!v.ok) {
      return {
        status: "fail",
        detail: `${target.id}: ${v.problem?.code}: ${v.problem?.message}`,
      };
    }
    const pending = v.pending.reduce((n, p) => n + p.changes, 0);
    return {
      status: v.incomplete.length > 0 ? "warn" : "ok",
      detail:
        `${target.id}: every manifest and segment verifies; ${pending} change(s) to pull${
          v.incomplete.length > 0
            ? `, ${v.incomplete.length} device(s) still arriving`
            : ""
        }`,
    };
  } catch (err) {
    return {
      status: "fail",
      detail: err instanceof Error ? err.message : String(err),
    };
  }
}
