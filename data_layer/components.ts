/**
 * The components of a data layer: an ordered table of
 * `{ name, schemas, open, close }` rows that {@linkcode openDataLayer}
 * opens in order and closes in reverse order.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
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
}

const NAME_RE = /^[a-z][a-z0-9_]{0,62}$/;

/** Internal: the live table of opened components. */
export class ComponentSet {
  readonly #rows: DataLayerComponent[];
  readonly #instances = new Map<string, unknown>();
  readonly #opened: DataLayerComponent[] = [];
  readonly context: ComponentContext;

  constructor(
    rows: readonly DataLayerComponent[],
    base: {
      dir: string;
      key: () => DataKey;
      registry: () => SchemaRegistry;
      signal: AbortSignal;
    },
  ) {
    const names = new Set<string>();
    for (const row of rows) {
      if (
        typeof row?.name !== "string" || !NAME_RE.test(row.name) ||
        typeof row.open !== "function" || typeof row.close !== "function" ||
        !Array.isArray(row.schemas)
      ) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot open data layer: malformed component "${String(row?.name)}"`,
        );
      }
      if (names.has(row.name)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot open data layer: component "${row.name}" is listed twice`,
        );
      }
      names.add(row.name);
    }
    this.#rows = [...rows];
    const instances = this.#instances;
    const get = <T>(name: string): T => {
      if (!instances.has(name)) {
        throw new AicoDataError(
          "INVALID_INPUT",
          `Cannot use component "${name}": it is not open (yet)`,
        );
      }
      return instances.get(name) as T;
    };
    this.context = {
      dir: base.dir,
      get key() {
        return base.key();
      },
      get registry() {
        return base.registry();
      },
      signal: base.signal,
      get storage() {
        return get<Storage>("storage");
      },
      get bus() {
        return get<MessageBus>("bus");
      },
      get changes() {
        return get<ChangeFeed>("changes");
      },
      get,
      has: (name) => instances.get(name) !== undefined,
    };
  }

  /** Every row's schemas, in table order. */
  get schemas(): SchemaDefinition[] {
    return this.#rows.flatMap((r) => r.schemas);
  }

  /** Opens the rows in order (`until` excluded); on failure closes what opened. */
  async open(from: number, until = this.#rows.length): Promise<void> {
    for (let i = from; i < until; i++) {
      const row = this.#rows[i]!;
      const instance = await row.open(this.context);
      this.#instances.set(row.name, instance);
      if (instance !== undefined) this.#opened.push(row);
    }
  }

  /** The index of a row. */
  indexOf(name: string): number {
    return this.#rows.findIndex((r) => r.name === name);
  }

  /** The instance of a row. */
  get<T>(name: string): T {
    return this.context.get<T>(name);
  }

  /** Runs every `rotated` hook in table order. */
  async rotated(): Promise<void> {
    for (const row of this.#opened) {
      if (row.rotated === undefined) continue;
      const next = await row.rotated(
        this.#instances.get(row.name),
        this.context,
      );
      this.#instances.set(row.name, next);
    }
  }

  /** Closes every opened row in reverse order; collects the errors. */
  async close(): Promise<unknown[]> {
    const errors: unknown[] = [];
    while (this.#opened.length > 0) {
      const row = this.#opened.pop()!;
      try {
        await row.close(this.#instances.get(row.name));
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }
}
