/**
 * An in-process, typed publish/subscribe bus with exact and prefix topics.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";

/**
 * The topics of a bus and the payload each carries. A key may be a template
 * literal pattern, e.g. `` { [t: `data.changed.${string}`]: { keys: string[] } } ``.
 */
export type TopicMap = Record<string, unknown>;

/**
 * A subscription pattern: an exact topic (`"log.error"`), a prefix ending in
 * `.*` (`"log.*"` matches `"log.error"` and `"log.a.b"`, not `"log"` nor
 * `"logs.x"`), or `"*"` for every topic.
 */
export type TopicPattern<T extends TopicMap> =
  | (keyof T & string)
  | `${string}.*`
  | "*";

/** The topics of `T` a pattern `P` matches. */
export type MatchedTopic<T extends TopicMap, P extends string> = string extends
  keyof T ? string
  : P extends "*" ? keyof T & string
  : P extends `${infer Prefix}.*`
    ? Extract<keyof T & string, `${Prefix}.${string}`>
  : Extract<keyof T & string, P>;

/** The payload type delivered to a handler of pattern `P`. */
export type MatchedPayload<T extends TopicMap, P extends string> = T[
  MatchedTopic<
    T,
    P
  >
];

/** What a handler learns besides the payload. */
export interface DeliveryInfo<K extends string = string> {
  /** The topic the payload was published on. */
  readonly topic: K;
  /**
   * `true` when published with {@linkcode MessageBus.publishAsync}: the
   * publisher awaits the handler, so a handler may wait (back-pressure).
   * `false` for {@linkcode MessageBus.publish}: a handler must not make the
   * publisher wait and should refuse (e.g. `QUEUE_FULL`) rather than buffer
   * without bound.
   */
  readonly awaited: boolean;
}

/** A subscriber. It may return a promise; its rejection goes to `onError`. */
export type MessageHandler<P, K extends string = string> = (
  payload: P,
  info: DeliveryInfo<K>,
) => void | Promise<void>;

/** Removes a subscription; calling it again does nothing. */
export type Unsubscribe = () => void;

/** Options of {@linkcode createMessageBus}. */
export interface MessageBusOptions {
  /**
   * Receives every error thrown or rejected by a handler, with the topic. A
   * failing handler never prevents delivery to the other subscribers.
   *
   * @default {() => {}} (errors are dropped)
   */
  readonly onError?: (error: unknown, topic: string) => void;
}

/** The resolved form of {@linkcode MessageBusOptions}. */
export interface ResolvedMessageBusOptions {
  /** See {@linkcode MessageBusOptions.onError}. */
  readonly onError: (error: unknown, topic: string) => void;
}

/**
 * An in-process publish/subscribe bus.
 *
 * @typeParam T The topic map: topic name to payload type.
 */
export interface MessageBus<T extends TopicMap = TopicMap> {
  /**
   * Delivers a payload synchronously to every matching subscriber, in
   * subscription order. Returns without waiting for promises handlers return.
   *
   * @param topic The topic (no `*`, not empty).
   * @param payload The payload (not copied: handlers must not mutate it).
   * @returns How many subscribers received it.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed topic,
   * `STORE_CLOSED` after `close()`.
   */
  publish<K extends keyof T & string>(topic: K, payload: T[K]): number;
  /**
   * Delivers a payload to every matching subscriber and waits until every
   * promise they return settles (handlers may wait for room: back-pressure).
   *
   * @param topic The topic.
   * @param payload The payload.
   * @returns How many subscribers received it.
   * @throws {AicoDataError} as {@linkcode MessageBus.publish}.
   */
  publishAsync<K extends keyof T & string>(
    topic: K,
    payload: T[K],
  ): Promise<number>;
  /**
   * Subscribes a handler to a topic or a prefix (`"log.*"`) or `"*"`.
   *
   * @param pattern The pattern.
   * @param handler The handler.
   * @returns A function removing the subscription.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed pattern,
   * `STORE_CLOSED` after `close()`.
   */
  subscribe<P extends TopicPattern<T>>(
    pattern: P,
    handler: MessageHandler<MatchedPayload<T, P>, MatchedTopic<T, P>>,
  ): Unsubscribe;
  /** How many subscriptions are active. */
  readonly subscriberCount: number;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /**
   * Waits for handler promises still pending from `publish`, then removes
   * every subscription. Safe to call twice.
   *
   * @returns When closed.
   */
  close(): Promise<void>;
  /** Calls `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The longest topic or pattern accepted, in UTF-16 code units. */
export const MAX_TOPIC_LENGTH = 256;

const TOPIC_RE = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;

function checkTopic(topic: unknown, what: string): string {
  if (
    typeof topic !== "string" || topic.length > MAX_TOPIC_LENGTH ||
    !TOPIC_RE.test(topic)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${what}: topic must be dot-separated words of [A-Za-z0-9_:-], got "${
        String(topic).slice(0, 80)
      }"`,
    );
  }
  return topic;
}

/**
 * Normalises {@linkcode MessageBusOptions}.
 *
 * @param options The options.
 * @returns The resolved, frozen options.
 * @throws {TypeError} when `onError` is not a function.
 *
 * @example Defaults
 * ```ts
 * import { resolveMessageBusOptions } from "./message_bus.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof resolveMessageBusOptions().onError, "function");
 * ```
 */
export function resolveMessageBusOptions(
  options: MessageBusOptions = {},
): ResolvedMessageBusOptions {
  const onError = options.onError ?? (() => {});
  if (typeof onError !== "function") {
    throw new TypeError(
      'Cannot create message bus: "onError" must be a function',
    );
  }
  return Object.freeze({ onError });
}

interface Subscription {
  readonly exact: string | undefined;
  readonly prefix: string | undefined;
  readonly handler: MessageHandler<unknown>;
  active: boolean;
}

class MessageBusImpl<T extends TopicMap> implements MessageBus<T> {
  #options: ResolvedMessageBusOptions;
  #exact = new Map<string, Subscription[]>();
  #prefixes: Subscription[] = [];
  #count = 0;
  #pending = new Set<Promise<void>>();
  #closed = false;

  constructor(options: ResolvedMessageBusOptions) {
    this.#options = options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get subscriberCount(): number {
    return this.#count;
  }

  #guard(what: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${what}: the message bus is closed`,
      );
    }
  }

  #matching(topic: string): Subscription[] {
    const out: Subscription[] = [];
    for (const s of this.#prefixes) {
      if (s.prefix === "" || topic.startsWith(s.prefix!)) out.push(s);
    }
    const exact = this.#exact.get(topic);
    if (exact !== undefined) out.push(...exact);
    return out;
  }

  #report(error: unknown, topic: string): void {
    try {
      this.#options.onError(error, topic);
    } catch {
      // An onError that throws must not break delivery.
    }
  }

  #deliver(topic: string, payload: unknown, awaited: boolean): Promise<void>[] {
    const results: Promise<void>[] = [];
    const info: DeliveryInfo = Object.freeze({ topic, awaited });
    for (const s of this.#matching(topic)) {
      if (!s.active) continue;
      try {
        const r = s.handler(payload, info);
        if (r instanceof Promise) {
          results.push(r.catch((e) => this.#report(e, topic)));
        }
      } catch (e) {
        this.#report(e, topic);
      }
    }
    return results;
  }

  publish<K extends keyof T & string>(topic: K, payload: T[K]): number {
    this.#guard("publish");
    checkTopic(topic, "publish");
    const subs = this.#matching(topic).length;
    for (const p of this.#deliver(topic, payload, false)) {
      this.#pending.add(p);
      p.finally(() => this.#pending.delete(p));
    }
    return subs;
  }

  async publishAsync<K extends keyof T & string>(
    topic: K,
    payload: T[K],
  ): Promise<number> {
    this.#guard("publish");
    checkTopic(topic, "publish");
    const subs = this.#matching(topic).length;
    const all = Promise.all(this.#deliver(topic, payload, true)).then(() => {});
    this.#pending.add(all);
    try {
      await all;
    } finally {
      this.#pending.delete(all);
    }
    return subs;
  }

  subscribe<P extends TopicPattern<T>>(
    pattern: P,
    handler: MessageHandler<MatchedPayload<T, P>, MatchedTopic<T, P>>,
  ): Unsubscribe {
    this.#guard("subscribe");
    if (typeof handler !== "function") {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot subscribe: handler must be a function",
      );
    }
    let sub: Subscription;
    const h = handler as MessageHandler<unknown>;
    if (pattern === "*") {
      sub = { exact: undefined, prefix: "", handler: h, active: true };
    } else if (typeof pattern === "string" && pattern.endsWith(".*")) {
      const base = checkTopic(pattern.slice(0, -2), "subscribe");
      sub = { exact: undefined, prefix: base + ".", handler: h, active: true };
    } else {
      const topic = checkTopic(pattern, "subscribe");
      sub = { exact: topic, prefix: undefined, handler: h, active: true };
    }
    if (sub.exact !== undefined) {
      const list = this.#exact.get(sub.exact) ?? [];
      // Copy on write: a delivery in progress keeps iterating its own array.
      this.#exact.set(sub.exact, [...list, sub]);
    } else {
      this.#prefixes = [...this.#prefixes, sub];
    }
    this.#count++;
    return () => {
      if (!sub.active) return;
      sub.active = false;
      this.#count--;
      if (sub.exact !== undefined) {
        const rest = (this.#exact.get(sub.exact) ?? []).filter((s) =>
          s !== sub
        );
        if (rest.length === 0) this.#exact.delete(sub.exact);
        else this.#exact.set(sub.exact, rest);
      } else {
        this.#prefixes = this.#prefixes.filter((s) => s !== sub);
      }
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#pending.size > 0) {
      await Promise.all([...this.#pending]);
    }
    for (const list of this.#exact.values()) {
      for (const s of list) s.active = false;
    }
    for (const s of this.#prefixes) s.active = false;
    this.#exact.clear();
    this.#prefixes = [];
    this.#count = 0;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates an in-process typed publish/subscribe bus.
 *
 * Delivery is synchronous and in subscription order (prefix and `"*"`
 * subscribers first, then exact ones). A handler that throws or rejects is
 * reported to `onError` and never stops delivery to the others.
 *
 * @typeParam T The topic map (topic to payload type).
 * @param options See {@linkcode MessageBusOptions}.
 * @returns The bus.
 * @throws {TypeError} for malformed options.
 *
 * @example Exact and prefix subscriptions
 * ```ts
 * import { createMessageBus } from "./message_bus.ts";
 * import assert from "node:assert/strict";
 *
 * type Topics = {
 *   "log.info": { message: string };
 *   "log.error": { message: string };
 *   "user.created": { id: string };
 * };
 * await using bus = createMessageBus<Topics>();
 * const seen: string[] = [];
 * const off = bus.subscribe("log.*", (p, { topic }) => {
 *   seen.push(`${topic}:${p.message}`);
 * });
 * bus.subscribe("user.created", (p) => {
 *   seen.push(`user:${p.id}`);
 * });
 * bus.publish("log.info", { message: "hello" });
 * bus.publish("user.created", { id: "u1" });
 * off();
 * bus.publish("log.error", { message: "unheard" });
 * assert.deepEqual(seen, ["log.info:hello", "user:u1"]);
 * ```
 */
export function createMessageBus<T extends TopicMap = TopicMap>(
  options: MessageBusOptions = {},
): MessageBus<T> {
  return new MessageBusImpl<T>(resolveMessageBusOptions(options));
}
