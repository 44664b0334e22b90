import { join } from "node:path";
import { openDataLayer } from "../../data_layer/mod.ts";
import { IMPORT_SOURCES_SCHEMA, openImporter } from "../../importers/mod.ts";
import { sampleChatgptExport } from "../_sample.ts";
import { ownerOf } from "./import.ts";
import { searchMessages } from "./search.ts";
import { allConversations, allMessages } from "../_read.ts";
import type { Command } from "../_context.ts";

const DEMO_PASSPHRASE = "demo passphrase: use your own";

export const demo: Command = {
  name: "demo",
  summary: "run the whole toolkit on a sample ChatGPT export (a temp folder)",
  usage: "demo [--dir DIR]",
  help:
    `Creates an encrypted folder (a temporary one unless --dir), imports a sample
ChatGPT-format export of 36 conversations, lists, searches and shows them,
rotates the data key, checks that no file holds plaintext, and shows the
session cache. Uses a fixed demo passphrase.`,
  positionals: [0, 0],
  async run(ctx) {
    const given = typeof ctx.values.dir === "string"
      ? ctx.values.dir
      : undefined;
    const dir = given ?? await Deno.makeTempDir({ prefix: "aico-data-demo-" });
    const sampleFile = await Deno.makeTempFile({
      prefix: "aico-data-sample-",
      suffix: ".json",
    });
    const p = (s: string) => ctx.print(s);
    const started = performance.now();
    const plugins = [IMPORT_SOURCES_SCHEMA];
    try {
      await Deno.writeTextFile(
        sampleFile,
        JSON.stringify(sampleChatgptExport()),
      );
      p(`1. creating an encrypted folder in ${dir} (Argon2id 64 MiB, t=3)`);
      {
        await using data = await openDataLayer(dir, {
          passphrase: DEMO_PASSPHRASE,
          create: true,
          plugins,
        });
        p(`   data key ${data.key.keyId}; schema applied: ${data.applied.length} version(s)`);
        p("2. importing a sample ChatGPT export (message content sealed with AES-256-GCM)");
        const importer = await openImporter(data.storage, {
          userId: await ownerOf(data),
          changes: data.changes,
        });
        const r = await importer.importFile(sampleFile);
        p(`   ${r.conversationsAdded} conversations, ${r.messagesAdded} messages`);
        const again = await importer.importFile(sampleFile);
        p(`   imported again: ${again.messagesAdded} added, ${again.messagesSkipped} already stored`);
        data.bus.publish("log.info", {
          module: "demo",
          message: "imported sample data",
        });
        await data.config.set("companion", "voice", "warm");
        p("3. rotating the data key (re-encrypts pages and sealed columns)");
        const before = data.key.keyId;
        p(`   ${before} -> ${await data.rotateKey(DEMO_PASSPHRASE)}`);
      }
      p("4. reopening with the passphrase: list, search, show");
      await using data = await openDataLayer(dir, {
        passphrase: DEMO_PASSPHRASE,
        plugins,
      });
      let n = 0;
      for await (const c of allConversations(data)) {
        if (n++ < 3) p(`   ${c.id}  ${c.messageCount} messages  ${c.title}`);
      }
      p(`   ... ${n} conversations`);
      const hits = await searchMessages(data, "green tea", 3, ctx.signal);
      p(`   search "green tea": ${hits.length} hit(s), first in [${
        hits[0]?.title
      }]`);
      for await (const m of allMessages(data, "sample-00")) {
        p(`   ${m.role}: ${m.content}`);
      }
      p("5. the plaintext is in no file of the folder");
      let hitsOnDisk = 0;
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile) continue;
        const bytes = new TextDecoder("latin1").decode(
          await Deno.readFile(join(dir, e.name)),
        );
        if (
          bytes.includes("green tea") || bytes.includes("sencha") ||
          bytes.includes("SQLite format 3")
        ) {
          hitsOnDisk++;
        }
      }
      p(`   files containing "green tea" or a plain SQLite header: ${hitsOnDisk}`);
      p("6. session cache (encrypted LMDB), kept fresh by change events");
      const cfg = data.cache!.namespace("config");
      const load = () =>
        cfg.getOrSet(
          "companion/voice",
          () => data.config.get("companion", "voice"),
        );
      p(`   voice: ${await load()} (cached: ${await cfg.get(
        "companion/voice",
      )})`);
      await data.config.set("companion", "voice", "calm");
      p(`   after a change, cached: ${await cfg.get(
        "companion/voice",
      )}; reload: ${await load()}`);
      const v = await data.storage.verify();
      p(`7. integrity   ${v.ok ? "ok" : v.integrity.join("; ")}`);
      if (hitsOnDisk !== 0) throw new Error("plaintext found in the folder");
      p(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      p("next: aico-data init, then aico-data import ~/Downloads/<your ChatGPT or Claude export>.zip");
    } finally {
      await Deno.remove(sampleFile).catch(() => {});
      if (given === undefined) await Deno.remove(dir, { recursive: true });
    }
    return 0;
  },
};
