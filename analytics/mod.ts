/**
 * Conversation analytics of `@aico/data`: an in-memory DuckDB copy of the
 * store's analysable rows, kept current by a durable change-feed consumer,
 * with canned analyses, SQL, sealed exports and a self-contained HTML
 * report.
 *
 * - {@linkcode openAnalytics} over an open store: lazy (the engine starts
 *   and the rows are copied at the first analytics call), DuckDB-WASM by
 *   default, native DuckDB with `engine: "native"` (or `"auto"` when
 *   `--allow-ffi` is granted); both pass the same tests.
 * - Refresh: a full load at the first call, then incremental through the
 *   {@linkcode Analytics.consumer} (re-reads rows by key; idempotent). See
 *   {@linkcode Analytics} for what the cursor means: DuckDB keeps nothing on
 *   disk, so a refresher killed mid-refresh catches up at the next open.
 * - Analyses: activity per day, week, month; hour × weekday heatmap;
 *   conversation lengths; response latency; messages by role and model; top
 *   terms (English, German, Spanish stop words); streaks; gap-based sessions;
 *   error rates from the logs. All times UTC.
 * - `query(sql, params)` returns plain values ({@linkcode PlainValue});
 *   DuckDB's external access is off and its configuration locked.
 * - Exports (CSV, Arrow IPC, Parquet on the native engine) and reports are
 *   sealed with the `export` key unless plaintext is asked for
 *   ({@linkcode sealExport} documents the file format,
 *   {@linkcode openSealedExport} opens one).
 *
 * Permissions: those of the store (`--allow-read --allow-write --allow-ffi
 * --allow-sys --allow-env=LIBSQL_JS_DEV`), and for the WASM engine
 * `--allow-read` (its package files) and `--allow-sys=cpus`; the native
 * engine needs `--allow-ffi`. Importing this module loads no engine: each
 * SDK is imported lazily by its one adapter file (`_wasm_engine.ts`,
 * `_native_engine.ts`, `_arrow.ts`); the WASM files are found with
 * `import.meta.resolve` on literal package paths, so `deno compile` can
 * embed them.
 *
 * Memory: the copy lives in DuckDB's memory (the non-secret columns of every
 * row); message text, when asked for, is held in plaintext in
 * memory only and never written anywhere. The native engine's Parquet
 * writer uses a private folder (under `/dev/shm` when present), the only
 * path DuckDB may touch; files there are removed right after reading.
 *
 * @example Analyses, SQL and a report
 * ```ts
 * import { openAnalytics } from "./mod.ts";
 * import { openTestStore } from "../repositories/_doc_helpers.ts";
 * import { createConversationRepository } from "../repositories/mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * const repo = createConversationRepository(store.storage);
 * const c = await repo.createConversation();
 * const t = Date.UTC(2024, 4, 6, 9, 0); // a Monday, 09:00 UTC
 * await repo.appendMessages(c.id, [
 *   { role: "user", content: "Plan the garden", createdAt: t },
 *   { role: "assistant", content: "Start with tomatoes", createdAt: t + 4000 },
 * ]);
 *
 * await using analytics = await openAnalytics(store.storage, { key: store.key });
 * const [day] = await analytics.activity("day");
 * assert.equal(day!.messages, 2);
 * assert.deepEqual(await analytics.heatmap(), [{ weekday: 1, hour: 9, messages: 2 }]);
 * assert.equal((await analytics.responseLatency()).p50, 4);
 * assert.equal((await analytics.topTerms(1))[0]!.term, "garden");
 *
 * const r = await analytics.query("SELECT role, count(*) AS n FROM messages GROUP BY role ORDER BY role");
 * assert.deepEqual(r.rows, [{ role: "assistant", n: 1 }, { role: "user", n: 1 }]);
 *
 * const { html, summary } = await analytics.report();
 * assert.ok(html.includes("<svg"));
 * assert.match(summary, /2 messages/);
 * ```
 *
 * @example A sealed CSV export
 * ```ts
 * import { openAnalytics, openSealedExport } from "./mod.ts";
 * import { openTestStore } from "../repositories/_doc_helpers.ts";
 * import assert from "node:assert/strict";
 *
 * await using store = await openTestStore();
 * await using analytics = await openAnalytics(store.storage, { key: store.key });
 * const file = await analytics.export("SELECT 1 AS one", { format: "csv" });
 * const opened = await openSealedExport(store.key, file);
 * assert.equal(new TextDecoder().decode(opened.data), "one\r\n1\r\n");
 * ```
 *
 * @module
 */
export {
  type Analytics,
  ANALYTICS_CONSUMER,
  type AnalyticsFeed,
  type AnalyticsOptions,
  type AnalyticsSql,
  type AnalyticsStore,
  type ExportOptions,
  openAnalytics,
  type RefreshOptions,
  type RefreshStats,
  type ReportOptions,
  resolveAnalyticsOptions,
  type ResolvedAnalyticsOptions,
} from "./analytics.ts";
export {
  type AnalyticsEngine,
  type AnalyticsEngineOptions,
  type ColumnBatch,
  type EngineChoice,
  type EngineKind,
  type LoadColumn,
  openAnalyticsEngine,
  type PlainValue,
  type QueryParam,
  type QueryResult,
  resolveEngineKind,
} from "./engine.ts";
export type {
  ActivityRow,
  ErrorRateRow,
  HeatmapCell,
  Period,
  Quantiles,
  RoleModelRow,
  SessionStats,
  Streak,
  StreakStats,
  TermRow,
} from "./analyses.ts";
export {
  type ExportFormat,
  type ExportKey,
  isSealedExport,
  type OpenedExport,
  openSealedExport,
  resultToCsv,
  sealExport,
} from "./export.ts";
export {
  buildReport,
  type Report,
  type ReportData,
  writeReport,
  type WriteReportOptions,
} from "./report.ts";
export type {
  ChangeBatchContext,
  ChangeConsumer,
  ChangeEvent,
  ChangeInput,
  ChangeOp,
} from "../changes/types.ts";
