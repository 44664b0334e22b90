/**
 * An in-process typed message bus: publish/subscribe with exact topics,
 * prefix patterns (`"log.*"`) and `"*"`; handler failures are isolated and
 * reported to `onError`; `publishAsync` lets handlers apply back-pressure.
 *
 * The bus is a leaf: it knows no store and is never a durability mechanism.
 * Topic conventions: `log.<level>` (payload: a log record, persisted by the
 * repositories' log persistence) and `data.changed.<table>` (published after
 * a commit, to wake consumers and invalidate caches).
 *
 * Permissions: none.
 *
 * @example Typed topics with a prefix subscription
 * ```ts
 * import { createMessageBus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using bus = createMessageBus<{ "job.done": { id: number } }>();
 * const seen: number[] = [];
 * bus.subscribe("job.*", (payload) => {
 *   seen.push(payload.id);
 * });
 * bus.publish("job.done", { id: 7 });
 * assert.deepEqual(seen, [7]);
 * ```
 *
 * @module
 */
export * from "./message_bus.ts";
