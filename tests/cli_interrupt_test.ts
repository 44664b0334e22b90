// An import killed (SIGKILL) or interrupted (Ctrl-C, SIGINT) midway stores
// nothing of its file; the next run imports it whole, without duplicates.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { cli, MAIN, PASSPHRASE, README_FLAGS } from "./_cli.ts";
import { writeChatgptExport } from "../testdata/exports/generate.ts";

const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };
const CONVERSATIONS = 300;
const PER = 100;

async function walBytes(dir: string): Promise<number> {
  try {
    return (await Deno.stat(`${dir}/data.db-wal`)).size;
  } catch {
    return 0;
  }
}

/** Starts an import and stops it with `signal` once it has written to the WAL. */
async function stopMidway(
  dir: string,
  file: string,
  signal: Deno.Signal,
): Promise<number> {
  const before = await walBytes(dir);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...README_FLAGS, MAIN, "import", "--dir", dir, file],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let sent = false;
  for (let i = 0; i < 600 && !sent; i++) {
    await new Promise((r) => setTimeout(r, 25));
    if (await walBytes(dir) > before + 512 * 1024) {
      child.kill(signal);
      sent = true;
    }
  }
  const status = await child.status;
  assert.ok(sent, "the import finished before it could be stopped");
  return status.code;
}

async function messageTotal(dir: string): Promise<number> {
  const r = await cli(["list", "--dir", dir, "--json"], { env });
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { messageCount: number }[])
    .reduce((n, c) => n + c.messageCount, 0);
}

Deno.test("aico-data import killed or interrupted midway stores nothing; the rerun completes it once", async () => {
  await withDir(async (tmp) => {
    const dir = `${tmp}/data`;
    const file = `${tmp}/conversations.json`;
    await writeChatgptExport(file, CONVERSATIONS, PER);
    assert.equal((await cli(["init", "--dir", dir], { env })).code, 0);

    const killed = await stopMidway(dir, file, "SIGKILL");
    assert.notEqual(killed, 0);
    assert.equal(await messageTotal(dir), 0);

    const interrupted = await stopMidway(dir, file, "SIGINT");
    assert.equal(interrupted, 130);
    assert.equal(await messageTotal(dir), 0);

    const r = await cli(["import", "--dir", dir, "--json", file], { env });
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out)[0].messagesAdded, CONVERSATIONS * PER);
    assert.equal(await messageTotal(dir), CONVERSATIONS * PER);
    const again = await cli(["import", "--dir", dir, "--json", file], { env });
    assert.equal(JSON.parse(again.out)[0].messagesAdded, 0);
    assert.equal(await messageTotal(dir), CONVERSATIONS * PER);
  });
});
