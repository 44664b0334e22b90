// Test helpers for sync over the real data layer: devices sharing one key
// through the key file on the target, and a content hash over every synced
// core table (sealed columns opened, local row ids left out). Not part of
// the package.
import { createHash } from "node:crypto";
import { type DataLayer, openDataLayer } from "../data_layer/mod.ts";
import { fetchKeyFile, publishKeyFile, type SyncTarget } from "../sync/mod.ts";

export const PASS = "sync test passphrase";
export const KDF = { memoryKiB: 19456, iterations: 2 } as const;

/** Opens (creating it when new) a data layer with sync on `target`. */
export async function openDevice(
  dir: string,
  deviceId: string,
  target: SyncTarget | string,
  create = false,
): Promise<DataLayer> {
  return await openDataLayer(dir, {
    passphrase: PASS,
    create,
    kdf: KDF,
    cache: false,
    memory: false,
    analytics: false,
    sync: { target, deviceId, maxSegmentBytes: 4096 },
  });
}

/** The first device: creates its folder and puts its key file on the target. */
export async function firstDevice(
  dir: string,
  deviceId: string,
  target: SyncTarget,
  spec: SyncTarget | string = target,
): Promise<DataLayer> {
  const data = await openDevice(dir, deviceId, spec, true);
  await publishKeyFile(target, `${dir}/key.json`);
  return data;
}

/** Another device: fetches the key file from the target, then opens. */
export async function joinDevice(
  dir: string,
  deviceId: string,
  target: SyncTarget,
  spec: SyncTarget | string = target,
): Promise<DataLayer> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await fetchKeyFile(target, `${dir}/key.json`, PASS);
  return await openDevice(dir, deviceId, spec, true);
}

/** What a store holds, as plain JSON (every core table that syncs). */
export async function storeContent(data: DataLayer): Promise<unknown> {
  const db = data.storage;
  const users = [];
  for (
    const r of (await db.execute("SELECT id FROM users ORDER BY id")).rows
  ) users.push(await data.users.getUser(r.id as string));
  const config = [];
  for (
    const r of (await db.execute(
      "SELECT namespace, key FROM config ORDER BY row_key",
    )).rows
  ) {
    config.push(
      await data.config.getEntry(r.namespace as string, r.key as string),
    );
  }
  const plugins = await data.plugins.listPlugins();
  const state: Record<string, unknown> = {};
  for (const p of plugins) state[p.name] = await data.plugins.listState(p.name);
  const conversations = [];
  for (
    const r of (await db.execute("SELECT id FROM conversations ORDER BY id"))
      .rows
  ) {
    const id = r.id as string;
    const c = await data.conversations.getConversation(id);
    const messages = [];
    let cursor: string | undefined;
    do {
      const page = await data.conversations.listMessages(id, {
        limit: 1000,
        ...(cursor === undefined ? {} : { cursor }),
      });
      for (const m of page.items) {
        messages.push([m.seq, m.role, m.content, m.createdAt, m.model ?? null]);
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    conversations.push({ ...c, messages });
  }
  return { users, config, plugins, state, conversations };
}

/** SHA-256 over {@linkcode storeContent}. */
export async function contentHash(data: DataLayer): Promise<string> {
  return createHash("sha256").update(JSON.stringify(await storeContent(data)))
    .digest("hex");
}

/** Every message content of a conversation, in seq order. */
export async function contents(
  data: DataLayer,
  conversationId: string,
): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await data.conversations.listMessages(conversationId, {
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const m of page.items) out.push(m.content);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out;
}
