// Sealing and unlocking, ours next to their baselines in the same run.
//   deno task bench   (or: deno bench --allow-all bench/crypto_bench.ts)
import { createCipheriv, randomBytes } from "node:crypto";
import { argon2id } from "hash-wasm";
import { importSealingKey } from "../crypto/seal.ts";
import { createKeyFile, unlockKeyFile } from "../crypto/key_file.ts";

const N = 100_000;
const raw = crypto.getRandomValues(new Uint8Array(32));
const values = Array.from(
  { length: N },
  () => crypto.getRandomValues(new Uint8Array(256)),
);
const aads = values.map((_, i) =>
  new TextEncoder().encode(`messages|content|${i}`)
);
const items = values.map((plaintext, i) => ({ plaintext, aad: aads[i]! }));
// A budget large enough for every iteration of the benchmark.
const sealer = await importSealingKey(raw);
const webKey = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, [
  "encrypt",
]);

Deno.bench({
  name: "node:crypto aes-256-gcm sync loop, 100k x 256 B",
  group: "seal 100k x 256 B",
  baseline: true,
  n: 5,
  warmup: 1,
  fn: () => {
    for (let i = 0; i < N; i++) {
      const c = createCipheriv("aes-256-gcm", raw, randomBytes(12));
      c.setAAD(aads[i]!);
      c.update(values[i]!);
      c.final();
      c.getAuthTag();
    }
  },
});

Deno.bench({
  name: "ours: Sealer.sealBatch, 100k x 256 B",
  group: "seal 100k x 256 B",
  n: 5,
  warmup: 1,
  fn: async () => {
    await sealer.sealBatch(items);
  },
});

Deno.bench({
  name: "WebCrypto AES-GCM awaited one by one, 100k x 256 B",
  group: "seal 100k x 256 B",
  n: 2,
  warmup: 1,
  fn: async () => {
    for (let i = 0; i < N; i++) {
      await crypto.subtle.encrypt(
        {
          name: "AES-GCM",
          iv: crypto.getRandomValues(new Uint8Array(12)),
          additionalData: aads[i]!,
        },
        webKey,
        values[i]!,
      );
    }
  },
});

const dir = await Deno.makeTempDir();
const keyPath = `${dir}/key.json`;
await createKeyFile(keyPath, "a passphrase for the benchmark");
globalThis.addEventListener(
  "unload",
  () => Deno.removeSync(dir, { recursive: true }),
);
const salt = crypto.getRandomValues(new Uint8Array(16));

Deno.bench({
  name: "hash-wasm argon2id m=64 MiB t=3 p=1 alone",
  group: "unlock with the default KDF",
  baseline: true,
  n: 5,
  warmup: 1,
  fn: async () => {
    await argon2id({
      password: "a passphrase for the benchmark",
      salt,
      memorySize: 65536,
      iterations: 3,
      parallelism: 1,
      hashLength: 32,
      outputType: "binary",
    });
  },
});

Deno.bench({
  name: "ours: unlockKeyFile (Argon2id 64 MiB t=3 + unwrap + verify)",
  group: "unlock with the default KDF",
  n: 5,
  warmup: 1,
  fn: async () => {
    await unlockKeyFile(keyPath, "a passphrase for the benchmark");
  },
});
