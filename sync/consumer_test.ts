import assert from "node:assert/strict";
import { join } from "node:path";
import type { ChangeEvent } from "../changes/types.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { withDir } from "../tests/_helpers.ts";
import {
  createSyncConsumer,
  SYNC_TABLES,
  type SyncRowReader,
} from "./consumer.ts";
import { openSyncDevice } from "./device.ts";
import { openFolderTarget } from "./folder_target.ts";
import { deriveSyncKeys } from "./keys.ts";
import { createReplica } from "./merge.ts";
import type { SyncChange } from "./types.ts";

const keys = await deriveSyncKeys(await importDataKey(generateDataKey()));

/** Rows of a tiny in-memory "database" and the reader over them. */
function table() {
  const rows = new Map<string, { content: string; hlc: string }>();
  const reader: SyncRowReader = {
    changesFor(events, clock) {
      const out: SyncChange[] = [];
      for (const e of events) {
        for (const key of e.keys) {
          const row = rows.get(key);
          out.push(
            row === undefined
              ? { op: "erase", table: e.table, key, hlc: clock.now() }
              : {
                op: "append",
                table: e.table,
                key,
                hlc: row.hlc,
                parent: { table: "conversations", key: e.scope ?? "c" },
                value: { content: row.content },
              },
          );
        }
      }
      return Promise.resolve(out);
    },
    async *snapshot() {
      yield [...rows].map(([key, row]): SyncChange => ({
        op: "append",
        table: "messages",
        key,
        hlc: row.hlc,
        value: { content: row.content },
      }));
    },
  };
  return { rows, reader };
}

const ctx = () => ({ signal: new AbortController().signal });

Deno.test("createSyncConsumer() stages what the feed delivers; a redelivered batch syncs once", async () => {
  await withDir(async (dir) => {
    await using a = await openSyncDevice(join(dir, "a"), keys, {
      deviceId: "a",
    });
    await using b = await openSyncDevice(join(dir, "b"), keys, {
      deviceId: "b",
    });
    await using target = await openFolderTarget(join(dir, "t"));
    const { rows, reader } = table();
    const consumer = createSyncConsumer(a, reader);
    assert.equal(consumer.name, "sync");
    assert.deepEqual(consumer.tables, SYNC_TABLES);
    rows.set("a/1", { content: "hi", hlc: a.clock.now() });
    const batch: ChangeEvent[] = [{
      table: "messages",
      op: "insert",
      keys: ["a/1"],
      scope: "c",
      seq: 1,
      at: 0,
    }];
    await consumer.handle(batch, ctx());
    await consumer.handle(batch, ctx()); // at-least-once delivery
    rows.delete("a/1");
    await consumer.handle([{
      table: "messages",
      op: "delete",
      keys: ["a/1"],
      scope: "c",
      seq: 2,
      at: 0,
    }], ctx());
    assert.equal(a.status().sealed, 3);
    await a.push(target);
    const replica = createReplica();
    await b.pull(target, (c) => void replica.apply(c));
    assert.equal(replica.rows().length, 0);
    assert.equal(replica.get("messages", "a/1")?.op, "erase");
  });
});

Deno.test("createSyncConsumer() backfills from the snapshot and stages nothing once aborted", async () => {
  await withDir(async (dir) => {
    await using a = await openSyncDevice(join(dir, "a"), keys, {
      deviceId: "a",
    });
    const { rows, reader } = table();
    for (let i = 0; i < 3; i++) {
      rows.set(`a/${i}`, { content: `m${i}`, hlc: a.clock.now() });
    }
    const consumer = createSyncConsumer(a, reader, {
      name: "sync.laptop",
      batchSize: 10,
    });
    await consumer.backfill!(ctx());
    assert.equal(a.status().sealed, 1);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(
      consumer.handle([{
        table: "messages",
        op: "insert",
        keys: ["a/0"],
        seq: 3,
        at: 0,
      }], { signal: aborted.signal }),
    );
    assert.equal(a.status().sealed, 1);
    assert.throws(() => createSyncConsumer({} as never, reader), {
      code: "INVALID_INPUT",
    });
  });
});

Deno.test("createSyncConsumer() stages only versions authored on this device, so pulled rows do not echo back", async () => {
  await withDir(async (dir) => {
    await using a = await openSyncDevice(join(dir, "a"), keys, {
      deviceId: "a",
    });
    const consumer = createSyncConsumer(a, {
      changesFor: () =>
        Promise.resolve([
          {
            op: "put",
            table: "config",
            key: "k",
            hlc: "0000000003e80000.b",
            value: { v: 1 },
          },
        ]),
    });
    await consumer.handle([{
      table: "config",
      op: "update",
      keys: ["k"],
      seq: 1,
      at: 0,
    }], ctx());
    assert.equal(a.status().sealed, 0);
  });
});
