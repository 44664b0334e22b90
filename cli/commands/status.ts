import { join } from "node:path";
import { readKeyFileInfo } from "../../crypto/mod.ts";
import { coreSchema } from "../../repositories/mod.ts";
import { IMPORT_SOURCES_SCHEMA } from "../../importers/mod.ts";
import {
  createSchemaRegistry,
  openMigrator,
  type SchemaPlan,
} from "../../schema/mod.ts";
import type { Command } from "../_context.ts";

export const status: Command = {
  name: "status",
  summary: "key, schema versions, counts and integrity",
  usage: "status [--json]",
  help:
    "Shows the data key, the schema versions, what is stored and the integrity check.",
  positionals: [0, 0],
  async run(ctx) {
    await using data = await ctx.openRead();
    const info = await readKeyFileInfo(join(data.dir, "key.json"));
    let plan: readonly SchemaPlan[] = [];
    try {
      await using migrator = await openMigrator(
        data.storage,
        createSchemaRegistry([coreSchema, IMPORT_SOURCES_SCHEMA]),
      );
      plan = await migrator.plan();
    } catch (err) {
      if (!data.readOnly) throw err;
    }
    const verify = await data.storage.verify();
    const count = async (table: string) =>
      Number(
        (await data.storage.execute(`SELECT count(*) AS n FROM ${table}`))
          .rows[0]
          ?.n ?? 0,
      );
    const s = {
      dir: data.dir,
      keyId: info.keyId,
      kdf: info.kdf,
      rotationPending: info.pendingKeyId ?? null,
      schemas: plan.map((p) => ({
        schema: p.schema,
        current: p.current,
        latest: p.latest,
        pending: p.pending.length,
      })),
      integrity: verify.ok ? "ok" : verify.integrity,
      conversations: await count("conversations"),
      messages: await count("messages"),
      logs: (await data.logs.stats()).total,
    };
    if (ctx.json) {
      ctx.printJson(s);
      return 0;
    }
    ctx.print(`folder        ${s.dir}`);
    ctx.print(
      `key           ${s.keyId} (Argon2id m=${info.kdf.memoryKiB} KiB t=${info.kdf.iterations})`,
    );
    if (s.rotationPending !== null) {
      ctx.print(`rotation      pending to ${s.rotationPending}`);
    }
    for (const p of s.schemas) {
      ctx.print(
        `schema        ${p.schema} v${p.current}/${p.latest}${
          p.pending ? " (pending)" : ""
        }`,
      );
    }
    ctx.print(
      `integrity     ${verify.ok ? "ok" : verify.integrity.join("; ")}`,
    );
    ctx.print(`conversations ${s.conversations}`);
    ctx.print(`messages      ${s.messages}`);
    ctx.print(`logs          ${s.logs}`);
    return 0;
  },
};
