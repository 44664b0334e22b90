// Internal: sealing of one column through the store's sealed-column helper
// (AAD bound to table, column, row key and schema version), with batches.
import type { RowKey, SealedColumn } from "../storage/storage.ts";
import { CORE_SEALED_COLUMNS } from "./core_schema.ts";
import type { RepositoryStorage } from "./_storage.ts";

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

/**
 * The sealer of a core sealed column, from its declaration in
 * `CORE_SEALED_COLUMNS` (the schema version bound into the values comes
 * from there too), so that what the repositories seal is exactly what key
 * rotation re-seals.
 */
export function declaredSealer(
  db: RepositoryStorage,
  table: string,
  column: string,
): ColumnSealer {
  const spec = CORE_SEALED_COLUMNS.find((c) =>
    c.table === table && c.column === column
  );
  if (spec === undefined) {
    throw new Error(`unreachable: "${table}.${column}" is not declared sealed`);
  }
  return columnSealer(
    db.sealedColumn(table, column, { schemaVersion: spec.schemaVersion }),
  );
}
