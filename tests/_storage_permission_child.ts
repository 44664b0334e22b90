// Child process of storage_security_test.ts: opens storage with the
// permissions it was given and prints the error code and message.
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { openStorage } from "../storage/mod.ts";

const key = await importDataKey(generateDataKey());
try {
  const db = await openStorage(Deno.args[0]!, { key });
  await db.close();
  Deno.stdout.writeSync(new TextEncoder().encode("OPENED\t\n"));
} catch (err) {
  const e = err as { code?: string; message?: string };
  Deno.stdout.writeSync(
    new TextEncoder().encode(
      `${e.code ?? "UNKNOWN"}\t${e.message ?? String(err)}\n`,
    ),
  );
}
