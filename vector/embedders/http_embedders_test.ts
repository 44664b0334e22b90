import assert from "node:assert/strict";
import { openOllamaEmbedder } from "./ollama_embedder.ts";
import { openOpenAICompatibleEmbedder } from "./openai_compatible_embedder.ts";
import { rejectsWith } from "../../tests/_helpers.ts";

/** Deterministic 8-d vectors from a text's characters. */
function vec(text: string, dims = 8): number[] {
  const v = new Array<number>(dims).fill(0);
  for (let i = 0; i < text.length; i++) v[i % dims]! += text.charCodeAt(i);
  return v;
}

interface Mode {
  status?: number;
  dims?: number;
  drop?: boolean;
  delayMs?: number;
  nan?: boolean;
}

/**
 * A small server speaking both protocols (Ollama `/api/embed`, OpenAI
 * `/v1/embeddings`), with switchable faults; records every request body.
 */
function startServer() {
  const mode: Mode = {};
  const seen: {
    path: string;
    body: Record<string, unknown>;
    auth: string | null;
  }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const url = new URL(req.url);
      const body = await req.json() as Record<string, unknown>;
      seen.push({
        path: url.pathname,
        body,
        auth: req.headers.get("authorization"),
      });
      if (mode.delayMs) await new Promise((r) => setTimeout(r, mode.delayMs));
      if (mode.status) {
        return Response.json({ error: "model not found" }, {
          status: mode.status,
        });
      }
      const input = body.input as string[];
      let vectors = input.map((t) => vec(t, mode.dims ?? 8));
      if (mode.drop) vectors = vectors.slice(1);
      if (mode.nan) vectors[0]![0] = 12345.678; // sent as 1e999 (Infinity)
      const dump = (v: number[][]) =>
        JSON.stringify(v).replaceAll("12345.678", "1e999");
      if (url.pathname === "/api/embed") {
        return new Response(
          `{"model":${JSON.stringify(body.model)},"embeddings":${
            dump(vectors)
          }}`,
          { headers: { "content-type": "application/json" } },
        );
      }
      if (url.pathname === "/v1/embeddings") {
        if (req.headers.get("authorization") !== "Bearer sk-local") {
          return Response.json({ error: { message: "bad key" } }, {
            status: 401,
          });
        }
        // Answer in reverse order: clients must sort by index.
        const data = vectors.map((embedding, index) => ({
          object: "embedding",
          index,
          embedding,
        })).reverse();
        return new Response(
          `{"object":"list","model":${JSON.stringify(body.model)},"data":${
            JSON.stringify(data).replaceAll("12345.678", "1e999")
          },"usage":{"prompt_tokens":1,"total_tokens":1}}`,
          { headers: { "content-type": "application/json" } },
        );
      }
      return new Response("not found", { status: 404 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { server, url, mode, seen };
}

function norm(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function close(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]! - b[i]!) > 1e-6) return false;
  }
  return a.length === b.length;
}

Deno.test("Ollama embedder speaks /api/embed, batches, normalises, skips blank texts", async () => {
  const s = startServer();
  try {
    await using e = await openOllamaEmbedder({
      url: s.url,
      model: "nomic-embed-text",
      batchSize: 2,
    });
    assert.equal(e.id, "ollama:nomic-embed-text");
    assert.equal(e.dimensions, 8);
    s.seen.length = 0;
    const v = await e.embed(["alpha", " ", "beta", "gamma"]);
    assert.ok(close(v[0]!, norm(vec("alpha"))));
    assert.ok(v[1]!.every((x) => x === 0));
    assert.ok(close(v[3]!, norm(vec("gamma"))));
    assert.deepEqual(s.seen.map((r) => r.body), [
      { model: "nomic-embed-text", input: ["alpha", "beta"] },
      { model: "nomic-embed-text", input: ["gamma"] },
    ]);
    assert.equal(s.seen[0]!.path, "/api/embed");
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("OpenAI-compatible embedder sends the key, orders by index", async () => {
  const s = startServer();
  try {
    await rejectsWith(
      () => openOpenAICompatibleEmbedder({ url: s.url, model: "bge" }),
      "EMBEDDING_FAILED",
    );
    await using e = await openOpenAICompatibleEmbedder({
      url: `${s.url}/v1`,
      model: "bge",
      apiKey: "sk-local",
    });
    assert.equal(e.id, "openai:bge");
    const v = await e.embed(["one", "two", "three"]);
    assert.ok(close(v[0]!, norm(vec("one"))));
    assert.ok(close(v[2]!, norm(vec("three"))));
    const last = s.seen[s.seen.length - 1]!;
    assert.equal(last.path, "/v1/embeddings");
    assert.equal(last.auth, "Bearer sk-local");
    assert.deepEqual(last.body, {
      model: "bge",
      input: ["one", "two", "three"],
      encoding_format: "float",
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("HTTP embedders turn faults into typed errors", async (t) => {
  const s = startServer();
  try {
    await using ollama = await openOllamaEmbedder({
      url: s.url,
      model: "m",
      timeoutMs: 300,
    });
    await using openai = await openOpenAICompatibleEmbedder({
      url: s.url,
      model: "m",
      apiKey: "sk-local",
      dimensions: 8,
      timeoutMs: 300,
    });
    for (const e of [ollama, openai]) {
      await t.step(`${e.id}: error status`, async () => {
        s.mode.status = 500;
        await rejectsWith(() => e.embed(["x"]), "EMBEDDING_FAILED");
        delete s.mode.status;
      });
      await t.step(`${e.id}: wrong dimension`, async () => {
        s.mode.dims = 4;
        await rejectsWith(() => e.embed(["x"]), "EMBEDDING_FAILED");
        delete s.mode.dims;
      });
      await t.step(`${e.id}: missing vector`, async () => {
        s.mode.drop = true;
        await rejectsWith(() => e.embed(["x", "y"]), "EMBEDDING_FAILED");
        delete s.mode.drop;
      });
      await t.step(`${e.id}: non-finite component`, async () => {
        s.mode.nan = true;
        await rejectsWith(() => e.embed(["x"]), "EMBEDDING_FAILED");
        delete s.mode.nan;
      });
      await t.step(`${e.id}: timeout`, async () => {
        s.mode.delayMs = 1000;
        await rejectsWith(() => e.embed(["x"]), "CONNECTION_FAILED");
        delete s.mode.delayMs;
      });
      await t.step(`${e.id}: abort`, async () => {
        s.mode.delayMs = 200;
        const ac = new AbortController();
        const p = e.embed(["x"], { signal: ac.signal });
        ac.abort();
        await rejectsWith(() => p, "ABORTED");
        delete s.mode.delayMs;
      });
      await t.step(`${e.id}: bad input and close`, async () => {
        await rejectsWith(() => e.embed([3] as never), "INVALID_INPUT");
        assert.equal((await e.embed(["ok"])).length, 1);
      });
    }
    await ollama.close();
    await ollama.close();
    assert.equal(ollama.closed, true);
    await rejectsWith(() => ollama.embed(["x"]), "STORE_CLOSED");
    // Let the delayed handlers finish before the server stops.
    await new Promise((r) => setTimeout(r, 1100));
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("HTTP embedders refuse bad options and unreachable servers", async () => {
  await rejectsWith(
    () => openOllamaEmbedder({ url: "ftp://x", model: "m" }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () => openOllamaEmbedder({ url: "http://127.0.0.1:1", model: "" }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () =>
      openOpenAICompatibleEmbedder({
        url: "http://127.0.0.1:1",
        model: "m",
        apiKey: "",
      }),
    "INVALID_INPUT",
  );
  const s = startServer();
  const url = s.url;
  await s.server.shutdown();
  await rejectsWith(
    () => openOllamaEmbedder({ url, model: "m" }),
    "CONNECTION_FAILED",
  );
  const s2 = startServer();
  try {
    await rejectsWith(
      () => openOllamaEmbedder({ url: s2.url, model: "m", dimensions: 16 }),
      "EMBEDDING_FAILED",
    );
  } finally {
    await s2.server.shutdown();
  }
});
