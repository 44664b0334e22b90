// The layout of DESIGN.md, checked on the real tree: the folder dependency
// order, no import of another folder's private "_" file (except
// _internal/), and each native SDK imported by exactly one adapter file,
// lazily. The checker itself (tests/_architecture.ts) is tested on small
// fixture trees under testdata/architecture/.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  ARCHITECTURE_RULES,
  checkArchitecture,
  readImports,
} from "./_architecture.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURES = fileURLToPath(
  new URL("../testdata/architecture/", import.meta.url),
);

Deno.test("the library follows the layout: folder order, private files, one lazy adapter per SDK", async () => {
  assert.deepEqual(await checkArchitecture(ROOT), []);
});

Deno.test("the checker passes a clean fixture tree (comments, strings and regexes are not imports)", async () => {
  assert.deepEqual(await checkArchitecture(`${FIXTURES}clean`), []);
});

Deno.test("the checker refuses an upward import", async () => {
  const problems = await checkArchitecture(`${FIXTURES}upward`);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(
    problems[0]!,
    /^storage\/mod\.ts imports schema\/mod\.ts: "storage" \(rank 3\) may import only from folders of a lower rank, "schema" has rank 4$/,
  );
});

Deno.test("the checker refuses an import of another folder's private file", async () => {
  const problems = await checkArchitecture(`${FIXTURES}private`);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(
    problems[0]!,
    /^schema\/mod\.ts imports storage\/_engine\.ts: a private "_" file of another folder/,
  );
});

Deno.test("the checker refuses a second file importing an SDK", async () => {
  const problems = await checkArchitecture(`${FIXTURES}second_sdk`);
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(
    problems[0]!,
    /^SDK "libsql" is imported by 2 files \(cache\/_other\.ts, storage\/_local\.ts\): only one adapter file may import it$/,
  );
});

Deno.test("the checker refuses an eager SDK import (static in a statically loaded file, or top-level import())", async (t) => {
  await t.step("static import in a file imported statically", async () => {
    const problems = await checkArchitecture(`${FIXTURES}eager_sdk`);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(
      problems[0]!,
      /^storage\/_local\.ts: SDK "libsql" is imported eagerly \(the file is imported statically by storage\/mod\.ts\)/,
    );
  });
  await t.step("import() at the top level", async () => {
    const problems = await checkArchitecture(`${FIXTURES}top_level_sdk`);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(
      problems[0]!,
      /^storage\/_local\.ts: SDK "lmdb" is imported at the top level/,
    );
  });
});

Deno.test("readImports() tells static, type-only and dynamic imports apart", () => {
  const refs = readImports(`
    import a from "./a.ts";
    import type { B } from "./b.ts";
    export { c } from "./c.ts";
    export type { D } from "./d.ts";
    import "./e.ts";
    /* import "./nope.ts"; */
    const s = "import('./nope2.ts')";
    async function f() { return await import("./f.ts"); }
    const g = await import("./g.ts");
  `);
  assert.deepEqual(
    refs.map((r) => [r.specifier, r.typeOnly, r.dynamic, r.inFunction]),
    [
      ["./a.ts", false, false, false],
      ["./b.ts", true, false, false],
      ["./c.ts", false, false, false],
      ["./d.ts", true, false, false],
      ["./e.ts", false, false, false],
      ["./f.ts", false, true, true],
      ["./g.ts", false, true, false],
    ],
  );
});

Deno.test("the rules are data: an unknown folder is reported until it gets a rank", async () => {
  const rules = {
    ...ARCHITECTURE_RULES,
    ranks: { ...ARCHITECTURE_RULES.ranks, schema: undefined as never },
  };
  const problems = await checkArchitecture(`${FIXTURES}clean`, rules);
  assert.ok(
    problems.some((p) => p.includes('"schema" has no rank')),
    problems.join("\n"),
  );
});
