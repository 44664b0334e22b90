// PIN lockout state lives in the database: it survives closing and reopening
// the store (a restart), and a new UserService sees it.
import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import { createUserService } from "../repositories/user_service.ts";

const FAST = {
  argon2: { memoryKiB: 256, iterations: 1 },
  allowWeakArgon2: true,
} as const;

Deno.test("PIN lockout survives closing and reopening the store", async (t) => {
  await using store = await openTestStore();
  let now = 5_000_000;
  const clock = (): number => now;
  await t.step("five failures lock the PIN", async () => {
    const users = createUserService(store.storage, { ...FAST, now: clock });
    await users.createUser({ id: "ada" });
    await users.setCredential("ada", "pin", "8642");
    for (let i = 0; i < 4; i++) {
      assert.equal(await users.verifyCredential("ada", "pin", "0000"), false);
    }
    assert.equal(
      (await users.credentialStatus("ada", "pin")).failedAttempts,
      4,
    );
    assert.equal(await users.verifyCredential("ada", "pin", "0000"), false);
    await assert.rejects(
      users.verifyCredential("ada", "pin", "8642"),
      (e) => isAicoDataError(e, "LOCKED_OUT"),
    );
  });
  await t.step(
    "after a reopen the lockout still holds, even for the right PIN",
    async () => {
      const storage = await store.reopen();
      const users = createUserService(storage, { ...FAST, now: clock });
      const status = await users.credentialStatus("ada", "pin");
      assert.deepEqual(status, {
        failedAttempts: 0,
        lockouts: 1,
        lockedUntil: 5_000_000 + 30_000,
      });
      await assert.rejects(
        users.verifyCredential("ada", "pin", "8642"),
        (e) => isAicoDataError(e, "LOCKED_OUT"),
      );
    },
  );
  await t.step(
    "failures counted before a reopen still count after it",
    async () => {
      now += 30_001;
      let users = createUserService(store.storage, { ...FAST, now: clock });
      for (let i = 0; i < 3; i++) {
        assert.equal(
          await users.verifyCredential("ada", "pin", "1111"),
          false,
        );
      }
      users = createUserService(await store.reopen(), { ...FAST, now: clock });
      assert.equal(
        (await users.credentialStatus("ada", "pin")).failedAttempts,
        3,
      );
      assert.equal(await users.verifyCredential("ada", "pin", "1111"), false);
      assert.equal(await users.verifyCredential("ada", "pin", "1111"), false);
      // Second lockout: twice as long, also persisted.
      users = createUserService(await store.reopen(), { ...FAST, now: clock });
      assert.equal(
        (await users.credentialStatus("ada", "pin")).lockedUntil,
        now + 60_000,
      );
    },
  );
  await t.step(
    "when the lockout ends the right PIN works and resets the state",
    async () => {
      now += 60_001;
      const users = createUserService(await store.reopen(), {
        ...FAST,
        now: clock,
      });
      assert.equal(await users.verifyCredential("ada", "pin", "8642"), true);
      assert.deepEqual(await users.credentialStatus("ada", "pin"), {
        failedAttempts: 0,
        lockouts: 0,
        lockedUntil: undefined,
      });
    },
  );
});
