// Scenarios 4, 5 and 11: a wrong passphrase or key changes no byte; a
// plaintext marker written through every public write path is found 0 times
// in any file the toolkit writes (open and after close); and the data key,
// every purpose key (hex and base64) and the passphrase are found 0 times in
// logs, errors, CLI output and crash output.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  aborted,
  countInTree,
  jsonLines,
  mod,
  record,
  ROOT,
  runChild,
  script,
  withTemp,
} from "./_harness.ts";

const PW = "correct horse battery staple 42";
const MARKER = "MARKER-q7Zx-plaintext-9f2e";

const SEED = `
import { openDataLayer } from ${mod("mod.ts")};
import { rememberInKeyring } from ${mod("crypto/mod.ts")};
const [dir, marker, pw, phase] = Deno.args;
const kdf = { memoryKiB: 19456, iterations: 2 };
const data = await openDataLayer(dir, { passphrase: pw, create: true, kdf });
const user = await data.users.createUser({ profile: { name: marker } });
await data.users.setCredential(user.id, "password", marker + "-password");
const c = await data.conversations.createConversation({ userId: user.id, title: marker, metadata: { note: marker } });
await data.conversations.appendMessage(c.id, { role: "user", content: marker });
await data.conversations.appendMessages(c.id, Array.from({ length: 50 }, (_, i) => ({ role: "assistant", content: marker + i })));
await data.config.set("ui", "greeting", marker);
await data.plugins.registerPlugin({ name: "p1", version: "1.0.0", metadata: { m: marker } });
await data.plugins.setState("p1", "k", { v: marker });
await data.logs.insertLog({ level: "info", module: "test", message: marker, context: { m: marker } });
await data.cache?.set("c", { v: marker });
await data.cache?.session("conv").set("topic", marker);
await data.storage.backup(dir + "/backup.db");
console.log(JSON.stringify({ phase: "open" }));
// Wait for the parent to scan while open.
await new Promise((r) => setTimeout(r, Number(Deno.env.get("HOLD_MS") ?? "0")));
// Secrets, for the hygiene scenario: printed to a separate file only.
const key = data.key;
// The data key itself, through the public keyring hook (a store that keeps it).
let dek = new Uint8Array(0);
await rememberInKeyring(dir + "/key.json", pw, { get: () => Promise.resolve(undefined), set: (_a, s) => { dek = s.slice(); return Promise.resolve(); } });
const secrets = { dek: Array.from(dek), purposes: {} };
for (const p of ["libsql-page", "cache"]) {
  try { secrets.purposes[p] = Array.from(await key.purposeKeyBytes(p)); } catch {}
}
await Deno.writeTextFile(Deno.env.get("SECRETS_OUT") ?? "/dev/null", JSON.stringify(secrets));
await data.close();
console.log(JSON.stringify({ phase: "closed" }));
`;

async function hashFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        const bytes = await Deno.readFile(p);
        const h = await crypto.subtle.digest("SHA-256", bytes);
        out[p.slice(dir.length)] = [...new Uint8Array(h)].map((b) =>
          b.toString(16).padStart(2, "0")
        ).join("");
      }
    }
  };
  await walk(dir);
  return out;
}

Deno.test("a marker written through every public write path is found 0 times in the files; a wrong passphrase or key changes no byte; no secret reaches output", async (t) => {
  await withTemp(async (tmp) => {
    const dir = join(tmp, "layer");
    const seed = await script(tmp, "seed.ts", SEED);
    const secretsFile = join(tmp, "secrets.json");
    // Run the seed, scanning the folder while it holds the layer open.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        join(ROOT, "deno.json"),
        seed,
        dir,
        MARKER,
        PW,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { HOLD_MS: "1500", SECRETS_OUT: secretsFile, NO_COLOR: "1" },
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!seen.includes('"open"')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    const marker = new TextEncoder().encode(MARKER);
    const whileOpen = await countInTree(dir, [marker]);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    assert.equal(status.code, 0, stderr);
    const afterClose = await countInTree(dir, [marker]);
    await t.step("scenario 5: plaintext marker", async () => {
      await record({
        test: "05 plaintext marker in files",
        runs: 1,
        faults: 13,
        lost: 0,
        wrong: 0,
        aborts: 0,
        plaintext: whileOpen.count + afterClose.count,
        notes:
          `13 write paths (profile, credential, title, metadata, messages, config, plugin metadata+state, log message+context, cache value+session, backup); files scanned open ${whileOpen.files.length}, closed ${afterClose.files.length}: ${
            afterClose.files.map((f) => f.slice(dir.length)).join(" ")
          }`,
      });
      assert.ok(
        whileOpen.files.some((f) => f.endsWith("-wal")),
        "the WAL was scanned while open",
      );
      assert.ok(afterClose.files.some((f) => f.endsWith("backup.db")));
      assert.ok(afterClose.files.some((f) => f.includes("cache")));
      assert.equal(whileOpen.count, 0, `open: ${whileOpen.files.join()}`);
      assert.equal(afterClose.count, 0);
    });

    await t.step("scenario 4: wrong passphrase and wrong key", async () => {
      const before = await hashFiles(dir);
      const wrong = await script(
        tmp,
        "wrong.ts",
        `
import { openDataLayer } from ${mod("mod.ts")};
import { openStorage } from ${mod("storage/mod.ts")};
import { importDataKey } from ${mod("crypto/mod.ts")};
const [dir] = Deno.args;
const out = {};
try { await openDataLayer(dir, { passphrase: "not the passphrase" }); out.layer = "opened"; } catch (e) { out.layer = e.code ?? e.name; }
try { await openDataLayer(dir, { passphrase: "" }); out.empty = "opened"; } catch (e) { out.empty = e.code ?? e.name; }
for (const f of ["data.db", "backup.db"]) {
  try { await openStorage(dir + "/" + f, { key: await importDataKey(new Uint8Array(32).fill(99)) }); out[f] = "opened"; } catch (e) { out[f] = e.code ?? e.name; }
}
console.log(JSON.stringify(out));
`,
      );
      const r = await runChild(wrong, [dir]);
      const out = jsonLines(r.stdout)[0];
      assert.ok(out, r.stderr);
      const after = await hashFiles(dir);
      // The one file a failed unlock may add: audit-pending.jsonl, a time and
      // a reason code per failure, for the next open's audit trail.
      for (const name of Object.keys(after)) {
        if (name.endsWith("audit-pending.jsonl") && !(name in before)) {
          const text = await Deno.readTextFile(join(dir, name));
          assert.match(text, /^(\{"at":\d+,"reason":"[A-Z_]+"\}\n)+$/);
          delete after[name];
        }
      }
      const changed = Object.keys(before).filter((k) => before[k] !== after[k])
        .concat(
          Object.keys(after).filter((k) => !(k in before)),
        );
      await record({
        test: "04 wrong key / passphrase",
        runs: 1,
        faults: 4,
        lost: 0,
        wrong: Object.values(out).filter((v) => v === "opened").length +
          changed.length,
        aborts: aborted(r) ? 1 : 0,
        plaintext: 0,
        notes: `codes ${JSON.stringify(out)}; files changed ${changed.length}`,
      });
      assert.equal(out.layer, "WRONG_KEY");
      assert.equal(out["data.db"], "WRONG_KEY");
      assert.equal(out["backup.db"], "WRONG_KEY");
      assert.notEqual(out.empty, "opened");
      assert.deepEqual(changed, []);
    });

    await t.step("scenario 11: secret hygiene", async () => {
      const secrets = JSON.parse(await Deno.readTextFile(secretsFile)) as {
        dek: number[];
        purposes: Record<string, number[]>;
      };
      const forms: string[] = [PW];
      const keys = [secrets.dek, ...Object.values(secrets.purposes)].filter((
        k,
      ) => k.length > 0);
      assert.equal(secrets.dek.length, 32, "the data key was captured");
      // Every purpose key, derived as the design says: HKDF-SHA256(DEK, salt
      // empty, info "aico/<purpose>/v1").
      const hkdf = await crypto.subtle.importKey(
        "raw",
        Uint8Array.from(secrets.dek),
        "HKDF",
        false,
        ["deriveBits"],
      );
      for (
        const purpose of [
          "libsql-page",
          "field-aead",
          "cache",
          "vector-doc",
          "export",
        ]
      ) {
        const bits = await crypto.subtle.deriveBits(
          {
            name: "HKDF",
            hash: "SHA-256",
            salt: new Uint8Array(0),
            info: new TextEncoder().encode(`aico/${purpose}/v1`),
          },
          hkdf,
          256,
        );
        keys.push([...new Uint8Array(bits)]);
      }
      assert.equal(
        keys.at(-3)!.join(","),
        (secrets.purposes.cache ?? []).join(","),
        "the derivation matches the cache purpose key",
      );
      for (const k of keys) {
        const bytes = Uint8Array.from(k);
        forms.push(
          [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""),
        );
        forms.push(btoa(String.fromCharCode(...bytes)));
        forms.push(
          btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll(
            "/",
            "_",
          ).replace(/=+$/, ""),
        );
      }
      // Output of the seed, of wrong-key attempts, of the CLI, and of a crash.
      const cli = join(ROOT, "cli/main.ts");
      const run = async (args: string[], env: Record<string, string> = {}) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--config", join(ROOT, "deno.json"), ...args],
          stdout: "piped",
          stderr: "piped",
          stdin: "null",
          env: { NO_COLOR: "1", ...env },
        }).output();
        return new TextDecoder().decode(out.stdout) +
          new TextDecoder().decode(out.stderr);
      };
      const outputs: string[] = [seen, stderr];
      outputs.push(await run([cli, "--help"]));
      outputs.push(await run([cli, "info", dir]));
      outputs.push(await run([cli, "verify", dir], { AICO_PASSPHRASE: PW }));
      outputs.push(
        await run([cli, "verify", dir, "--debug"], {
          AICO_PASSPHRASE: "wrong wrong wrong",
        }),
      );
      const crash = await script(
        tmp,
        "crash.ts",
        `
import { openDataLayer } from ${mod("mod.ts")};
const data = await openDataLayer(Deno.args[0], { passphrase: Deno.args[1] });
await data.logs.insertLog({ level: "error", module: "crash", message: "about to crash" });
throw new Error("crash on purpose with the layer open");
`,
      );
      outputs.push(await run([crash, dir, PW]));
      const wrongLayer = await script(
        tmp,
        "wrong_errors.ts",
        `
import { openDataLayer } from ${mod("mod.ts")};
try { await openDataLayer(Deno.args[0], { passphrase: "nope nope nope" }); } catch (e) { console.log(String(e), e.stack, JSON.stringify(e), String(e.cause), e.cause?.stack); }
`,
      );
      outputs.push(await run([wrongLayer, dir]));
      // The log rows, read back.
      const logs = await script(
        tmp,
        "logs.ts",
        `
import { openDataLayer } from ${mod("mod.ts")};
const data = await openDataLayer(Deno.args[0], { passphrase: Deno.args[1] });
console.log(JSON.stringify(await data.logs.queryLogs({ limit: 1000 })));
await data.close();
`,
      );
      const logText = await run([logs, dir, PW]);
      outputs.push(logText.replaceAll(PW, "")); // the passphrase is an argument of that child, not its output
      let found = 0;
      const where: string[] = [];
      for (const [i, text] of outputs.entries()) {
        for (const f of forms) {
          if (f.length >= 8 && text.includes(f)) {
            found++;
            where.push(`output ${i}`);
          }
        }
      }
      await record({
        test: "11 secret hygiene",
        runs: outputs.length,
        faults: 3,
        lost: 0,
        wrong: 0,
        aborts: 0,
        plaintext: found,
        notes:
          `data key + 5 purpose keys (HKDF, checked against the raw cache key) x hex/base64/base64url + passphrase over ${outputs.length} outputs (seed, CLI help/status/status --json/status --debug with a wrong passphrase/backup, crash, error objects, log rows)${
            where.length ? `; found in ${where.join(",")}` : ""
          }`,
      });
      assert.equal(found, 0, where.join());
    });
  });
});
