/**
 * Internal: the Deno permissions lmdb-js needs, checked before it is loaded.
 *
 * @module
 */

import { requirePermission } from "../_internal/permissions.ts";

/** Environment variables lmdb-js and its loaders read when loaded. */
export const LMDB_ENV_VARS: readonly string[] = [
  "PREBUILDS_ONLY",
  "ELECTRON_RUN_AS_NODE",
  "npm_config_arch",
  "npm_config_platform",
  "LIBC",
  "ARM_VERSION",
  "MSGPACKR_NATIVE_ACCELERATION_DISABLED",
  "LMDB_RESTORE",
];

/** System information lmdb-js's prebuild loader reads (`process.report`). */
export const LMDB_SYS_KINDS: readonly NonNullable<
  Deno.SysPermissionDescriptor["kind"]
>[] = [
  "cpus",
  "networkInterfaces",
  "hostname",
];

/**
 * Throws `PERMISSION_DENIED` naming the flag to add when a permission lmdb-js
 * needs is not granted.
 */
export function checkCachePermissions(path: string): void {
  const env = `--allow-env=${LMDB_ENV_VARS.join(",")}`;
  const sys = `--allow-sys=${LMDB_SYS_KINDS.join(",")}`;
  const needed: [Deno.PermissionDescriptor, string][] = [
    [{ name: "read", path }, `--allow-read=${path}`],
    [{ name: "write", path }, `--allow-write=${path}`],
    [{ name: "ffi" }, "--allow-ffi"],
    ...LMDB_ENV_VARS.map((variable): [Deno.PermissionDescriptor, string] => [
      { name: "env", variable },
      env,
    ]),
    ...LMDB_SYS_KINDS.map((kind): [Deno.PermissionDescriptor, string] => [
      { name: "sys", kind },
      sys,
    ]),
  ];
  for (const [descriptor, flag] of needed) {
    requirePermission(descriptor, flag, "open cache");
  }
}
