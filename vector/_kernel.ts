// Internal: the WebAssembly kernel of the embedded index (Hamming distances
// of sign-bit codes with i64.popcnt). Source (WAT), compiled with wabt's
// wat2wasm 1.0.32; the bytes below are that output, base64. The source is
// vector/_kernel.wat.

const WASM_BASE64 =
  "AGFzbQEAAAABLAVgBn9/f39/fwBgBX9/f39/AGAFf39/f38Bf2AEf39/fwBgB39/f39/f38AAwcGAAECAwEEBQMBAAEHUAcGbWVtb3J5AgAHaGFtbWluZwAACmhhbW1pbmc1MTIAAQZzZWxlY3QAAgZwcmVmaXgAAwpoYW1taW5nMTI4AAQNaGFtbWluZ0dhdGhlcgAFCpUGBoMBAwF/AX4EfyADIAJBA3RqIQkgACEIAkADQCAGIAFPDQFCACEHIAMhCgNAIAcgCCkDACAKKQMAhXt8IQcgCEEIaiEIIApBCGohCiAKIAlJDQALIAQgBkEBdGogB6c7AQAgBSAHp0ECdGohCyALIAsoAgBBAWo2AgAgBkEBaiEGDAALCwvWAQIEfwh+IAIpAwAhCSACKQMIIQogAikDECELIAIpAxghDCACKQMgIQ0gAikDKCEOIAIpAzAhDyACKQM4IRAgACEGAkADQCAFIAFPDQEgBikDACAJhXsgBikDCCAKhXt8IAYpAxAgC4V7IAYpAxggDIV7fHwgBikDICANhXsgBikDKCAOhXt8IAYpAzAgD4V7IAYpAzggEIV7fHx8pyEHIAMgBUEBdGogBzsBACAEIAdBAnRqIQggCCAIKAIAQQFqNgIAIAZBwABqIQYgBUEBaiEFDAALCwtvAQN/AkADQCAFIAFPDQEgACAFQQF0ai8BACEHIAcgAkkEQCAEIAZBAnRqIAU2AgAgBkEBaiEGBSAHIAJGIANBAEpxBEAgBCAGQQJ0aiAFNgIAIAZBAWohBiADQQFrIQMLCyAFQQFqIQUMAAsLIAYLQwECfyACQQN0IQUCQANAIAQgAU8NASADIAApAwA3AwAgAyAAKQMINwMIIAAgBWohACADQRBqIQMgBEEBaiEEDAALCwtrAgN/An4gAikDACEIIAIpAwghCQJAA0AgBSABTw0BIAApAwAgCIV7IAApAwggCYV7fKchBiADIAVBAXRqIAY7AQAgBCAGQQJ0aiEHIAcgBygCAEEBajYCACAAQRBqIQAgBUEBaiEFDAALCwuVAQMEfwF+AX8gBCADQQN0aiEKAkADQCAHIAJPDQEgACABIAdBAnRqKAIAIANBA3RsaiEIQgAhCyAEIQkDQCALIAgpAwAgCSkDAIV7fCELIAhBCGohCCAJQQhqIQkgCSAKSQ0ACyAFIAdBAXRqIAunOwEAIAYgC6dBAnRqIQwgDCAMKAIAQQFqNgIAIAdBAWohBwwACwsL";

/** The kernel's exports. */
export interface HammingKernel {
  /** The module's memory (codes, query code and distances live in it). */
  readonly memory: WebAssembly.Memory;
  /**
   * out[i] = popcount(codes[i] xor q) (u16), codes of `words` 64-bit words,
   * and hist[out[i]] += 1 (u32). Pointers are byte offsets into `memory`
   * (8-byte aligned; out 2-byte, hist 4-byte).
   */
  hamming(
    codes: number,
    n: number,
    words: number,
    q: number,
    out: number,
    hist: number,
  ): void;
  /** The same, unrolled for 8 words (512 bits). */
  hamming512(
    codes: number,
    n: number,
    q: number,
    out: number,
    hist: number,
  ): void;
  /**
   * Writes to dest (u32) each i with out[i] < t and the first atT with
   * out[i] === t; returns how many.
   */
  select(out: number, n: number, t: number, atT: number, dest: number): number;
  /** Copies the first 16 bytes of each code (stride words × 8) to dst. */
  prefix(codes: number, n: number, words: number, dst: number): void;
  /** Hamming distances of 128-bit prefixes (stride 16), with histogram. */
  hamming128(
    pre: number,
    n: number,
    q: number,
    out: number,
    hist: number,
  ): void;
  /** out[j] = distance of codes[idx[j]] to q, with histogram. */
  hammingGather(
    codes: number,
    idx: number,
    m: number,
    words: number,
    q: number,
    out: number,
    hist: number,
  ): void;
}

let module: WebAssembly.Module | undefined;

/** Instantiates a new kernel (each with its own memory). Synchronous. */
export function createKernel(): HammingKernel {
  if (module === undefined) {
    const bin = atob(WASM_BASE64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    module = new WebAssembly.Module(bytes);
  }
  const instance = new WebAssembly.Instance(module, {});
  return instance.exports as unknown as HammingKernel;
}
