// `aico-data erase` in a subprocess as a user runs it: refused without a
// terminal and without --yes, --json counts, the backups made before listed,
// the erased conversation gone from list, show and search; `--all` with a
// real Secret Service deletes the key's copy from the OS keyring.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { withDir } from "./_helpers.ts";
import { cli, oneLine, PASSPHRASE } from "./_cli.ts";
import { scanFor } from "./_scan.ts";

Deno.test("aico-data erase asks, refuses without a terminal, erases with --yes and lists the earlier backups", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/data`;
    const pw = `${tmp}/pw.txt`;
    await Deno.writeTextFile(pw, `${PASSPHRASE}\n`);
    const p = ["--dir", dir, "--passphrase-file", pw];
    const marker = `zq${crypto.randomUUID().replaceAll("-", "")}`;
    assert.equal((await cli(["init", ...p])).code, 0);
    const lines = [
      {
        conversation: "secret",
        role: "user",
        content: `tell no one ${marker}`,
      },
      { conversation: "secret", role: "assistant", content: "I will not" },
      { conversation: "keep", role: "user", content: "tulips in spring" },
    ].map((l) => JSON.stringify(l)).join("\n") + "\n";
    await Deno.writeTextFile(`${tmp}/in.jsonl`, lines);
    const imported = await cli(["import", ...p, `${tmp}/in.jsonl`]);
    assert.equal(imported.code, 0, imported.err);
    const listed = JSON.parse((await cli(["list", ...p, "--json"])).out) as {
      id: string;
      messageCount: number;
    }[];
    const secret = listed.find((c) => c.messageCount === 2)!;
    assert.ok(secret !== undefined);
    const backup = await cli(["backup", ...p, "--to", `${tmp}/bk`]);
    assert.equal(backup.code, 0, backup.err);

    // Usage errors and the refusal without a terminal: nothing erased.
    const none = await cli(["erase", ...p, "--yes"]);
    assert.equal(none.code, 2);
    const two = await cli(["erase", ...p, "--all", "--user", "u", "--yes"]);
    assert.equal(two.code, 2);
    const bad = await cli(["erase", ...p, "--message", "x1", "--yes"]);
    assert.equal(bad.code, 2);
    const refused = await cli(["erase", ...p, "--conversation", secret.id]);
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused), /no terminal.*--yes/);
    assert.equal(
      (JSON.parse((await cli(["list", ...p, "--json"])).out) as unknown[])
        .length,
      2,
    );

    const erased = await cli([
      "erase",
      ...p,
      "--conversation",
      secret.id,
      "--yes",
      "--json",
    ]);
    assert.equal(erased.code, 0, erased.err);
    const report = JSON.parse(erased.out);
    assert.deepEqual(report.erased.messages, 2);
    assert.deepEqual(report.erased.conversations, 1);
    assert.equal(report.checkpointed, true);
    assert.deepEqual(report.unreached, []);
    assert.equal(report.backups.length, 1);
    assert.equal(report.backups[0].exists, true);
    assert.match(report.backups[0].path, /bk$/);

    const after = JSON.parse((await cli(["list", ...p, "--json"])).out) as {
      id: string;
    }[];
    assert.deepEqual(after.map((c) => c.id).includes(secret.id), false);
    assert.equal(after.length, 1);
    const search = await cli([
      "search",
      ...p,
      marker,
      "--mode",
      "keyword",
      "--json",
    ]);
    assert.equal(search.code, 0, search.err);
    assert.deepEqual(JSON.parse(search.out), []);
    assert.equal((await cli(["show", ...p, secret.id])).code, 1);
    const scan = await scanFor(dir, [marker]);
    assert.equal(scan.hits[marker], 0);
    // No trace of it is left in the importer's sources either: importing
    // the same file again brings the erased conversation back, only it.
    const again = await cli(["import", ...p, "--json", `${tmp}/in.jsonl`]);
    assert.equal(again.code, 0, again.err);
    const [reimported] = JSON.parse(again.out);
    assert.equal(reimported.conversationsAdded, 1);
    assert.equal(reimported.messagesAdded, 2);
    const back = await cli([
      "search",
      ...p,
      marker,
      "--mode",
      "keyword",
      "--json",
    ]);
    assert.equal(JSON.parse(back.out).length >= 1, true);

    // --all without a reachable keyring says so; the backup list survives.
    const all = await cli(["erase", ...p, "--all", "--yes"], {
      env: { DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent" },
      flags: [
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        "--allow-run=secret-tool",
      ],
    });
    assert.equal(all.code, 0, all.err);
    assert.match(all.out, /erased 3 messages, 2 conversations, \d+ users/);
    assert.match(all.out, /not reached: .*keyring/);
    assert.match(all.out, /1 backups made earlier still hold the erased data/);
    assert.match(all.out, /copies you made yourself/);
    assert.deepEqual(JSON.parse((await cli(["list", ...p, "--json"])).out), []);
  }, "aico_cli_erase_");
});

const SESSION = fileURLToPath(
  new URL("../.ci/keyring_session.sh", import.meta.url),
);
const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const TOOLS = [
  "bash",
  "dbus-run-session",
  "dbus-send",
  "gnome-keyring-daemon",
  "secret-tool",
];
const missing = Deno.build.os !== "linux"
  ? TOOLS
  : TOOLS.filter((tool) =>
    !new Deno.Command("sh", {
      args: ["-c", 'command -v "$1" >/dev/null', "sh", tool],
      stdout: "null",
      stderr: "null",
    }).outputSync().success
  );
if (missing.length > 0) {
  // deno-lint-ignore no-console
  console.warn(
    `cli_erase_test.ts: keyring test ignored, missing ${missing.join(", ")} ` +
      "(apt-get install gnome-keyring libsecret-tools dbus-x11)",
  );
}

Deno.test({
  name:
    "aico-data erase --all deletes the data key's copy from a real OS keyring",
  ignore: missing.length > 0,
  fn: async () => {
    await withDir(async (dir) => {
      const run =
        `"${Deno.execPath()}" run --allow-read --allow-write --allow-env --allow-ffi --allow-sys --allow-run=secret-tool "${MAIN}"`;
      const script = [
        `export AICO_DATA_PASSPHRASE=pw AICO_DATA_TEST_KDF=weak`,
        `${run} init --dir "${dir}/d" --remember || exit 11`,
        `(unset AICO_DATA_PASSPHRASE; ${run} status --keyring --dir "${dir}/d" </dev/null) || exit 12`,
        `${run} erase --all --yes --json --dir "${dir}/d" || exit 13`,
        `(unset AICO_DATA_PASSPHRASE; ${run} status --keyring --dir "${dir}/d" </dev/null) && exit 14`,
        `exit 0`,
      ].join("\n");
      const out = await new Deno.Command("bash", {
        args: [SESSION, "bash", "-c", script],
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /"keyringCopies": 1/);
      assert.match(text, /"unreached": \[\]/);
      // The keyring no longer unlocks the folder.
      assert.match(text, /NOT_FOUND/);
    });
  },
});

const hasScript = Deno.build.os === "linux" &&
  new Deno.Command("sh", {
    args: ["-c", "command -v script >/dev/null"],
    stdout: "null",
    stderr: "null",
  }).outputSync().success;

/** Runs the CLI on a pseudo-terminal (util-linux `script`), typing `answer`. */
async function onTerminal(
  args: string[],
  answer: string,
): Promise<{ code: number; output: string }> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-ffi",
    "--allow-sys",
    MAIN,
    ...args,
  ].map(quote).join(" ");
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
    stderr: "null",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
    }
  })();
  const writer = child.stdin.getWriter();
  for (let i = 0; i < 800 && !output.includes("[y/N] "); i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  await writer.write(new TextEncoder().encode(answer));
  await writer.close().catch(() => {});
  const status = await child.status;
  await reading;
  return { code: status.code, output };
}

Deno.test({
  name: "aico-data erase asks on the terminal: no cancels, yes erases",
  ignore: !hasScript,
  fn: async () => {
    await withDir(async (tmp) => {
      const dir = `${tmp}/data`;
      const pw = `${tmp}/pw.txt`;
      await Deno.writeTextFile(pw, `${PASSPHRASE}\n`);
      const p = ["--dir", dir, "--passphrase-file", pw];
      assert.equal((await cli(["init", ...p])).code, 0);
      await Deno.writeTextFile(
        `${tmp}/in.jsonl`,
        JSON.stringify({ conversation: "c", role: "user", content: "hi" }) +
          "\n",
      );
      assert.equal((await cli(["import", ...p, `${tmp}/in.jsonl`])).code, 0);
      const [conv] = JSON.parse((await cli(["list", ...p, "--json"])).out);
      const args = ["erase", ...p, "--conversation", conv.id];
      const no = await onTerminal(args, "n\r");
      assert.equal(no.code, 1, no.output);
      assert.match(no.output, /\[y\/N\]/);
      assert.equal(
        JSON.parse((await cli(["list", ...p, "--json"])).out).length,
        1,
      );
      const yes = await onTerminal(args, "y\r");
      assert.equal(yes.code, 0, yes.output);
      assert.match(yes.output, /erased 1 messages, 1 conversations/);
      assert.deepEqual(
        JSON.parse((await cli(["list", ...p, "--json"])).out),
        [],
      );
    }, "aico_cli_erase_tty_");
  },
});
