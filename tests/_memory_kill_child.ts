// Child of tests/data_layer_memory_test.ts: appends a message and dies by
// SIGKILL as soon as the append committed, before its indexing can finish.
import { openDataLayer } from "../mod.ts";

const [dir, marker] = Deno.args;
const data = await openDataLayer(dir!, {
  passphrase: "a long passphrase",
  memory: { background: false },
});
const [conv] = (await data.conversations.listConversations()).items;
await data.conversations.appendMessage(conv!.id, {
  role: "user",
  content: `the parcel code is ${marker}, keep it safe`,
});
Deno.kill(Deno.pid, "SIGKILL");
