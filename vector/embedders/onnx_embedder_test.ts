import assert from "node:assert/strict";
import { openOnnxEmbedder } from "./onnx_embedder.ts";
import {
  TINY_VOCAB,
  writeTinyModelFolder,
} from "./_tiny_onnx_model_test_helper.ts";
import { rejectsWith, withDir } from "../../tests/_helpers.ts";

function expected(words: string[]): number[] {
  const sum = [0, 0, 0, 0];
  for (const w of words) {
    TINY_VOCAB[w]!.forEach((x, i) => (sum[i]! += x / words.length));
  }
  const n = Math.hypot(...sum);
  return sum.map((x) => x / n);
}

function near(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]! - b[i]!) > 1e-5) return false;
  }
  return true;
}

Deno.test("openOnnxEmbedder() runs a model folder the test builds, offline, with mean pooling", async () => {
  await withDir(async (dir) => {
    const folder = await writeTinyModelFolder(dir);
    await using e = await openOnnxEmbedder({ modelPath: folder, batchSize: 2 });
    assert.equal(e.id, "onnx:tiny-embedder");
    assert.equal(e.dimensions, 4);
    const v = await e.embed(["The cat", "", "kitten", "tax receipts", "zebra"]);
    assert.ok(near(v[0]!, expected(["the", "cat"])));
    assert.ok(v[1]!.every((x) => x === 0));
    assert.ok(near(v[2]!, expected(["kitten"])));
    assert.ok(near(v[3]!, expected(["tax", "receipts"])));
    assert.ok(near(v[4]!, expected(["[UNK]"])));
    const dot = (a: Float32Array, b: Float32Array) =>
      a.reduce((s, x, i) => s + x * b[i]!, 0);
    assert.ok(dot(v[0]!, v[2]!) > dot(v[0]!, v[3]!));
  });
});

Deno.test("openOnnxEmbedder() with cls pooling takes the first token", async () => {
  await withDir(async (dir) => {
    const folder = await writeTinyModelFolder(dir);
    await using e = await openOnnxEmbedder({
      modelPath: folder,
      pooling: "cls",
      id: "tiny-cls",
    });
    assert.equal(e.id, "tiny-cls");
    const [v] = await e.embed(["tax cat"]);
    assert.ok(near(v!, expected(["tax"])));
  });
});

Deno.test("openOnnxEmbedder() refuses bad options, missing folders and broken models", async () => {
  await rejectsWith(() => openOnnxEmbedder({ modelPath: "" }), "INVALID_INPUT");
  await rejectsWith(
    () => openOnnxEmbedder({ modelPath: "/x", pooling: "max" as never }),
    "INVALID_INPUT",
  );
  await rejectsWith(
    () => openOnnxEmbedder({ modelPath: "/x", dtype: "fp64" as never }),
    "INVALID_INPUT",
  );
  await withDir(async (dir) => {
    await rejectsWith(
      () => openOnnxEmbedder({ modelPath: `${dir}/absent` }),
      "NOT_FOUND",
    );
    const folder = await writeTinyModelFolder(dir);
    await Deno.writeFile(
      `${folder}/onnx/model.onnx`,
      new Uint8Array([1, 2, 3]),
    );
    await rejectsWith(
      () => openOnnxEmbedder({ modelPath: folder }),
      "EMBEDDING_FAILED",
    );
    await Deno.remove(`${folder}/onnx/model.onnx`);
    await rejectsWith(
      () => openOnnxEmbedder({ modelPath: folder }),
      "EMBEDDING_FAILED",
    );
  });
});

Deno.test("ONNX embedder refuses use after close and aborted calls", async () => {
  await withDir(async (dir) => {
    const e = await openOnnxEmbedder({
      modelPath: await writeTinyModelFolder(dir),
    });
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(() => e.embed(["cat"], { signal: ac.signal }), "ABORTED");
    await rejectsWith(() => e.embed([1] as never), "INVALID_INPUT");
    await e.close();
    await e.close();
    assert.equal(e.closed, true);
    await rejectsWith(() => e.embed(["cat"]), "STORE_CLOSED");
  });
});
