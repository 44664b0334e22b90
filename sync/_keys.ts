// Internal: the key material behind SyncKeys, the sealed-object layout and
// the keyed object names. Only sync/ files import it.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from "node:crypto";
import { AicoDataError } from "../errors.ts";
import { deflateRawSync, inflateRawSync } from "node:zlib";

/** Version byte of a sealed sync object. */
export const OBJECT_VERSION = 1;
const NONCE = 12;
const TAG = 16;
/** Bytes a sealed object adds to its plaintext. */
export const OBJECT_OVERHEAD = 1 + NONCE + TAG;

/** The secret half of SyncKeys. */
export interface KeyMaterial {
  readonly seal: KeyObject;
  readonly names: KeyObject;
}

const material = new WeakMap<object, KeyMaterial>();

/** Attaches key material to a public SyncKeys object. */
export function attachMaterial(keys: object, m: KeyMaterial): void {
  material.set(keys, m);
}

/** The key material of a SyncKeys object, or INVALID_INPUT. */
export function materialOf(keys: unknown): KeyMaterial {
  const m = typeof keys === "object" && keys !== null
    ? material.get(keys)
    : undefined;
  if (m === undefined) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot use sync keys: expected keys from deriveSyncKeys()",
    );
  }
  return m;
}

/** Imports 32 raw bytes as a secret key object (the bytes may be zeroed after). */
export function secretKey(raw: Uint8Array): KeyObject {
  return createSecretKey(raw);
}

const encoder = new TextEncoder();

/** `version ‖ nonce ‖ AES-256-GCM(plaintext, aad) ‖ tag`. */
export function sealObject(
  m: KeyMaterial,
  plaintext: Uint8Array,
  aad: string,
): Uint8Array {
  const nonce = randomFillSync(new Uint8Array(NONCE));
  const cipher = createCipheriv("aes-256-gcm", m.seal, nonce, {
    authTagLength: TAG,
  });
  cipher.setAAD(encoder.encode(aad));
  const body = cipher.update(plaintext);
  const last = cipher.final();
  const out = new Uint8Array(OBJECT_OVERHEAD + plaintext.length);
  out[0] = OBJECT_VERSION;
  out.set(nonce, 1);
  out.set(body, 1 + NONCE);
  out.set(last, 1 + NONCE + body.length);
  out.set(cipher.getAuthTag(), out.length - TAG);
  return out;
}

/** Opens a sealed object; every failure is AUTH_FAILED without plaintext. */
export function openObject(
  m: KeyMaterial,
  sealed: Uint8Array,
  aad: string,
  what: string,
): Uint8Array {
  if (
    !(sealed instanceof Uint8Array) || sealed.length < OBJECT_OVERHEAD ||
    sealed[0] !== OBJECT_VERSION
  ) {
    throw new AicoDataError(
      "AUTH_FAILED",
      `Cannot open ${what}: not a sealed sync object`,
    );
  }
  const end = sealed.length - TAG;
  try {
    const decipher = createDecipheriv(
      "aes-256-gcm",
      m.seal,
      sealed.subarray(1, 1 + NONCE),
      { authTagLength: TAG },
    );
    decipher.setAAD(encoder.encode(aad));
    decipher.setAuthTag(sealed.subarray(end));
    const body = decipher.update(sealed.subarray(1 + NONCE, end));
    decipher.final();
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  } catch (cause) {
    throw new AicoDataError(
      "AUTH_FAILED",
      `Cannot open ${what}: authentication failed`,
      { cause },
    );
  }
}

/** An object name: `prefix ‖ hex(HMAC-SHA256(names key, label))`. */
export function keyedName(
  m: KeyMaterial,
  prefix: string,
  label: string,
): string {
  return prefix + createHmac("sha256", m.names).update(label).digest("hex");
}

/** Lower-case hex SHA-256 of bytes or text. */
export function sha256Hex(...parts: (Uint8Array | string)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/**
 * Padmé padding (Nikitin et al., 2019): rounds a length up so that it leaks
 * O(log log n) bits, with at most 12% overhead; never below `min`.
 */
export function padmeLength(length: number, min: number): number {
  const l = Math.max(length, min);
  if (l < 2) return l;
  const e = Math.floor(Math.log2(l));
  const s = Math.floor(Math.log2(e)) + 1;
  const lastBits = e - s;
  const step = 2 ** lastBits;
  return Math.ceil(l / step) * step;
}

/**
 * The plaintext of a sealed body: the deflated JSON with its length in front
 * (4 bytes, big-endian), padded (Padmé, at least `min` bytes once sealed) so
 * that the sealed size leaks little.
 */
export function packBody(json: Uint8Array, min: number): Uint8Array {
  const body = deflateRawSync(json);
  const total = padmeLength(4 + body.length + OBJECT_OVERHEAD, min) -
    OBJECT_OVERHEAD;
  const plain = new Uint8Array(total);
  new DataView(plain.buffer).setUint32(0, body.length);
  plain.set(body, 4);
  return plain;
}

const bodyDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The JSON value of a {@linkcode packBody} plaintext; `CORRUPT_VALUE` naming
 * `what` when it does not decode.
 */
export function unpackBody(plain: Uint8Array, what: string): unknown {
  try {
    const len = new DataView(plain.buffer, plain.byteOffset).getUint32(0);
    if (4 + len > plain.length) throw new RangeError("length out of range");
    return JSON.parse(
      bodyDecoder.decode(inflateRawSync(plain.subarray(4, 4 + len))),
    );
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot open ${what}: the content does not decode`,
      { cause },
    );
  }
}

/**
 * The plaintext of a small sealed record: its JSON, padded with spaces
 * (Padmé, at least `min` bytes) so that its size leaks little.
 */
export function padJson(value: unknown, min: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(value));
  const plain = new Uint8Array(padmeLength(json.length, min));
  plain.fill(0x20);
  plain.set(json);
  return plain;
}

/**
 * The JSON value of a {@linkcode padJson} plaintext; `CORRUPT_VALUE` naming
 * `what` when it does not decode.
 */
export function parsePaddedJson(plain: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(bodyDecoder.decode(plain).trimEnd());
  } catch (cause) {
    throw new AicoDataError(
      "CORRUPT_VALUE",
      `Cannot open ${what}: the content does not decode`,
      { cause },
    );
  }
}
