// Fixture: a second file importing the same SDK is forbidden.
/** Opens the driver again. */
export async function openOther(): Promise<unknown> {
  return (await import("npm:libsql@0.5.29")).default;
}
