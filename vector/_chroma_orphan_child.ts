// Internal, for tests: starts a local Chroma, prints its pid, then waits to
// be killed. Usage: deno run -A _chroma_orphan_child.ts <path>
import { startLocalChroma } from "./chroma_server.ts";

const chroma = await startLocalChroma({ path: Deno.args[0]! });
await Deno.stdout.write(new TextEncoder().encode(`pid ${chroma.pid}\n`));
await new Promise(() => {});
