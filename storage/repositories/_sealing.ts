// Internal: sealing of one column through the store's sealed-column helper
// (AAD bound to table, column, row key and schema version), with batches.
import type { RowKey, SealedColumn } from "../storage.ts";

/** How many seals or opens of a batch are in flight at once. */
const WINDOW = 512;

/** Seals and opens one column's values, one or many at a time. */
export interface ColumnSealer {
  seal(rowKey: RowKey, plaintext: Uint8Array | string): Promise<Uint8Array>;
  open(rowKey: RowKey, sealed: Uint8Array): Promise<Uint8Array>;
  sealBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly plaintext: Uint8Array | string;
    }[],
  ): Promise<Uint8Array[]>;
  openBatch(
    items: readonly { readonly rowKey: RowKey; readonly sealed: Uint8Array }[],
  ): Promise<Uint8Array[]>;
}

async function windowed<I>(
  items: readonly I[],
  fn: (item: I) => Promise<Uint8Array>,
): Promise<Uint8Array[]> {
  const out = new Array<Uint8Array>(items.length);
  for (let start = 0; start < items.length; start += WINDOW) {
    const end = Math.min(items.length, start + WINDOW);
    const pending: Promise<void>[] = [];
    for (let i = start; i < end; i++) {
      pending.push(
        fn(items[i]!).then((v) => {
          out[i] = v;
        }),
      );
    }
    await Promise.all(pending);
  }
  return out;
}

export function columnSealer(column: SealedColumn): ColumnSealer {
  return {
    seal: (rowKey, plaintext) => column.seal(rowKey, plaintext),
    open: (rowKey, sealed) => column.open(rowKey, sealed),
    sealBatch: (items) =>
      windowed(items, (it) => column.seal(it.rowKey, it.plaintext)),
    openBatch: (items) =>
      windowed(items, (it) => column.open(it.rowKey, it.sealed)),
  };
}
