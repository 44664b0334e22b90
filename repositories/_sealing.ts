// Internal: sealing of one column through the store's sealed-column helper
// (AAD bound to table, column, row key and schema version), with batches.
import type { RowKey, SealedColumn } from "../storage/storage.ts";

/** Seals and opens one column's values, one or many at a time. */
export interface ColumnSealer {
  seal(rowKey: RowKey, plaintext: Uint8Array | string): Promise<Uint8Array>;
  open(rowKey: RowKey, sealed: Uint8Array): Promise<Uint8Array>;
  /** Each value gets its own nonce and row-bound AAD (`SealedColumn.sealBatch`). */
  sealBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly value: Uint8Array | string;
    }[],
  ): Promise<Uint8Array[]>;
  openBatch(
    items: readonly { readonly rowKey: RowKey; readonly sealed: Uint8Array }[],
  ): Promise<Uint8Array[]>;
}

export function columnSealer(column: SealedColumn): ColumnSealer {
  return {
    seal: (rowKey, plaintext) => column.seal(rowKey, plaintext),
    open: (rowKey, sealed) => column.open(rowKey, sealed),
    sealBatch: (items) => column.sealBatch(items),
    openBatch: (items) => column.openBatch(items),
  };
}
