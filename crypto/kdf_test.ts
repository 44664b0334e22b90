import assert from "node:assert/strict";
import { toHex } from "./_bytes.ts";
import {
  checkKdfParams,
  deriveKeyArgon2id,
  type KdfOptions,
  resolveKdfParams,
} from "./kdf.ts";

const salt = new TextEncoder().encode("somesalt");

Deno.test("deriveKeyArgon2id reproduces the Argon2 reference vector for argon2id", async () => {
  // argon2 reference implementation, src/test.c: argon2id v=19 m=2^16 t=2 p=1.
  const out = await deriveKeyArgon2id("password", {
    algorithm: "argon2id",
    version: 19,
    memoryKiB: 65536,
    iterations: 2,
    parallelism: 1,
    salt,
  });
  assert.equal(
    toHex(out),
    "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7",
  );
});

Deno.test("resolveKdfParams() normalises options", async (t) => {
  const cases: [string, KdfOptions, [number, number, number] | string][] = [
    ["defaults are RFC 9106's second recommendation", {}, [65536, 3, 1]],
    ["OWASP's minimum is accepted", { memoryKiB: 19456, iterations: 2 }, [
      19456,
      2,
      1,
    ]],
    ["more lanes", { parallelism: 4 }, [65536, 3, 4]],
    [
      "memory below the minimum",
      { memoryKiB: 19455, iterations: 2 },
      "WEAK_KDF_PARAMS",
    ],
    ["one pass", { iterations: 1 }, "WEAK_KDF_PARAMS"],
    ["weak allowed on request", {
      memoryKiB: 64,
      iterations: 1,
      allowWeakParams: true,
    }, [
      64,
      1,
      1,
    ]],
    ["fractional memory", { memoryKiB: 65536.5 }, "INVALID_INPUT"],
    ["zero lanes", { parallelism: 0 }, "INVALID_INPUT"],
    ["short salt", { salt: new Uint8Array(4) }, "INVALID_INPUT"],
    ["long salt", { salt: new Uint8Array(65) }, "INVALID_INPUT"],
    ["memory below 8 x lanes", {
      memoryKiB: 16,
      parallelism: 4,
      allowWeakParams: true,
    }, "INVALID_INPUT"],
  ];
  for (const [name, options, expected] of cases) {
    await t.step(name, () => {
      if (typeof expected === "string") {
        assert.throws(() => resolveKdfParams(options), { code: expected });
      } else {
        const p = resolveKdfParams(options);
        assert.deepEqual([p.memoryKiB, p.iterations, p.parallelism], expected);
        assert.ok(Object.isFrozen(p));
      }
    });
  }
  await t.step("each call draws a new 16-byte salt", () => {
    const a = resolveKdfParams();
    const b = resolveKdfParams();
    assert.equal(a.salt.length, 16);
    assert.notDeepEqual(a.salt, b.salt);
  });
});

Deno.test("deriveKeyArgon2id refuses bad passphrases and weak parameters", async () => {
  const weak = checkKdfParams({
    algorithm: "argon2id",
    version: 19,
    memoryKiB: 1024,
    iterations: 1,
    parallelism: 1,
    salt,
  }, true);
  await assert.rejects(deriveKeyArgon2id("pw", weak), {
    code: "WEAK_KDF_PARAMS",
  });
  assert.equal(
    (await deriveKeyArgon2id("pw", weak, { allowWeakParams: true })).length,
    32,
  );
  await assert.rejects(deriveKeyArgon2id("", weak, { allowWeakParams: true }), {
    code: "INVALID_INPUT",
  });
  await assert.rejects(
    deriveKeyArgon2id("x".repeat(4097), weak, { allowWeakParams: true }),
    {
      code: "INVALID_INPUT",
    },
  );
  await assert.rejects(
    deriveKeyArgon2id("lone \uD800", weak, { allowWeakParams: true }),
    {
      code: "INVALID_INPUT",
    },
  );
  const a = await deriveKeyArgon2id("pw", weak, { allowWeakParams: true });
  const b = await deriveKeyArgon2id(new TextEncoder().encode("pw"), weak, {
    allowWeakParams: true,
  });
  assert.deepEqual(a, b);
});
