// aico-data inventory and audit, and the audit events of export and restore
// seen from the command line.
import assert from "node:assert/strict";
import { withDir } from "./_helpers.ts";
import { cli, EXPORTS, PASSPHRASE } from "./_cli.ts";

const env = { AICO_DATA_PASSPHRASE: PASSPHRASE };

Deno.test("aico-data inventory lists real counts; audit lists export and restore events without content", async () => {
  await withDir(async (tmp) => {
    const a = `${tmp}/a`;
    assert.equal((await cli(["init", "--dir", a], { env })).code, 0);
    const imp = await cli(
      ["import", "--dir", a, "--json", `${EXPORTS}messages.jsonl`],
      { env },
    );
    assert.equal(imp.code, 0, imp.err);
    const added = JSON.parse(imp.out)[0].messagesAdded as number;
    assert.ok(added > 0);

    const inv = await cli(["inventory", "--dir", a, "--json"], { env });
    assert.equal(inv.code, 0, inv.err);
    const doc = JSON.parse(inv.out);
    const tables = doc.stores[0].tables as {
      name: string;
      rows: number;
      sealedColumns: string[];
    }[];
    const messages = tables.find((t) => t.name === "messages")!;
    assert.equal(messages.rows, added);
    assert.deepEqual(messages.sealedColumns, ["content"]);
    assert.ok(
      (doc.files as { path: string }[]).some((f) => f.path === "data.db"),
    );
    const text = await cli(["inventory", "--dir", a], { env });
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /messages\s+\d+ rows/);
    assert.match(text.out, /sealed: content/);

    // Export to stdout without --plaintext is sealed; with it, warned.
    const out = await cli(["export", "--dir", a], { env });
    assert.equal(out.code, 0, out.err);
    assert.match(out.out, /^\{"format":"aico-data-export-sealed","version":2,/);
    assert.doesNotMatch(out.err, /NOT encrypted/);
    const plain = await cli(["export", "--dir", a, "--plaintext"], { env });
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.err, /warning: this export is NOT encrypted/);
    assert.equal(JSON.parse(plain.out).format, "aico-data-export");

    const bk = `${tmp}/bk`;
    assert.equal(
      (await cli(["backup", "--dir", a, "--to", bk], { env })).code,
      0,
    );
    const r = `${tmp}/r`;
    const restored = await cli(["restore", bk, "--dir", r], { env });
    assert.equal(restored.code, 0, restored.err);

    const trail = await cli(["audit", "--dir", a, "--json"], { env });
    assert.equal(trail.code, 0, trail.err);
    const events = JSON.parse(trail.out) as {
      kind: string;
      details: Record<string, unknown>;
    }[];
    const exports = events.filter((e) => e.kind === "export");
    assert.deepEqual(exports.map((e) => e.details.sealed), [true, false]);
    assert.equal(exports[0]!.details.messages, added);
    const rTrail = await cli([
      "audit",
      "--dir",
      r,
      "--json",
      "--kind",
      "restore",
    ], {
      env,
    });
    assert.equal(rTrail.code, 0, rTrail.err);
    const restores = JSON.parse(rTrail.out);
    assert.equal(restores.length, 1);
    assert.equal(restores[0].details.source, "backup");
    assert.equal(restores[0].details.integrity, true);
    // The restored trail continues the backup's: its export events are there.
    const all = JSON.parse(
      (await cli(["audit", "--dir", r, "--json"], { env })).out,
    ) as { seq: number; kind: string }[];
    assert.deepEqual(all.map((e) => e.seq), all.map((_, i) => i + 1));
    assert.ok(all.some((e) => e.kind === "export"));
    const lines = await cli(["audit", "--dir", a, "--limit", "2"], { env });
    assert.equal(lines.out.trim().split("\n").length, 2);
    // No content in any event.
    const jsonl = await Deno.readTextFile(`${EXPORTS}messages.jsonl`);
    const contents = jsonl.trim().split("\n").map((l) => JSON.parse(l).content);
    for (const c of contents) {
      assert.ok(!trail.out.includes(c), "an audit event holds content");
    }
    const bad = await cli(["audit", "--dir", a, "--kind", "nope"], { env });
    assert.equal(bad.code, 2);
  });
});
