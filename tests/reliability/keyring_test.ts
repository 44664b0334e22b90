// deno-lint-ignore-file no-console
// Scenario 10: an OS keyring that is missing (no tool, no D-Bus session) or
// locked gives KEYRING_UNAVAILABLE; nothing falls back to a weaker source
// (no environment variable, no "none" keyring, no open without a secret).
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  aborted,
  jsonLines,
  mod,
  record,
  ROOT,
  runChild,
  script,
  withTemp,
} from "./_harness.ts";

const CHILD = `
import { openDataLayer } from ${mod("mod.ts")};
import { openKeyring, secretServiceKeyring } from ${mod("crypto/mod.ts")};
const [dir, phase] = Deno.args;
const code = (e) => e?.code ?? e?.name;
const out = { phase };
const kdf = { memoryKiB: 19456, iterations: 2 };
if (phase === "create") {
  const d = await openDataLayer(dir, { passphrase: "pass pass pass", create: true, kdf, cache: false });
  await d.close();
} else {
  try { const k = await openKeyring("auto", { timeoutMs: 3000 }); out.auto = "kind:" + k.kind; } catch (e) { out.auto = code(e); }
  try { await openDataLayer(dir, { keyring: secretServiceKeyring({ timeoutMs: 3000 }), cache: false }); out.layer = "opened"; } catch (e) { out.layer = code(e); }
  // With the passphrase too, the passphrase (not a weaker source) opens it.
  try { const d = await openDataLayer(dir, { keyring: secretServiceKeyring({ timeoutMs: 3000 }), passphrase: "pass pass pass", cache: false }); out.withPassphrase = "opened"; await d.close(); } catch (e) { out.withPassphrase = code(e); }
  try { const d = await openDataLayer(dir, { keyring: secretServiceKeyring({ timeoutMs: 3000 }), passphrase: "wrong wrong", cache: false }); out.wrongPassphrase = "opened"; await d.close(); } catch (e) { out.wrongPassphrase = code(e); }
}
console.log(JSON.stringify(out));
`;

const hasTool = async (name: string): Promise<boolean> =>
  (await new Deno.Command("sh", { args: ["-c", `command -v ${name}`] })
    .output()).success;

Deno.test("a missing or locked keyring gives KEYRING_UNAVAILABLE and never a weaker fallback", async (t) => {
  const notes: string[] = [];
  let runs = 0, faults = 0, wrong = 0, aborts = 0;
  await withTemp(async (tmp) => {
    const path = await script(tmp, "kr.ts", CHILD);
    const dir = join(tmp, "layer");
    const created = await runChild(path, [dir, "create"]);
    assert.equal(created.code, 0, created.stderr);
    const judge = (name: string, r: Awaited<ReturnType<typeof runChild>>) => {
      runs++;
      faults++;
      if (aborted(r)) aborts++;
      const out = jsonLines(r.stdout)[0];
      assert.ok(out, `${name}: ${r.stderr}`);
      notes.push(`${name} ${JSON.stringify(out)}`);
      // A locked collection that never held the key may also say NOT_FOUND
      // (tests/keyring_secret_service_test.ts covers one locked after the
      // key was stored); either way nothing opens without a secret.
      const allowed = name === "locked"
        ? ["KEYRING_UNAVAILABLE", "NOT_FOUND"]
        : ["KEYRING_UNAVAILABLE"];
      if (!allowed.includes(String(out.layer))) wrong++;
      if (out.wrongPassphrase === "opened") wrong++;
      if (
        String(out.auto).startsWith("kind:") &&
        !/secret-service|macos/.test(String(out.auto))
      ) wrong++;
      assert.ok(allowed.includes(String(out.layer)), `${name}: ${out.layer}`);
      assert.equal(out.withPassphrase, "opened", name);
      assert.equal(out.wrongPassphrase, "WRONG_KEY", name);
      assert.ok(
        !/kind:(env|none)/.test(String(out.auto)),
        `${name}: auto fell back to ${out.auto}`,
      );
    };
    await t.step("no D-Bus session", async () => {
      judge(
        "no bus",
        await runChild(path, [dir, "check"], {
          env: { DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/bus" },
        }),
      );
    });
    await t.step("no secret-tool on PATH", async () => {
      judge(
        "no tool",
        await runChild(path, [dir, "check"], {
          env: { PATH: "/nonexistent" },
        }),
      );
    });
    await t.step("a locked Secret Service", async () => {
      const tools = ["secret-tool", "gnome-keyring-daemon", "dbus-run-session"];
      const missing: string[] = [];
      for (const tool of tools) if (!(await hasTool(tool))) missing.push(tool);
      if (missing.length > 0) {
        const reason = `skipped: missing ${
          missing.join(", ")
        } (CI installs them)`;
        console.log(`locked keyring ${reason}`);
        notes.push(`locked ${reason}`);
        return;
      }
      const out = await new Deno.Command("bash", {
        args: [
          join(ROOT, ".ci/keyring_session.sh"),
          "--locked",
          "--",
          Deno.execPath(),
          "run",
          "-A",
          "--config",
          join(ROOT, "deno.json"),
          path,
          dir,
          "check",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      judge("locked", {
        code: out.code,
        signal: out.signal,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
        timedOut: false,
      });
    });
  });
  await record({
    test: "10 keyring locked / missing",
    runs,
    faults,
    lost: 0,
    wrong,
    aborts,
    plaintext: 0,
    notes: notes.join("; "),
  });
});
