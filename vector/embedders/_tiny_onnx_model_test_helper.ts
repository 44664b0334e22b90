// Test-only: writes a tiny sentence-embedding model folder that
// @huggingface/transformers can load offline: a WordLevel tokenizer.json, a
// BERT-like config.json and onnx/model.onnx, a one-node ONNX graph (Gather of
// token rows from an embedding table -> last_hidden_state), serialized here
// with a small protobuf writer (ONNX is protobuf: ModelProto / GraphProto).

/** Protobuf wire encoding, just what ONNX models need. */
class Pb {
  #parts: number[] = [];
  #varint(v: number | bigint): void {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.#parts.push(b);
    } while (x > 0n);
  }
  int(field: number, v: number | bigint): this {
    this.#varint((field << 3) | 0);
    this.#varint(v);
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.#varint((field << 3) | 2);
    this.#varint(data.length);
    for (const b of data) this.#parts.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytes(field, m.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

const FLOAT = 1;
const INT64 = 7;

function valueInfo(
  name: string,
  elemType: number,
  dims: (number | string)[],
): Pb {
  const shape = new Pb();
  for (const d of dims) {
    shape.msg(
      1,
      typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d),
    );
  }
  const tensorType = new Pb().int(1, elemType).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

/** The ONNX bytes of: last_hidden_state = Gather(table, input_ids). */
export function tinyOnnxModel(
  table: Float32Array,
  vocabSize: number,
  hidden: number,
): Uint8Array {
  const initializer = new Pb()
    .int(1, vocabSize)
    .int(1, hidden)
    .int(2, FLOAT)
    .str(8, "embeddings")
    .bytes(9, new Uint8Array(table.buffer, table.byteOffset, table.byteLength));
  const node = new Pb()
    .str(1, "embeddings")
    .str(1, "input_ids")
    .str(2, "last_hidden_state")
    .str(3, "lookup")
    .str(4, "Gather")
    .msg(5, new Pb().str(1, "axis").int(3, 0).int(20, 2)); // AttributeProto INT
  const graph = new Pb()
    .msg(1, node)
    .str(2, "tiny")
    .msg(5, initializer)
    .msg(11, valueInfo("input_ids", INT64, ["batch", "sequence"]))
    .msg(11, valueInfo("attention_mask", INT64, ["batch", "sequence"]))
    .msg(
      12,
      valueInfo("last_hidden_state", FLOAT, ["batch", "sequence", hidden]),
    );
  return new Pb()
    .int(1, 8) // ir_version
    .str(2, "aico-test")
    .msg(7, graph)
    .msg(8, new Pb().str(1, "").int(2, 13)) // opset 13
    .done();
}

/** Words of the tiny vocabulary and their 4-d vectors (by topic). */
export const TINY_VOCAB: Readonly<Record<string, readonly number[]>> = {
  "[UNK]": [0, 0, 0, 0.1],
  "[PAD]": [0, 0, 0, 0],
  cat: [1, 0.1, 0, 0],
  kitten: [0.9, 0.2, 0, 0],
  pet: [0.8, 0, 0.1, 0],
  tax: [0, 0, 1, 0.1],
  receipts: [0, 0.1, 0.9, 0],
  the: [0.1, 0.1, 0.1, 0.1],
};

/** Writes the model folder; returns its path. */
export async function writeTinyModelFolder(dir: string): Promise<string> {
  const words = Object.keys(TINY_VOCAB);
  const hidden = 4;
  const table = new Float32Array(words.length * hidden);
  words.forEach((w, i) => table.set(TINY_VOCAB[w]!, i * hidden));
  const folder = `${dir}/tiny-embedder`;
  await Deno.mkdir(`${folder}/onnx`, { recursive: true });
  await Deno.writeFile(
    `${folder}/onnx/model.onnx`,
    tinyOnnxModel(table, words.length, hidden),
  );
  await Deno.writeTextFile(
    `${folder}/config.json`,
    JSON.stringify({
      model_type: "bert",
      architectures: ["BertModel"],
      hidden_size: hidden,
    }),
  );
  const vocab = Object.fromEntries(words.map((w, i) => [w, i]));
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  await Deno.writeTextFile(
    `${folder}/tokenizer.json`,
    JSON.stringify({
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [special("[UNK]", 0), special("[PAD]", 1)],
      normalizer: { type: "Lowercase" },
      pre_tokenizer: { type: "Whitespace" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab, unk_token: "[UNK]" },
    }),
  );
  await Deno.writeTextFile(
    `${folder}/tokenizer_config.json`,
    JSON.stringify({
      tokenizer_class: "PreTrainedTokenizerFast",
      model_max_length: 512,
      pad_token: "[PAD]",
      unk_token: "[UNK]",
    }),
  );
  return folder;
}
