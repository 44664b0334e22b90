/**
 * A hybrid logical clock (Kulkarni et al., 2014): timestamps that follow the
 * wall clock when it moves forward, never go backwards when it jumps back,
 * and order every event after the events it has seen from other devices.
 *
 * @module
 */
import { DEVICE_FORM } from "./_forms.ts";
import { AicoDataError } from "../errors.ts";

/** A parsed hybrid logical clock reading. */
export interface HlcTimestamp {
  /** Milliseconds since the epoch (physical part), 0 to 2^48 - 1. */
  readonly wall: number;
  /** Logical counter within one `wall` value, 0 to 65535. */
  readonly counter: number;
  /** The id of the clock's device (`[a-z0-9_-]{1,64}`). */
  readonly node: string;
}

const HLC_FORM = /^([0-9a-f]{12})([0-9a-f]{4})\.([a-z0-9_-]{1,64})$/;
const MAX_WALL = 2 ** 48 - 1;
const MAX_COUNTER = 0xffff;

/**
 * Formats a timestamp as `wall(12 hex) ‖ counter(4 hex) ‖ "." ‖ node`, so
 * that readings of one node sort as strings in clock order.
 *
 * @param t The timestamp.
 * @returns Its string form.
 * @throws {AicoDataError} `INVALID_INPUT` for a value out of range.
 *
 * @example Formatting and parsing
 * ```ts
 * import { formatHlc, parseHlc } from "./hlc.ts";
 * import assert from "node:assert/strict";
 *
 * const s = formatHlc({ wall: 1_700_000_000_000, counter: 2, node: "a1" });
 * assert.equal(s, "018bcfe568000002.a1");
 * assert.deepEqual(parseHlc(s), { wall: 1_700_000_000_000, counter: 2, node: "a1" });
 * ```
 */
export function formatHlc(t: HlcTimestamp): string {
  if (
    !Number.isSafeInteger(t?.wall) || t.wall < 0 || t.wall > MAX_WALL ||
    !Number.isSafeInteger(t.counter) || t.counter < 0 ||
    t.counter > MAX_COUNTER || typeof t.node !== "string" ||
    !DEVICE_FORM.test(t.node)
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot format clock reading: value out of range",
    );
  }
  return `${t.wall.toString(16).padStart(12, "0")}${
    t.counter.toString(16).padStart(4, "0")
  }.${t.node}`;
}

/**
 * Parses the string form of a timestamp.
 *
 * @param text The string form.
 * @returns The timestamp.
 * @throws {AicoDataError} `INVALID_INPUT` when malformed.
 *
 * @example Rejecting a malformed reading
 * ```ts
 * import { parseHlc } from "./hlc.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseHlc("yesterday"), { code: "INVALID_INPUT" });
 * ```
 */
export function parseHlc(text: string): HlcTimestamp {
  const m = typeof text === "string" ? HLC_FORM.exec(text) : null;
  if (m === null) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot parse clock reading "${String(text).slice(0, 80)}"`,
    );
  }
  return Object.freeze({
    wall: parseInt(m[1]!, 16),
    counter: parseInt(m[2]!, 16),
    node: m[3]!,
  });
}

/**
 * Orders two readings: by wall time, then counter, then node id (so readings
 * of different devices never compare equal).
 *
 * @param a A reading (string form or parsed).
 * @param b Another reading.
 * @returns `-1`, `0` or `1`.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed reading.
 *
 * @example A later counter wins, then the node id breaks ties
 * ```ts
 * import { compareHlc } from "./hlc.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(compareHlc("018bcfe568000001.a", "018bcfe568000002.a"), -1);
 * assert.equal(compareHlc("018bcfe568000002.b", "018bcfe568000002.a"), 1);
 * assert.equal(compareHlc("018bcfe568000002.a", "018bcfe568000002.a"), 0);
 * ```
 */
export function compareHlc(
  a: string | HlcTimestamp,
  b: string | HlcTimestamp,
): -1 | 0 | 1 {
  const x = typeof a === "string" ? parseHlc(a) : a;
  const y = typeof b === "string" ? parseHlc(b) : b;
  if (x.wall !== y.wall) return x.wall < y.wall ? -1 : 1;
  if (x.counter !== y.counter) return x.counter < y.counter ? -1 : 1;
  if (x.node !== y.node) return x.node < y.node ? -1 : 1;
  return 0;
}

/** Options of {@linkcode createHlc}. */
export interface HlcOptions {
  /**
   * The wall clock, ms since the epoch.
   *
   * @default {Date.now}
   */
  readonly wallClock?: () => number;
  /**
   * The last reading this clock gave (from {@linkcode HybridLogicalClock.last}
   * saved before a restart); the clock never gives a reading at or below it.
   *
   * @default {undefined}
   */
  readonly last?: string;
  /**
   * A remote reading further ahead of the wall clock than this is not
   * adopted by {@linkcode HybridLogicalClock.receive} (a device with a wrong
   * clock cannot drag every other clock into the future).
   *
   * @default {86_400_000} (one day)
   */
  readonly maxDriftMs?: number;
}

/** A hybrid logical clock of one device. */
export interface HybridLogicalClock {
  /** The device id the readings end with. */
  readonly node: string;
  /**
   * A reading for a local event: greater than every reading given or
   * received before, whatever the wall clock does.
   *
   * @returns The reading (string form).
   */
  now(): string;
  /**
   * Takes in a reading seen from another device, so the next local events
   * order after it.
   *
   * @param remote The remote reading.
   * @returns A local reading greater than both.
   * @throws {AicoDataError} `INVALID_INPUT` for a malformed reading.
   */
  receive(remote: string): string;
  /**
   * The last reading given (save it to restore the clock after a restart).
   *
   * @returns The reading, or `undefined` before the first one.
   */
  last(): string | undefined;
}

/**
 * The pure option normaliser of {@linkcode createHlc}.
 *
 * @param options The options.
 * @returns Frozen options with defaults filled in.
 * @throws {AicoDataError} `INVALID_INPUT` for a bad option.
 *
 * @example Defaults
 * ```ts
 * import { resolveHlcOptions } from "./hlc.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveHlcOptions({}).maxDriftMs, 86_400_000);
 * ```
 */
export function resolveHlcOptions(
  options: HlcOptions = {},
): Required<Omit<HlcOptions, "last">> & { readonly last?: HlcTimestamp } {
  const maxDriftMs = options.maxDriftMs ?? 86_400_000;
  if (!Number.isFinite(maxDriftMs) || maxDriftMs < 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot create clock: maxDriftMs must be a non-negative number, got "${maxDriftMs}"`,
    );
  }
  const wallClock = options.wallClock ?? Date.now;
  if (typeof wallClock !== "function") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot create clock: wallClock must be a function",
    );
  }
  return Object.freeze({
    wallClock,
    maxDriftMs,
    ...(options.last === undefined ? {} : { last: parseHlc(options.last) }),
  });
}

class Hlc implements HybridLogicalClock {
  readonly node: string;
  #wall = 0;
  #counter = -1;
  #clock: () => number;
  #maxDrift: number;

  constructor(node: string, options: ReturnType<typeof resolveHlcOptions>) {
    this.node = node;
    this.#clock = options.wallClock;
    this.#maxDrift = options.maxDriftMs;
    if (options.last !== undefined) {
      this.#wall = options.last.wall;
      this.#counter = options.last.counter;
    }
  }

  #physical(): number {
    const pt = Math.floor(this.#clock());
    return Number.isFinite(pt) ? Math.min(Math.max(pt, 0), MAX_WALL) : 0;
  }

  #advance(wall: number, counter: number): string {
    if (counter > MAX_COUNTER) {
      wall += 1;
      counter = 0;
    }
    this.#wall = wall;
    this.#counter = counter;
    return formatHlc({ wall, counter, node: this.node });
  }

  now(): string {
    const pt = this.#physical();
    return pt > this.#wall
      ? this.#advance(pt, 0)
      : this.#advance(this.#wall, this.#counter + 1);
  }

  receive(remote: string): string {
    const r = parseHlc(remote);
    const pt = this.#physical();
    if (r.wall > pt + this.#maxDrift) return this.now();
    const wall = Math.max(this.#wall, r.wall, pt);
    let counter: number;
    if (wall === this.#wall && wall === r.wall) {
      counter = Math.max(this.#counter, r.counter) + 1;
    } else if (wall === this.#wall) counter = this.#counter + 1;
    else if (wall === r.wall) counter = r.counter + 1;
    else counter = 0;
    return this.#advance(wall, counter);
  }

  last(): string | undefined {
    return this.#counter < 0 ? undefined : formatHlc({
      wall: this.#wall,
      counter: this.#counter,
      node: this.node,
    });
  }
}

/**
 * Creates a hybrid logical clock for one device.
 *
 * @param node The device id (`[a-z0-9_-]{1,64}`).
 * @param options Wall clock, restored state, drift bound.
 * @returns The clock.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed id or option.
 *
 * @example Monotonic when the wall clock goes back
 * ```ts
 * import { compareHlc, createHlc } from "./hlc.ts";
 * import assert from "node:assert/strict";
 *
 * let wall = 1_000;
 * const clock = createHlc("dev1", { wallClock: () => wall });
 * const a = clock.now();
 * wall = 10; // the clock jumped back
 * const b = clock.now();
 * assert.equal(compareHlc(a, b), -1);
 * // A reading from a device that is ahead moves this clock past it.
 * const c = clock.receive("0000000013880000.dev2"); // wall 5000 ms
 * assert.equal(compareHlc(c, "0000000013880000.dev2"), 1);
 * ```
 */
export function createHlc(
  node: string,
  options: HlcOptions = {},
): HybridLogicalClock {
  if (typeof node !== "string" || !DEVICE_FORM.test(node)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot create clock: malformed node id "${String(node).slice(0, 80)}"`,
    );
  }
  return new Hlc(node, resolveHlcOptions(options));
}
