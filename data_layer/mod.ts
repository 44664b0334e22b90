/**
 * The composition root: {@linkcode openDataLayer} opens every component of
 * a companion's data layer (key file, encrypted store, migrations,
 * repositories, message bus, log persistence, cache) in one folder.
 *
 * Permissions: `--allow-read --allow-write` on the folder, `--allow-ffi`,
 * `--allow-sys`, `--allow-env`.
 *
 * @example Open, write, reopen
 * ```ts
 * import { openDataLayer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 }; // the defaults are stronger
 *   {
 *     await using data = await openDataLayer(dir, { passphrase: "pw", create: true, kdf });
 *     await data.config.set("ui", "theme", "dark");
 *   }
 *   await using data = await openDataLayer(dir, { passphrase: "pw" });
 *   assert.equal(await data.config.get("ui", "theme"), "dark");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export {
  DATA_LAYER_FILES,
  type DataLayer,
  type DataLayerOptions,
  openDataLayer,
} from "./data_layer.ts";
