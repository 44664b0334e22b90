// Internal: the ONE place where the importer meets the conversation
// repository: a repository bound to the import's transaction, and the
// NewConversation / NewMessage values it is given (the v2 fields `model`,
// `createdAt`, `updatedAt` are passed; a repository that does not know them
// ignores them).
import {
  type ConversationRepository,
  createConversationRepository,
  type NewConversation,
  type NewMessage,
  type RepositoryStorage,
} from "../repositories/mod.ts";
import type { ChangeRecorder } from "../changes/mod.ts";
import type { Transaction } from "../storage/types.ts";
import type { ImportedConversation, ImportedMessage } from "./types.ts";

/**
 * A repository whose every statement runs in `tx`: the import of one file is
 * one transaction, together with its `import_sources` rows.
 */
export function repositoryIn(
  tx: Transaction,
  storage: RepositoryStorage,
  changes: ChangeRecorder | undefined,
): ConversationRepository {
  const bound: RepositoryStorage = {
    execute: (stmt, args) => tx.execute(stmt, args),
    batch: (stmts) => tx.batch(stmts),
    transaction: async (fn) => await fn(tx),
    sealedColumn: (table, column, options) =>
      storage.sealedColumn(table, column, options),
  };
  // Changes are recorded in the import's transaction; they are announced
  // once it committed (importer.ts), never from inside it.
  const deferred: ChangeRecorder | undefined = changes === undefined
    ? undefined
    : Object.freeze({
      record: (t: Transaction, c: Parameters<ChangeRecorder["record"]>[1]) =>
        changes.record(t, c),
      committed: () => {},
    });
  return createConversationRepository(
    bound,
    deferred === undefined ? {} : { changes: deferred },
  );
}

/** The conversation to create (v2: with its original times). */
export function newConversation(
  id: string,
  userId: string | undefined,
  c: ImportedConversation,
): NewConversation {
  const value: NewConversation & { createdAt?: number; updatedAt?: number } = {
    id,
    ...(userId === undefined ? {} : { userId }),
    ...(c.title === undefined ? {} : { title: c.title }),
    ...(c.createdAt === undefined ? {} : { createdAt: c.createdAt }),
    ...(c.updatedAt === undefined ? {} : { updatedAt: c.updatedAt }),
  };
  return value;
}

/** The message to append (v2: with its model). */
export function newMessage(
  m: ImportedMessage,
  createdAt: number | undefined,
): NewMessage {
  const value: NewMessage & { model?: string } = {
    role: m.role,
    content: m.content,
    ...(createdAt === undefined ? {} : { createdAt }),
    ...(m.model === undefined ? {} : { model: m.model }),
  };
  return value;
}
