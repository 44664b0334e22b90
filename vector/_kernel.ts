// Internal: the WebAssembly kernel of the embedded index (Hamming distances
// of sign-bit codes with i64.popcnt). Source (WAT), compiled with wabt's
// wat2wasm 1.0.32; the bytes below are that output, base64. The source is
// vector/_kernel.wat.

const WASM_BASE64 =
  "AGFzbQEAAAABGwNgBn9/f39/fwBgBX9/f39/AGAFf39/f38BfwMEAwABAgUDAQABByoEBm1lbW9yeQIAB2hhbW1pbmcAAApoYW1taW5nNTEyAAEGc2VsZWN0AAIKzgMDgwEDAX8BfgR/IAMgAkEDdGohCSAAIQgCQANAIAYgAU8NAUIAIQcgAyEKA0AgByAIKQMAIAopAwCFe3whByAIQQhqIQggCkEIaiEKIAogCUkNAAsgBCAGQQF0aiAHpzsBACAFIAenQQJ0aiELIAsgCygCAEEBajYCACAGQQFqIQYMAAsLC9YBAgR/CH4gAikDACEJIAIpAwghCiACKQMQIQsgAikDGCEMIAIpAyAhDSACKQMoIQ4gAikDMCEPIAIpAzghECAAIQYCQANAIAUgAU8NASAGKQMAIAmFeyAGKQMIIAqFe3wgBikDECALhXsgBikDGCAMhXt8fCAGKQMgIA2FeyAGKQMoIA6Fe3wgBikDMCAPhXsgBikDOCAQhXt8fHynIQcgAyAFQQF0aiAHOwEAIAQgB0ECdGohCCAIIAgoAgBBAWo2AgAgBkHAAGohBiAFQQFqIQUMAAsLC28BA38CQANAIAUgAU8NASAAIAVBAXRqLwEAIQcgByACSQRAIAQgBkECdGogBTYCACAGQQFqIQYFIAcgAkYgA0EASnEEQCAEIAZBAnRqIAU2AgAgBkEBaiEGIANBAWshAwsLIAVBAWohBQwACwsgBgs=";

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
