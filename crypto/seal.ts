/**
 * AES-256-GCM sealing of small values with random 96-bit nonces.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import {
  type AeadKey,
  importAesGcmKey,
  NONCE_LENGTH,
  openSealed,
  SEALED_OVERHEAD,
  sealWithNonce,
} from "./_aead.ts";
import { randomBytes, utf8 } from "./_bytes.ts";
import { settle } from "./_settle.ts";

/**
 * The most values one key may seal with random 96-bit nonces (NIST SP 800-38D
 * §8.3: 2^32 invocations).
 */
export const MAX_SEALS_PER_KEY: number = 2 ** 32;

/** How many values a batch seals or opens before it yields to the event loop. */
const BATCH_SLICE = 4096;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Associated data: bytes, or a string encoded as UTF-8. */
export type AssociatedData = Uint8Array | string;

/** One value to seal with {@linkcode Sealer.sealBatch}. */
export interface SealItem {
  /** The plaintext; a string is encoded as UTF-8. */
  readonly plaintext: Uint8Array | string;
  /** The context the value is bound to. */
  readonly aad?: AssociatedData;
}

/** One value to open with {@linkcode Sealer.openBatch}. */
export interface OpenItem {
  /** The sealed value. */
  readonly sealed: Uint8Array;
  /** The context the value was sealed with. */
  readonly aad?: AssociatedData;
}

/** Options of {@linkcode importSealingKey} and `DataKey.sealer()`. */
export interface SealerOptions {
  /**
   * Seals already made with this key (for example persisted by the caller),
   * counted against the budget.
   *
   * @default {0}
   */
  readonly initialSealCount?: number;
  /**
   * The budget of seals for this key; past it `seal` refuses with
   * `NONCE_BUDGET_EXHAUSTED`. Lower it, never raise it past 2^32.
   *
   * @default {MAX_SEALS_PER_KEY}
   */
  readonly maxSeals?: number;
}

/**
 * Seals and opens values with one AES-256-GCM key.
 *
 * @remarks
 * AES-256-GCM runs natively (node:crypto; the key is a native key object).
 * A sealed value is `version(1) = 0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`: 29
 * bytes more than its plaintext. The nonce is random (96 bits), so one key may
 * seal at most 2^32 values (NIST SP 800-38D); the sealer counts and refuses
 * past its budget. Associated data is not stored: the caller passes the same
 * context (table, column, row id, ...) to `open`, and a value moved to another
 * context fails to open. Every failure to open is `AUTH_FAILED` and returns no
 * plaintext byte.
 */
export interface Sealer {
  /**
   * Seals one value.
   *
   * @param plaintext Bytes, or a string encoded as UTF-8.
   * @param aad The context to bind the value to.
   * @returns The sealed value.
   * @throws {AicoDataError} `NONCE_BUDGET_EXHAUSTED` past the budget,
   * `INVALID_INPUT` for a string with a lone surrogate.
   */
  seal(
    plaintext: Uint8Array | string,
    aad?: AssociatedData,
  ): Promise<Uint8Array>;
  /**
   * Opens one sealed value.
   *
   * @param sealed The sealed value.
   * @param aad The context it was sealed with.
   * @returns The plaintext bytes.
   * @throws {AicoDataError} `AUTH_FAILED` when the value, the key or the context does not match.
   */
  open(sealed: Uint8Array, aad?: AssociatedData): Promise<Uint8Array>;
  /**
   * Opens one sealed value holding UTF-8 text.
   *
   * @param sealed The sealed value.
   * @param aad The context it was sealed with.
   * @returns The text.
   * @throws {AicoDataError} `AUTH_FAILED` as {@linkcode Sealer.open};
   * `CORRUPT_VALUE` when the plaintext is not valid UTF-8.
   */
  openText(sealed: Uint8Array, aad?: AssociatedData): Promise<string>;
  /**
   * Seals many values with many operations in flight; all or nothing for the
   * budget (it is reserved for the whole batch before any seal).
   *
   * @param items The values and their contexts.
   * @returns The sealed values, in order: views into one buffer allocated
   * for the batch (copy one with `slice()` to keep it apart).
   * @throws {AicoDataError} as {@linkcode Sealer.seal}.
   */
  sealBatch(items: readonly SealItem[]): Promise<Uint8Array[]>;
  /**
   * Opens many values; fails as a whole on the first value that does not open.
   *
   * @param items The sealed values and their contexts.
   * @returns The plaintexts, in order.
   * @throws {AicoDataError} `AUTH_FAILED` as {@linkcode Sealer.open}.
   */
  openBatch(items: readonly OpenItem[]): Promise<Uint8Array[]>;
  /** Seals made with this key, `initialSealCount` included. */
  readonly sealCount: number;
  /** The budget of seals for this key. */
  readonly maxSeals: number;
}

const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder("utf-8", { fatal: true });

function aadBytes(aad: AssociatedData | undefined): Uint8Array {
  return aad === undefined ? EMPTY : utf8(aad, "associated data");
}

function checkCount(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(
      `Cannot create sealer: "${name}" must be an integer in [0, ${max}], got ${value}`,
    );
  }
}

class SealerImpl implements Sealer {
  #key: AeadKey;
  #count: number;
  #max: number;

  constructor(key: AeadKey, options: SealerOptions) {
    const max = options.maxSeals ?? MAX_SEALS_PER_KEY;
    checkCount("maxSeals", max, MAX_SEALS_PER_KEY);
    const initial = options.initialSealCount ?? 0;
    checkCount("initialSealCount", initial, MAX_SEALS_PER_KEY);
    this.#key = key;
    this.#count = initial;
    this.#max = max;
  }

  get sealCount(): number {
    return this.#count;
  }

  get maxSeals(): number {
    return this.#max;
  }

  #reserve(n: number): void {
    if (this.#count + n > this.#max) {
      throw new AicoDataError(
        "NONCE_BUDGET_EXHAUSTED",
        `Cannot seal: the key reached its budget of ${this.#max} seals, rotate the key`,
      );
    }
    this.#count += n;
  }

  seal(
    plaintext: Uint8Array | string,
    aad?: AssociatedData,
  ): Promise<Uint8Array> {
    return settle(() => {
      const pt = utf8(plaintext, "plaintext");
      const ad = aadBytes(aad);
      this.#reserve(1);
      return sealWithNonce(this.#key, randomBytes(NONCE_LENGTH), pt, ad);
    });
  }

  open(sealed: Uint8Array, aad?: AssociatedData): Promise<Uint8Array> {
    return settle(() => openSealed(this.#key, sealed, aadBytes(aad)));
  }

  async openText(sealed: Uint8Array, aad?: AssociatedData): Promise<string> {
    const bytes = await this.open(sealed, aad);
    try {
      return decoder.decode(bytes);
    } catch (cause) {
      throw new AicoDataError(
        "CORRUPT_VALUE",
        "Cannot open sealed value as text: not valid UTF-8",
        { cause },
      );
    }
  }

  async sealBatch(items: readonly SealItem[]): Promise<Uint8Array[]> {
    if (!Array.isArray(items)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot seal batch: expected an array",
      );
    }
    const pts = items.map((it) => utf8(it.plaintext, "plaintext"));
    const ads = items.map((it) => aadBytes(it.aad));
    this.#reserve(items.length);
    const nonces = randomBytes(items.length * NONCE_LENGTH);
    // One allocation for the whole batch; each sealed value is a view of it.
    let total = 0;
    for (const pt of pts) total += SEALED_OVERHEAD + pt.length;
    const arena = new Uint8Array(total);
    const out = new Array<Uint8Array>(items.length);
    let offset = 0;
    for (let i = 0; i < items.length; i++) {
      if (i > 0 && i % BATCH_SLICE === 0) await yieldToEventLoop();
      const nonce = nonces.subarray(i * NONCE_LENGTH, (i + 1) * NONCE_LENGTH);
      const size = SEALED_OVERHEAD + pts[i]!.length;
      const into = arena.subarray(offset, offset + size);
      offset += size;
      out[i] = sealWithNonce(this.#key, nonce, pts[i]!, ads[i]!, into);
    }
    return out;
  }

  async openBatch(items: readonly OpenItem[]): Promise<Uint8Array[]> {
    if (!Array.isArray(items)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot open batch: expected an array",
      );
    }
    const out = new Array<Uint8Array>(items.length);
    for (let i = 0; i < items.length; i++) {
      if (i > 0 && i % BATCH_SLICE === 0) await yieldToEventLoop();
      const it = items[i]!;
      out[i] = openSealed(this.#key, it.sealed, aadBytes(it.aad));
    }
    return out;
  }
}

/** Creates a sealer over an imported AES-GCM key (internal to crypto/, not re-exported). */
export function createSealer(
  key: AeadKey,
  options: SealerOptions = {},
): Sealer {
  return new SealerImpl(key, options);
}

/**
 * Imports 32 raw bytes as an AES-256-GCM sealing key.
 *
 * Prefer `DataKey.sealer(purpose)`, which derives the key from the data key;
 * use this for keys managed elsewhere.
 *
 * @param raw The 32-byte key. It is imported as a native key object; the
 * caller may zero `raw` afterwards.
 * @param options Seal budget settings.
 * @returns A {@linkcode Sealer}.
 * @throws {AicoDataError} `INVALID_INPUT` when `raw` is not 32 bytes.
 *
 * @example Sealing and opening a value bound to its context
 * ```ts
 * import { importSealingKey } from "./seal.ts";
 * import assert from "node:assert/strict";
 *
 * const sealer = await importSealingKey(crypto.getRandomValues(new Uint8Array(32)));
 * const sealed = await sealer.seal("I like tea", "messages|content|42");
 * assert.equal(await sealer.openText(sealed, "messages|content|42"), "I like tea");
 * await assert.rejects(sealer.open(sealed, "messages|content|43"), { code: "AUTH_FAILED" });
 * ```
 */
export function importSealingKey(
  raw: Uint8Array,
  options: SealerOptions = {},
): Promise<Sealer> {
  return settle(() => {
    if (!(raw instanceof Uint8Array) || raw.length !== 32) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot import sealing key: expected 32 bytes, got ${raw?.length}`,
      );
    }
    return createSealer(importAesGcmKey(raw), options);
  });
}
