// Child process of bench/import_bench.ts: imports one file into a fresh
// encrypted store and prints {"messages", "seconds", "peakRssMiB"} on stdout.
//   mode "stream":   importers/ (streaming parse, one transaction, source ids)
//   mode "baseline": the previous CLI import (whole file read, split into
//                    lines, grouped in memory, one append per conversation)
import { generateDataKey, importDataKey } from "../crypto/mod.ts";
import {
  coreSchema,
  createConversationRepository,
} from "../repositories/mod.ts";
import { createSchemaRegistry, openMigrator } from "../schema/mod.ts";
import { openStorage } from "../storage/mod.ts";
import { openImporter } from "../importers/mod.ts";

const [mode, file] = Deno.args as [string, string];
const dir = await Deno.makeTempDir({ prefix: "aico_import_bench_" });
let peak = 0;
const sample = () => {
  const rss = Deno.memoryUsage().rss;
  if (rss > peak) peak = rss;
};
const timer = setInterval(sample, 20);
try {
  const storage = await openStorage(`${dir}/data.db`, {
    key: await importDataKey(generateDataKey()),
  });
  await (await openMigrator(storage, createSchemaRegistry([coreSchema])))
    .migrate();
  let messages = 0;
  const t0 = performance.now();
  if (mode === "stream") {
    const importer = await openImporter(storage);
    messages = (await importer.importFile(file)).messagesAdded;
  } else {
    const repo = createConversationRepository(storage);
    const text = await Deno.readTextFile(file);
    const byConversation = new Map<
      string,
      { role: "user" | "assistant"; content: string; ts: number }[]
    >();
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const v = JSON.parse(line);
      const list = byConversation.get(v.conversation) ?? [];
      list.push(v);
      byConversation.set(v.conversation, list);
    }
    for (const [id, list] of byConversation) {
      await repo.createConversation({ id, title: id });
      await repo.appendMessages(
        id,
        list.map((m) => ({
          role: m.role,
          content: m.content,
          createdAt: m.ts,
        })),
      );
      messages += list.length;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  sample();
  // The kernel's high-water mark, when there is one, catches peaks between samples.
  try {
    const status = await Deno.readTextFile("/proc/self/status");
    const hwm = status.match(/VmHWM:\s+(\d+) kB/);
    if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
  } catch {
    // not Linux
  }
  await storage.close();
  // deno-lint-ignore no-console
  console.log(
    JSON.stringify({ messages, seconds, peakRssMiB: peak / 2 ** 20 }),
  );
} finally {
  clearInterval(timer);
  await Deno.remove(dir, { recursive: true });
}
