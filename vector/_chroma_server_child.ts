// Internal: the child process of startLocalChroma(). Usage:
//   deno run <flags> _chroma_server_child.ts <path> <port>
// The Chroma binding's cli() blocks its thread, so it runs in a Worker; the
// main thread reads stdin and exits the whole process when stdin closes
// (the parent died or called close()), so that no server outlives its
// parent.
import { createRequire } from "node:module";

interface Binding {
  cli(args: string[]): unknown;
}

declare const WorkerGlobalScope: unknown;
const inWorker = typeof WorkerGlobalScope !== "undefined";

if (inWorker) {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent<{ path: string; port: string }>) => void;
  };
  scope.onmessage = (e) => {
    const require = createRequire(import.meta.url);
    const binding = require("chromadb-js-bindings-linux-x64-gnu") as Binding;
    binding.cli([
      "chroma",
      "run",
      "--path",
      e.data.path,
      "--host",
      "127.0.0.1",
      "--port",
      e.data.port,
    ]);
  };
} else {
  const [path, port] = Deno.args;
  const worker = new Worker(import.meta.url, { type: "module" });
  worker.onerror = (e) => {
    e.preventDefault();
    Deno.exit(3);
  };
  worker.postMessage({ path, port });
  const buf = new Uint8Array(64);
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) Deno.exit(0);
  }
}
