import assert from "node:assert/strict";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { join } from "node:path";
import { asBinary, open } from "lmdb";
import { type AicoDataErrorCode, isAicoDataError } from "../errors.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  type Cache,
  type CacheOptions,
  type InvalidationInfo,
  type InvalidationSource,
  openCache,
  resolveCacheOptions,
} from "./mod.ts";
import { lmdbKeyString } from "./_key.ts";

/** A controllable clock. */
function clock(start = 1_700_000_000_000): {
  now: () => number;
  advance: (ms: number) => void;
} {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function throwsWith(fn: () => unknown, code: AicoDataErrorCode): void {
  assert.throws(fn, (e: unknown) => isAicoDataError(e, code));
}

function open_(
  dir: string,
  key: CacheOptions["key"],
  extra: Partial<CacheOptions> = {},
): Promise<Cache> {
  return openCache({ path: dir, key, sweepIntervalMs: 0, ...extra });
}

Deno.test("resolveCacheOptions() applies defaults and rejects bad values", async (t) => {
  const key = new Uint8Array(32);
  await t.step("defaults", () => {
    const o = resolveCacheOptions({ path: "/x", key });
    assert.equal(o.path, "/x");
    assert.equal(o.defaultTtlMs, 300_000);
    assert.equal(o.maxBytes, 64 * 1024 * 1024);
    assert.equal(o.maxEntries, 100_000);
    assert.equal(o.sweepIntervalMs, 60_000);
    assert.equal(o.now, Date.now);
    assert.ok(Object.isFrozen(o));
    assert.ok(!("key" in o));
  });
  await t.step(
    "Infinity TTL and limits are allowed, sweep 0 turns it off",
    () => {
      const o = resolveCacheOptions({
        path: "/x",
        key,
        defaultTtlMs: Infinity,
        maxBytes: Infinity,
        sweepIntervalMs: 0,
      });
      assert.equal(o.defaultTtlMs, Infinity);
      assert.equal(o.maxBytes, Infinity);
      assert.equal(o.sweepIntervalMs, 0);
    },
  );
  const bad: [string, Record<string, unknown>][] = [
    ["empty path", { path: "" }],
    ["short key", { key: new Uint8Array(31) }],
    ["string key", { key: "k".repeat(32) }],
    ["zero TTL", { defaultTtlMs: 0 }],
    ["NaN TTL", { defaultTtlMs: NaN }],
    ["negative maxBytes", { maxBytes: -1 }],
    ["string maxEntries", { maxEntries: "10" }],
    ["negative sweep", { sweepIntervalMs: -5 }],
    ["infinite sweep", { sweepIntervalMs: Infinity }],
    ["clock not a function", { now: 5 }],
  ];
  for (const [name, patch] of bad) {
    await t.step(`rejects ${name} with INVALID_INPUT`, () => {
      throwsWith(
        () =>
          resolveCacheOptions(
            { path: "/x", key, ...patch } as unknown as CacheOptions,
          ),
        "INVALID_INPUT",
      );
    });
  }
});

Deno.test("openCache() round-trips structured values across reopen", async () => {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    const value = {
      text: "héllo 🌱",
      n: 42.5,
      neg: -7,
      flag: true,
      none: null,
      list: [1, "two", { three: 3 }],
      when: new Date("2026-01-02T03:04:05.000Z"),
      bytes: new Uint8Array([0, 1, 255]),
      nested: { deep: { deeper: ["x"] } },
    };
    {
      await using cache = await open_(dir, key, { defaultTtlMs: Infinity });
      await cache.set("v", value);
      await cache.set("s", "plain string");
      await cache.set("big", { text: "z".repeat(300_000), n: 1 });
      assert.deepEqual(cache.get("v"), value);
    }
    await using cache = await open_(dir, key, { defaultTtlMs: Infinity });
    const back = cache.get<typeof value>("v");
    assert.ok(back !== undefined);
    assert.ok(back.when instanceof Date);
    assert.ok(back.bytes instanceof Uint8Array);
    assert.deepEqual(
      { ...back, bytes: [...back.bytes] },
      { ...value, bytes: [...value.bytes] },
    );
    assert.equal(cache.get("s"), "plain string");
    assert.equal(cache.get<{ text: string }>("big")?.text.length, 300_000);
    assert.equal(cache.get("s"), "plain string");
    assert.equal(cache.stats().entries, 3);
  });
});

Deno.test("the cache is disposable: a deleted directory reopens empty", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "c");
    const key = new Uint8Array(32).fill(11);
    {
      await using cache = await open_(path, key);
      await cache.set("a", 1);
    }
    await Deno.remove(path, { recursive: true });
    await using cache = await open_(path, key);
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.stats().entries, 0);
    await cache.set("a", 2);
    assert.equal(cache.get("a"), 2);
  });
});

Deno.test("openCache() takes the cache purpose key of a DataKey or its raw bytes", async () => {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    {
      await using cache = await open_(dir, key);
      await cache.set("a", 1);
    }
    const raw = await key.purposeKeyBytes("cache");
    await using cache = await open_(dir, raw);
    assert.equal(cache.get("a"), 1);
    assert.equal(raw.length, 32, "the caller's bytes are not zeroed");
    assert.ok(raw.some((b) => b !== 0));
  });
});

Deno.test("TTL expiry follows the injected clock", async (t) => {
  await withDir(async (dir) => {
    const c = clock();
    await using cache = await open_(dir, new Uint8Array(32).fill(1), {
      now: c.now,
      defaultTtlMs: 1_000,
    });
    await t.step("default TTL", async () => {
      await cache.set("d", "x");
      c.advance(999);
      assert.equal(cache.get("d"), "x");
      assert.equal(cache.has("d"), true);
      c.advance(1);
      assert.equal(cache.get("d"), undefined);
      assert.equal(cache.has("d"), false);
    });
    await t.step("per-entry TTL overrides the default", async () => {
      await cache.set("long", "l", { ttlMs: 10_000 });
      await cache.set("short", "s", { ttlMs: 10 });
      c.advance(10);
      assert.equal(cache.get("short"), undefined);
      c.advance(5_000);
      assert.equal(cache.get("long"), "l");
      c.advance(5_000);
      assert.equal(cache.get("long"), undefined);
    });
    await t.step("an Infinity TTL never expires", async () => {
      await cache.set("forever", 1, { ttlMs: Infinity });
      c.advance(1e12);
      assert.equal(cache.get("forever"), 1);
    });
    await t.step("a bad TTL is rejected and nothing changes", async () => {
      await cache.set("keep", "old", { ttlMs: 1e9 });
      for (const ttlMs of [0, -1, NaN]) {
        await rejectsWith(
          () => cache.set("keep", "new", { ttlMs }),
          "INVALID_INPUT",
        );
      }
      assert.equal(cache.get("keep"), "old");
    });
    await t.step("sweep() deletes expired entries", async () => {
      await cache.clear();
      await cache.setMany([["a", 1], ["b", 2]], { ttlMs: 100 });
      await cache.set("c", 3, { ttlMs: 10_000 });
      const before = cache.stats().expirations;
      c.advance(100);
      assert.equal(await cache.sweep(), 2);
      assert.equal(cache.stats().entries, 1);
      assert.equal(cache.stats().expirations, before + 2);
      assert.equal(await cache.sweep(), 0);
    });
  });
});

Deno.test("expired entries are deleted at open and by the background sweeper", async () => {
  await withDir(async (dir) => {
    const c = clock();
    const key = new Uint8Array(32).fill(2);
    {
      await using cache = await open_(dir, key, { now: c.now });
      await cache.set("old", 1, { ttlMs: 50 });
      await cache.set("new", 2, { ttlMs: 5_000 });
    }
    c.advance(100);
    {
      await using cache = await open_(dir, key, { now: c.now });
      assert.equal(cache.stats().entries, 1);
      assert.equal(cache.stats().expirations, 1);
      assert.equal(cache.get("new"), 2);
    }
    await using cache = await open_(dir, key, {
      now: c.now,
      sweepIntervalMs: 10,
    });
    assert.equal(cache.stats().entries, 1);
    c.advance(10_000);
    const deadline = Date.now() + 5_000;
    while (cache.stats().entries > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(cache.stats().entries, 0);
    assert.equal(cache.stats().expirations, 1);
  });
});

Deno.test("namespaces keep keys apart", async () => {
  await withDir(async (dir) => {
    await using cache = await open_(dir, new Uint8Array(32).fill(3));
    const a = cache.namespace("profile");
    const b = cache.namespace("config");
    await a.set("k", "profile value");
    await b.set("k", "config value");
    await cache.set("k", "default value");
    assert.equal(a.name, "profile");
    assert.equal(a.get("k"), "profile value");
    assert.equal(b.get("k"), "config value");
    assert.equal(cache.get("k"), "default value");
    assert.equal(cache.namespace("default").get("k"), "default value");
    assert.equal(await a.invalidate(), 1);
    assert.equal(a.get("k"), undefined);
    assert.equal(b.get("k"), "config value");
    assert.equal(await b.delete("k"), true);
    assert.equal(await b.delete("k"), false);
    assert.equal(cache.get("k"), "default value");
    for (const name of ["", "has space", "a:b", "x".repeat(65), "é"]) {
      throwsWith(() => cache.namespace(name), "INVALID_INPUT");
    }
  });
});

Deno.test("getOrSet() computes once for concurrent callers", async (t) => {
  await withDir(async (dir) => {
    await using cache = await open_(dir, new Uint8Array(32).fill(4));
    await t.step("single flight", async () => {
      let calls = 0;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const compute = async () => {
        calls++;
        await gate;
        return { computed: calls };
      };
      const results = Array.from(
        { length: 10 },
        () => cache.getOrSet("k", compute),
      );
      release();
      const values = await Promise.all(results);
      assert.equal(calls, 1);
      for (const v of values) assert.deepEqual(v, { computed: 1 });
      assert.deepEqual(await cache.getOrSet("k", compute), { computed: 1 });
      assert.equal(calls, 1);
      assert.deepEqual(cache.get("k"), { computed: 1 });
    });
    await t.step(
      "a failing compute rejects every caller and stores nothing",
      async () => {
        let calls = 0;
        const boom = async () => {
          calls++;
          await Promise.resolve();
          throw new Error("boom");
        };
        const all = await Promise.allSettled([
          cache.getOrSet("f", boom),
          cache.getOrSet("f", boom),
        ]);
        assert.equal(calls, 1);
        assert.ok(all.every((r) => r.status === "rejected"));
        assert.equal(cache.has("f"), false);
        assert.equal(await cache.getOrSet("f", () => "ok"), "ok");
      },
    );
    await t.step(
      "a value invalidated while computing is returned, not stored",
      async () => {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const pending = cache.getOrSet("p", async () => {
          await gate;
          return "stale";
        });
        await cache.invalidate("p");
        release();
        assert.equal(await pending, "stale");
        assert.equal(cache.get("p"), undefined);
      },
    );
    await t.step(
      "undefined and unserialisable results are INVALID_INPUT",
      async () => {
        await rejectsWith(
          () => cache.getOrSet("u", () => undefined),
          "INVALID_INPUT",
        );
        await rejectsWith(
          () => cache.getOrSet("u", () => () => 1),
          "INVALID_INPUT",
        );
        assert.equal(cache.has("u"), false);
      },
    );
  });
});

Deno.test("the size limits evict the least recently used entries", async (t) => {
  await withDir(async (dir) => {
    await t.step("maxEntries", async () => {
      await using cache = await open_(join(dir, "n"), new Uint8Array(32), {
        maxEntries: 3,
      });
      await cache.setMany([["a", 1], ["b", 2], ["c", 3]]);
      assert.equal(cache.get("a"), 1); // a becomes most recently used
      await cache.set("d", 4);
      assert.equal(cache.get("b"), undefined);
      assert.deepEqual(
        ["a", "c", "d"].map((k) => cache.get(k)),
        [1, 3, 4],
      );
      assert.equal(cache.stats().evictions, 1);
      assert.equal(cache.stats().entries, 3);
    });
    await t.step(
      "maxBytes, and a value larger than the limit is refused",
      async () => {
        await using cache = await open_(join(dir, "b"), new Uint8Array(32), {
          maxBytes: 1_000,
        });
        const blob = "x".repeat(300);
        for (const k of ["k1", "k2", "k3", "k4"]) await cache.set(k, blob);
        assert.ok(cache.stats().bytes <= 1_000);
        assert.equal(cache.stats().entries, 3);
        assert.equal(cache.stats().evictions, 1);
        assert.equal(cache.get("k1"), undefined);
        await rejectsWith(
          () => cache.set("k2", "y".repeat(2_000)),
          "INVALID_INPUT",
        );
        assert.equal(cache.get("k2"), blob);
      },
    );
    await t.step("evictions are deleted from LMDB", async () => {
      await using cache = await open_(join(dir, "n"), new Uint8Array(32), {
        maxEntries: 3,
      });
      assert.equal(cache.stats().entries, 3);
      assert.equal(cache.get("b"), undefined);
    });
  });
});

/** A minimal in-process event source like the message bus. */
function emitter(): InvalidationSource & {
  publish(topic: string, payload: unknown): void;
  readonly listeners: number;
} {
  type Handler = (payload: unknown, info: InvalidationInfo) => void;
  const subs = new Set<[string, Handler]>();
  return {
    subscribe(pattern, handler) {
      assert.ok(pattern.endsWith(".*"));
      const sub: [string, Handler] = [pattern.slice(0, -1), handler];
      subs.add(sub);
      return () => void subs.delete(sub);
    },
    publish(topic, payload) {
      for (const [p, h] of subs) if (topic.startsWith(p)) h(payload, { topic });
    },
    get listeners() {
      return subs.size;
    },
  };
}

Deno.test("invalidation by prefix and by change events", async (t) => {
  await withDir(async (dir) => {
    const key = new Uint8Array(32).fill(5);
    const bus = emitter();
    {
      await using cache = await open_(dir, key);
      const users = cache.namespace("profile");
      const config = cache.namespace("config");
      await t.step(
        "invalidate(prefix) deletes only matching keys",
        async () => {
          await users.setMany([["u:1", 1], ["u:10", 10], ["u:2", 2], [
            "v:1",
            3,
          ]]);
          assert.equal(await users.invalidate("u:1"), 2);
          assert.equal(users.get("u:1"), undefined);
          assert.equal(users.get("u:10"), undefined);
          assert.equal(users.get("u:2"), 2);
          assert.equal(await users.invalidate(""), 2);
          assert.equal(cache.stats().entries, 0);
        },
      );
      const off = cache.subscribeInvalidation(bus, {
        namespaces: { users: "profile" },
      });
      await t.step(
        "an event's keys are unreadable as soon as it is published",
        async () => {
          await users.setMany([["1", { name: "Ada" }], ["12", {
            name: "Bob",
          }]]);
          bus.publish("data.changed.users", { keys: ["1"] });
          assert.equal(users.get("1"), undefined);
          assert.deepEqual(users.get("12"), { name: "Bob" });
        },
      );
      await t.step("prefixes and payload-less events", async () => {
        await config.setMany([["ui.theme", "dark"], ["ui.lang", "en"], [
          "llm",
          "x",
        ]]);
        bus.publish("data.changed.config", { prefixes: ["ui."] });
        assert.equal(config.get("ui.theme"), undefined);
        assert.equal(config.get("llm"), "x");
        bus.publish("data.changed.config", null);
        assert.equal(config.get("llm"), undefined);
      });
      await t.step(
        "a getOrSet in flight when the change arrives is not stored",
        async () => {
          let release!: () => void;
          const gate = new Promise<void>((r) => (release = r));
          const p = users.getOrSet("5", async () => {
            await gate;
            return "old";
          });
          bus.publish("data.changed.users", { keys: ["5"] });
          release();
          assert.equal(await p, "old");
          assert.equal(users.get("5"), undefined);
        },
      );
      await t.step("unsubscribing stops invalidation", async () => {
        off();
        off();
        assert.equal(bus.listeners, 0);
        await users.set("9", "kept");
        bus.publish("data.changed.users", { keys: ["9"] });
        assert.equal(users.get("9"), "kept");
      });
      cache.subscribeInvalidation(bus);
      assert.equal(bus.listeners, 1);
    }
    await t.step(
      "close() unsubscribes, and deletions were committed",
      async () => {
        assert.equal(bus.listeners, 0);
        await using cache = await open_(dir, key);
        const users = cache.namespace("profile");
        assert.equal(users.get("1"), undefined);
        assert.deepEqual(users.get("12"), { name: "Bob" });
        assert.equal(cache.namespace("config").get("ui.lang"), undefined);
      },
    );
  });
});

Deno.test("stats() counts hits, misses, entries and bytes", async () => {
  await withDir(async (dir) => {
    await using cache = await open_(dir, new Uint8Array(32).fill(6));
    const s0 = cache.stats();
    assert.deepEqual(s0, {
      hits: 0,
      misses: 0,
      evictions: 0,
      expirations: 0,
      corruptEntries: 0,
      entries: 0,
      bytes: 0,
    });
    await cache.set("a", "x".repeat(100));
    cache.get("a");
    cache.get("a");
    cache.get("missing");
    cache.has("a");
    const s = cache.stats();
    assert.equal(s.hits, 3);
    assert.equal(s.misses, 1);
    assert.equal(s.entries, 1);
    // "default:a" (9) + header (9) + msgpack str8 (2 + 100)
    assert.equal(s.bytes, 9 + 9 + 102);
    await cache.set("a", "y");
    assert.equal(cache.stats().bytes, 9 + 9 + 2);
    await cache.delete("a");
    assert.equal(cache.stats().bytes, 0);
    assert.ok(Object.isFrozen(s));
  });
});

Deno.test("bad input gives INVALID_INPUT and changes nothing", async (t) => {
  await withDir(async (dir) => {
    await using cache = await open_(dir, new Uint8Array(32).fill(7));
    await cache.set("k", "original");
    const prefix = "default:".length;
    await t.step("bad keys", async () => {
      for (const k of ["", "a\0b", "\ud800", 5 as unknown as string]) {
        throwsWith(() => cache.get(k), "INVALID_INPUT");
        throwsWith(() => cache.has(k), "INVALID_INPUT");
        await rejectsWith(() => cache.set(k, 1), "INVALID_INPUT");
        await rejectsWith(() => cache.delete(k), "INVALID_INPUT");
        await rejectsWith(() => cache.getOrSet(k, () => 1), "INVALID_INPUT");
      }
    });
    await t.step(
      "keys over LMDB's limit; the limit itself is accepted",
      async () => {
        const atLimit = "a".repeat(1978 - prefix);
        await cache.set(atLimit, "fits");
        assert.equal(cache.get(atLimit), "fits");
        const over = "a".repeat(1979 - prefix);
        throwsWith(() => cache.get(over), "INVALID_INPUT");
        await rejectsWith(() => cache.set(over, 1), "INVALID_INPUT");
        // Multi-byte characters count as their UTF-8 bytes.
        const wide = "é".repeat(Math.ceil((1979 - prefix) / 2));
        await rejectsWith(() => cache.set(wide, 1), "INVALID_INPUT");
      },
    );
    await t.step("values that cannot be serialised", async () => {
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic.self = cyclic;
      class Thing {
        x = 1;
      }
      const bad: unknown[] = [
        undefined,
        () => 1,
        Symbol("s"),
        10n,
        cyclic,
        [1, [2, cyclic]],
        new Map([["a", 1]]),
        new Set([1]),
        new Thing(),
        { [Symbol("k")]: 1 },
        "lone \udc00 surrogate",
        new Date(NaN),
        { nested: { fn: () => 1 } },
      ];
      for (const value of bad) {
        await rejectsWith(() => cache.set("k", value), "INVALID_INPUT");
      }
      assert.equal(cache.get("k"), "original");
    });
    await t.step("setMany with one bad pair writes nothing", async () => {
      await rejectsWith(
        () => cache.setMany([["m1", 1], ["m2", () => 2], ["k", "changed"]]),
        "INVALID_INPUT",
      );
      await rejectsWith(
        () => cache.setMany([["m1", 1], ["", 2]]),
        "INVALID_INPUT",
      );
      assert.equal(cache.has("m1"), false);
      assert.equal(cache.get("k"), "original");
    });
    await t.step("bad compute, prefix and session arguments", async () => {
      await rejectsWith(
        () => cache.getOrSet("g", 5 as unknown as () => number),
        "INVALID_INPUT",
      );
      await rejectsWith(() => cache.invalidate("a\0"), "INVALID_INPUT");
      for (const id of ["", "a/b", "x\0"]) {
        throwsWith(() => cache.session(id), "INVALID_INPUT");
      }
      throwsWith(
        () => cache.subscribeInvalidation({} as InvalidationSource),
        "INVALID_INPUT",
      );
      for (const topicPrefix of ["", "data.changed", "."]) {
        throwsWith(
          () => cache.subscribeInvalidation(emitter(), { topicPrefix }),
          "INVALID_INPUT",
        );
      }
    });
    assert.equal(cache.stats().entries, 2);
  });
});

Deno.test("session() keeps per-conversation state", async () => {
  await withDir(async (dir) => {
    const c = clock();
    await using cache = await open_(dir, new Uint8Array(32).fill(8), {
      now: c.now,
    });
    const s1 = cache.session("conv-1", { ttlMs: 1_000 });
    const s2 = cache.session("conv-2");
    await s1.set("topic", "gardening");
    await s1.set("turns", [{ role: "user", text: "hi" }]);
    await s2.set("topic", "chess");
    assert.equal(s1.conversationId, "conv-1");
    assert.equal(s1.get("topic"), "gardening");
    assert.deepEqual(s1.entries(), {
      topic: "gardening",
      turns: [{ role: "user", text: "hi" }],
    });
    assert.deepEqual(s2.entries(), { topic: "chess" });
    assert.equal(await s1.delete("turns"), true);
    assert.deepEqual(Object.keys(s1.entries()), ["topic"]);
    c.advance(1_000);
    assert.deepEqual(s1.entries(), {});
    assert.equal(s2.get("topic"), "chess");
    assert.equal(await s2.clear(), 1);
    assert.deepEqual(s2.entries(), {});
    throwsWith(() => s2.get(""), "INVALID_INPUT");
  });
});

async function countInDir(dir: string, marker: string): Promise<number> {
  const needle = new TextEncoder().encode(marker);
  let count = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const data = await Deno.readFile(join(dir, entry.name));
    outer: for (let i = 0; i + needle.length <= data.length; i++) {
      for (let j = 0; j < needle.length; j++) {
        if (data[i + j] !== needle[j]) continue outer;
      }
      count++;
    }
  }
  return count;
}

Deno.test("a marker set through the API appears 0 times in the LMDB files", async () => {
  await withDir(async (dir) => {
    const marker = "MARKER-7f3a9c-plaintext";
    const cacheDir = join(dir, "cache");
    {
      await using cache = await open_(
        cacheDir,
        await importDataKey(generateDataKey()),
      );
      await cache.set(`key-${marker}`, { note: marker });
      await cache.namespace("profile").set("x", marker.repeat(50));
      await cache.session("c1").set("topic", marker);
      await cache.setMany(
        Array.from({ length: 200 }, (_, i) => [`k${i}`, `${marker}-${i}`]),
      );
    }
    const files = [...Deno.readDirSync(cacheDir)].map((e) => e.name).sort();
    assert.deepEqual(files, [
      "cache.mdb",
      "cache.mdb-lock",
      "clean-close.json",
      "key-check.json",
      "open.lock",
    ]);
    assert.equal(await countInDir(cacheDir, marker), 0);
    // Control: the same writes without encryption do show the marker.
    const plainDir = join(dir, "plain");
    await Deno.mkdir(plainDir);
    const plain = open({ path: join(plainDir, "p.mdb") });
    await plain.put(`key-${marker}`, { note: marker });
    await plain.close();
    assert.ok(await countInDir(plainDir, marker) > 0);
  });
});

Deno.test("a cache written with another key opens empty, without a crash", async () => {
  await withDir(async (dir) => {
    const a = await importDataKey(generateDataKey());
    const b = await importDataKey(generateDataKey());
    {
      await using cache = await open_(dir, a, { defaultTtlMs: Infinity });
      await cache.setMany(
        Array.from({ length: 500 }, (_, i) => [`k${i}`, { i }]),
      );
    }
    {
      await using cache = await open_(dir, b);
      assert.equal(cache.stats().entries, 0);
      assert.equal(cache.get("k1"), undefined);
      await cache.set("k1", "written with b");
      assert.equal(cache.get("k1"), "written with b");
    }
    await using cache = await open_(dir, b);
    assert.equal(cache.get("k1"), "written with b");
    assert.equal(cache.has("k2"), false);
  });
});

Deno.test("entries that fail to decode are misses, deleted and counted", async (t) => {
  await withDir(async (dir) => {
    const keyBytes = new Uint8Array(32).fill(9);
    const future = new Uint8Array(9);
    future[0] = 1;
    new DataView(future.buffer).setFloat64(1, Date.now() + 1e9, true);
    const garbage: [string, Uint8Array][] = [
      ["default:bad-msgpack", new Uint8Array([...future, 0xc1, 0xc1])],
      ["default:bad-version", new Uint8Array([7, ...future.subarray(1), 1])],
      ["default:too-short", new Uint8Array([1, 2])],
      ["default:nan", new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 1])],
    ];
    const writeGarbage = async () => {
      const root = open<unknown, string>({
        path: join(dir, "cache.mdb"),
        encryptionKey: lmdbKeyString(keyBytes),
      });
      for (const [k, v] of garbage) await root.put(k, asBinary(v));
      await root.close();
    };
    {
      await using cache = await open_(dir, keyBytes);
      await cache.set("good", "fine");
    }
    await t.step("found by a read", async () => {
      await using cache = await open_(dir, keyBytes);
      // Opened before the garbage is written: the open scan cannot see it.
      await writeGarbage();
      for (const [k] of garbage) {
        assert.equal(cache.get(k.slice("default:".length)), undefined);
      }
      assert.equal(cache.stats().corruptEntries, garbage.length);
      assert.equal(cache.get("good"), "fine");
    });
    await t.step(
      "a file changed behind a closed cache is emptied at open",
      async () => {
        await writeGarbage();
        {
          // The file no longer matches its clean-close record: LMDB never
          // reads it, not even the good entry.
          await using cache = await open_(dir, keyBytes);
          assert.equal(cache.stats().entries, 0);
          assert.equal(cache.get("good"), undefined);
          assert.equal(cache.get("bad-msgpack"), undefined);
          await cache.set("good", "again");
        }
        await using cache = await open_(dir, keyBytes);
        assert.equal(cache.get("good"), "again", "a clean close keeps entries");
      },
    );
  });
});

Deno.test("a foreign or overwritten LMDB file is replaced by an empty cache", async () => {
  await withDir(async (dir) => {
    const key = new Uint8Array(32).fill(10);
    {
      await using cache = await open_(dir, key);
      await cache.set("a", 1);
    }
    await Deno.writeFile(
      join(dir, "cache.mdb"),
      new Uint8Array(8192).fill(0x5a),
    );
    await using cache = await open_(dir, key);
    assert.equal(cache.get("a"), undefined);
    await cache.set("a", 2);
    assert.equal(cache.get("a"), 2);
  });
});

Deno.test("close() is idempotent and later use gives STORE_CLOSED", async () => {
  await withDir(async (dir) => {
    const cache = await open_(dir, new Uint8Array(32), { sweepIntervalMs: 5 });
    const ns = cache.namespace("n");
    const session = cache.session("c");
    const pending = cache.set("a", 1);
    assert.equal(cache.closed, false);
    await cache.close();
    await pending;
    await cache.close();
    await cache[Symbol.asyncDispose]();
    assert.equal(cache.closed, true);
    throwsWith(() => cache.get("a"), "STORE_CLOSED");
    throwsWith(() => ns.has("a"), "STORE_CLOSED");
    throwsWith(() => session.entries(), "STORE_CLOSED");
    throwsWith(() => cache.stats(), "STORE_CLOSED");
    throwsWith(() => cache.namespace("x"), "STORE_CLOSED");
    await rejectsWith(() => cache.set("a", 1), "STORE_CLOSED");
    await rejectsWith(() => ns.delete("a"), "STORE_CLOSED");
    await rejectsWith(() => cache.invalidate(), "STORE_CLOSED");
    await rejectsWith(() => cache.getOrSet("a", () => 1), "STORE_CLOSED");
    await rejectsWith(() => cache.sweep(), "STORE_CLOSED");
    await using again = await open_(dir, new Uint8Array(32));
    assert.equal(again.get("a"), 1, "the pending write was committed");
  });
});
