// aico-data export and its import back: sealed by default, plaintext only
// when asked; content byte-exact after the round trip.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { cli, EXPORTS, oneLine, PASSPHRASE } from "./_cli.ts";

const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };

interface Shown {
  title: string | null;
  messages: { role: string; content: string; createdAt: number }[];
}

function everything(dir: string): Promise<Record<string, Shown>> {
  return everythingWith(dir, env);
}

async function everythingWith(
  dir: string,
  env: Record<string, string>,
): Promise<Record<string, Shown>> {
  const list = await cli(["list", "--dir", dir, "--json"], { env });
  assert.equal(list.code, 0, list.err);
  const out: Record<string, Shown> = {};
  for (const c of JSON.parse(list.out) as { id: string }[]) {
    const show = await cli(["show", c.id, "--dir", dir, "--json"], { env });
    const v = JSON.parse(show.out);
    out[c.id] = {
      title: v.title,
      messages: v.messages.map((m: Shown["messages"][number]) => ({
        role: m.role,
        content: m.content,
        createdAt: m.createdAt,
      })),
    };
  }
  return out;
}

Deno.test("aico-data export is sealed by default and imports back byte-exact into another folder", async () => {
  await withDir(async (tmp) => {
    const a = `${tmp}/a`;
    const b = `${tmp}/b`;
    assert.equal((await cli(["init", "--dir", a], { env })).code, 0);
    for (
      const f of ["chatgpt_export.zip", "claude_export.zip", "messages.jsonl"]
    ) {
      assert.equal(
        (await cli(["import", "--dir", a, `${EXPORTS}${f}`], { env })).code,
        0,
      );
    }
    const sealed = `${tmp}/all.json`;
    assert.equal(
      (await cli(["export", "--dir", a, "--out", sealed], { env })).code,
      0,
    );
    const text = await Deno.readTextFile(sealed);
    assert.ok(!text.includes("Chamomile"), "sealed export holds plaintext");

    // Into the same folder: everything is there already.
    const same = await cli(["import", "--dir", a, "--json", sealed], { env });
    assert.equal(same.code, 0, same.err);
    assert.equal(JSON.parse(same.out)[0].format, "aico");
    assert.equal(JSON.parse(same.out)[0].messagesAdded, 0);

    // Into another folder (another key): a sealed export carries the key
    // file, so this folder's passphrase opens it...
    assert.equal((await cli(["init", "--dir", b], { env })).code, 0);
    const bare = `${tmp}/bare.json`;
    assert.equal(
      (await cli(["export", "--dir", a, "--no-key-file", "--out", bare], {
        env,
      })).code,
      0,
    );
    // ... without it, refused unless the key file is given ...
    const refused = await cli(["import", "--dir", b, bare], { env });
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused), /WRONG_KEY.*--export-key/);
    // ... a wrong passphrase for that key file is WRONG_KEY ...
    const wrongPw = `${tmp}/wrong-pw`;
    await Deno.writeTextFile(wrongPw, "not it\n");
    const wrong = await cli(
      [
        "import",
        "--dir",
        b,
        "--export-key",
        `${a}/key.json`,
        "--export-passphrase-file",
        wrongPw,
        bare,
      ],
      { env },
    );
    assert.equal(wrong.code, 1);
    assert.match(oneLine(wrong), /WRONG_KEY/);
    assert.deepEqual(await everything(b), {});
    // ... and with it, every conversation comes back byte-exact.
    const back = await cli(
      ["import", "--dir", b, "--export-key", `${a}/key.json`, bare],
      { env },
    );
    assert.equal(back.code, 0, back.err);
    assert.deepEqual(await everything(b), await everything(a));

    // A folder with another passphrase opens the embedded key file with
    // the passphrase of the folder the export was made in.
    const c = `${tmp}/c`;
    const otherEnv = { AICO_DATA_PASSPHRASE: "another passphrase 9" };
    assert.equal((await cli(["init", "--dir", c], { env: otherEnv })).code, 0);
    const pwA = `${tmp}/pw-a`;
    await Deno.writeTextFile(pwA, PASSPHRASE + "\n");
    const viaPw = await cli(
      ["import", "--dir", c, "--export-passphrase-file", pwA, "--json", sealed],
      { env: otherEnv },
    );
    assert.equal(viaPw.code, 0, viaPw.err);
    assert.equal(JSON.parse(viaPw.out)[0].sealed, true);
    assert.deepEqual(
      await everythingWith(c, otherEnv),
      await everything(a),
    );

    // A plaintext export reads back too, and adds nothing the second time.
    const plain = `${tmp}/plain.json`;
    const p = await cli(["export", "--dir", a, "--plaintext", "--out", plain], {
      env,
    });
    assert.match(p.err, /warning: this export is NOT encrypted/);
    assert.equal(JSON.parse(await Deno.readTextFile(plain)).version, 2);
    const again = await cli(["import", "--dir", b, "--json", plain], { env });
    assert.equal(JSON.parse(again.out)[0].messagesAdded, 0);
  });
});
