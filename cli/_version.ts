// The version printed by --version and doctor (kept equal to deno.json's).
export const VERSION = "0.1.0";
