import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { withDir } from "../tests/_helpers.ts";
import { runConformance } from "./_conformance.ts";
import { type LocalChroma, startLocalChroma } from "./chroma_server.ts";
import { openChromaVectorStore } from "./chroma_store.ts";
import type { VectorStore } from "./types.ts";
import { scanFor } from "./_scan_test_helpers.ts";

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
