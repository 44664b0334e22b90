// The README's `deno install` line really installs an `aico-data` command
// that runs from any folder.
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { withDir } from "./_helpers.ts";
import { PASSPHRASE, README_FLAGS, withTestKdf } from "./_cli.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("deno install -g -c deno.json -n aico-data installs a command that works outside the repository", async () => {
  await withDir(async (tmp) => {
    const install = await new Deno.Command(Deno.execPath(), {
      args: [
        "install",
        "-g",
        "--root",
        `${tmp}/root`,
        ...README_FLAGS,
        "-c",
        "./deno.json",
        "-n",
        "aico-data",
        "./cli/main.ts",
      ],
      cwd: ROOT,
      stdin: "null",
    }).output();
    assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
    const bin = `${tmp}/root/bin/aico-data`;
    const run = async (args: string[]) => {
      const out = await new Deno.Command(bin, {
        args,
        cwd: tmp,
        env: {
          PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`,
          AICO_DATA_PASSPHRASE: PASSPHRASE,
        },
        stdin: "null",
      }).output();
      return {
        code: out.code,
        out: new TextDecoder().decode(out.stdout),
        err: new TextDecoder().decode(out.stderr),
      };
    };
    const v = await run(["--version"]);
    assert.equal(v.code, 0, v.err);
    assert.match(v.out, /^aico-data \d/);
    const init = await run(withTestKdf(["init", "--dir", `${tmp}/data`]));
    assert.equal(init.code, 0, init.err);
    const imp = await run([
      "import",
      "--dir",
      `${tmp}/data`,
      `${ROOT}testdata/exports/claude_export.zip`,
    ]);
    assert.equal(imp.code, 0, imp.err);
    const list = await run(["list", "--dir", `${tmp}/data`, "--json"]);
    assert.equal(JSON.parse(list.out).length, 4);
  });
});
