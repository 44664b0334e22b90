// Internal: the WebAssembly kernel of the embedded index (Hamming distances
// of sign-bit codes with i64.popcnt). Source (WAT), compiled with wabt's
// wat2wasm 1.0.32; the bytes below are that output, base64. The source is
// vector/_kernel.wat.

const WASM_BASE64 =
  "AGFzbQEAAAABEAJgBX9/f39/AGAEf39/fwADAwIAAQUDAQABByEDBm1lbW9yeQIAB2hhbW1pbmcAAApoYW1taW5nNTEyAAEKqgICawMCfwF+A38gAyACQQN0aiEJIAAhCAJAA0AgBSABTw0BQgAhByADIQoDQCAHIAgpAwAgCikDAIV7fCEHIAhBCGohCCAKQQhqIQogCiAJSQ0ACyAEIAVBAXRqIAenOwEAIAVBAWohBQwACwsLuwECAn8IfiACKQMAIQYgAikDCCEHIAIpAxAhCCACKQMYIQkgAikDICEKIAIpAyghCyACKQMwIQwgAikDOCENIAAhBQJAA0AgBCABTw0BIAMgBEEBdGogBSkDACAGhXsgBSkDCCAHhXt8IAUpAxAgCIV7IAUpAxggCYV7fHwgBSkDICAKhXsgBSkDKCALhXt8IAUpAzAgDIV7IAUpAzggDYV7fHx8pzsBACAFQcAAaiEFIARBAWohBAwACwsL";

/** The kernel's exports. */
export interface HammingKernel {
  /** The module's memory (codes, query code and distances live in it). */
  readonly memory: WebAssembly.Memory;
  /**
   * out[i] = popcount(codes[i] xor q), codes of `words` 64-bit words.
   * Pointers are byte offsets into `memory` (8-byte aligned; out 2-byte).
   */
  hamming(
    codes: number,
    n: number,
    words: number,
    q: number,
    out: number,
  ): void;
  /** The same, unrolled for 8 words (512 bits). */
  hamming512(codes: number, n: number, q: number, out: number): void;
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
