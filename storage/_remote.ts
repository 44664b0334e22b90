// Internal: the remote and embedded-replica engine on `@libsql/client`, the
// only file that imports that SDK (lazily, inside openRemoteEngine()). Not
// exported from the package.
import type { createClient } from "npm:@libsql/client@0.18.0";
import { resolve } from "node:path";
import { AicoDataError } from "../errors.ts";
import { requirePermission } from "../_internal/permissions.ts";
import type { Engine, EngineTx } from "./_engine.ts";
import { translateError } from "./_errors.ts";
import { fromDriverValue, scanSql, toBindArgs } from "./_sql.ts";
import type { InArgs, ResultSet, Row, TransactionMode } from "./types.ts";
import type { ResolvedRemoteStorageOptions } from "./storage.ts";

type Client = ReturnType<typeof createClient>;
type ClientTx = Awaited<ReturnType<Client["transaction"]>>;
type ClientResult = Awaited<ReturnType<Client["execute"]>>;

function toResultSet(result: ClientResult): ResultSet {
  const columns = [...result.columns];
  const rows: Row[] = new Array(result.rows.length);
  for (let r = 0; r < result.rows.length; r++) {
    const source = result.rows[r]!;
    const row: Row = {};
    for (let c = 0; c < columns.length; c++) {
      row[columns[c]!] = fromDriverValue(source[c]);
    }
    rows[r] = row;
  }
  return {
    rows,
    columns,
    rowsAffected: result.rowsAffected,
    lastInsertRowid: result.lastInsertRowid,
  };
}

function prepareArgs(
  sql: string,
  args: InArgs | undefined,
): { sql: string; args: never } {
  const info = scanSql(sql);
  return { sql: info.sql, args: toBindArgs(info, args) as never };
}

class RemoteEngine implements Engine {
  readonly kind = "remote" as const;
  #client: Client;

  constructor(client: Client) {
    this.#client = client;
  }

  async run(sql: string, args: InArgs | undefined): Promise<ResultSet> {
    const stmt = prepareArgs(sql, args);
    try {
      return toResultSet(await this.#client.execute(stmt));
    } catch (err) {
      throw translateError(err, "run statement");
    }
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.#client.executeMultiple(sql);
    } catch (err) {
      throw translateError(err, "run statements");
    }
  }

  async begin(mode: TransactionMode): Promise<EngineTx> {
    let tx: ClientTx;
    try {
      tx = await this.#client.transaction(mode);
    } catch (err) {
      throw translateError(err, "start transaction");
    }
    return {
      run: async (sql, args) => {
        const stmt = prepareArgs(sql, args);
        try {
          return toResultSet(await tx.execute(stmt));
        } catch (err) {
          throw translateError(err, "run statement");
        }
      },
      commit: async () => {
        try {
          await tx.commit();
        } catch (err) {
          throw translateError(err, "commit");
        } finally {
          tx.close();
        }
      },
      rollback: async () => {
        try {
          await tx.rollback();
        } catch (err) {
          throw translateError(err, "roll back");
        } finally {
          tx.close();
        }
      },
    };
  }

  close(): void {
    this.#client.close();
  }
}

async function pageKeyString(
  options: ResolvedRemoteStorageOptions,
): Promise<string> {
  const bytes = await options.key!.purposeKeyBytes("libsql-page");
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b & 0x7f);
  bytes.fill(0);
  return out;
}

/**
 * Opens a remote database (`libsql://`, `http(s)://`, `ws(s)://`) or an
 * embedded replica (a local path with `syncUrl`) and checks that the server
 * answers: an unreachable server is `CONNECTION_FAILED`.
 */
export async function openRemoteEngine(
  pathOrUrl: string,
  options: ResolvedRemoteStorageOptions,
): Promise<Engine> {
  const replica = options.syncUrl !== undefined;
  const serverUrl = replica ? options.syncUrl! : pathOrUrl;
  let host: string;
  try {
    host = new URL(serverUrl).host;
  } catch (cause) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open storage: invalid URL "${serverUrl}"`,
      {
        cause,
      },
    );
  }
  requirePermission(
    { name: "net", host },
    `--allow-net=${host}`,
    "open storage",
  );
  const config: Parameters<typeof createClient>[0] = {
    url: pathOrUrl,
    intMode: "bigint",
    ...(options.authToken === undefined
      ? {}
      : { authToken: options.authToken }),
  };
  if (replica) {
    if (options.key === undefined) {
      throw new AicoDataError(
        "INVALID_INPUT",
        'Cannot open storage: an embedded replica needs "key"',
      );
    }
    const path = resolve(
      pathOrUrl.startsWith("file:") ? new URL(pathOrUrl).pathname : pathOrUrl,
    );
    config.url = `file:${path}`;
    config.syncUrl = options.syncUrl!;
    config.encryptionKey = await pageKeyString(options);
  }
  const sdk = await import("npm:@libsql/client@0.18.0");
  let client: Client;
  try {
    client = sdk.createClient(config);
  } catch (err) {
    throw translateError(err, "open storage");
  }
  try {
    if (replica) await client.sync();
    await client.execute("SELECT 1");
  } catch (err) {
    client.close();
    const translated = translateError(err, "open storage");
    if (
      translated.code === "SQL_ERROR" || translated.code === "CONNECTION_FAILED"
    ) {
      throw new AicoDataError(
        "CONNECTION_FAILED",
        `Cannot open storage: the server "${host}" cannot be reached`,
        { cause: err },
      );
    }
    throw translated;
  }
  return new RemoteEngine(client);
}
