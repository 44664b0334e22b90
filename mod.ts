/**
 * `@aico/data`: a local-first, privacy-first data toolkit for a personal AI
 * companion. A user's memories stay on their device, encrypted at rest
 * (libSQL page encryption) and sealed field by field (AES-256-GCM), yet
 * queryable through typed repositories, with versioned migrations, an
 * in-process message bus and an encrypted session cache.
 *
 * {@linkcode openDataLayer} composes everything in one folder. Each concern
 * is also a subpath of its own: `@aico/data/crypto`, `/storage`,
 * `/repositories`, `/schema`, `/bus`, `/cache`, `/cli`. Importing this module
 * loads no native driver: libSQL and LMDB load when a store is opened.
 *
 * Permissions: `--allow-read --allow-write` on the data folder,
 * `--allow-ffi`, `--allow-sys`, `--allow-env`.
 *
 * @example Remembering a conversation across restarts
 * ```ts
 * import { openDataLayer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kdf = { memoryKiB: 19456, iterations: 2 }; // use the stronger defaults in real code
 *   {
 *     await using data = await openDataLayer(dir, { passphrase: "a long passphrase", create: true, kdf });
 *     await data.config.set("ui", "theme", "dark");
 *   }
 *   await using data = await openDataLayer(dir, { passphrase: "a long passphrase" });
 *   assert.equal(await data.config.get("ui", "theme"), "dark");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export {
  AicoDataError,
  type AicoDataErrorCode,
  BatchError,
  isAicoDataError,
} from "./errors.ts";
export {
  type ComponentContext,
  type CoreRepositories,
  DATA_LAYER_FILES,
  type DataLayer,
  type DataLayerAnalyticsOptions,
  type DataLayerComponent,
  type DataLayerMemoryOptions,
  type DataLayerOptions,
  type EraseKind,
  type EraseOptions,
  type EraseReport,
  type EraseScope,
  type LogComponent,
  openDataLayer,
  type RetentionPolicy,
  type RotateKeyOptions,
} from "./data_layer/mod.ts";
