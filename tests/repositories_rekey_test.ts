// Rotating the data key with CORE_SEALED_COLUMNS re-seals every sealed core
// column: the repositories read everything back under the new key.
import assert from "node:assert/strict";
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import { CORE_SEALED_COLUMNS } from "../repositories/core_schema.ts";
import { openStorage } from "../storage/mod.ts";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import {
  createConfigRepository,
  createConversationRepository,
  createUserService,
} from "../repositories/mod.ts";
import { isAicoDataError } from "../errors.ts";

const FAST = {
  argon2: { memoryKiB: 64, iterations: 1 },
  allowWeakArgon2: true,
} as const;

Deno.test("rekey() with CORE_SEALED_COLUMNS keeps every sealed core value readable", async () => {
  await using store = await openTestStore();
  const db = store.storage;
  const users = createUserService(db, FAST);
  await users.createUser({ id: "u", profile: { name: "Ada" } });
  await users.setCredential("u", "pin", "2580");
  await createConfigRepository(db).set("llm", "apiKey", "sk-1", {
    secret: true,
  });
  const conversations = createConversationRepository(db);
  await conversations.createConversation({ id: "c", title: "Secret plans" });
  await conversations.appendMessages("c", [{ role: "user", content: "one" }, {
    role: "assistant",
    content: "two",
  }]);

  const newKey = await importDataKey(generateDataKey());
  await db.rekey(newKey, { sealedColumns: CORE_SEALED_COLUMNS });
  await db.close();

  await using reopened = await openStorage(store.path, { key: newKey });
  const users2 = createUserService(reopened, FAST);
  assert.deepEqual((await users2.getUser("u")).profile, { name: "Ada" });
  assert.equal(await users2.verifyCredential("u", "pin", "2580"), true);
  assert.equal(
    await createConfigRepository(reopened).get("llm", "apiKey"),
    "sk-1",
  );
  const conversations2 = createConversationRepository(reopened);
  assert.equal(
    (await conversations2.getConversation("c")).title,
    "Secret plans",
  );
  assert.deepEqual(
    (await conversations2.listMessages("c")).items.map((m) => m.content),
    ["one", "two"],
  );
  await reopened.close();
  await assert.rejects(
    openStorage(store.path, { key: store.key }),
    (e) => isAicoDataError(e, "WRONG_KEY"),
  );
});
