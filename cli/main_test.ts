import assert from "node:assert/strict";
import { withDir } from "../tests/_helpers.ts";
import { cli, EXPORTS, oneLine, PASSPHRASE } from "../tests/_cli.ts";

const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("aico-data demo imports the sample export and leaves no plaintext in the folder", async () => {
  const r = await cli(["demo"], { weakKdf: false });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /36 conversations, 144 messages/);
  assert.match(r.out, /imported again: 0 added, 144 already stored/);
  assert.match(
    r.out,
    /files containing "green tea" or a plain SQLite header: 0/,
  );
  assert.match(r.out, /after a change, cached: undefined; reload: calm/);
  assert.match(r.out, /integrity\s+ok/);
});

Deno.test("aico-data --version, --help, -h, help CMD and CMD --help print and never run the command", async () => {
  await withDir(async (tmp) => {
    const v = await cli(["--version"]);
    assert.equal(v.code, 0);
    assert.match(v.out, /^aico-data \d+\.\d+\.\d+\n$/);
    for (const args of [[], ["--help"], ["-h"], ["help"]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.out, /usage: aico-data COMMAND/);
    }
    for (
      const args of [
        ["init", "--help", "--dir", `${tmp}/x`],
        ["init", "--dir", `${tmp}/x`, "-h"],
        ["help", "init"],
      ]
    ) {
      const r = await cli(args, { env });
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.out, /usage: aico-data init/);
    }
    assert.equal(await exists(`${tmp}/x`), false, "help created nothing");
  });
});

Deno.test("aico-data gives usage errors (exit 2) for typos, unknown options and extra arguments", async () => {
  const typo = await cli(["lsit"]);
  assert.equal(typo.code, 2);
  assert.match(oneLine(typo), /did you mean "list"\?/);
  const option = await cli(["list", "--frobnicate"]);
  assert.equal(option.code, 2);
  oneLine(option);
  const extra = await cli(["status", "extra"]);
  assert.equal(extra.code, 2);
  assert.match(oneLine(extra), /unexpected argument "extra"/);
  const missing = await cli(["show"]);
  assert.equal(missing.code, 2);
  const format = await cli(["import", "--format", "xml", "f"]);
  assert.equal(format.code, 2);
  assert.equal((await cli(["report", "extra"])).code, 2);
});

Deno.test("aico-data fails in one line with a fix for a missing file, a file as folder, a wrong passphrase", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/data`;
    assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);
    const noFile = await cli(["import", "--dir", dir, `${tmp}/nope.json`], {
      env,
    });
    assert.equal(noFile.code, 1);
    assert.match(oneLine(noFile), /nope\.json.*NOT_FOUND/);
    await Deno.writeTextFile(`${tmp}/file`, "x");
    const fileDir = await cli(["init", "--dir", `${tmp}/file`], { env });
    assert.equal(fileDir.code, 1);
    assert.match(oneLine(fileDir), /is a file, not a folder/);
    const noFolder = await cli(["list", "--dir", `${tmp}/none`], { env });
    assert.equal(noFolder.code, 1);
    oneLine(noFolder);
    const wrong = await cli(["status", "--dir", dir], {
      env: { AICO_DATA_PASSPHRASE: "wrong" },
    });
    assert.equal(wrong.code, 1);
    assert.match(oneLine(wrong), /WRONG_KEY.*passphrase/);
    const bad = await cli([
      "import",
      "--dir",
      dir,
      `${EXPORTS}malformed_chatgpt.json`,
    ], { env });
    assert.equal(bad.code, 1);
    assert.match(
      oneLine(bad),
      /create_time.*IMPORT_INVALID.*nothing of this file/,
    );
  });
});

Deno.test("aico-data reads the passphrase from --passphrase-file or stdin, and data from stdin with -", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/data`;
    const init = await cli(["init", "--dir", dir], {
      stdin: `${PASSPHRASE}\n`,
    });
    assert.equal(init.code, 0, init.err);
    const st = await cli(["status", "--dir", dir, "--json"], {
      stdin: `${PASSPHRASE}\n`,
    });
    assert.equal(st.code, 0, st.err);
    assert.equal(JSON.parse(st.out).integrity, "ok");
    await Deno.writeTextFile(`${tmp}/pw`, PASSPHRASE);
    const fromStdin = await cli(
      ["import", "--dir", dir, "--passphrase-file", `${tmp}/pw`, "-"],
      { stdin: await Deno.readFile(`${EXPORTS}claude_conversations.json`) },
    );
    assert.equal(fromStdin.code, 0, fromStdin.err);
    assert.match(
      fromStdin.out,
      /imported 9 messages in 4 new conversations from \(stdin\) \(claude/,
    );
    // Progress and notes stay off stdout when it is not a terminal.
    assert.equal(fromStdin.err, "");
  });
});

Deno.test("aico-data warns about a weak passphrase and refuses an initialised folder", async () => {
  await withDir(async (tmp) => {
    const r = await cli(["init", "--dir", `${tmp}/d`], {
      env: { AICO_DATA_PASSPHRASE: "abc" },
    });
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /weak passphrase/);
    const again = await cli(["init", "--dir", `${tmp}/d`], { env });
    assert.equal(again.code, 1);
    assert.match(oneLine(again), /initialised already/);
  });
});

Deno.test("aico-data init records the Argon2id cost of its flags, refuses one below the minimum without --allow-weak-kdf, and no variable weakens it", async () => {
  await withDir(async (tmp) => {
    const cost = async (dir: string) => {
      const k = JSON.parse(await Deno.readTextFile(`${dir}/key.json`)).kdf;
      return [k.memoryKiB, k.iterations];
    };
    for (
      const flags of [
        ["--kdf-memory", "8"],
        ["--kdf-iterations", "1"],
        ["--kdf-memory", "abc"],
        ["--kdf-memory", "99999"],
      ]
    ) {
      const r = await cli(["init", "--dir", `${tmp}/refused`, ...flags], {
        env,
        weakKdf: false,
      });
      assert.equal(r.code, 2, flags.join(" "));
      oneLine(r);
      assert.equal(await exists(`${tmp}/refused`), false);
    }
    const weak = await cli([
      "init",
      "--dir",
      `${tmp}/weak`,
      "--kdf-memory",
      "8",
      "--kdf-iterations",
      "1",
      "--allow-weak-kdf",
    ], { env, weakKdf: false });
    assert.equal(weak.code, 0, weak.err);
    assert.match(weak.err, /below the minimum/);
    assert.deepEqual(await cost(`${tmp}/weak`), [8192, 1]);
    // The key file records its cost: opening needs no flag.
    const status = await cli(["status", "--dir", `${tmp}/weak`], { env });
    assert.equal(status.code, 0, status.err);
    // The test flags give the minimum; a variable of the old test hook
    // changes nothing: without flags a key file gets the default cost.
    assert.equal((await cli(["init", "--dir", `${tmp}/min`], { env })).code, 0);
    assert.deepEqual(await cost(`${tmp}/min`), [19456, 2]);
    const plain = await cli(["init", "--dir", `${tmp}/default`], {
      env: { ...env, AICO_DATA_TEST_KDF: "weak" },
      weakKdf: false,
    });
    assert.equal(plain.code, 0, plain.err);
    assert.deepEqual(await cost(`${tmp}/default`), [65536, 3]);
  });
});

Deno.test("aico-data passwd re-wraps the key and rotate-key says what older backups need", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/d`;
    assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);
    await cli(["import", "--dir", dir, `${EXPORTS}messages.jsonl`], { env });
    await Deno.writeTextFile(`${tmp}/new`, "another long passphrase 99\n");
    const pw = await cli([
      "passwd",
      "--dir",
      dir,
      "--new-passphrase-file",
      `${tmp}/new`,
    ], { env });
    assert.equal(pw.code, 0, pw.err);
    const newEnv = { AICO_DATA_PASSPHRASE: "another long passphrase 99" };
    assert.equal((await cli(["status", "--dir", dir], { env })).code, 1);
    assert.equal(
      (await cli(["status", "--dir", dir], { env: newEnv })).code,
      0,
    );
    // Off a terminal there is no one to ask: it rotates, with the note.
    const rot = await cli(["rotate-key", "--dir", dir, "--json"], {
      env: newEnv,
    });
    assert.match(rot.err, /backups made before this rotation/);
    assert.equal(rot.code, 0, rot.err);
    const ids = JSON.parse(rot.out);
    assert.notEqual(ids.keyId, ids.previousKeyId);
    const list = await cli(["list", "--dir", dir, "--json"], { env: newEnv });
    assert.equal(JSON.parse(list.out).length, 2);
  });
});

Deno.test("aico-data uses AICO_DATA_DIR, else XDG_DATA_HOME/aico-data, when --dir is absent", async () => {
  await withDir(async (tmp) => {
    const a = await cli(["init"], {
      env: { ...env, AICO_DATA_DIR: `${tmp}/a` },
    });
    assert.equal(a.code, 0, a.err);
    assert.ok(await exists(`${tmp}/a/key.json`));
    const x = await cli(["init"], {
      env: { ...env, AICO_DATA_DIR: "", XDG_DATA_HOME: `${tmp}/xdg` },
    });
    assert.equal(x.code, 0, x.err);
    assert.ok(await exists(`${tmp}/xdg/aico-data/key.json`));
  });
});

Deno.test("aico-data reports a missing secret-tool as not installed, not as a missing permission", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/d`;
    assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);
    const r = await cli(["list", "--keyring", "--dir", dir], {
      env: { PATH: `${tmp}/empty-path` },
      flags: [
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        "--allow-run=secret-tool",
      ],
    });
    assert.equal(r.code, 1);
    const last = r.err.trim().split("\n").at(-1)!;
    assert.match(last, /"secret-tool" is not installed.*libsecret-tools/);
    assert.doesNotMatch(last, /--allow-run/);
  });
});

Deno.test("aico-data plan, migrate and rollback show and move schema versions", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/d`;
    assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);
    const plan = await cli(["plan", "--dir", dir, "--json"], { env });
    assert.equal(plan.code, 0, plan.err);
    const schemas = JSON.parse(plan.out) as {
      schema: string;
      current: number;
      latest: number;
    }[];
    assert.deepEqual(
      schemas.map((s) => [s.schema, s.current === s.latest]),
      [
        ["core", true],
        ["changes", true],
        ["audit", true],
        ["memory", true],
        ["importers", true],
        ["vector", true],
        ["sync", true],
      ],
    );
    const migrate = await cli(["migrate", "--dir", dir], { env });
    assert.equal(migrate.code, 0, migrate.err);
    assert.match(migrate.out, /schema up to date/);
    const noYes = await cli(["rollback", "importers", "0", "--dir", dir], {
      env,
    });
    assert.equal(noYes.code, 1);
    assert.match(oneLine(noYes), /--yes/);
    const down = await cli([
      "rollback",
      "importers",
      "0",
      "--yes",
      "--dir",
      dir,
      "--json",
    ], { env });
    assert.equal(down.code, 0, down.err);
    assert.deepEqual(
      (JSON.parse(down.out) as { schema: string; direction: string }[])
        .map((s) => [s.schema, s.direction]),
      [["importers", "down"]],
    );
    const bad = await cli(
      ["rollback", "importers", "x", "--yes", "--dir", dir],
      { env },
    );
    assert.equal(bad.code, 2);
  });
});
