import assert from "node:assert/strict";
import { isAicoDataError } from "../errors.ts";
import { openTestStore } from "./_doc_helpers.ts";
import {
  createUserService,
  resolveUserServiceOptions,
  type UserServiceOptions,
} from "./user_service.ts";

/** Low Argon2id cost for tests only (the defaults are 64 MiB, 3 passes). */
const FAST: UserServiceOptions = {
  argon2: { memoryKiB: 256, iterations: 1 },
  allowWeakArgon2: true,
};

Deno.test("createUser(), getUser(), updateProfile() and deleteUser() round-trip a sealed profile", async () => {
  await using store = await openTestStore();
  let now = 1_000;
  const users = createUserService(store.storage, { ...FAST, now: () => now });
  const profile = {
    name: "'; DROP TABLE users; --",
    langs: ["de", "en"],
    age: 36,
    pet: null,
  };
  const u = await users.createUser({ id: "ada", profile });
  assert.deepEqual(u, {
    id: "ada",
    profile,
    createdAt: 1_000,
    updatedAt: 1_000,
  });
  assert.deepEqual(await users.getUser("ada"), u);
  now = 2_000;
  const updated = await users.updateProfile("ada", { name: "Ada" });
  assert.deepEqual(updated, {
    id: "ada",
    profile: { name: "Ada" },
    createdAt: 1_000,
    updatedAt: 2_000,
  });
  assert.deepEqual(await users.getUser("ada"), updated);
  const generated = await users.createUser();
  assert.match(generated.id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(generated.profile, {});
  assert.equal(await users.deleteUser("ada"), true);
  assert.equal(await users.deleteUser("ada"), false);
  await assert.rejects(
    users.getUser("ada"),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  await assert.rejects(
    users.updateProfile("ada", {}),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  await assert.rejects(
    users.createUser({ id: generated.id }),
    (e) => isAicoDataError(e, "ALREADY_EXISTS"),
  );
  // The tables survived the injection-looking value.
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM users")).rows[0]?.n,
    1,
  );
});

Deno.test("profiles are sealed: no plaintext in the row, and a moved value fails with AUTH_FAILED", async () => {
  await using store = await openTestStore();
  const users = createUserService(store.storage, FAST);
  await users.createUser({ id: "a", profile: { secret: "hunter2-profile" } });
  await users.createUser({ id: "b", profile: { secret: "other" } });
  const raw =
    (await store.storage.execute("SELECT profile FROM users WHERE id = 'a'"))
      .rows[0]?.profile;
  assert.ok(raw instanceof Uint8Array);
  assert.ok(!new TextDecoder().decode(raw).includes("hunter2"));
  await store.storage.execute(
    "UPDATE users SET profile = (SELECT profile FROM users WHERE id = 'a') WHERE id = 'b'",
  );
  await assert.rejects(
    users.getUser("b"),
    (e) => isAicoDataError(e, "AUTH_FAILED"),
  );
});

Deno.test("invalid user input gives INVALID_INPUT and changes nothing", async () => {
  await using store = await openTestStore();
  const users = createUserService(store.storage, FAST);
  await users.createUser({ id: "keep", profile: { v: 1 } });
  const bad: unknown[] = [
    { id: "" },
    { id: "a b" },
    { id: "x".repeat(129) },
    { id: 5 },
    { profile: [] },
    { profile: "str" },
    { profile: { n: Infinity } },
    { profile: { big: "x".repeat(70_000) } },
    "nope",
  ];
  for (const u of bad) {
    await assert.rejects(
      users.createUser(u as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      JSON.stringify(u),
    );
  }
  await assert.rejects(
    users.updateProfile("keep", { f: (() => 1) as never }),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await assert.rejects(
    users.getUser("'; DROP TABLE users; --"),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM users")).rows[0]?.n,
    1,
  );
  assert.deepEqual((await users.getUser("keep")).profile, { v: 1 });
});

Deno.test("setCredential() and verifyCredential() check PINs and passwords with Argon2id", async (t) => {
  await using store = await openTestStore();
  const users = createUserService(store.storage, FAST);
  await users.createUser({ id: "u" });
  await t.step("pin", async () => {
    await users.setCredential("u", "pin", "4711");
    assert.equal(await users.verifyCredential("u", "pin", "4711"), true);
    assert.equal(await users.verifyCredential("u", "pin", "4712"), false);
    assert.equal(await users.verifyCredential("u", "pin", ""), false);
  });
  await t.step("password, including injection-looking text", async () => {
    const pw = "'; DROP TABLE user_credentials; --";
    await users.setCredential("u", "password", pw);
    assert.equal(await users.verifyCredential("u", "password", pw), true);
    assert.equal(
      await users.verifyCredential("u", "password", pw + " "),
      false,
    );
  });
  await t.step("hash and parameters are stored, the hash sealed", async () => {
    const row = (await store.storage.execute(
      "SELECT hash, params FROM user_credentials WHERE user_id = 'u' AND kind = 'pin'",
    )).rows[0]!;
    assert.deepEqual(JSON.parse(row.params as string), {
      alg: "argon2id",
      v: 19,
      m: 256,
      t: 1,
      p: 1,
      saltLength: 16,
      hashLength: 32,
    });
    assert.equal((row.hash as Uint8Array).length, 1 + 12 + 48 + 16);
  });
  await t.step(
    "replacing a credential invalidates the old secret",
    async () => {
      await users.setCredential("u", "pin", "123456");
      assert.equal(await users.verifyCredential("u", "pin", "4711"), false);
      assert.equal(await users.verifyCredential("u", "pin", "123456"), true);
    },
  );
  await t.step(
    "a stored hash moved to another user does not open",
    async () => {
      await users.createUser({ id: "v" });
      await users.setCredential("v", "pin", "9999");
      await store.storage.execute(
        "UPDATE user_credentials SET hash = (SELECT hash FROM user_credentials WHERE user_id = 'u' AND kind = 'pin') WHERE user_id = 'v' AND kind = 'pin'",
      );
      await assert.rejects(
        users.verifyCredential("v", "pin", "123456"),
        (e) => isAicoDataError(e, "AUTH_FAILED"),
      );
    },
  );
  await t.step("remove", async () => {
    assert.equal(await users.removeCredential("u", "password"), true);
    await assert.rejects(
      users.verifyCredential("u", "password", "whatever1"),
      (e) => isAicoDataError(e, "NOT_FOUND"),
    );
  });
});

Deno.test("malformed credentials give INVALID_INPUT and store nothing", async () => {
  await using store = await openTestStore();
  const users = createUserService(store.storage, FAST);
  await users.createUser({ id: "u" });
  for (const pin of ["123", "1234567890123", "12a4", " 1234", 1234, "١٢٣٤"]) {
    await assert.rejects(
      users.setCredential("u", "pin", pin as string),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
      String(pin),
    );
  }
  for (const pw of ["short", "x".repeat(1025), "\udc00abcdefgh", null]) {
    await assert.rejects(
      users.setCredential("u", "password", pw as string),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
  await assert.rejects(
    users.setCredential("u", "token" as never, "12345678"),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  await assert.rejects(
    users.setCredential("nobody", "pin", "1234"),
    (e) => isAicoDataError(e, "NOT_FOUND"),
  );
  await assert.rejects(
    users.verifyCredential("u", "pin", 1234 as never),
    (e) => isAicoDataError(e, "INVALID_INPUT"),
  );
  assert.equal(
    (await store.storage.execute("SELECT COUNT(*) AS n FROM user_credentials"))
      .rows[0]?.n,
    0,
  );
});

Deno.test("repeated failures lock the credential with an increasing backoff", async (t) => {
  await using store = await openTestStore();
  let now = 1_000_000;
  const users = createUserService(store.storage, {
    ...FAST,
    maxAttempts: 3,
    lockoutMs: 10_000,
    maxLockoutMs: 25_000,
    now: () => now,
  });
  await users.createUser({ id: "u" });
  await users.setCredential("u", "pin", "2468");
  await t.step("first lockout after maxAttempts failures", async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal(await users.verifyCredential("u", "pin", "0000"), false);
    }
    assert.deepEqual(await users.credentialStatus("u", "pin"), {
      failedAttempts: 0,
      lockouts: 1,
      lockedUntil: 1_010_000,
    });
    // Even the right PIN is refused during the lockout.
    await assert.rejects(
      users.verifyCredential("u", "pin", "2468"),
      (e) => isAicoDataError(e, "LOCKED_OUT"),
    );
    // No hashing during a lockout: with the stored hash made unreadable the
    // answer is still LOCKED_OUT (opening it would give AUTH_FAILED).
    const saved = await store.storage.execute(
      "SELECT hash FROM user_credentials",
    );
    await store.storage.execute("UPDATE user_credentials SET hash = x'00'");
    await assert.rejects(
      users.verifyCredential("u", "pin", "2468"),
      (e) => isAicoDataError(e, "LOCKED_OUT"),
    );
    await store.storage.execute("UPDATE user_credentials SET hash = ?", [
      saved.rows[0]!.hash as Uint8Array,
    ]);
  });
  await t.step(
    "the second lockout lasts twice as long, the third is capped",
    async () => {
      now = 1_010_001;
      for (let i = 0; i < 3; i++) {
        assert.equal(
          await users.verifyCredential("u", "pin", "1111"),
          false,
        );
      }
      assert.equal(
        (await users.credentialStatus("u", "pin")).lockedUntil,
        1_010_001 + 20_000,
      );
      now += 20_000;
      for (let i = 0; i < 3; i++) {
        assert.equal(
          await users.verifyCredential("u", "pin", "1111"),
          false,
        );
      }
      assert.equal(
        (await users.credentialStatus("u", "pin")).lockedUntil,
        now + 25_000,
      );
    },
  );
  await t.step("a success after the lockout resets the counters", async () => {
    now += 25_000;
    assert.equal(await users.verifyCredential("u", "pin", "1111"), false);
    assert.equal(await users.verifyCredential("u", "pin", "2468"), true);
    assert.deepEqual(await users.credentialStatus("u", "pin"), {
      failedAttempts: 0,
      lockouts: 0,
      lockedUntil: undefined,
    });
  });
  await t.step("parallel guesses cannot exceed maxAttempts", async () => {
    const results = await Promise.allSettled(
      Array.from(
        { length: 10 },
        () => users.verifyCredential("u", "pin", "1357"),
      ),
    );
    const answered = results.filter((r) => r.status === "fulfilled");
    assert.ok(answered.length <= 3, `answered: ${answered.length}`);
    assert.ok(
      results.filter((r) => r.status === "rejected").every((r) =>
        isAicoDataError((r as PromiseRejectedResult).reason, "LOCKED_OUT")
      ),
    );
    await assert.rejects(
      users.verifyCredential("u", "pin", "2468"),
      (e) => isAicoDataError(e, "LOCKED_OUT"),
    );
  });
});

Deno.test("resolveUserServiceOptions() applies costly defaults and refuses weak or bad values", () => {
  const o = resolveUserServiceOptions();
  assert.deepEqual(o.argon2, {
    memoryKiB: 65_536,
    iterations: 3,
    parallelism: 1,
  });
  assert.equal(o.maxAttempts, 5);
  assert.equal(o.lockoutMs, 30_000);
  assert.equal(o.maxLockoutMs, 3_600_000);
  assert.throws(
    () => resolveUserServiceOptions({ argon2: { memoryKiB: 19_455 } }),
    (e) => isAicoDataError(e, "WEAK_KDF_PARAMS"),
  );
  assert.throws(
    () => resolveUserServiceOptions({ argon2: { iterations: 1 } }),
    (e) => isAicoDataError(e, "WEAK_KDF_PARAMS"),
  );
  resolveUserServiceOptions({ argon2: { memoryKiB: 19_456, iterations: 2 } });
  for (
    const bad of [{ maxAttempts: 0 }, { lockoutMs: -1 }, {
      argon2: { parallelism: 0 },
    }, { now: "x" }]
  ) {
    assert.throws(
      () => resolveUserServiceOptions(bad as never),
      (e) => isAicoDataError(e, "INVALID_INPUT"),
    );
  }
});

Deno.test("the default Argon2id parameters (64 MiB, 3 passes) hash and verify", async () => {
  await using store = await openTestStore();
  const users = createUserService(store.storage);
  await users.createUser({ id: "u" });
  await users.setCredential("u", "password", "correct horse battery");
  const row =
    (await store.storage.execute("SELECT params FROM user_credentials"))
      .rows[0]!;
  assert.deepEqual(
    {
      ...JSON.parse(row.params as string),
      saltLength: undefined,
      hashLength: undefined,
    },
    {
      alg: "argon2id",
      v: 19,
      m: 65_536,
      t: 3,
      p: 1,
      saltLength: undefined,
      hashLength: undefined,
    },
  );
  assert.equal(
    await users.verifyCredential("u", "password", "correct horse battery"),
    true,
  );
});

Deno.test("hashes made with older parameters still verify after the defaults change", async () => {
  await using store = await openTestStore();
  const old = createUserService(store.storage, {
    argon2: { memoryKiB: 128, iterations: 1 },
    allowWeakArgon2: true,
  });
  await old.createUser({ id: "u" });
  await old.setCredential("u", "pin", "1357");
  const current = createUserService(store.storage, {
    argon2: { memoryKiB: 512, iterations: 2 },
    allowWeakArgon2: true,
  });
  assert.equal(await current.verifyCredential("u", "pin", "1357"), true);
  assert.equal(await current.verifyCredential("u", "pin", "7531"), false);
});
