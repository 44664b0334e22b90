// Internal: the `analytics` row of the component table. DuckDB stays
// unloaded until the first analytics call; the refresher is a durable
// consumer of the change feed; exports and reports are sealed with the
// current key's `export` purpose key (the row reopens after a rotation).
import {
  type Analytics,
  type EngineChoice,
  openAnalytics,
} from "../analytics/mod.ts";
import type { ComponentContext, DataLayerComponent } from "./components.ts";

/** Options of the data layer's analytics (`DataLayerOptions.analytics`). */
export interface DataLayerAnalyticsOptions {
  /**
   * The DuckDB engine: `"wasm"` (DuckDB-WASM), `"native"`
   * (`@duckdb/node-api`, needs `--allow-ffi`), or `"auto"`.
   *
   * @default {"wasm"}
   */
  readonly engine?: EngineChoice;
  /**
   * The gap that ends a session, in minutes.
   *
   * @default {30}
   */
  readonly sessionGapMinutes?: number;
}

/** The `analytics` row (`false` disables it). */
export function analyticsComponent(
  options: false | DataLayerAnalyticsOptions | undefined,
): DataLayerComponent<Analytics> {
  const open = (ctx: ComponentContext): Promise<Analytics> =>
    openAnalytics(ctx.storage, {
      ...(options || {}),
      key: ctx.key,
      feed: ctx.changes,
    });
  return {
    name: "analytics",
    schemas: [],
    open: (ctx) => options === false ? Promise.resolve(undefined) : open(ctx),
    close: (a) => a.close(),
    async rotated(old, ctx) {
      // Exports are sealed with the export key of the current data key.
      await old.close();
      return await open(ctx);
    },
  };
}
