import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { runConformance } from "./_conformance.ts";
import { type LocalChroma, startLocalChroma } from "./chroma_server.ts";
import { openChromaVectorStore } from "./chroma_store.ts";
import type { VectorStore } from "./types.ts";
import { scanFor } from "../tests/_scan.ts";

/** Why the Chroma tests cannot run here, or undefined when they can. */
function unavailable(): string | undefined {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return `the pinned Chroma binding is for linux x86_64, not ${Deno.build.os} ${Deno.build.arch}`;
  }
  try {
    Deno.statSync(
      new URL(
        "../node_modules/chromadb-js-bindings-linux-x64-gnu/",
        import.meta.url,
      ),
    );
  } catch {
    return "chromadb-js-bindings-linux-x64-gnu is not installed (run deno install)";
  }
  return undefined;
}

const reason = unavailable();
// deno-lint-ignore no-console
if (reason !== undefined) console.warn(`Chroma tests ignored: ${reason}`);

Deno.test({
  name: "the Chroma store passes the conformance suite against a real server",
  ignore: reason !== undefined,
  async fn(t) {
    await withDir(async (dir) => {
      const key = await importDataKey(generateDataKey());
      const sealer = await key.sealer("vector-doc");
      let chroma: LocalChroma = await startLocalChroma({
        path: `${dir}/chroma`,
      });
      const port = chroma.port;
      const open = new Set<VectorStore>();
      try {
        await runConformance(t, {
          async open(o) {
            const store = await openChromaVectorStore({
              url: chroma.url,
              collection: o.collection,
              embedderId: o.embedderId,
              dimensions: o.dimensions,
              ...(o.metric === undefined ? {} : { metric: o.metric }),
              sealer,
              filterable: ["role", "n", "flag", "tag"],
            });
            open.add(store);
            return store;
          },
          async restart() {
            for (const s of open) await s.close();
            open.clear();
            await chroma.close();
            chroma = await startLocalChroma({ path: `${dir}/chroma`, port });
          },
        });
      } finally {
        await chroma.close();
      }
    }, "aico_chroma_");
  },
});

Deno.test({
  name:
    "no document or non-filterable metadata reaches the Chroma data directory in plaintext",
  ignore: reason !== undefined,
  async fn() {
    await withDir(async (dir) => {
      const key = await importDataKey(generateDataKey());
      const marker = `MARKER-${crypto.randomUUID()}`;
      const visible = `VISIBLE-${crypto.randomUUID()}`;
      const path = `${dir}/chroma`;
      const chroma = await startLocalChroma({ path });
      try {
        await using store = await openChromaVectorStore({
          url: chroma.url,
          collection: "marker",
          embedderId: "m",
          dimensions: 4,
          sealer: await key.sealer("vector-doc"),
          filterable: ["role"],
        });
        await store.upsert(Array.from({ length: 50 }, (_, i) => ({
          id: `m${i}`,
          vector: [i, 1, 2, 3],
          metadata: { role: visible, note: `${marker} note ${i}` },
          document: `${marker} document ${i}`,
        })));
        const hits = await store.query({
          vector: [3, 1, 2, 3],
          k: 1,
          includeDocuments: true,
        });
        assert.equal(hits[0]?.document, `${marker} document 3`);
        assert.equal(hits[0]?.metadata.note, `${marker} note 3`);
      } finally {
        await chroma.close();
      }
      const found = await scanFor(path, [marker, visible]);
      assert.ok(found.files > 0);
      // The control: a filterable field is plaintext in Chroma, and the scan sees it.
      assert.ok(
        found.hits[visible]! > 0,
        "the scan finds the plaintext control",
      );
      assert.equal(found.hits[marker], 0, "no sealed text in plaintext");
    }, "aico_chroma_marker_");
  },
});

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

Deno.test({
  name:
    "startLocalChroma() binds 127.0.0.1, close() stops the server, and it dies with its parent",
  ignore: reason !== undefined,
  async fn() {
    await withDir(async (dir) => {
      const chroma = await startLocalChroma({ path: `${dir}/a` });
      assert.match(chroma.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${chroma.url}/api/v2/heartbeat`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      await chroma.close();
      await chroma.close();
      assert.equal(chroma.closed, true);
      assert.ok(
        await gone(chroma.pid, 5000),
        "server process gone after close",
      );

      // A parent killed with SIGKILL takes its server with it.
      const parent = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./_chroma_orphan_child.ts", import.meta.url).href,
          `${dir}/b`,
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      let pid = 0;
      const dec = new TextDecoder();
      for await (const chunk of parent.stdout) {
        const m = dec.decode(chunk).match(/pid (\d+)/);
        if (m) {
          pid = Number(m[1]);
          break;
        }
      }
      assert.ok(pid > 0 && alive(pid));
      parent.kill("SIGKILL");
      await parent.status;
      assert.ok(
        await gone(pid, 10_000),
        "server process gone after its parent died",
      );
    }, "aico_chroma_server_");
  },
});

Deno.test({
  name:
    "startLocalChroma() refuses bad options and a busy port fails with CONNECTION_FAILED",
  ignore: reason !== undefined,
  async fn() {
    await rejectsWith(startLocalChroma({ path: "" }), "INVALID_INPUT");
    await rejectsWith(
      startLocalChroma({ path: "/tmp/x", port: 70000 }),
      "INVALID_INPUT",
    );
    await withDir(async (dir) => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const port = (listener.addr as Deno.NetAddr).port;
        await rejectsWith(
          startLocalChroma({ path: dir, port, startTimeoutMs: 5_000 }),
          "CONNECTION_FAILED",
        );
      } finally {
        listener.close();
      }
    }, "aico_chroma_server_");
  },
});

Deno.test({
  name:
    "openChromaVectorStore() refuses filters on non-filterable fields and an unreachable server",
  ignore: reason !== undefined,
  async fn() {
    const key = await importDataKey(generateDataKey());
    const sealer = await key.sealer("vector-doc");
    await rejectsWith(
      openChromaVectorStore({
        url: "http://127.0.0.1:9",
        collection: "abc",
        embedderId: "m",
        dimensions: 2,
        sealer,
      }),
      "CONNECTION_FAILED",
    );
    await rejectsWith(
      openChromaVectorStore({
        url: "ftp://x",
        collection: "abc",
        embedderId: "m",
        dimensions: 2,
        sealer,
      }),
      "INVALID_INPUT",
    );
    await rejectsWith(
      openChromaVectorStore({
        url: "http://127.0.0.1:9",
        collection: "a",
        embedderId: "m",
        dimensions: 2,
        sealer,
      }),
      "INVALID_INPUT",
    );
    await withDir(async (dir) => {
      await using chroma = await startLocalChroma({ path: dir });
      await using store = await openChromaVectorStore({
        url: chroma.url,
        collection: "abc",
        embedderId: "m",
        dimensions: 2,
        sealer,
        filterable: ["role"],
      });
      await store.upsert([{
        id: "a",
        vector: [1, 0],
        metadata: { role: "user", secret: "s" },
      }]);
      await rejectsWith(
        store.query({ vector: [1, 0], k: 1, filter: { secret: "s" } }),
        "INVALID_INPUT",
      );
      assert.equal(await store.count({ role: "user" }), 1);
    }, "aico_chroma_server_");
  },
});
