// Internal: the live table of a data layer's components (open in order,
// close in reverse, rotation hooks, lookup by name).
import { AicoDataError } from "../errors.ts";
import type { DataKey } from "../crypto/mod.ts";
import type { Storage } from "../storage/mod.ts";
import type { SchemaDefinition, SchemaRegistry } from "../schema/mod.ts";
import type { MessageBus } from "../bus/mod.ts";
import type { ChangeFeed } from "../changes/mod.ts";
import type { ComponentContext, DataLayerComponent } from "./components.ts";

const NAME_RE = /^[a-z][a-z0-9_]{0,62}$/;

/** The live table of opened components. */
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

  /** Runs every `erased` hook in table order; returns what they did not reach. */
  async erased(): Promise<string[]> {
    const unreached: string[] = [];
    for (const row of this.#opened) {
      if (row.erased === undefined) continue;
      const next = await row.erased(
        this.#instances.get(row.name),
        this.context,
        (what) => unreached.push(`${row.name}: ${what}`),
      );
      this.#instances.set(row.name, next);
    }
    return unreached;
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
