// Internal: the storage core shared by local and remote stores: statements,
// batches and transactions over an engine, turns on the connection through
// the FIFO queue, sealed columns, close. The local-only operations are added
// by `LocalStorageImpl` (`_local_storage.ts`). Not exported from the package.
import { AicoDataError, BatchError, isAicoDataError } from "../errors.ts";
import type { DataKey } from "../crypto/mod.ts";
import type { Engine, EngineTx } from "./_engine.ts";
import { extendedCodeOf } from "./_errors.ts";
import { ConnectionQueue } from "./_queue.ts";
import {
  checkName,
  checkSchemaVersion,
  SealedColumnImpl,
} from "./_sealed_column.ts";
import { statementParts } from "./_sql.ts";
import type { SealedColumn, SealedColumnOptions, Storage } from "./storage.ts";
import type {
  InArgs,
  InStatement,
  ResultSet,
  Transaction,
  TransactionMode,
} from "./types.ts";

const MODES: readonly TransactionMode[] = ["write", "read", "deferred"];

/** A storage over one engine (local or remote). */
export class StorageImpl implements Storage {
  #engine: Engine;
  #closed = false;
  #queue: ConnectionQueue;
  /** The data key; replaced by a completed rotation. */
  protected key: DataKey | undefined;

  constructor(engine: Engine, key: DataKey | undefined) {
    this.#engine = engine;
    this.key = key;
    this.#queue = new ConnectionQueue((action) => this.checkOpen(action));
  }

  get kind(): "local" | "remote" {
    return this.#engine.kind;
  }

  get closed(): boolean {
    return this.#closed;
  }

  checkOpen(action: string): void {
    if (this.#closed) {
      throw new AicoDataError(
        "STORE_CLOSED",
        `Cannot ${action}: the storage is closed`,
      );
    }
  }

  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet> {
    if (this.#queue.active !== undefined) return this.#executeLater(stmt, args);
    try {
      this.checkOpen("execute");
      const [sql, a] = statementParts(stmt, args);
      return Promise.resolve(this.#engine.run(sql, a));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #executeLater(
    stmt: string | InStatement,
    args?: InArgs,
  ): Promise<ResultSet> {
    this.checkOpen("execute");
    const slot = await this.#queue.acquire("execute");
    try {
      const [sql, a] = statementParts(stmt, args);
      return await this.#engine.run(sql, a);
    } finally {
      slot.release();
    }
  }

  async executeMultiple(sql: string): Promise<void> {
    this.checkOpen("execute");
    if (typeof sql !== "string") {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot execute: the SQL is not a string",
      );
    }
    if (!sql.isWellFormed()) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot execute: the SQL is not well-formed UTF-16",
      );
    }
    if (this.#queue.active === undefined) return await this.#engine.exec(sql);
    const slot = await this.#queue.acquire("execute");
    try {
      await this.#engine.exec(sql);
    } finally {
      slot.release();
    }
  }

  async batch(
    stmts: readonly (string | InStatement)[],
    mode: TransactionMode = "write",
  ): Promise<ResultSet[]> {
    if (!Array.isArray(stmts)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run batch: expected an array of statements",
      );
    }
    return await this.transaction(
      (tx) => runAll(stmts, (sql, a) => tx.execute(sql, a)),
      mode,
    );
  }

  async transaction<T>(
    fn: (tx: Transaction) => Promise<T> | T,
    mode: TransactionMode = "write",
  ): Promise<T> {
    this.checkOpen("start transaction");
    if (typeof fn !== "function") {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot start transaction: expected a function",
      );
    }
    if (!MODES.includes(mode)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        `Cannot start transaction: unknown mode "${mode}"`,
      );
    }
    const turn = this.#queue.acquire("start transaction");
    const slot = turn instanceof Promise ? await turn : turn;
    try {
      const etx = await this.#engine.begin(mode);
      const tx = new TxImpl(this, etx);
      let result: T;
      try {
        result = await this.#queue.runInTurn(() => fn(tx));
      } catch (err) {
        tx.finish();
        try {
          await etx.rollback();
        } catch {
          // The original error matters more.
        }
        throw err;
      }
      tx.finish();
      try {
        await etx.commit();
      } catch (err) {
        try {
          await etx.rollback();
        } catch {
          // Keep the commit error.
        }
        throw err;
      }
      return result;
    } finally {
      slot.release();
    }
  }

  sealedColumn(
    table: string,
    column: string,
    options: SealedColumnOptions = {},
  ): SealedColumn {
    this.checkOpen("use sealed column");
    const version = checkSchemaVersion(options?.schemaVersion);
    return new SealedColumnImpl(
      checkName("table", table),
      checkName("column", column),
      version,
      () => {
        this.checkOpen("use sealed column");
        if (this.key === undefined) {
          throw new AicoDataError(
            "INVALID_INPUT",
            "Cannot use sealed column: the storage has no key",
          );
        }
        return this.key.sealer("field-aead");
      },
    );
  }

  /**
   * Runs `fn` as the only user of the connection (no transaction open),
   * after the work queued before it; `signal` can cut the wait short.
   */
  async exclusive<T>(
    action: string,
    fn: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    this.checkOpen(action);
    const turn = this.#queue.acquire(action, signal);
    const slot = turn instanceof Promise ? await turn : turn;
    try {
      return await this.#queue.runInTurn(fn);
    } finally {
      slot.release();
    }
  }

  /** Marks the storage closed and closes the engine at once (crash tests). */
  protected crash(): void {
    this.#closed = true;
    void this.#engine.close();
  }

  /** Runs just before the engine closes (best-effort work of a subclass). */
  protected beforeEngineClose(): void {}

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#queue.active !== undefined && this.#queue.inTurn) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        "Cannot close: called inside a transaction of this storage",
      );
    }
    this.#closed = true;
    // A running transaction finishes first (its further calls fail).
    if (this.#queue.active !== undefined) {
      await this.#queue.active.done.catch(() => {});
    }
    this.beforeEngineClose();
    await this.#engine.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

class TxImpl implements Transaction {
  #storage: StorageImpl;
  #etx: EngineTx;
  #finished = false;
  #savepoint = 0;

  constructor(storage: StorageImpl, etx: EngineTx) {
    this.#storage = storage;
    this.#etx = etx;
  }

  get closed(): boolean {
    return this.#finished;
  }

  finish(): void {
    this.#finished = true;
  }

  #check(action: string): void {
    if (this.#finished) {
      throw new AicoDataError(
        "TRANSACTION_MISUSE",
        `Cannot ${action}: the transaction is finished`,
      );
    }
    this.#storage.checkOpen(action);
  }

  execute(stmt: string | InStatement, args?: InArgs): Promise<ResultSet> {
    // Not async: the local engine answers synchronously, and this hot path
    // (one call per row in bulk inserts) skips an async frame.
    try {
      this.#check("execute");
      const [sql, a] = statementParts(stmt, args);
      return Promise.resolve(this.#etx.run(sql, a));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async batch(
    stmts: readonly (string | InStatement)[],
    _mode?: TransactionMode,
  ): Promise<ResultSet[]> {
    this.#check("run batch");
    if (!Array.isArray(stmts)) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot run batch: expected an array of statements",
      );
    }
    const name = `aico_batch_${++this.#savepoint}`;
    await this.#etx.run(`SAVEPOINT ${name}`, undefined);
    try {
      const out = await runAll(stmts, (sql, a) => this.#etx.run(sql, a));
      await this.#etx.run(`RELEASE ${name}`, undefined);
      return out;
    } catch (err) {
      await this.#etx.run(`ROLLBACK TO ${name}`, undefined);
      await this.#etx.run(`RELEASE ${name}`, undefined);
      throw err;
    }
  }
}

async function runAll(
  stmts: readonly (string | InStatement)[],
  run: (
    sql: string,
    args: InArgs | undefined,
  ) => ResultSet | Promise<ResultSet>,
): Promise<ResultSet[]> {
  const out: ResultSet[] = [];
  for (let i = 0; i < stmts.length; i++) {
    try {
      const [sql, args] = statementParts(stmts[i]!, undefined);
      out.push(await run(sql, args));
    } catch (err) {
      if (isAicoDataError(err) && !(err instanceof BatchError)) {
        throw new BatchError(
          err.code,
          `Cannot run batch: statement ${i} failed: ${err.message}`,
          { statementIndex: i, extendedCode: extendedCodeOf(err), cause: err },
        );
      }
      throw err;
    }
  }
  return out;
}
