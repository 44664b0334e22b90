// Log persistence: every log accepted before close() is in the database
// after a reopen.
import assert from "node:assert/strict";
import { createLogPersistence } from "../repositories/log_persistence.ts";
import { createMessageBus } from "../bus/message_bus.ts";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { createLogRepository } from "../repositories/log_repository.ts";

Deno.test("no log accepted before close() is lost: publish N, close, reopen, count N", async (t) => {
  for (const mode of ["publish", "publishAsync"] as const) {
    await t.step(mode, async () => {
      await using store = await openTestStore();
      const N = 12_345;
      {
        const logs = createLogRepository(store.storage);
        await using bus = createMessageBus();
        const errors: unknown[] = [];
        const persistence = createLogPersistence(bus, logs, {
          batchSize: 1000,
          maxQueue: mode === "publish" ? N : 100, // async: back-pressure with a small queue
          flushIntervalMs: 10,
          onError: (e) => void errors.push(e),
        });
        const levels = ["debug", "info", "warn", "error"];
        for (let i = 0; i < N; i++) {
          const topic = `log.${levels[i % 4]}`;
          const payload = {
            module: `m${i % 7}`,
            message: `event ${i}`,
            ts: 1_000 + i,
            context: { i },
          };
          if (mode === "publish") bus.publish(topic, payload);
          else await bus.publishAsync(topic, payload);
          // Let some batches be written on the timer in between.
          if (i % 4000 === 0) await new Promise((r) => setTimeout(r, 15));
        }
        await persistence.close();
        assert.deepEqual(errors, []);
        assert.equal(persistence.written, N);
        assert.equal(persistence.dropped, 0);
      }
      const storage = await store.reopen();
      const count = await storage.execute(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT message) AS d FROM logs",
      );
      assert.deepEqual({ ...count.rows[0] }, { n: N, d: N });
      const last = await createLogRepository(storage).queryLogs({
        order: "desc",
        limit: 1,
      });
      assert.equal(last.records[0]?.message, `event ${N - 1}`);
      assert.deepEqual(last.records[0]?.context, { i: N - 1 });
    });
  }
});
