// Internal, for tests: scans every file under a folder for byte patterns.
import { countOccurrences } from "./_helpers.ts";

/** How many files were scanned and how often each pattern occurs. */
export interface ScanResult {
  readonly files: number;
  readonly hits: Record<string, number>;
}

/** Scans every regular file under `root` (recursively) for each pattern. */
export async function scanFor(
  root: string,
  patterns: readonly (string | Uint8Array)[],
  names?: readonly string[],
): Promise<ScanResult> {
  const enc = new TextEncoder();
  const needles = patterns.map((p) =>
    typeof p === "string" ? enc.encode(p) : p
  );
  const keys = patterns.map((p, i) =>
    names?.[i] ?? (typeof p === "string" ? p : `bytes${i}`)
  );
  const hits: Record<string, number> = Object.fromEntries(
    keys.map((k) => [k, 0]),
  );
  let files = 0;
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        let bytes: Uint8Array;
        try {
          bytes = await Deno.readFile(p);
        } catch (err) {
          // A file the database removed meanwhile (journal) holds nothing now.
          if (err instanceof Deno.errors.NotFound) continue;
          throw err;
        }
        files++;
        needles.forEach((
          n,
          i,
        ) => (hits[keys[i]!]! += countOccurrences(bytes, n)));
      }
    }
  };
  await walk(root);
  return { files, hits };
}
