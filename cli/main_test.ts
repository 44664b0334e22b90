import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];
const kdfEnv = { AICO_DATA_PASSPHRASE: "cli test passphrase" };

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  return {
    code: out.code,
    out: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("aico-data demo runs the whole toolkit under the README's permission flags", async () => {
  const r = await run(["demo"]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /files containing "green tea" or a plain SQLite header: 0/,
  );
  assert.match(r.out, /after a change, cached: undefined; reload: calm/);
  assert.match(r.out, /integrity\s+ok/);
});

Deno.test("aico-data init, import, status and backup work on a user's folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = `${dir}/data`;
    assert.equal((await run(["init", "--dir", data], kdfEnv)).code, 0);
    const lines = [
      {
        conversation: "c1",
        role: "user",
        content: "hello 'there'; DROP TABLE messages; --",
      },
      { conversation: "c1", role: "assistant", content: "hi" },
      {
        conversation: "c2",
        role: "user",
        content: "🌱",
        ts: 1_700_000_000_000,
      },
    ];
    await Deno.writeTextFile(
      `${dir}/in.jsonl`,
      lines.map((l) => JSON.stringify(l)).join("\n"),
    );
    const imported = await run(
      ["import", "--dir", data, `${dir}/in.jsonl`],
      kdfEnv,
    );
    assert.equal(imported.code, 0, imported.err);
    assert.match(imported.out, /imported 3 messages in 2 conversations/);

    await Deno.writeTextFile(
      `${dir}/bad.jsonl`,
      '{"conversation":"c3","role":"user","content":"x"}\n{oops',
    );
    const bad = await run(
      ["import", "--dir", data, `${dir}/bad.jsonl`],
      kdfEnv,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.err, /INVALID_INPUT/);

    const status = await run(["status", "--dir", data], kdfEnv);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /conversations 2\n/);
    assert.match(status.out, /integrity\s+ok/);

    const backup = await run([
      "backup",
      "--dir",
      data,
      "--to",
      `${dir}/copy.db`,
    ], kdfEnv);
    assert.equal(backup.code, 0, backup.err);
    const head = new TextDecoder("latin1").decode(
      (await Deno.readFile(`${dir}/copy.db`)).subarray(0, 16),
    );
    assert.notEqual(head, "SQLite format 3\0");

    const wrong = await run(["status", "--dir", data], {
      AICO_DATA_PASSPHRASE: "wrong",
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /WRONG_KEY/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("aico-data refuses unknown commands and missing arguments with usage errors", async () => {
  assert.equal((await run(["frobnicate"])).code, 2);
  const noDir = await run(["status"], kdfEnv);
  assert.equal(noDir.code, 1);
  assert.match(noDir.err, /INVALID_INPUT/);
  const noPass = await run(["status", "--dir", "/nonexistent"]);
  assert.equal(noPass.code, 1);
});
