// Internal: query routing, the one place that decides where a read of the
// data layer goes.
//
// - Hot reads are served read-through from the encrypted LMDB cache, without
//   the caller asking: `config.get` (namespace `config`, key
//   `<namespace>/<key>`; secret values are never cached), `users.getUser`
//   (namespace `users`, key the id) and the recent context of a conversation,
//   `conversations.recentMessages` (namespace `recent`, key
//   `<conversationId>/<n>`). They stay fresh through the change feed's bus
//   events: `data.changed.<table>` update/delete events delete the entries
//   of their keys (the cache's own subscription); every `messages` or
//   `conversations` event invalidates the recent context of its scope (one
//   prefix per event, inserts included: an append changes the context).
//   The events are published synchronously after commit, before the write
//   returns, so a read after a write never sees the old value.
// - Everything else (pages, listings, credentials) goes to libSQL.
// - Similarity queries go to the vector component and aggregate queries to
//   the analytics component: they register as rows of the component table
//   (`ctx.get("vector")`, `ctx.get("analytics")`) and are read there.
// - A cache failure never fails a read: the read goes to libSQL instead.
import type { Cache } from "../cache/mod.ts";
import type { MessageBus } from "../bus/mod.ts";
import type {
  ConfigRepository,
  ConversationRepository,
  JsonValue,
  Message,
  User,
  UserService,
} from "../repositories/mod.ts";

/** The cache namespaces the router fills. */
export const ROUTED_NAMESPACES = Object.freeze({
  config: "config",
  users: "users",
  recent: "recent",
});

/** Every method of an instance, bound to it, with some replaced. */
function delegate<T extends object>(target: T, overrides: Partial<T>): T {
  const out: Record<string, unknown> = {};
  for (
    let proto = Object.getPrototypeOf(target);
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === "constructor" || name in out) continue;
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (typeof d?.value === "function") {
        out[name] = (d.value as (...a: unknown[]) => unknown).bind(target);
      }
    }
  }
  return Object.freeze({ ...out, ...overrides }) as T;
}

/**
 * Reads through the cache; a failure of the cache (not of `load`) falls
 * back to `load`.
 */
async function readThrough<T>(
  cache: Cache | undefined,
  namespace: string,
  key: string,
  load: () => Promise<T>,
): Promise<T> {
  if (cache === undefined || cache.closed) return await load();
  let loadError: { error: unknown } | undefined;
  try {
    return await cache.namespace(namespace).getOrSet(key, async () => {
      try {
        return await load();
      } catch (error) {
        loadError = { error };
        throw error;
      }
    });
  } catch {
    if (loadError !== undefined) throw loadError.error;
    return await load();
  }
}

/** What a cached configuration read holds. */
type CachedConfig =
  | { readonly found: false }
  | { readonly found: true; readonly value: JsonValue }
  | { readonly secret: true };

/** The repositories as the data layer exposes them: hot reads routed. */
export interface RoutedRepositories {
  readonly config: ConfigRepository;
  readonly users: UserService;
  readonly conversations: ConversationRepository;
}

/** Wraps the repositories so that hot reads go through the cache. */
export function routeReads(
  repos: RoutedRepositories,
  cacheOf: () => Cache | undefined,
): RoutedRepositories {
  const { config, users, conversations } = repos;
  return {
    config: delegate(config, {
      async get<T extends JsonValue = JsonValue>(
        namespace: string,
        key: string,
      ): Promise<T | undefined> {
        const cached = await readThrough<CachedConfig>(
          cacheOf(),
          ROUTED_NAMESPACES.config,
          `${namespace}/${key}`,
          async () => {
            const entry = await config.getEntry(namespace, key);
            if (entry === undefined) return { found: false };
            if (entry.secret) return { secret: true };
            return { found: true, value: entry.value };
          },
        );
        if ("secret" in cached) return await config.get<T>(namespace, key);
        return cached.found ? cached.value as T : undefined;
      },
    }),
    users: delegate(users, {
      getUser(id: string): Promise<User> {
        return readThrough(
          cacheOf(),
          ROUTED_NAMESPACES.users,
          id,
          () => users.getUser(id),
        );
      },
    }),
    conversations: delegate(conversations, {
      async recentMessages(
        conversationId: string,
        n: number,
      ): Promise<Message[]> {
        const list = await readThrough(
          cacheOf(),
          ROUTED_NAMESPACES.recent,
          `${conversationId}/${n}`,
          () => conversations.recentMessages(conversationId, n),
        );
        return list.map((m) => ({ ...m, model: m.model ?? undefined }));
      },
    }),
  };
}

/**
 * Keeps the routed entries fresh from the bus: the cache's own
 * subscription handles update/delete keys; the recent context of a
 * conversation is dropped on every message or conversation event of it.
 */
export function subscribeRouting(cache: Cache, bus: MessageBus): () => void {
  const offKeys = cache.subscribeInvalidation(bus);
  const recent = cache.namespace(ROUTED_NAMESPACES.recent);
  const dropRecent = (conversationId: unknown): void => {
    if (typeof conversationId !== "string" || conversationId.length === 0) {
      return;
    }
    recent.invalidate(`${conversationId}/`).catch(() => {
      // The entries are unreadable already; the delete is retried by reads.
    });
  };
  const offMessages = bus.subscribe("data.changed.messages", (payload) => {
    dropRecent((payload as { scope?: unknown } | null)?.scope);
  });
  const offConversations = bus.subscribe(
    "data.changed.conversations",
    (payload) => {
      const p = payload as { op?: unknown; keys?: unknown } | null;
      if (p?.op === "insert" || !Array.isArray(p?.keys)) return;
      for (const k of p.keys) dropRecent(k);
    },
  );
  return () => {
    offKeys();
    offMessages();
    offConversations();
  };
}
