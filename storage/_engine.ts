// Internal: what the storage core needs from an engine (local driver or
// remote client). Not exported from the package.
import type { InArgs, ResultSet, TransactionMode } from "./types.ts";

/** An open transaction on an engine. */
export interface EngineTx {
  run(sql: string, args: InArgs | undefined): ResultSet | Promise<ResultSet>;
  commit(): void | Promise<void>;
  rollback(): void | Promise<void>;
}

/** A connection the storage core drives. */
export interface Engine {
  readonly kind: "local" | "remote";
  run(sql: string, args: InArgs | undefined): ResultSet | Promise<ResultSet>;
  exec(sql: string): void | Promise<void>;
  begin(mode: TransactionMode): EngineTx | Promise<EngineTx>;
  close(): void | Promise<void>;
}
