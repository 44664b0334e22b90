// The README's first example, run from a project OUTSIDE this repository
// that imports the library by absolute path (no import map of ours).
import assert from "node:assert/strict";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const README = `${ROOT}README.md`;

function firstExample(text: string): string {
  const m = text.match(/```ts\n([\s\S]*?)```/);
  if (m === null) throw new Error("README.md has no ts example");
  return m[1]!;
}

// Library files that still import an npm package by its import-map name
// (which a project outside this repository does not have). Until they use
// full `npm:` specifiers this test cannot pass, so it is ignored and says why.
const BARE = [
  "storage/_local.ts",
  "storage/_remote.ts",
  "repositories/user_service.ts",
  "cache/_lmdb_cache.ts",
  "crypto/kdf.ts",
].filter((f) =>
  /from "(libsql|@libsql\/client|hash-wasm|lmdb)"/.test(
    Deno.readTextFileSync(`${ROOT}${f}`),
  )
);
if (BARE.length > 0) {
  // deno-lint-ignore no-console
  console.warn(
    `library_outside_test.ts: ignored until these import npm packages by full npm: specifiers: ${
      BARE.join(", ")
    }`,
  );
}

Deno.test({
  name: "the README's first example runs from a folder outside the repository",
  ignore: BARE.length > 0,
  fn: async () => {
    const example = firstExample(await Deno.readTextFile(README));
    assert.match(example, /from "@aico\/data"/);
    const url = pathToFileURL(`${ROOT}mod.ts`).href;
    const dir = await Deno.makeTempDir({ prefix: "aico-outside-" });
    try {
      const script = `${dir}/example.ts`;
      await Deno.writeTextFile(
        script,
        example.replaceAll(`from "@aico/data"`, `from "${url}"`),
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-lock",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-ffi",
          "--allow-sys",
          script,
        ],
        cwd: dir,
        stdin: "null",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, err);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
