// Internal: the first-come-first-served queue for the one connection of a
// storage. A transaction or an exclusive task (backup, verify, rekey) holds
// the connection for its turn; everyone else waits in arrival order. Not
// exported from the package.
import { AsyncLocalStorage } from "node:async_hooks";
import { AicoDataError } from "../errors.ts";
import { abortError } from "../_internal/abort.ts";

/** One turn on the connection: a transaction or an exclusive task. */
export interface Slot {
  /** Settles when the turn ends. */
  readonly done: Promise<void>;
  /** Ends the turn and hands the connection to the next waiter. */
  release(): void;
}

/** The connection queue of one storage. */
export class ConnectionQueue {
  /** The holder of the connection. */
  #active: Slot | undefined;
  /** Callers waiting for the connection, first come first served. */
  #waiters: (() => void)[] = [];
  #als = new AsyncLocalStorage<ConnectionQueue>();
  #checkOpen: (action: string) => void;

  /** `checkOpen` throws `STORE_CLOSED` once the storage is closed. */
  constructor(checkOpen: (action: string) => void) {
    this.#checkOpen = checkOpen;
  }

  /** The current turn, if any. */
  get active(): Slot | undefined {
    return this.#active;
  }

  /** Whether the caller runs inside a turn of this queue (its own transaction). */
  get inTurn(): boolean {
    return this.#als.getStore() === this;
  }

  /** Runs `fn` marked as inside this queue's turn (see {@linkcode inTurn}). */
  runInTurn<T>(fn: () => T): T {
    return this.#als.run(this, fn);
  }

  /**
   * Takes the connection: at once when it is free, otherwise in arrival
   * order. The holder's release hands the connection to the next waiter
   * synchronously, so two waiters never both see it free. Refuses a call
   * from inside this queue's turn (it would wait for itself) with
   * `TRANSACTION_MISUSE`, a waiter woken after close with `STORE_CLOSED`
   * (passing the turn on), and a wait cut by `signal` with `ABORTED`.
   */
  acquire(action: string, signal?: AbortSignal): Slot | Promise<Slot> {
    if (signal?.aborted) throw abortError(action, signal);
    if (this.#active === undefined) return this.#claim();
    if (this.inTurn) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        `Cannot ${action}: a transaction is open in this task, use its "tx"`,
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve(this.#claim());
      };
      const onAbort = (): void => {
        const at = this.#waiters.indexOf(wake);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(abortError(action, signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(wake);
    }).then((slot) => {
      try {
        this.#checkOpen(action);
      } catch (err) {
        slot.release();
        throw err;
      }
      return slot;
    });
  }

  #claim(): Slot {
    let resolveDone!: () => void;
    const slot: Slot = {
      done: new Promise<void>((r) => (resolveDone = r)),
      release: () => {
        if (this.#active !== slot) return;
        this.#active = undefined;
        resolveDone();
        this.#waiters.shift()?.();
      },
    };
    this.#active = slot;
    return slot;
  }
}
