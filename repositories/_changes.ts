// Internal: a write transaction whose recorded changes are announced to the
// change feed once it committed.
import type { Transaction } from "../storage/types.ts";
import type { RepositoryStorage } from "./_storage.ts";
import type { ResolvedRepositoryOptions } from "./repository_options.ts";

/** Runs `fn` in a write transaction; tells the recorder when it committed. */
export async function writeTx<T>(
  db: RepositoryStorage,
  o: ResolvedRepositoryOptions,
  fn: (tx: Transaction) => Promise<T>,
): Promise<T> {
  let used: Transaction | undefined;
  const result = await db.transaction((tx) => {
    used = tx;
    return fn(tx);
  }, "write");
  if (o.changes !== undefined && used !== undefined) o.changes.committed(used);
  return result;
}
