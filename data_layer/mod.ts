/**
 * The composition root: {@linkcode openDataLayer} opens every component of
 * a companion's data layer in one folder, from an ordered table of
 * {@linkcode DataLayerComponent} rows `{ name, schemas, open(ctx),
 * close(instance), rotated? }`: `storage` (unlocked key, encrypted store,
 * every row's schemas migrated), `bus`, `cache`, `changes` (the durable
 * change feed), `repositories`, `logs`, then the rows passed as
 * `options.components` (the vector and analytics components). Each row's
 * `open(ctx)` gets a {@linkcode ComponentContext}: `dir`, `key`, `registry`,
 * `signal`, `storage`, `bus`, `changes` and `get(name)` for any earlier
 * row. Rows close in reverse order. `rotateKey()` re-seals every sealed
 * column that any registered schema declares and calls each row's
 * `rotated` hook (the cache reopens under the new key). `erase()` removes a
 * message, conversation, user or everything from every store (see
 * `erase.ts`), then calls each row's `erased` hook; `retention` policies run
 * through the same path at open and on a schedule.
 *
 * Query routing is decided in one place (`_routing.ts`): configuration
 * reads, user profiles and the recent context of a conversation are served
 * read-through from the encrypted cache and invalidated by the change
 * feed's bus events before a write returns; listings go to libSQL;
 * similarity queries belong to the vector component and aggregates to the
 * analytics component (rows of the table, `data.component(name)`).
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
  type CoreRepositories,
  DATA_LAYER_FILES,
  type DataLayer,
  type DataLayerAnalyticsOptions,
  type DataLayerMemoryOptions,
  type DataLayerOptions,
  type DataLayerSyncOptions,
  type DataSync,
  type LogComponent,
  openDataLayer,
  type RotateKeyOptions,
  type SyncRunReport,
} from "./data_layer.ts";
export type { ComponentContext, DataLayerComponent } from "./components.ts";
export type {
  EraseKind,
  EraseOptions,
  EraseReport,
  EraseScope,
  RetentionPolicy,
} from "./erase.ts";
export {
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportDocument,
  type ExportedConfig,
  type ExportedConversation,
  type ExportedMessage,
  type ExportedPlugin,
  type ExportedPluginState,
  type ExportedUser,
  type ExportOptions,
  type ExportReport,
  type ExportScope,
  type ImportExportOptions,
  type ImportExportReport,
  isExportV2,
  type ResolvedExportOptions,
  resolveExportOptions,
} from "./export.ts";
export type {
  Inventory,
  InventoryFile,
  InventoryStore,
  InventoryTable,
} from "./inventory.ts";
