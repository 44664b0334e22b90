import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { openStorage, type Storage } from "../storage/mod.ts";
import { rejectsWith, withDir } from "../tests/_helpers.ts";
import { auditSchema, createAuditLog } from "./audit_log.ts";

async function withAudit(
  fn: (db: Storage, marker: string) => Promise<void>,
): Promise<void> {
  await withDir(async (dir) => {
    const key = await importDataKey(generateDataKey());
    await using db = await openStorage(`${dir}/a.db`, { key });
    await (await openMigrator(db, createSchemaRegistry([auditSchema])))
      .migrate();
    await fn(db, dir);
  });
}

async function fill(db: Storage, n: number): Promise<void> {
  let t = 1_000;
  const audit = createAuditLog(db, { now: () => t++ });
  for (let i = 0; i < n; i++) {
    await audit.record(i % 2 === 0 ? "unlock" : "backup", { n: i });
  }
}

/** Runs raw SQL past the append-only triggers, as someone editing the file would. */
async function tamper(db: Storage, sql: string): Promise<void> {
  await db.execute("DROP TRIGGER audit_events_no_delete");
  await db.execute("DROP TRIGGER audit_events_no_move");
  await db.execute(sql);
}

Deno.test("AuditLog verifies an intact trail and lists it in order", async () => {
  await withAudit(async (db) => {
    await fill(db, 5);
    const audit = createAuditLog(db);
    const report = await audit.verify();
    assert.deepEqual(report, { ok: true, count: 5, problems: [] });
    const events = await audit.list({ after: 2, limit: 2 });
    assert.deepEqual(events.map((e) => [e.seq, e.at, e.kind, e.details.n]), [
      [3, 1002, "unlock", 2],
      [4, 1003, "backup", 3],
    ]);
    assert.deepEqual(
      (await audit.list({ kind: "backup" })).map((e) => e.seq),
      [2, 4],
    );
  });
});

Deno.test("AuditLog refuses deleting or moving rows through SQL (append-only triggers)", async () => {
  await withAudit(async (db) => {
    await fill(db, 2);
    for (
      const sql of [
        "DELETE FROM audit_events",
        "UPDATE audit_events SET at = 5 WHERE seq = 1",
      ]
    ) {
      await assert.rejects(db.execute(sql), (err: unknown) => {
        assert.ok(isAicoDataError(err), String(err));
        assert.match(String(err.cause ?? err.message), /append-only/);
        return true;
      });
    }
    assert.equal((await createAuditLog(db).verify()).ok, true);
  });
});

Deno.test("AuditLog.verify() reports a removed row", async () => {
  await withAudit(async (db) => {
    await fill(db, 5);
    await tamper(db, "DELETE FROM audit_events WHERE seq = 3");
    const report = await createAuditLog(db).verify();
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems, [
      { seq: 3, problem: "missing" },
      { seq: 4, problem: "chain" },
    ]);
  });
});

Deno.test("AuditLog.verify() reports a removed row that is renumbered to hide the gap", async () => {
  await withAudit(async (db) => {
    await fill(db, 4);
    await tamper(db, "DELETE FROM audit_events WHERE seq = 2");
    await db.execute("UPDATE audit_events SET seq = seq - 1 WHERE seq > 2");
    const report = await createAuditLog(db).verify();
    assert.equal(report.ok, false);
    // Renumbered rows no longer open: their sealed bodies are bound to their position.
    assert.ok(report.problems.some((p) => p.problem === "edited"));
  });
});

Deno.test("AuditLog.verify() reports edited columns and an edited sealed body", async () => {
  await withAudit(async (db) => {
    await fill(db, 4);
    await tamper(db, "UPDATE audit_events SET at = 7 WHERE seq = 2");
    await db.execute("UPDATE audit_events SET kind = 'erase' WHERE seq = 3");
    const rs = await db.execute("SELECT body FROM audit_events WHERE seq = 4");
    const body = new Uint8Array(rs.rows[0]!.body as Uint8Array);
    body[20]! ^= 0x01;
    await db.execute({
      sql: "UPDATE audit_events SET body = ? WHERE seq = 4",
      args: [body],
    });
    const report = await createAuditLog(db).verify();
    assert.deepEqual(report.problems, [
      { seq: 2, problem: "edited" },
      { seq: 3, problem: "edited" },
      { seq: 4, problem: "edited" },
    ]);
    await rejectsWith(createAuditLog(db).list(), "AUTH_FAILED");
  });
});

Deno.test("AuditLog.verify() reports reordered rows", async () => {
  await withAudit(async (db) => {
    await fill(db, 4);
    // Swap the bodies (and columns) of rows 2 and 3.
    await tamper(
      db,
      "UPDATE audit_events SET seq = -2 WHERE seq = 2",
    );
    await db.execute("UPDATE audit_events SET seq = 2 WHERE seq = 3");
    await db.execute("UPDATE audit_events SET seq = 3 WHERE seq = -2");
    const report = await createAuditLog(db).verify();
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.filter((p) => p.seq === 2 || p.seq === 3).map((p) =>
        p.problem
      ),
      ["edited", "edited"],
    );
  });
});

Deno.test("AuditLog.record() refuses unknown kinds and details that are not flat and short", async () => {
  await withAudit(async (db) => {
    const audit = createAuditLog(db);
    const bad: unknown[] = [
      [],
      { nested: { a: 1 } },
      { n: Number.NaN },
      { s: "x".repeat(201) },
      { "bad name": 1 },
      { s: "\ud800" },
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, i])),
    ];
    for (const details of bad) {
      await rejectsWith(
        audit.record("unlock", details as Record<string, number>),
        "INVALID_INPUT",
      );
    }
    await rejectsWith(
      audit.record("nope" as "unlock"),
      "INVALID_INPUT",
    );
    await rejectsWith(audit.list({ limit: 0 }), "INVALID_INPUT");
    assert.equal((await audit.verify()).count, 0);
  });
});

Deno.test("AuditLog rows hold no plaintext detail in the table", async () => {
  await withAudit(async (db) => {
    const audit = createAuditLog(db);
    await audit.record("export", { scope: "conversation-marker-7781" });
    const rs = await db.execute("SELECT body FROM audit_events");
    const body = rs.rows[0]!.body as Uint8Array;
    assert.ok(
      !new TextDecoder("utf-8", { fatal: false }).decode(body).includes(
        "marker-7781",
      ),
    );
  });
});
