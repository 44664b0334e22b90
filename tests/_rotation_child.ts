// Child process of data_layer_rotation_test.ts: one step of a data layer's
// life in a fresh process. Not part of the package.
//
//   deno run -A tests/_rotation_child.ts <dir> <step>
// steps: seed | verify | rotate | crash-pending | crash-rekey |
//        crash-reseal | crash-before-complete
// `verify` prints a JSON line with every value read back.
import { openDataLayer } from "../mod.ts";
import { beginKeyRotation } from "../crypto/mod.ts";
import { registerSchema } from "../schema/mod.ts";
import type { DataKey } from "../crypto/mod.ts";

export const PW = "a long test passphrase";
const kdf = { memoryKiB: 19456, iterations: 2 } as const;

/** A plugin whose only column of note is sealed. */
export const notesSchema = registerSchema("notes", "notes", {
  priority: 10,
  sealedColumns: [{
    table: "plugin_notes_items",
    column: "body",
    rowKey: "id",
  }],
}, [{
  version: 1,
  name: "create_notes",
  up:
    "CREATE TABLE plugin_notes_items (id TEXT PRIMARY KEY, body BLOB NOT NULL)",
}]);

export const NOTES = ["remember the tea", "Sencha 🍵", "e\u0301"];

const [dir, step] = Deno.args;
if (dir !== undefined && step !== undefined) {
  const data = await openDataLayer(dir, {
    passphrase: PW,
    create: step === "seed",
    kdf,
    plugins: [notesSchema],
  });
  const body = data.storage.sealedColumn("plugin_notes_items", "body");
  const keyPath = `${dir}/key.json`;
  const crash = (): never => Deno.exit(0); // no close: as if killed
  switch (step) {
    case "seed": {
      for (const [i, text] of NOTES.entries()) {
        await data.storage.execute(
          "INSERT INTO plugin_notes_items (id, body) VALUES (?, ?)",
          [`n${i}`, await body.seal(`n${i}`, text)],
        );
      }
      const user = await data.users.createUser({
        id: "u",
        profile: { name: "Ada" },
      });
      await data.conversations.createConversation({
        id: "c",
        userId: user.id,
        title: "Tea",
      });
      await data.conversations.appendMessages(
        "c",
        NOTES.map((content) => ({ role: "user" as const, content })),
      );
      await data.config.set("llm", "apiKey", "sk-secret", { secret: true });
      break;
    }
    case "verify": {
      const rs = await data.storage.execute(
        "SELECT id, body FROM plugin_notes_items ORDER BY id",
      );
      const notes: string[] = [];
      for (const row of rs.rows) {
        notes.push(
          await body.openText(String(row.id), row.body as Uint8Array),
        );
      }
      const out = {
        keyId: data.key.keyId,
        notes,
        messages: (await data.conversations.listMessages("c")).items.map((m) =>
          m.content
        ),
        title: (await data.conversations.getConversation("c")).title,
        profile: (await data.users.getUser("u")).profile,
        apiKey: await data.config.get("llm", "apiKey"),
      };
      await data.close();
      await Deno.stdout.write(
        new TextEncoder().encode(JSON.stringify(out) + "\n"),
      );
      break;
    }
    case "rotate":
      await data.rotateKey(PW);
      break;
    case "crash-pending":
      await beginKeyRotation(keyPath, PW);
      crash();
      break;
    case "crash-rekey":
    case "crash-reseal": {
      const { pending } = await beginKeyRotation(keyPath, PW);
      // The store's own step hook (tests only): stops there as a crash would.
      await (data.storage as unknown as {
        rekeySteps(k: DataKey, o: unknown, s: string): Promise<void>;
      }).rekeySteps(
        pending!,
        { sealedColumns: data.registry.sealedColumns },
        step === "crash-rekey" ? "rekey" : "reseal",
      );
      crash();
      break;
    }
    case "crash-before-complete": {
      const { pending } = await beginKeyRotation(keyPath, PW);
      await data.storage.rekey(pending!, {
        sealedColumns: data.registry.sealedColumns,
      });
      crash();
      break;
    }
    default:
      throw new Error(`unknown step ${step}`);
  }
  await data.close();
}
