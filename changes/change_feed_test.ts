import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage, type Storage } from "../storage/mod.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { createMessageBus } from "../bus/mod.ts";
import {
  type ChangeEvent,
  type ChangeFeed,
  changesSchema,
  openChangeFeed,
  resolveChangeFeedOptions,
} from "./mod.ts";

interface Fixture extends AsyncDisposable {
  db: Storage;
  reopen(): Promise<Storage>;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "aico_feed_" });
  const key = await importDataKey(generateDataKey());
  const path = `${dir}/feed.db`;
  let db = await openStorage(path, { key });
  await (await openMigrator(db, createSchemaRegistry([changesSchema])))
    .migrate();
  return {
    get db() {
      return db;
    },
    async reopen() {
      await db.close();
      db = await openStorage(path, { key });
      return db;
    },
    async [Symbol.asyncDispose]() {
      await db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Records one change in its own transaction and announces the commit. */
async function write(
  db: Storage,
  feed: ChangeFeed,
  table: string,
  keys: string[],
  op: "insert" | "update" | "delete" = "insert",
): Promise<void> {
  let used;
  await db.transaction(async (tx) => {
    await feed.record(tx, [{ table, op, keys }]);
    used = tx;
  });
  feed.committed(used!);
}

async function count(db: Storage): Promise<number> {
  const rs = await db.execute("SELECT COUNT(*) AS n FROM change_events");
  return Number(rs.rows[0]!.n);
}

Deno.test("a consumer's cursor advances only after handle() resolved; a failed batch is retried", async () => {
  await using f = await fixture();
  const errors: unknown[] = [];
  await using feed = await openChangeFeed(f.db, {
    retryBaseMs: 5,
    onError: (e) => errors.push(e),
  });
  let fail = 2;
  const seen: string[] = [];
  const reg = await feed.register({
    name: "flaky",
    handle(batch) {
      if (fail-- > 0) return Promise.reject(new Error("index offline"));
      for (const e of batch) seen.push(...e.keys);
      return Promise.resolve();
    },
  });
  await write(f.db, feed, "notes", ["a"]);
  await write(f.db, feed, "notes", ["b"]);
  // The background attempts fail and are retried with back-off.
  for (let i = 0; i < 200 && seen.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(seen, ["a", "b"]);
  assert.ok(errors.length >= 2);
  await reg.catchUp();
  const [status] = await feed.status();
  assert.equal(status?.name, "flaky");
  assert.equal(status?.cursor, await feed.head());
  assert.equal(status?.lag, 0);
  assert.equal(status?.lastError, undefined);
  assert.equal(status?.active, true);
});

Deno.test("catchUp() rejects with the handler's error and the cursor stays", async () => {
  await using f = await fixture();
  await using feed = await openChangeFeed(f.db, { retryBaseMs: 60_000 });
  const reg = await feed.register({
    name: "broken",
    handle: () => Promise.reject(new TypeError("bad batch")),
  });
  await write(f.db, feed, "notes", ["a"]);
  await assert.rejects(reg.catchUp(), TypeError);
  const [status] = await feed.status();
  assert.equal(status?.cursor, 0);
  assert.equal(status?.lag, 1);
  assert.match(status?.lastError ?? "", /TypeError/);
});

Deno.test("a new consumer backfills, then receives what was committed after the head read before backfill", async () => {
  await using f = await fixture();
  await using feed = await openChangeFeed(f.db);
  // History before the consumer exists is kept only by a cursor.
  const keeper = await feed.register({
    name: "keeper",
    handle: async () => {},
  });
  await write(f.db, feed, "notes", ["old"]);
  await keeper.catchUp();
  const seen: string[] = [];
  let backfills = 0;
  const reg = await feed.register({
    name: "late",
    async backfill() {
      backfills++;
      // A change committed while the backfill runs is not missed.
      await write(f.db, feed, "notes", ["during"]);
    },
    handle(batch) {
      for (const e of batch) seen.push(...e.keys);
      return Promise.resolve();
    },
  });
  await reg.catchUp();
  assert.equal(backfills, 1);
  assert.deepEqual(seen, ["during"]);
  await reg.stop();
  // Registered again later: its cursor exists, no second backfill.
  const again = await feed.register({
    name: "late",
    backfill() {
      backfills++;
      return Promise.resolve();
    },
    handle: async () => {},
  });
  await again.catchUp();
  assert.equal(backfills, 1);
});

Deno.test("tables filter the batches; the cursor still moves past other tables", async () => {
  await using f = await fixture();
  await using feed = await openChangeFeed(f.db);
  const seen: ChangeEvent[] = [];
  const reg = await feed.register({
    name: "msgs",
    tables: ["messages"],
    batchSize: 2,
    handle(batch) {
      seen.push(...batch);
      return Promise.resolve();
    },
  });
  await write(f.db, feed, "config", ["ui/theme"], "update");
  await write(f.db, feed, "messages", ["1", "2"]);
  await write(f.db, feed, "users", ["u"], "delete");
  await write(f.db, feed, "messages", ["3"], "delete");
  await reg.catchUp();
  assert.deepEqual(seen.map((e) => [e.table, e.op, e.keys]), [
    ["messages", "insert", ["1", "2"]],
    ["messages", "delete", ["3"]],
  ]);
  assert.ok(seen[0]!.seq < seen[1]!.seq);
  assert.equal((await feed.status())[0]?.cursor, await feed.head());
});

Deno.test("events at or below the lowest cursor are purged; without cursors they go once published", async () => {
  await using f = await fixture();
  {
    await using feed = await openChangeFeed(f.db);
    const fast = await feed.register({ name: "fast", handle: async () => {} });
    const slow = await feed.register({
      name: "slow",
      handle: () => Promise.reject(new Error("not now")),
    });
    for (const k of ["a", "b", "c"]) await write(f.db, feed, "notes", [k]);
    await fast.catchUp();
    await assert.rejects(slow.catchUp());
    assert.equal(await count(f.db), 3); // kept for "slow"
    await slow.unregister();
    await write(f.db, feed, "notes", ["d"]);
    await fast.catchUp();
    assert.equal(await count(f.db), 0);
    await fast.unregister();
    assert.deepEqual(await feed.status(), []);
  }
  await using bus = createMessageBus();
  const published: unknown[] = [];
  bus.subscribe("data.changed.*", (p) => {
    published.push(p);
  });
  {
    await using feed = await openChangeFeed(f.db, { bus });
    await write(f.db, feed, "notes", ["e"], "update");
  }
  assert.deepEqual(published, [{
    op: "update",
    keys: ["e"],
    scope: undefined,
  }]);
  assert.equal(await count(f.db), 0); // purged at close
});

Deno.test("events left unpublished by a crash are published at the next open", async () => {
  await using f = await fixture();
  {
    await using feed = await openChangeFeed(f.db);
    // Recorded and committed, but the process "dies" before committed().
    await f.db.transaction((tx) =>
      feed.record(tx, [{ table: "config", op: "update", keys: ["ui/x"] }])
    );
  }
  assert.equal(await count(f.db), 1);
  const db = await f.reopen();
  await using bus = createMessageBus();
  const published: unknown[] = [];
  bus.subscribe("data.changed.config", (p) => {
    published.push(p);
  });
  await using feed = await openChangeFeed(db, { bus });
  assert.deepEqual(published, [{
    op: "update",
    keys: ["ui/x"],
    scope: undefined,
  }]);
  assert.equal(await count(db), 0);
  assert.ok((await feed.head()) >= 1);
});

Deno.test("close() aborts the signal of a batch in progress and waits for it; the cursor stays", async () => {
  await using f = await fixture();
  const feed = await openChangeFeed(f.db);
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let aborted = false;
  await feed.register({
    name: "slow",
    handle(_batch, { signal }) {
      started();
      return new Promise((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          reject(signal.reason);
        });
      });
    },
  });
  await write(f.db, feed, "notes", ["a"]);
  await running;
  await feed.close();
  await feed.close();
  assert.equal(aborted, true);
  assert.equal(feed.closed, true);
  const rs = await f.db.execute("SELECT seq FROM change_cursors");
  assert.equal(rs.rows[0]?.seq, 0);
  await assert.rejects(feed.head(), { code: "STORE_CLOSED" });
  await assert.rejects(
    feed.register({ name: "x", handle: async () => {} }),
    { code: "STORE_CLOSED" },
  );
});

Deno.test("malformed changes, consumers and options are INVALID_INPUT and nothing is recorded", async () => {
  await using f = await fixture();
  await using feed = await openChangeFeed(f.db);
  for (
    const bad of [
      { table: "Bad-Name", op: "insert", keys: ["a"] },
      { table: "notes", op: "upsert", keys: ["a"] },
      { table: "notes", op: "insert", keys: [] },
      { table: "notes", op: "insert", keys: [1] },
      { table: "notes", op: "insert", keys: ["a"], scope: 5 },
    ]
  ) {
    await assert.rejects(
      f.db.transaction((tx) => feed.record(tx, [bad as never])),
      { code: "INVALID_INPUT" },
    );
  }
  assert.equal(await count(f.db), 0);
  await assert.rejects(
    feed.register({ name: "Bad Name", handle: async () => {} }),
    { code: "INVALID_INPUT" },
  );
  await feed.register({ name: "one", handle: async () => {} });
  await assert.rejects(
    feed.register({ name: "one", handle: async () => {} }),
    { code: "INVALID_INPUT" },
  );
  await assert.rejects(
    feed.register({ name: "two", batchSize: 0, handle: async () => {} }),
    { code: "INVALID_INPUT" },
  );
  assert.throws(() => resolveChangeFeedOptions({ batchSize: 0 }), {
    code: "INVALID_INPUT",
  });
  assert.throws(() => resolveChangeFeedOptions({ bus: {} as never }), {
    code: "INVALID_INPUT",
  });
  assert.deepEqual(
    { ...resolveChangeFeedOptions(), now: 0, onError: 0 },
    {
      bus: undefined,
      now: 0,
      onError: 0,
      batchSize: 500,
      retryBaseMs: 100,
      retryMaxMs: 30_000,
      signal: undefined,
    },
  );
});
