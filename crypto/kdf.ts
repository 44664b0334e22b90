/**
 * Argon2id key derivation from a passphrase (through `npm:hash-wasm`).
 *
 * @module
 */
import { argon2id } from "npm:hash-wasm@4.13.0";
import { AicoDataError } from "../errors.ts";
import { randomBytes, utf8 } from "./_bytes.ts";

/** Argon2id parameters and salt, stored beside what they protect. */
export interface Argon2idParams {
  /** Always `"argon2id"`. */
  readonly algorithm: "argon2id";
  /** Argon2 version: 0x13 (19). */
  readonly version: 19;
  /** Memory in KiB. */
  readonly memoryKiB: number;
  /** Passes over memory (t). */
  readonly iterations: number;
  /** Lanes (p). */
  readonly parallelism: number;
  /** The random salt. */
  readonly salt: Uint8Array;
}

/** Options of {@linkcode resolveKdfParams}. */
export interface KdfOptions {
  /**
   * Memory in KiB.
   *
   * @default {65536} (64 MiB, RFC 9106's second recommendation)
   */
  readonly memoryKiB?: number;
  /**
   * Passes over memory.
   *
   * @default {3}
   */
  readonly iterations?: number;
  /**
   * Lanes.
   *
   * @default {1}
   */
  readonly parallelism?: number;
  /**
   * The salt, 16 to 64 bytes.
   *
   * @default {16 random bytes}
   */
  readonly salt?: Uint8Array;
  /**
   * Allow parameters below OWASP's minimum (19 MiB, t=2), for tests or
   * migration of old data only.
   *
   * @default {false}
   */
  readonly allowWeakParams?: boolean;
}

/** The default Argon2id cost: 64 MiB, t=3, p=1 (RFC 9106, second recommendation). */
export const DEFAULT_KDF_COST: Readonly<
  { memoryKiB: number; iterations: number; parallelism: number }
> = Object.freeze({ memoryKiB: 65536, iterations: 3, parallelism: 1 });

/** The lowest cost accepted without `allowWeakParams`: OWASP's 19 MiB, t=2. */
export const MIN_KDF_COST: Readonly<{ memoryKiB: number; iterations: number }> =
  Object
    .freeze({ memoryKiB: 19456, iterations: 2 });

const MAX_MEMORY_KIB = 4 * 1024 * 1024;
const MAX_PASSPHRASE_BYTES = 4096;

function intIn(name: string, value: unknown, min: number, max: number): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot use KDF parameters: "${name}" must be an integer in [${min}, ${max}], got ${
        String(value)
      }`,
    );
  }
  return value;
}

/**
 * Validates Argon2id parameters: ranges, salt size, and (unless
 * `allowWeakParams`) OWASP's minimum cost.
 *
 * @param params The parameters.
 * @param allowWeakParams Accept a cost below the minimum.
 * @returns The same parameters, frozen.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed values,
 * `WEAK_KDF_PARAMS` for a cost below the minimum.
 *
 * @example Refusing a weak cost
 * ```ts
 * import { checkKdfParams } from "./kdf.ts";
 * import assert from "node:assert/strict";
 *
 * const weak = { algorithm: "argon2id", version: 19, memoryKiB: 1024, iterations: 1, parallelism: 1, salt: new Uint8Array(16) } as const;
 * assert.throws(() => checkKdfParams(weak), { code: "WEAK_KDF_PARAMS" });
 * assert.equal(checkKdfParams(weak, true).memoryKiB, 1024);
 * ```
 */
export function checkKdfParams(
  params: Argon2idParams,
  allowWeakParams = false,
): Argon2idParams {
  if (params?.algorithm !== "argon2id" || params.version !== 19) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot use KDF parameters: only argon2id version 19 is supported",
    );
  }
  const parallelism = intIn("parallelism", params.parallelism, 1, 255);
  const memoryKiB = intIn(
    "memoryKiB",
    params.memoryKiB,
    8 * parallelism,
    MAX_MEMORY_KIB,
  );
  const iterations = intIn("iterations", params.iterations, 1, 1000);
  if (
    !(params.salt instanceof Uint8Array) || params.salt.length < 8 ||
    params.salt.length > 64
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot use KDF parameters: the salt must be 8 to 64 bytes",
    );
  }
  if (
    !allowWeakParams &&
    (memoryKiB < MIN_KDF_COST.memoryKiB || iterations < MIN_KDF_COST.iterations)
  ) {
    throw new AicoDataError(
      "WEAK_KDF_PARAMS",
      `Cannot use KDF parameters: m=${memoryKiB} KiB, t=${iterations} is below the minimum m=${MIN_KDF_COST.memoryKiB} KiB, t=${MIN_KDF_COST.iterations}`,
    );
  }
  return Object.freeze({
    algorithm: "argon2id",
    version: 19,
    memoryKiB,
    iterations,
    parallelism,
    salt: params.salt.slice(),
  });
}

/**
 * Normalises {@linkcode KdfOptions} into parameters with a fresh random salt
 * unless one is given.
 *
 * @param options The options.
 * @returns Validated, frozen parameters.
 * @throws {AicoDataError} as {@linkcode checkKdfParams}.
 *
 * @example Defaults
 * ```ts
 * import { resolveKdfParams } from "./kdf.ts";
 * import assert from "node:assert/strict";
 *
 * const p = resolveKdfParams();
 * assert.deepEqual([p.memoryKiB, p.iterations, p.parallelism, p.salt.length], [65536, 3, 1, 16]);
 * ```
 */
export function resolveKdfParams(options: KdfOptions = {}): Argon2idParams {
  return checkKdfParams({
    algorithm: "argon2id",
    version: 19,
    memoryKiB: options.memoryKiB ?? DEFAULT_KDF_COST.memoryKiB,
    iterations: options.iterations ?? DEFAULT_KDF_COST.iterations,
    parallelism: options.parallelism ?? DEFAULT_KDF_COST.parallelism,
    salt: options.salt ?? randomBytes(16),
  }, options.allowWeakParams ?? false);
}

/**
 * Derives key bytes from a passphrase with Argon2id.
 *
 * @param passphrase A non-empty passphrase (a string is encoded as UTF-8;
 * a lone surrogate is refused), at most 4096 bytes.
 * @param params The parameters (see {@linkcode resolveKdfParams}).
 * @param options `length` of the output (default 32), `allowWeakParams`.
 * @returns The derived bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for an empty or oversized
 * passphrase, `WEAK_KDF_PARAMS` as {@linkcode checkKdfParams}.
 *
 * @example The Argon2 reference vector (m=64 MiB, t=2, p=1)
 * ```ts
 * import { deriveKeyArgon2id } from "./kdf.ts";
 * import assert from "node:assert/strict";
 *
 * const salt = new TextEncoder().encode("somesalt");
 * const out = await deriveKeyArgon2id("password", {
 *   algorithm: "argon2id", version: 19, memoryKiB: 65536, iterations: 2, parallelism: 1, salt,
 * });
 * assert.equal(out.length, 32);
 * ```
 */
export async function deriveKeyArgon2id(
  passphrase: string | Uint8Array,
  params: Argon2idParams,
  options: { readonly length?: number; readonly allowWeakParams?: boolean } =
    {},
): Promise<Uint8Array> {
  const password = utf8(passphrase, "passphrase");
  if (password.length === 0 || password.length > MAX_PASSPHRASE_BYTES) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot derive key: the passphrase must be 1 to ${MAX_PASSPHRASE_BYTES} bytes`,
    );
  }
  const p = checkKdfParams(params, options.allowWeakParams ?? false);
  const length = options.length ?? 32;
  if (!Number.isInteger(length) || length < 16 || length > 64) {
    throw new RangeError(
      `Cannot derive key: length must be in [16, 64], got ${length}`,
    );
  }
  return await argon2id({
    password,
    salt: p.salt,
    memorySize: p.memoryKiB,
    iterations: p.iterations,
    parallelism: p.parallelism,
    hashLength: length,
    outputType: "binary",
  });
}
