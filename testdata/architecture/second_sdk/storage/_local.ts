// Fixture: the first adapter of libsql.
/** Opens the driver. */
export async function openLocal(): Promise<unknown> {
  return (await import("libsql")).default;
}
