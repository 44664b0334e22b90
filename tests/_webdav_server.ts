// Test helper: a real WebDAV server (`rclone serve webdav`) on 127.0.0.1,
// serving a temporary folder. Not part of the package.

/** A running server; `stop()` kills it and removes its folder. */
export interface WebDavServer {
  readonly url: string;
  readonly dir: string;
  /** The server's process id (for a synchronous kill at unload). */
  readonly pid: number;
  stop(): Promise<void>;
}

/** Whether rclone is installed (CI installs it through `.ci/run`). */
export function hasRclone(): boolean {
  try {
    return new Deno.Command("rclone", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts `rclone serve webdav DIR --addr 127.0.0.1:PORT` and waits until it answers. */
export async function startWebDavServer(
  auth?: { user: string; pass: string },
): Promise<WebDavServer> {
  const dir = await Deno.makeTempDir({ prefix: "aico_webdav_" });
  const port = freePort();
  const child = new Deno.Command("rclone", {
    args: [
      "serve",
      "webdav",
      dir,
      "--addr",
      `127.0.0.1:${port}`,
      "--config",
      "/dev/null",
      ...(auth === undefined ? [] : ["--user", auth.user, "--pass", auth.pass]),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url, {
        method: "PROPFIND",
        headers: { Depth: "0" },
      });
      await res.body?.cancel();
      return { url, dir, pid: child.pid, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stop();
  throw new Error("rclone serve webdav did not start");
}
