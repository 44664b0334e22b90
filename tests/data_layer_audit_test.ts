import assert from "node:assert/strict";
import { openDataLayer } from "../mod.ts";
import { rejectsWith, withDir } from "./_helpers.ts";

const kdf = { memoryKiB: 19456, iterations: 2 };
const PW = "a long passphrase";

Deno.test("openDataLayer() keeps an audit trail of unlocks, failed unlocks, rotation and passphrase change", async () => {
  await withDir(async (dir) => {
    {
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        create: true,
        kdf,
      });
      await data.conversations.createConversation({ title: "secret-title-1" });
    }
    await rejectsWith(openDataLayer(dir, { passphrase: "wrong" }), "WRONG_KEY");
    await rejectsWith(openDataLayer(dir, { passphrase: "wrong" }), "WRONG_KEY");
    let newKeyId: string;
    {
      await using data = await openDataLayer(dir, { passphrase: PW });
      newKeyId = await data.rotateKey(PW);
      await data.changePassphrase(PW, "another long passphrase");
    }
    await using data = await openDataLayer(dir, {
      passphrase: "another long passphrase",
    });
    const events = await data.audit.list();
    assert.deepEqual(events.map((e) => e.kind), [
      "unlock",
      "unlock_failed",
      "unlock_failed",
      "unlock",
      "key_rotation",
      "passphrase_change",
      "unlock",
    ]);
    assert.equal(events[0]!.details.method, "created");
    assert.equal(events[1]!.details.reason, "WRONG_KEY");
    assert.equal(events[4]!.details.keyId, newKeyId);
    assert.equal(events[6]!.details.method, "passphrase");
    // The failures moved into the sealed trail; the pending file is gone.
    await assert.rejects(
      Deno.stat(`${dir}/audit-pending.jsonl`),
      Deno.errors.NotFound,
    );
    const report = await data.verify();
    assert.equal(report.ok, true);
    assert.equal(report.audit.count, 7);
    // No audit row carries message content or key material.
    const all = JSON.stringify(events);
    assert.ok(!all.includes("secret-title-1"));
    assert.ok(!all.includes(PW));
    const hex = Array.from(await data.key.purposeKeyBytes("field-aead"))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.ok(!all.includes(hex));
  });
});

Deno.test("DataLayer.verify() reports an audit row removed behind the trail's back", async () => {
  await withDir(async (dir) => {
    {
      await using data = await openDataLayer(dir, {
        passphrase: PW,
        create: true,
        kdf,
      });
      await data.rotateKey(PW);
    }
    await using data = await openDataLayer(dir, { passphrase: PW });
    await data.storage.execute("DROP TRIGGER audit_events_no_delete");
    await data.storage.execute("DELETE FROM audit_events WHERE seq = 2");
    const report = await data.verify();
    assert.equal(report.ok, false);
    assert.equal(report.storage.ok, true);
    assert.deepEqual(report.audit.problems[0], { seq: 2, problem: "missing" });
  });
});
