/**
 * The components of a data layer: an ordered table of
 * `{ name, schemas, open, close }` rows that {@linkcode openDataLayer}
 * opens in order and closes in reverse order.
 *
 * @module
 */
import type { DataKey } from "../crypto/mod.ts";
import type { Storage } from "../storage/mod.ts";
import type { SchemaDefinition, SchemaRegistry } from "../schema/mod.ts";
import type { MessageBus } from "../bus/mod.ts";
import type { ChangeFeed } from "../changes/mod.ts";

/**
 * What a component's `open()` is given: the folder, the current key, the
 * schema registry of every component, a signal aborted when the layer
 * closes, and the instances of the components opened before it.
 */
export interface ComponentContext {
  /** The data layer's folder (a component keeps its files under it). */
  readonly dir: string;
  /** The current data key (changes after `rotateKey()`). */
  readonly key: DataKey;
  /** Every schema of every component and plugin, with their sealed columns. */
  readonly registry: SchemaRegistry;
  /** Aborted when the data layer closes. */
  readonly signal: AbortSignal;
  /**
   * The encrypted store (the `storage` component).
   *
   * @throws {AicoDataError} `INVALID_INPUT` before it is open.
   */
  readonly storage: Storage;
  /**
   * The in-process bus (the `bus` component).
   *
   * @throws {AicoDataError} `INVALID_INPUT` before it is open.
   */
  readonly bus: MessageBus;
  /**
   * The change feed (the `changes` component).
   *
   * @throws {AicoDataError} `INVALID_INPUT` before it is open.
   */
  readonly changes: ChangeFeed;
  /**
   * The instance of a component opened earlier.
   *
   * @param name The component's name.
   * @returns Its instance (`undefined` for a component that opened to
   * nothing, such as a disabled cache).
   * @throws {AicoDataError} `INVALID_INPUT` when no component of that name
   * is open yet.
   */
  get<T>(name: string): T;
  /**
   * Whether a component of that name opened (to an instance).
   *
   * @param name The component's name.
   * @returns `true` when `get(name)` returns an instance.
   */
  has(name: string): boolean;
}

/**
 * One row of the component table.
 *
 * @typeParam T The component's instance.
 */
export interface DataLayerComponent<T = unknown> {
  /** A unique name (`[a-z][a-z0-9_]{0,62}`): the key of `ctx.get()`. */
  readonly name: string;
  /**
   * The schemas the component's tables need, migrated before any component
   * past `storage` opens; their declared sealed columns are re-sealed by
   * `rotateKey()`.
   */
  readonly schemas: readonly SchemaDefinition[];
  /**
   * Opens the component.
   *
   * @param ctx The context.
   * @returns Its instance, or `undefined` when it is disabled.
   */
  open(ctx: ComponentContext): Promise<T | undefined>;
  /**
   * Closes an instance `open()` returned (in reverse table order).
   *
   * @param instance The instance.
   * @returns When closed.
   */
  close(instance: T): Promise<void>;
  /**
   * Called after `rotateKey()` rotated the data key (`ctx.key` is the new
   * key), in table order: a component holding key material reopens here.
   *
   * @param instance The current instance.
   * @param ctx The context.
   * @returns The instance to keep (a new one, or the same).
   */
  rotated?(instance: T, ctx: ComponentContext): Promise<T>;
  /**
   * Called after `erase()` (and each retention run) removed rows from the
   * store and every change-feed consumer took the deletes, in table order:
   * a component holding copies outside the store (a cache file, a remote
   * vector store's log) drops them here, or reports through `unreached`
   * what it could not reach.
   *
   * @param instance The current instance.
   * @param ctx The context.
   * @param unreached Call it with one sentence per copy left behind.
   * @returns The instance to keep (a new one, or the same).
   */
  erased?(
    instance: T,
    ctx: ComponentContext,
    unreached: (what: string) => void,
  ): Promise<T>;
}
