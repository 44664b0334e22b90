// End to end through the CLI (subprocesses, as a user runs it): two data
// folders and a folder target. `sync init`, `init --from-sync` (a wrong
// passphrase gives WRONG_KEY and writes nothing), `sync` both ways,
// `doctor` reporting a tampered target, `sync --watch` ending with 130.
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, MAIN, oneLine, PASSPHRASE, README_FLAGS } from "./_cli.ts";
import { withDir } from "./_helpers.ts";
import { scanFor } from "./_scan.ts";

const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };
const MARKER = "WOMBAT-CLI-MARKER-91";

async function titles(dir: string): Promise<string[]> {
  const r = await cli(["list", "--dir", dir, "--json"], { env });
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { title?: string }[]).map((c) => c.title ?? "")
    .sort();
}

Deno.test("aico-data sync init, init --from-sync, sync both ways, doctor, --watch", async () => {
  await withDir(async (tmp) => {
    const a = join(tmp, "a"), b = join(tmp, "b"), target = join(tmp, "target");
    const fileA = join(tmp, "a.jsonl"), fileB = join(tmp, "b.jsonl");
    await Deno.writeTextFile(
      fileA,
      `{"conversation":"from-a","role":"user","content":"${MARKER} a","title":"Alpha ${MARKER}"}\n`,
    );
    await Deno.writeTextFile(
      fileB,
      `{"conversation":"from-b","role":"user","content":"${MARKER} b","title":"Beta"}\n`,
    );
    assert.equal((await cli(["init", "--dir", a], { env })).code, 0);
    const imp = await cli(["import", fileA, "--dir", a], { env });
    assert.equal(imp.code, 0, imp.err);

    const none = await cli(["sync", "--dir", a], { env });
    assert.equal(none.code, 1);
    assert.match(oneLine(none), /sync init/);

    const init = await cli(["sync", "init", target, "--dir", a, "--json"], {
      env,
    });
    assert.equal(init.code, 0, init.err);
    const ij = JSON.parse(init.out);
    assert.equal(ij.keyFilePublished, true);
    assert.ok(ij.pushed.segments > 0);

    const wrong = await cli(["init", "--from-sync", target, "--dir", b], {
      env: { ...env, AICO_DATA_PASSPHRASE: "not the passphrase at all" },
    });
    assert.equal(wrong.code, 1);
    assert.match(oneLine(wrong), /WRONG_KEY/);
    await assert.rejects(Deno.stat(b), Deno.errors.NotFound);

    const join1 = await cli(
      ["init", "--from-sync", target, "--dir", b, "--json"],
      { env },
    );
    assert.equal(join1.code, 0, join1.err);
    assert.ok(JSON.parse(join1.out).pulled.changes > 0);
    assert.deepEqual(await titles(b), await titles(a));

    assert.equal(
      (await cli(["import", fileB, "--dir", b], { env })).code,
      0,
    );
    const pushB = await cli(["sync", "--dir", b, "--json"], { env });
    assert.equal(pushB.code, 0, pushB.err);
    assert.ok(JSON.parse(pushB.out).pushed.segments > 0);
    const pullA = await cli(["sync", "--dir", a], { env });
    assert.equal(pullA.code, 0, pullA.err);
    assert.match(pullA.out, /pulled [1-9]\d* change/);
    assert.deepEqual(await titles(a), await titles(b));
    assert.deepEqual(await titles(a), ["Alpha " + MARKER, "Beta"].sort());

    const scan = await scanFor(target, [MARKER, "from-a", "Alpha"]);
    assert.deepEqual(scan.hits, { [MARKER]: 0, "from-a": 0, Alpha: 0 });

    const ok = await cli(["doctor", "--dir", a, "--json"], { env });
    const okSync = (JSON.parse(ok.out) as { check: string; status: string }[])
      .find((c) => c.check === "sync");
    assert.equal(okSync?.status, "ok", ok.out);

    // b writes more; one of its new segments is tampered with on the target.
    const before = new Set(
      await Array.fromAsync(Deno.readDir(target), (e) => e.name),
    );
    await Deno.writeTextFile(
      fileB,
      `{"conversation":"from-b-2","role":"user","content":"more","title":"Gamma"}\n`,
    );
    assert.equal((await cli(["import", fileB, "--dir", b], { env })).code, 0);
    assert.equal((await cli(["sync", "--dir", b], { env })).code, 0);
    const seg = (await Array.fromAsync(Deno.readDir(target), (e) => e.name))
      .find((n) => n.startsWith("s") && !before.has(n))!;
    const bytes = await Deno.readFile(join(target, seg));
    bytes[bytes.length - 5]! ^= 0x20;
    await Deno.writeFile(join(target, seg), bytes);
    const doctor = await cli(["doctor", "--dir", a, "--json"], { env });
    assert.equal(doctor.code, 1);
    const bad = (JSON.parse(doctor.out) as {
      check: string;
      status: string;
      detail: string;
    }[])
      .find((c) => c.check === "sync");
    assert.equal(bad?.status, "fail");
    assert.match(bad!.detail, /AUTH_FAILED/);
    const refused = await cli(["sync", "--dir", a], { env });
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused), /AUTH_FAILED/);
    assert.deepEqual(await titles(a), ["Alpha " + MARKER, "Beta"].sort());

    // --watch keeps going until Ctrl-C.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...README_FLAGS,
        MAIN,
        "sync",
        "--watch",
        "--interval",
        "0.2",
        "--dir",
        b,
      ],
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const reader = child.stdout.getReader();
    while ((out.match(/pushed/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    child.kill("SIGINT");
    reader.releaseLock();
    await child.stdout.cancel();
    await child.stderr.cancel();
    const status = await child.status;
    assert.ok((out.match(/pushed/g) ?? []).length >= 2, out);
    assert.equal(status.code, 130);
  });
});

Deno.test("aico-data sync compact and sync remove-device (--json counts)", async () => {
  await withDir(async (tmp) => {
    const a = join(tmp, "a"), b = join(tmp, "b"), c = join(tmp, "c");
    const target = join(tmp, "target"), file = join(tmp, "a.jsonl");
    await Deno.writeTextFile(
      file,
      Array.from(
        { length: 30 },
        (_, i) =>
          `{"conversation":"conv-${
            i % 3
          }","role":"user","content":"line ${i}","title":"T${i % 3}"}\n`,
      ).join(""),
    );
    assert.equal((await cli(["init", "--dir", a], { env })).code, 0);
    assert.equal((await cli(["import", file, "--dir", a], { env })).code, 0);
    const init = await cli(["sync", "init", target, "--dir", a], { env });
    assert.equal(init.code, 0, init.err);
    const joined = await cli(
      ["init", "--from-sync", target, "--dir", b, "--json"],
      { env },
    );
    assert.equal(joined.code, 0, joined.err);
    const bId = JSON.parse(joined.out).deviceId as string;

    const bad = await cli(["sync", "compact", "extra", "--dir", a], { env });
    assert.equal(bad.code, 1);
    const compact = await cli(["sync", "compact", "--dir", a, "--json"], {
      env,
    });
    assert.equal(compact.code, 0, compact.err);
    const cj = JSON.parse(compact.out);
    assert.ok(cj.changes > 0 && cj.parts >= 1 && cj.deletedSegments > 0);

    const joined2 = await cli(
      ["init", "--from-sync", target, "--dir", c, "--json"],
      { env },
    );
    assert.equal(joined2.code, 0, joined2.err);
    assert.deepEqual(await titles(c), await titles(a));

    const noId = await cli(["sync", "remove-device", "--dir", a], { env });
    assert.equal(noId.code, 1);
    const removed = await cli(
      ["sync", "remove-device", bId, "--dir", a, "--json"],
      { env },
    );
    assert.equal(removed.code, 0, removed.err);
    assert.equal(JSON.parse(removed.out).removed, bId);
    const refused = await cli(["sync", "--dir", b], { env });
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused), /DEVICE_REMOVED/);
    const doctor = await cli(["doctor", "--dir", b, "--json"], { env });
    const check =
      (JSON.parse(doctor.out) as { check: string; status: string }[])
        .find((x) => x.check === "sync");
    assert.equal(check?.status, "fail");
    assert.equal((await cli(["sync", "--dir", c], { env })).code, 0);
  });
});
