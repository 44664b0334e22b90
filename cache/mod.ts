/**
 * The LMDB session cache of `@aico/data`: hot data and session state for the
 * companion (the active conversation context, recent profile and
 * configuration reads, temporary results), encrypted on disk with the `cache`
 * purpose key.
 *
 * - `get`, `set`, `setMany`, `has`, `delete` with a default and a per-entry
 *   TTL (checked on every read), namespaces, `getOrSet` (concurrent callers of
 *   a key compute once), `invalidate(prefix)`, per-conversation session state,
 *   a sweeper of expired entries, size limits with least-recently-used
 *   eviction (a CLOCK approximation: reads mark entries once the cache is
 *   half full; after a reopen the soonest to expire go first), and stats.
 * - Invalidation from data changes: {@linkcode Cache.subscribeInvalidation}
 *   takes any {@linkcode InvalidationSource} (the message bus); an event
 *   `data.changed.<table>` with payload `{ keys: string[] }` deletes
 *   `<table>:<key>` (the table maps to a namespace of the same name unless
 *   mapped otherwise). Entries are unreadable as soon as the event is handled.
 * - The cache is disposable: deleting its directory loses nothing that
 *   matters. A directory written with another key (told by
 *   `key-check.json`, an HMAC of the key), a foreign file, or one LMDB
 *   reports damaged is emptied at open. LMDB trusts its file, though: some
 *   outside damage (not a crash, which LMDB survives) can still crash the
 *   process in native code. A process killed mid-write leaves a cache that opens with every
 *   committed write. One handle per directory: stats and limits count what
 *   this handle wrote and found at open.
 *
 * Security: lmdb-js encrypts pages (keys and values) with ChaCha8 and **no
 * authentication**, so the files reveal nothing but tampering is not
 * detected: a modified page may decode to a wrong value, and an entry that
 * fails to decode is a miss and is deleted. Keep no value here whose
 * integrity matters more than a cache miss. lmdb-js takes the key as a 32-character
 * ASCII string, so the ChaCha8 key carries 224 of the purpose key's 256 bits.
 * Reads are synchronous (memory-mapped); writes resolve once committed.
 *
 * Permissions: `--allow-read` (the directory and `node_modules`),
 * `--allow-write` (the directory), `--allow-ffi`,
 * `--allow-env=PREBUILDS_ONLY,ELECTRON_RUN_AS_NODE,npm_config_arch,npm_config_platform,LIBC,ARM_VERSION,MSGPACKR_NATIVE_ACCELERATION_DISABLED,LMDB_RESTORE`
 * and `--allow-sys=cpus,networkInterfaces,hostname`. Importing this module
 * loads no native code: lmdb-js is loaded by {@linkcode openCache}.
 *
 * @example Session state and invalidation from a change event
 * ```ts
 * import { type InvalidationSource, openCache } from "./mod.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * // A minimal in-process event source (the MessageBus of bus/ satisfies the same interface).
 * type Handler = (payload: unknown, info: { topic: string }) => void;
 * const handlers: [string, Handler][] = [];
 * const bus: InvalidationSource = {
 *   subscribe(pattern, handler) {
 *     handlers.push([pattern.slice(0, -1), handler]);
 *     return () => {};
 *   },
 * };
 * const publish = (topic: string, payload: unknown) => {
 *   for (const [p, h] of handlers) if (topic.startsWith(p)) h(payload, { topic });
 * };
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using cache = await openCache({
 *     path: dir,
 *     key: await importDataKey(generateDataKey()),
 *     defaultTtlMs: 60_000,
 *   });
 *   const chat = cache.session("conv-1");
 *   await chat.set("topic", "gardening");
 *   assert.deepEqual(chat.entries(), { topic: "gardening" });
 *
 *   cache.subscribeInvalidation(bus, { namespaces: { users: "profile" } });
 *   await cache.namespace("profile").set("7", { name: "Ada" });
 *   publish("data.changed.users", { keys: ["7"] });
 *   assert.equal(cache.namespace("profile").get("7"), undefined);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
export * from "./cache.ts";
export { wipeClosedCache } from "./_wipe.ts";
