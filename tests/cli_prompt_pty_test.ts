// The passphrase prompt on a real pseudo-terminal (util-linux `script`): no
// echo, Backspace removes a whole multi-byte character, Ctrl-C exits 130.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { cli, MAIN, README_FLAGS, withTestKdf } from "./_cli.ts";

const hasScript = Deno.build.os === "linux" &&
  new Deno.Command("sh", {
    args: ["-c", "command -v script >/dev/null"],
    stdout: "null",
    stderr: "null",
  }).outputSync().success;
if (!hasScript) {
  // deno-lint-ignore no-console
  console.warn(
    "cli_prompt_pty_test.ts: ignored, missing script (apt-get install util-linux)",
  );
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

interface Session {
  /** Waits until the output holds `text`. */
  waitFor(text: string): Promise<void>;
  type(keys: string): Promise<void>;
  /** The exit code of the command and all it printed. */
  end(): Promise<{ code: number; output: string }>;
}

function session(args: string[], redirect = ""): Session {
  const command = [
    Deno.execPath(),
    "run",
    ...README_FLAGS,
    MAIN,
    ...withTestKdf(args),
  ]
    .map(quote).join(" ") + redirect;
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      NO_COLOR: "1",
      TERM: "xterm",
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
    }
  })();
  const writer = child.stdin.getWriter();
  return {
    async waitFor(text) {
      for (let i = 0; i < 400; i++) {
        if (output.includes(text)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no "${text}" in: ${output}`);
    },
    async type(keys) {
      await writer.write(new TextEncoder().encode(keys));
    },
    async end() {
      await writer.close().catch(() => {});
      const status = await child.status;
      await reading;
      await child.stderr.cancel().catch(() => {});
      return { code: status.code, output };
    },
  };
}

Deno.test({
  name:
    "the passphrase prompt does not echo, erases a whole é on Backspace and exits 130 on Ctrl-C",
  ignore: !hasScript,
  fn: async () => {
    await withDir(async (tmp) => {
      const dir = `${tmp}/data`;
      const s = session(["init", "--dir", dir]);
      await s.waitFor("new passphrase: ");
      // Backspace right after "é" (2 bytes in UTF-8) must remove it whole.
      await s.type("tea é\x7fgarden 42 ok\r");
      await s.waitFor("again: ");
      await s.type("tea garden 42 ok\r");
      const init = await s.end();
      assert.equal(init.code, 0, init.output);
      assert.match(init.output, /created /);
      assert.ok(!init.output.includes("garden"), "the passphrase was echoed");
      // The stored passphrase is what was meant: "é" is gone whole.
      const ok = await cli(["status", "--dir", dir], {
        env: { AICO_DATA_PASSPHRASE: "tea garden 42 ok" },
      });
      assert.equal(ok.code, 0, ok.err);

      // `status > out.txt`: the prompt goes to the terminal, not the file.
      const out = `${tmp}/out.txt`;
      const r = session(["status", "--dir", dir], ` > ${quote(out)}`);
      await r.waitFor("passphrase: ");
      await r.type("tea garden 42 ok\r");
      assert.equal((await r.end()).code, 0);
      const file = await Deno.readTextFile(out);
      assert.match(file, /integrity\s+ok/);
      assert.ok(!file.includes("passphrase"), "the prompt went into stdout");

      const c = session(["status", "--dir", dir]);
      await c.waitFor("passphrase: ");
      await c.type("half typed\x03");
      const interrupted = await c.end();
      assert.equal(interrupted.code, 130, interrupted.output);
      assert.ok(!interrupted.output.includes("half typed"));
    });
  },
});
