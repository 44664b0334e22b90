import { join } from "node:path";
import { statfs } from "node:fs/promises";
import { readKeyFileInfo } from "../../crypto/mod.ts";
import { VERSION } from "../_version.ts";
import { findOnPath } from "../_keyring.ts";
import type { Command } from "../_context.ts";
import { syncCheck } from "./sync.ts";

interface Check {
  readonly check: string;
  readonly status: "ok" | "warn" | "fail";
  readonly detail: string;
}

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

export const doctor: Command = {
  name: "doctor",
  summary:
    "check permissions, keyring, integrity, encryption, versions, free space",
  usage: "doctor [--json]",
  help:
    `Checks what aico-data needs: Deno permissions, the OS keyring tool, the key
file and its Argon2id cost, that the database is encrypted, its integrity
(unlocks with the passphrase or --keyring), the sync target when one is set
(every manifest and segment verifies: a tampered target fails), versions
and free disk space.
Exit 1 when a check fails.`,
  positionals: [0, 0],
  async run(ctx) {
    const checks: Check[] = [];
    const add = (check: string, status: Check["status"], detail: string) =>
      checks.push({ check, status, detail });
    const dir = ctx.dir();
    add(
      "versions",
      "ok",
      `aico-data ${VERSION}, Deno ${Deno.version.deno}, V8 ${Deno.version.v8}`,
    );
    const perms: [string, Deno.PermissionDescriptor][] = [
      ["--allow-read", { name: "read", path: dir }],
      ["--allow-write", { name: "write", path: dir }],
      ["--allow-env", { name: "env" }],
      ["--allow-ffi", { name: "ffi" }],
      ["--allow-sys", { name: "sys" }],
    ];
    const missing = perms.filter(([, d]) => !granted(d)).map(([f]) => f);
    add(
      "permissions",
      missing.length === 0 ? "ok" : "warn",
      missing.length === 0
        ? "read, write, env, ffi, sys granted"
        : `missing ${missing.join(" ")}`,
    );
    const tool = Deno.build.os === "darwin" ? "security" : "secret-tool";
    const where = findOnPath(tool);
    const runOk = granted({ name: "run", command: tool });
    if (
      !granted({ name: "read" }) || !granted({ name: "env", variable: "PATH" })
    ) {
      add(
        "keyring",
        "warn",
        `cannot look for ${tool} without --allow-read and --allow-env`,
      );
    } else if (where === undefined) {
      add(
        "keyring",
        "warn",
        `${tool} not found (Debian: apt-get install libsecret-tools); --keyring unavailable`,
      );
    } else {
      add(
        "keyring",
        runOk ? "ok" : "warn",
        runOk
          ? where
          : `${where} found; add --allow-run=${tool} to use --keyring`,
      );
    }
    let keyOk = false;
    try {
      const info = await readKeyFileInfo(join(dir, "key.json"));
      keyOk = true;
      const weak = info.kdf.memoryKiB < 65536 || info.kdf.iterations < 3;
      add(
        "key file",
        weak ? "warn" : "ok",
        `${info.keyId}, Argon2id m=${info.kdf.memoryKiB} KiB t=${info.kdf.iterations}${
          weak ? " (below the default cost)" : ""
        }${
          info.pendingKeyId ? `, rotation pending to ${info.pendingKeyId}` : ""
        }`,
      );
    } catch (err) {
      add("key file", "fail", err instanceof Error ? err.message : String(err));
    }
    try {
      const f = await Deno.open(join(dir, "data.db"));
      const head = new Uint8Array(16);
      await f.read(head);
      f.close();
      const plain =
        new TextDecoder("latin1").decode(head) === "SQLite format 3\0";
      add(
        "encryption",
        plain ? "fail" : "ok",
        plain
          ? "data.db is NOT encrypted"
          : "data.db pages encrypted (no plain SQLite header)",
      );
    } catch (err) {
      add(
        "encryption",
        "fail",
        err instanceof Error ? err.message : String(err),
      );
    }
    if (keyOk) {
      try {
        await using data = await ctx.open();
        const v = await data.storage.verify();
        add(
          "integrity",
          v.ok ? "ok" : "fail",
          v.ok
            ? "integrity_check ok, key record matches"
            : v.integrity.join("; "),
        );
        const synced = await syncCheck(data);
        if (synced !== undefined) add("sync", synced.status, synced.detail);
      } catch (err) {
        add(
          "integrity",
          "fail",
          err instanceof Error ? err.message : String(err),
        );
      }
    }
    try {
      const s = await statfs(dir);
      const free = s.bavail * s.bsize;
      add(
        "free space",
        free < 512 * 2 ** 20 ? "warn" : "ok",
        `${(free / 2 ** 30).toFixed(1)} GiB free`,
      );
    } catch (err) {
      add(
        "free space",
        "warn",
        err instanceof Error ? err.message : String(err),
      );
    }
    if (ctx.json) ctx.printJson(checks);
    else {
      for (const c of checks) {
        ctx.print(`${c.status.padEnd(4)}  ${c.check.padEnd(12)} ${c.detail}`);
      }
    }
    return checks.some((c) => c.status === "fail") ? 1 : 0;
  },
};
