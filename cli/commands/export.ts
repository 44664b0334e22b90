import type { ReadView } from "../_context.ts";
import type { Conversation } from "../../repositories/mod.ts";
import { allConversations, allMessages, shortDate } from "../_read.ts";
import { CliError, UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";

/** The AAD a sealed export is bound to. */
export const EXPORT_AAD = "aico-data-export/v1";

/** One exported conversation (the `aico-data-export` JSON format, version 1). */
export interface ExportedConversation {
  readonly id: string;
  readonly title: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly messages: readonly {
    readonly seq: number;
    readonly role: string;
    readonly content: string;
    readonly createdAt: number;
  }[];
}

async function collect(
  data: Pick<ReadView, "conversations">,
  id: string | undefined,
): Promise<ExportedConversation[]> {
  const picked: Conversation[] = [];
  if (id !== undefined) {
    picked.push(await data.conversations.getConversation(id));
  } else for await (const c of allConversations(data)) picked.push(c);
  const out: ExportedConversation[] = [];
  for (const c of picked) {
    const messages = [];
    for await (const m of allMessages(data, c.id)) {
      messages.push({
        seq: m.seq,
        role: m.role,
        content: m.content,
        createdAt: m.createdAt,
      });
    }
    out.push({
      id: c.id,
      title: c.title ?? null,
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
      messages,
    });
  }
  return out;
}

function markdown(conversations: readonly ExportedConversation[]): string {
  const parts: string[] = [];
  for (const c of conversations) {
    parts.push(
      `# ${c.title ?? "(untitled)"}\n\n_${c.id} · ${shortDate(c.createdAt)}_\n`,
    );
    for (const m of c.messages) {
      parts.push(`**${m.role}** · ${shortDate(m.createdAt)}\n\n${m.content}\n`);
    }
  }
  return parts.join("\n");
}

export const exportCommand: Command = {
  name: "export",
  summary: "export a conversation or everything, sealed unless --plaintext",
  usage: "export [ID] [--markdown] [--plaintext] [--out FILE]",
  help:
    `Writes the conversations (or only ID) as JSON ({"format":"aico-data-export",
"version":1,"conversations":[{id,title,createdAt,updatedAt,messages:[{seq,role,
content,createdAt}]}]}) or, with --markdown, as Markdown for reading.

By default the export is SEALED with the folder's export key (AES-256-GCM):
{"format":"aico-data-export-sealed","version":1,"keyId","contentType","sealed"
(base64)}; only this folder's data key opens it.

  --markdown    Markdown instead of JSON
  --plaintext   write it unencrypted (a warning is printed)
  --out FILE    write to FILE (default: standard output)`,
  options: {
    markdown: { type: "boolean" },
    plaintext: { type: "boolean" },
    out: { type: "string" },
  },
  positionals: [0, 1],
  async run(ctx) {
    const out = ctx.values.out;
    if (out !== undefined && (typeof out !== "string" || out === "")) {
      throw new UsageError("--out needs a file path", "export");
    }
    await using data = await ctx.openRead();
    const conversations = await collect(data, ctx.positionals[0]);
    const isMd = ctx.values.markdown === true;
    const body = isMd ? markdown(conversations) : JSON.stringify(
      {
        format: "aico-data-export",
        version: 1,
        exportedAt: Date.now(),
        conversations,
      },
      null,
      2,
    ) + "\n";
    let text: string;
    if (ctx.values.plaintext === true) {
      ctx.note(
        "warning: this export is NOT encrypted: anyone who can read it reads your conversations",
      );
      text = body;
    } else {
      const sealer = await data.key.sealer("export");
      const sealed = await sealer.seal(body, EXPORT_AAD);
      text = JSON.stringify({
        format: "aico-data-export-sealed",
        version: 1,
        keyId: data.key.keyId,
        contentType: isMd ? "text/markdown" : "application/json",
        sealed: sealed.toBase64(),
      }) + "\n";
    }
    if (typeof out === "string") {
      try {
        await Deno.writeTextFile(out, text, { createNew: true, mode: 0o600 });
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new CliError(`"${out}" exists`, "choose another --out file");
        }
        throw err;
      }
      ctx.note(`exported ${conversations.length} conversations to ${out}`);
    } else {
      await Deno.stdout.write(new TextEncoder().encode(text));
    }
    return 0;
  },
};
