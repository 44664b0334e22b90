// Internal: the narrow store surface the repositories call (a `Storage`
// from `openStorage()` has it).
import type { SealedColumn, SealedColumnOptions } from "../storage/storage.ts";
import type {
  SqlExecutor,
  Transaction,
  TransactionMode,
} from "../storage/types.ts";

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
