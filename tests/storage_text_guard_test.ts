// Issue 12, defect 6: invalid UTF-8 read back through INSERT ... RETURNING
// (and UPDATE/DELETE ... RETURNING, WITH ... INSERT ... RETURNING, PRAGMA,
// EXPLAIN, and a BLOB-declared column holding TEXT) used to abort the whole
// process inside npm:libsql (exit 134): the UTF-8 guard only covered plain
// queries. Each case runs in a child process, so an abort shows up as an
// exit code instead of killing the test runner. What these tests caught
// before the fix: "insert-returning", "update-returning-star",
// "with-insert-returning", "delete-returning" and "explain-blob-literal"
// exited 134.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";

const CHILD = new URL("./_storage_text_child.ts", import.meta.url).pathname;

async function runCase(name: string): Promise<Record<string, unknown>> {
  return await withDir(async (dir) => {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, dir, name],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout).trim();
    assert.equal(
      code,
      0,
      `case "${name}" exited ${code}: ${new TextDecoder().decode(stderr)}`,
    );
    return JSON.parse(text.split("\n").pop()!);
  });
}

Deno.test("RETURNING of invalid UTF-8 gives CORRUPT_VALUE, never an abort, and keeps nothing of the write", async (t) => {
  for (
    const name of [
      "insert-returning",
      "update-returning-star",
      "with-insert-returning",
    ]
  ) {
    await t.step(name, async () => {
      const out = await runCase(name);
      assert.equal(out.code, "CORRUPT_VALUE");
      assert.equal(out.count, 1, "the failed write is undone");
      assert.equal(out.firstX, "ok", "the updated row is unchanged");
    });
  }
  await t.step("delete-returning", async () => {
    const out = await runCase("delete-returning");
    assert.equal(out.code, "CORRUPT_VALUE");
    assert.equal(out.count, 2, "the row to delete is still there");
  });
});

Deno.test("a BLOB-declared column holding invalid UTF-8 TEXT gives its bytes, never an abort", async () => {
  const out = await runCase("blob-column-holding-text");
  assert.equal(out.ok, true);
  assert.deepEqual(out.types, ["number", "bytes:2"]);
});

Deno.test("EXPLAIN with a blob literal is refused with INVALID_INPUT; PRAGMA table_info reads through the guard", async (t) => {
  await t.step("EXPLAIN", async () => {
    assert.equal((await runCase("explain-blob-literal")).code, "INVALID_INPUT");
  });
  await t.step("PRAGMA", async () => {
    const out = await runCase("pragma-table-info");
    assert.equal(out.ok, true);
    assert.equal(out.rows, 3);
  });
});
