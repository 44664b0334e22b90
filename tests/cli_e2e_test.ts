// The CLI as a new user runs it: init → import (every format) → list → show
// → search → export → backup → restore into a new folder → doctor, with the
// README's flags; then once per missing flag.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { cli, EXPORTS, oneLine, PASSPHRASE, README_FLAGS } from "./_cli.ts";

Deno.test("aico-data init, import, list, show, search, export, backup, restore and doctor work end to end", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/data`;
    const pw = `${tmp}/pw.txt`;
    await Deno.writeTextFile(pw, `${PASSPHRASE}\n`);
    const p = ["--dir", dir, "--passphrase-file", pw];

    const init = await cli(["init", ...p]);
    assert.equal(init.code, 0, init.err);
    assert.match(init.out, /created .*data key [0-9a-f]+/);
    assert.equal(
      (await cli(["init", ...p])).code,
      1,
      "refuses an initialised folder",
    );

    const imports: [string, number, number][] = [
      ["chatgpt_conversations.json", 4, 9],
      ["chatgpt_export.zip", 0, 0], // the same conversations: nothing new
      ["claude_export.zip", 4, 9],
      ["claude_conversations.json", 0, 0],
      ["messages.jsonl", 2, 4],
    ];
    for (const [file, conversations, messages] of imports) {
      const r = await cli(["import", ...p, "--json", `${EXPORTS}${file}`]);
      assert.equal(r.code, 0, r.err);
      const [report] = JSON.parse(r.out);
      assert.equal(report.conversationsAdded, conversations, file);
      assert.equal(report.messagesAdded, messages, file);
    }

    const list = await cli(["list", ...p, "--json"]);
    assert.equal(list.code, 0, list.err);
    const conversations = JSON.parse(list.out) as {
      id: string;
      title: string | null;
      messageCount: number;
    }[];
    assert.equal(conversations.length, 10);
    const tea = conversations.find((c) => c.id === "cg-branches");
    assert.equal(tea?.title, "Tea or coffee");
    assert.equal(tea?.messageCount, 2);
    const plainList = await cli(["list", ...p]);
    assert.match(plainList.out, /cg-branches .* 2 {2}Tea or coffee/);

    const show = await cli(["show", ...p, "cl-thinking", "--json"]);
    assert.equal(show.code, 0, show.err);
    assert.deepEqual(
      JSON.parse(show.out).messages.map((m: { content: string }) => m.content),
      ["Does tea help me sleep?", "Chamomile can help."],
    );

    const search = await cli([
      "search",
      ...p,
      "green TEA",
      "--mode",
      "keyword",
      "--json",
    ]);
    assert.equal(search.code, 0, search.err);
    const hits = JSON.parse(search.out) as { conversationId: string }[];
    assert.equal(hits[0]?.conversationId, "cg-branches");

    // Vectors come from `index`; then a search by meaning finds the message.
    const indexed = await cli(["index", ...p, "--json"]);
    assert.equal(indexed.code, 0, indexed.err);
    assert.ok(JSON.parse(indexed.out).embedded > 0, indexed.out);
    const byMeaning = await cli([
      "search",
      ...p,
      "a warm drink before bed",
      "--mode",
      "vector",
      "--json",
    ]);
    assert.equal(byMeaning.code, 0, byMeaning.err);
    assert.ok(JSON.parse(byMeaning.out).length > 0);

    // The report: a summary on stdout, the HTML sealed on disk.
    const html = `${tmp}/report.html`;
    const rep = await cli(["report", ...p, "--html", html]);
    assert.equal(rep.code, 0, rep.err);
    assert.match(rep.out, /\S/);
    const sealedHtml = await Deno.readFile(html);
    assert.ok(!new TextDecoder().decode(sealedHtml).includes("<svg"));

    const sealed = `${tmp}/export.json`;
    const exp = await cli(["export", ...p, "--out", sealed]);
    assert.equal(exp.code, 0, exp.err);
    const sealedText = await Deno.readTextFile(sealed);
    assert.equal(
      JSON.parse(sealedText.split("\n")[0]!).format,
      "aico-data-export-sealed",
    );
    assert.ok(!sealedText.includes("Green tea"));
    const md = `${tmp}/export.md`;
    const plain = await cli([
      "export",
      ...p,
      "cg-branches",
      "--markdown",
      "--plaintext",
      "--out",
      md,
    ]);
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.err, /NOT encrypted/);
    assert.match(
      await Deno.readTextFile(md),
      /# Tea or coffee[\s\S]*Green tea has less caffeine\./,
    );
    const json = await cli(["export", ...p, "--plaintext"]);
    assert.equal(JSON.parse(json.out).conversations.length, 10);

    const bk = `${tmp}/backup`;
    const backup = await cli(["backup", ...p, "--to", bk]);
    assert.equal(backup.code, 0, backup.err);
    const restored = `${tmp}/restored`;
    const restore = await cli([
      "restore",
      bk,
      "--dir",
      restored,
      "--passphrase-file",
      pw,
    ]);
    assert.equal(restore.code, 0, restore.err);
    const again = await cli([
      "list",
      "--dir",
      restored,
      "--passphrase-file",
      pw,
      "--json",
    ]);
    assert.equal(JSON.parse(again.out).length, 10);
    const restoredShow = await cli([
      "show",
      "cl-tools",
      "--dir",
      restored,
      "--passphrase-file",
      pw,
    ]);
    assert.match(restoredShow.out, /tool_result web_search: Sunny, 5°C/);

    const doctor = await cli([
      "doctor",
      "--dir",
      restored,
      "--passphrase-file",
      pw,
      "--json",
    ]);
    assert.equal(doctor.code, 0, doctor.err);
    const checks = JSON.parse(doctor.out) as {
      check: string;
      status: string;
    }[];
    for (
      const name of [
        "integrity",
        "encryption",
        "key file",
        "versions",
        "free space",
      ]
    ) {
      const c = checks.find((c) => c.check === name);
      assert.ok(c !== undefined && c.status !== "fail", name);
    }

    const status = await cli(["status", ...p]);
    assert.match(status.out, /integrity\s+ok/);
    assert.match(status.out, /conversations 10\n/);
  });
});

Deno.test("aico-data names the missing flag in one line, without a stack trace", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/data`;
    const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };
    assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);
    for (const flag of README_FLAGS) {
      const flags = README_FLAGS.filter((f) => f !== flag);
      for (
        const args of [["list", "--dir", dir], [
          "import",
          "--dir",
          dir,
          `${EXPORTS}messages.jsonl`,
        ]]
      ) {
        const r = await cli(args, { env, flags });
        assert.notEqual(r.code, 0, `${flag} ${args[0]}`);
        assert.ok(oneLine(r).includes(flag), `${flag} ${args[0]}: ${r.err}`);
      }
    }
  });
});

Deno.test("aico-data read-only commands work on a read-only folder", async (t) => {
  // Root ignores file modes: a read-only tmpfs is the honest test.
  const mount = (args: string[]) =>
    new Deno.Command("mount", { args, stdout: "null", stderr: "null" })
      .outputSync().success;
  await withDir(async (tmp) => {
    const ro = `${tmp}/ro`;
    await Deno.mkdir(ro);
    if (!mount(["-t", "tmpfs", "-o", "size=32m", "tmpfs", ro])) {
      t.step({
        name: "ignored: cannot mount a tmpfs (needs root)",
        ignore: true,
        fn: () => {},
      });
      return;
    }
    try {
      const dir = `${ro}/data`;
      const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };
      assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);
      assert.equal(
        (await cli(["import", "--dir", dir, `${EXPORTS}messages.jsonl`], {
          env,
        })).code,
        0,
      );
      assert.ok(mount(["-o", "remount,ro", ro]));
      for (
        const args of [["status"], ["list"], ["show", "jl-1"], ["search", "ok"]]
      ) {
        const r = await cli([...args, "--dir", dir], { env });
        assert.equal(r.code, 0, `${args[0]}: ${r.err}`);
      }
      const imp = await cli([
        "import",
        "--dir",
        dir,
        `${EXPORTS}claude_conversations.json`,
      ], { env });
      assert.equal(imp.code, 1);
      oneLine(imp);
    } finally {
      mount(["-o", "remount,rw", ro]);
      new Deno.Command("umount", { args: [ro] }).outputSync();
    }
  });
});
