// Internal: the narrow store surface the repositories call (a `Storage`
// from `openStorage()` has it).
import type { SealedColumn, SealedColumnOptions } from "../storage.ts";
import type { SqlExecutor, Transaction, TransactionMode } from "../types.ts";

/** What a repository needs of a store: statements, transactions, sealed columns. */
export interface RepositoryStorage extends SqlExecutor {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    mode?: TransactionMode,
  ): Promise<T>;
  /** The sealed-column helper (`field-aead` key). */
  sealedColumn(
    table: string,
    column: string,
    options?: SealedColumnOptions,
  ): SealedColumn;
}

const queues = new WeakMap<object, Promise<unknown>>();

/**
 * Runs `storage.transaction(fn, mode)` after every transaction the
 * repositories started earlier on the same store has finished: repository
 * transactions on one store never race to begin (observed with parallel
 * callers on storage at 2026-11-26: two waiters could both begin).
 */
export function runTransaction<T>(
  storage: RepositoryStorage,
  fn: (tx: Transaction) => Promise<T> | T,
  mode: TransactionMode = "write",
): Promise<T> {
  const previous = queues.get(storage) ?? Promise.resolve();
  const run = previous.then(() => storage.transaction(fn, mode));
  const settled = run.then(() => {}, () => {});
  queues.set(storage, settled);
  settled.then(() => {
    if (queues.get(storage) === settled) queues.delete(storage);
  });
  return run;
}
