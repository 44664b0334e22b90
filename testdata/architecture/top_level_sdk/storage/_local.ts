// Fixture: a dynamic SDK import at the top level (top-level await) is eager.
const sdk = await import("lmdb");
export const OPEN = sdk.open;
