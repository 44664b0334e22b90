/**
 * A local Chroma server in a child process: {@linkcode startLocalChroma}.
 *
 * @module
 */

import { AicoDataError } from "../errors.ts";

/** Options of {@linkcode startLocalChroma}. */
export interface LocalChromaOptions {
  /** The data directory (created when missing). */
  readonly path: string;
  /** The port on 127.0.0.1. @default {a free port} */
  readonly port?: number;
  /** How long to wait for the first heartbeat, in milliseconds. @default {60000} */
  readonly startTimeoutMs?: number;
  /** Stops waiting for the start (and stops the server); rejects with `ABORTED`. */
  readonly signal?: AbortSignal;
}

/** A running local Chroma server. */
export interface LocalChroma extends AsyncDisposable {
  /** The server's URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port. */
  readonly port: number;
  /** The child process id. */
  readonly pid: number;
  /** Whether {@linkcode LocalChroma.close} ran. */
  readonly closed: boolean;
  /** Stops the server and waits for the process to exit; safe to call twice. */
  close(): Promise<void>;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function heartbeat(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/api/v2/heartbeat`, {
      signal: AbortSignal.timeout(2000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

class LocalChromaImpl implements LocalChroma {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #status: Promise<Deno.CommandStatus>;
  #closing: Promise<void> | undefined;

  constructor(
    url: string,
    port: number,
    child: Deno.ChildProcess,
    stdin: WritableStreamDefaultWriter<Uint8Array>,
  ) {
    this.url = url;
    this.port = port;
    this.pid = child.pid;
    this.#child = child;
    this.#stdin = stdin;
    this.#status = child.status;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#stdin.close();
      } catch {
        // Already closed: the child is gone or going.
      }
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }, 5000);
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Exited already.
      }
      await this.#status;
      clearTimeout(timer);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a Chroma server (the pinned `chromadb-js-bindings-linux-x64-gnu`
 * 1.0.1, Chroma 1.0.0) in a child Deno process bound to 127.0.0.1, and
 * waits until it answers its heartbeat. The child exits when `close()` is
 * called, and by itself when this process dies (it watches its stdin), so
 * no server is left behind.
 *
 * @remarks Chroma stores vectors and plaintext metadata unencrypted in
 * `path`; see {@linkcode openChromaVectorStore} for what the Chroma store
 * seals. Linux x64 with glibc only. The child runs this repository's
 * `vector/_chroma_server_child.ts` with `deno run` (its `deno.json` and
 * `node_modules` resolve the binding).
 *
 * Permissions: `--allow-run` (the Deno executable), `--allow-net=127.0.0.1`,
 * `--allow-read` and `--allow-write` on `path`.
 *
 * @param options The data directory, port and timeouts.
 * @returns The running server.
 * @throws {AicoDataError} `INVALID_INPUT` for bad options,
 * `CONNECTION_FAILED` when the server does not start (its last output in
 * the message), `ABORTED`.
 *
 * @example Start, use, stop
 * ```ts ignore
 * import { startLocalChroma } from "./chroma_server.ts";
 *
 * await using chroma = await startLocalChroma({ path: "./chroma-data" });
 * console.log(chroma.url);
 * ```
 */
export async function startLocalChroma(
  options: LocalChromaOptions,
): Promise<LocalChroma> {
  if (typeof options !== "object" || options === null) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot start Chroma: options must be an object",
    );
  }
  const { path, signal } = options;
  if (typeof path !== "string" || path.length === 0) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot start Chroma: path is not a non-empty string",
    );
  }
  const port = options.port ?? freePort();
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot start Chroma: port "${String(port)}" is not from 1 to 65535`,
    );
  }
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  if (signal?.aborted) {
    throw new AicoDataError("ABORTED", "Cannot start Chroma: aborted", {
      cause: signal.reason,
    });
  }
  await Deno.mkdir(path, { recursive: true });
  const script = new URL("./_chroma_server_child.ts", import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      `--allow-read`,
      `--allow-write=${path}`,
      "--allow-ffi",
      "--allow-env",
      "--allow-sys",
      "--allow-net=127.0.0.1",
      script.href,
      path,
      String(port),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  // Keep the tail of the output for an error message; drain the rest.
  let tail = "";
  const drain = async (stream: ReadableStream<Uint8Array>): Promise<void> => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of stream) {
        tail = (tail + dec.decode(chunk, { stream: true })).slice(-2000);
      }
    } catch {
      // The child is gone.
    }
  };
  void drain(child.stdout);
  void drain(child.stderr);
  const server = new LocalChromaImpl(
    `http://127.0.0.1:${port}`,
    port,
    child,
    stdin,
  );
  let exited = false;
  void server.status.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (signal?.aborted) {
        throw new AicoDataError("ABORTED", "Cannot start Chroma: aborted", {
          cause: signal.reason,
        });
      }
      if (exited) {
        throw new AicoDataError(
          "CONNECTION_FAILED",
          `Cannot start Chroma: the server process exited: ${
            // deno-lint-ignore no-control-regex
            tail.replace(/\x1b\[[0-9;]*m/g, "").trim().slice(-500)}`,
        );
      }
      if (await heartbeat(server.url)) return server;
      if (Date.now() > deadline) {
        throw new AicoDataError(
          "CONNECTION_FAILED",
          `Cannot start Chroma: no heartbeat on port ${port} within ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await server.close();
    throw err;
  }
}
