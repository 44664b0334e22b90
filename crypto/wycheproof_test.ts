// Project Wycheproof vectors (testdata/wycheproof, Apache-2.0) through our
// AES-GCM core and public sealer, and through HKDF-SHA256.
import assert from "node:assert/strict";
import { buf, fromHex } from "./_bytes.ts";
import { importAesGcmKey, openSealed, sealWithNonce } from "./_aead.ts";
import { hkdfSha256 } from "./hkdf.ts";
import { importSealingKey } from "./seal.ts";
import { isAicoDataError } from "../errors.ts";

interface AeadVector {
  tcId: number;
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: "valid" | "invalid" | "acceptable";
}
interface AeadGroup {
  ivSize: number;
  keySize: number;
  tagSize: number;
  tests: AeadVector[];
}
const aes = JSON.parse(
  await Deno.readTextFile(
    new URL("../testdata/wycheproof/aes_gcm_test.json", import.meta.url),
  ),
) as { numberOfTests: number; testGroups: AeadGroup[] };

function layout(iv: Uint8Array, ct: Uint8Array, tag: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + iv.length + ct.length + tag.length);
  out[0] = 1;
  out.set(iv, 1);
  out.set(ct, 1 + iv.length);
  out.set(tag, 1 + iv.length + ct.length);
  return out;
}

async function opens(
  fn: () => Uint8Array | Promise<Uint8Array>,
): Promise<Uint8Array | "AUTH_FAILED"> {
  try {
    return await fn();
  } catch (err) {
    if (isAicoDataError(err, "AUTH_FAILED")) return "AUTH_FAILED";
    throw err;
  }
}

Deno.test("Wycheproof AES-GCM: every 96-bit-IV vector with a 128- or 256-bit key gives the expected result", async () => {
  let checked = 0;
  let viaPublicSealer = 0;
  for (
    const g of aes.testGroups.filter((g) =>
      g.ivSize === 96 && g.keySize !== 192
    )
  ) {
    for (const v of g.tests) {
      const [key, iv, aad, msg, ct, tag] = [
        v.key,
        v.iv,
        v.aad,
        v.msg,
        v.ct,
        v.tag,
      ].map(fromHex) as [
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array,
      ];
      const ck = importAesGcmKey(key);
      const sealedVector = layout(iv, ct, tag);
      const opened = await opens(() => openSealed(ck, sealedVector, aad));
      if (v.result === "valid") {
        assert.deepEqual(opened, msg, `tcId ${v.tcId} must open`);
        assert.deepEqual(
          sealWithNonce(ck, iv, msg, aad),
          sealedVector,
          `tcId ${v.tcId} seal`,
        );
      } else {
        assert.equal(
          v.result,
          "invalid",
          `tcId ${v.tcId}: unexpected result kind`,
        );
        assert.equal(opened, "AUTH_FAILED", `tcId ${v.tcId} must not open`);
      }
      if (g.keySize === 256) {
        const sealer = await importSealingKey(key);
        const pub = await opens(() => sealer.open(sealedVector, aad));
        assert.deepEqual(
          pub,
          v.result === "valid" ? msg : "AUTH_FAILED",
          `tcId ${v.tcId} public`,
        );
        viaPublicSealer++;
      }
      checked++;
    }
  }
  assert.ok(checked >= 60, `only ${checked} vectors checked`);
  assert.ok(viaPublicSealer >= 20);
});

Deno.test("Wycheproof AES-GCM: 192-bit keys are refused by our API (WebCrypto cross-check of the vectors)", async () => {
  // Deno's node:crypto has no aes-192-gcm and every key of this package is
  // 256-bit: the AEAD core refuses 24-byte keys. The vectors still run through
  // WebCrypto here so that the data stays checked.
  let refused = 0;
  for (
    const g of aes.testGroups.filter((g) =>
      g.ivSize === 96 && g.keySize === 192
    )
  ) {
    for (const v of g.tests) {
      assert.throws(() => importAesGcmKey(fromHex(v.key)), {
        code: "INVALID_INPUT",
      });
      const wk = await crypto.subtle.importKey(
        "raw",
        buf(fromHex(v.key)),
        "AES-GCM",
        false,
        [
          "decrypt",
        ],
      );
      const ok = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: buf(fromHex(v.iv)),
          additionalData: buf(fromHex(v.aad)),
        },
        wk,
        new Uint8Array([...fromHex(v.ct), ...fromHex(v.tag)]),
      ).then((pt) => new Uint8Array(pt), () => "AUTH_FAILED" as const);
      assert.deepEqual(
        ok,
        v.result === "valid" ? fromHex(v.msg) : "AUTH_FAILED",
        `tcId ${v.tcId}`,
      );
      refused++;
    }
  }
  assert.ok(refused > 20, `only ${refused} vectors`);
});

Deno.test("Wycheproof AES-GCM: every other IV size is refused by our API", async () => {
  let refused = 0;
  for (const g of aes.testGroups.filter((g) => g.ivSize !== 96)) {
    for (const v of g.tests) {
      if (g.keySize === 192) {
        assert.throws(() => importAesGcmKey(fromHex(v.key)), {
          code: "INVALID_INPUT",
        });
        refused++;
        continue;
      }
      const ck = importAesGcmKey(fromHex(v.key));
      assert.throws(
        () => sealWithNonce(ck, fromHex(v.iv), fromHex(v.msg), fromHex(v.aad)),
        { code: "INVALID_INPUT" },
      );
      if (g.keySize === 256) {
        // The sealed layout has room for a 96-bit nonce only: the same bytes
        // read as our layout never open.
        const sealer = await importSealingKey(fromHex(v.key));
        const bytes = layout(fromHex(v.iv), fromHex(v.ct), fromHex(v.tag));
        assert.equal(
          await opens(() => sealer.open(bytes, fromHex(v.aad))),
          "AUTH_FAILED",
        );
      }
      refused++;
    }
  }
  assert.ok(refused > 100, `only ${refused} vectors refused`);
});

interface HkdfVector {
  tcId: number;
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
  result: "valid" | "invalid";
}
const hkdf = JSON.parse(
  await Deno.readTextFile(
    new URL("../testdata/wycheproof/hkdf_sha256_test.json", import.meta.url),
  ),
) as { testGroups: { tests: HkdfVector[] }[] };

Deno.test("Wycheproof HKDF-SHA256: vectors pass where WebCrypto accepts the parameters", async () => {
  let passed = 0;
  const notAccepted: number[] = [];
  for (const v of hkdf.testGroups.flatMap((g) => g.tests)) {
    let okm: Uint8Array;
    try {
      okm = await hkdfSha256(
        fromHex(v.ikm),
        fromHex(v.salt),
        fromHex(v.info),
        v.size,
      );
    } catch (err) {
      if (v.result === "valid") notAccepted.push(v.tcId);
      else {assert.ok(
          err instanceof RangeError || err instanceof DOMException,
          String(err),
        );}
      continue;
    }
    assert.equal(v.result, "valid", `tcId ${v.tcId} must be refused`);
    assert.deepEqual(okm, fromHex(v.okm), `tcId ${v.tcId}`);
    passed++;
  }
  if (notAccepted.length > 0) {
    // deno-lint-ignore no-console
    console.log(
      `HKDF vectors WebCrypto does not accept: ${notAccepted.join(", ")}`,
    );
  }
  assert.ok(passed >= 80, `only ${passed} HKDF vectors passed`);
});
