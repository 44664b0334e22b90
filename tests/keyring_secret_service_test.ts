// The Secret Service backend against a real gnome-keyring daemon, each test in
// its own private D-Bus session started by .ci/keyring_session.sh (never the
// caller's own keyring), and the check that no key material leaks into errors.

import assert from "node:assert/strict";
import { join } from "node:path";
import { isAicoDataError } from "../errors.ts";
import type { AicoDataErrorCode } from "../errors.ts";
import {
  createKeyFile,
  generateDataKey,
  importDataKey,
  rememberInKeyring,
  unlockWithKeyring,
} from "../crypto/mod.ts";
import {
  envKeyring,
  type KeyringBackend,
  macosKeychain,
  noKeyring,
  openKeyring,
  secretServiceKeyring,
} from "../crypto/keyring.ts";

const SESSION_SCRIPT = new URL("../.ci/keyring_session.sh", import.meta.url)
  .pathname;
const TOOLS = [
  "bash",
  "dbus-run-session",
  "dbus-send",
  "gnome-keyring-daemon",
  "secret-tool",
];

function missingTools(): string[] {
  return TOOLS.filter((tool) => {
    try {
      return !new Deno.Command("sh", {
        args: ["-c", 'command -v "$1" >/dev/null', "sh", tool],
        stdout: "null",
        stderr: "null",
      }).outputSync().success;
    } catch {
      return true; // not even `sh`
    }
  });
}

const missing = Deno.build.os === "linux" ? missingTools() : TOOLS;
const ignore = missing.length > 0;
if (ignore) {
  // deno-lint-ignore no-console
  console.warn(
    `keyring_secret_service_test.ts: real Secret Service tests ignored: missing ${
      missing.join(", ")
    } (apt-get install gnome-keyring libsecret-tools dbus-x11)`,
  );
}

function code(expected: AicoDataErrorCode): (err: unknown) => boolean {
  return (err) => {
    if (!isAicoDataError(err, expected)) {
      throw new assert.AssertionError({
        message: `expected ${expected}, got ${String(err)}`,
      });
    }
    return true;
  };
}

/** A private gnome-keyring session; `close()` ends it. */
interface Session {
  readonly address: string;
  close(): Promise<void>;
}

async function startSession(locked = false): Promise<Session> {
  const child = new Deno.Command("bash", {
    args: [
      SESSION_SCRIPT,
      ...(locked ? ["--locked"] : []),
      "--",
      "sh",
      "-c",
      'printf "%s\\n" "$DBUS_SESSION_BUS_ADDRESS"; exec cat >/dev/null',
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  const writer = child.stdin.getWriter();
  const close = async (): Promise<void> => {
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    await child.status;
  };
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("keyring session ended before it started");
      text += value;
    }
  } catch (err) {
    await close();
    throw err;
  }
  const address = text.slice(0, text.indexOf("\n")).trim();
  assert.match(address, /^unix:/);
  return { address, close };
}

/** Runs `fn` with DBUS_SESSION_BUS_ADDRESS pointing at `address`. */
async function onBus<T>(address: string, fn: () => Promise<T>): Promise<T> {
  const previous = Deno.env.get("DBUS_SESSION_BUS_ADDRESS");
  Deno.env.set("DBUS_SESSION_BUS_ADDRESS", address);
  try {
    return await fn();
  } finally {
    if (previous === undefined) Deno.env.delete("DBUS_SESSION_BUS_ADDRESS");
    else Deno.env.set("DBUS_SESSION_BUS_ADDRESS", previous);
  }
}

async function withSession<T>(
  locked: boolean,
  fn: (session: Session) => Promise<T>,
): Promise<T> {
  const session = await startSession(locked);
  try {
    return await onBus(session.address, () => fn(session));
  } finally {
    await session.close();
  }
}

/** Locks the login collection of the current bus's gnome-keyring. */
async function lockLoginCollection(): Promise<void> {
  const output = await new Deno.Command("dbus-send", {
    args: [
      "--session",
      "--print-reply",
      "--dest=org.freedesktop.secrets",
      "/org/freedesktop/secrets",
      "org.freedesktop.Secret.Service.Lock",
      "array:objpath:/org/freedesktop/secrets/collection/login",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
}

/** How many items `secret-tool search --all` lists for service/account. */
async function countItems(service: string, account: string): Promise<number> {
  const output = await new Deno.Command("secret-tool", {
    args: ["search", "--all", "service", service, "account", account],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(output.success);
  const text = new TextDecoder().decode(output.stdout);
  output.stdout.fill(0);
  return (text.match(/^\[[^\]]+\]$/gm) ?? []).length;
}

const OPTIONS = { timeoutMs: 5000 } as const;

Deno.test({
  name: "the Secret Service round-trips binary keys in a real gnome-keyring",
  ignore,
  fn: () =>
    withSession(false, async () => {
      const keyring = await openKeyring("auto", OPTIONS);
      assert.equal(keyring.kind, "secret-service");
      const other = secretServiceKeyring({ ...OPTIONS, service: "aico-other" });
      const dek = generateDataKey();
      const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

      assert.equal(await keyring.get("store-1"), undefined);
      await keyring.set("store-1", dek);
      await keyring.set("store-2", allBytes);
      assert.deepEqual(await keyring.get("store-1"), dek);
      assert.deepEqual(await keyring.get("store-2"), allBytes);
      // Another service name is a separate namespace.
      assert.equal(await other.get("store-1"), undefined);

      // The key read back is the same data key.
      const read = await keyring.get("store-1");
      assert.ok(read);
      assert.equal(
        (await importDataKey(read)).keyId,
        (await importDataKey(dek)).keyId,
      );

      // set() replaces rather than adding a second item.
      const dek2 = generateDataKey();
      await keyring.set("store-1", dek2);
      assert.deepEqual(await keyring.get("store-1"), dek2);
      assert.equal(await countItems("aico-data", "store-1"), 1);

      assert.equal(await keyring.delete("store-1"), true);
      assert.equal(await keyring.get("store-1"), undefined);
      assert.equal(await keyring.delete("store-1"), false);
      assert.deepEqual(await keyring.get("store-2"), allBytes);

      // Text another program filed under our service is CORRUPT_VALUE.
      const stored = await new Deno.Command("secret-tool", {
        args: ["store", "--label=x", "service", "aico-data", "account", "junk"],
        stdin: "piped",
      }).spawn();
      const writer = stored.stdin.getWriter();
      await writer.write(new TextEncoder().encode("not base64!"));
      await writer.close();
      assert.ok((await stored.status).success);
      await assert.rejects(keyring.get("junk"), code("CORRUPT_VALUE"));
      assert.equal(await keyring.delete("junk"), true);
    }),
});

Deno.test({
  name: "a locked Secret Service gives KEYRING_UNAVAILABLE and loses nothing",
  ignore,
  fn: async (t) => {
    await t.step(
      "a collection locked after a key was stored",
      () =>
        withSession(false, async () => {
          const keyring = secretServiceKeyring(OPTIONS);
          const dek = generateDataKey();
          await keyring.set("store-1", dek);
          await lockLoginCollection();
          await assert.rejects(
            keyring.get("store-1"),
            code("KEYRING_UNAVAILABLE"),
          );
          await assert.rejects(
            keyring.set("store-1", generateDataKey()),
            code("KEYRING_UNAVAILABLE"),
          );
          await assert.rejects(
            keyring.delete("store-1"),
            code("KEYRING_UNAVAILABLE"),
          );
          // The item is still there, unchanged in number.
          assert.equal(await countItems("aico-data", "store-1"), 1);
        }),
    );
    await t.step(
      "a keyring that starts locked refuses to store",
      () =>
        withSession(true, async () => {
          const keyring = await openKeyring("secret-service", OPTIONS);
          await assert.rejects(
            keyring.set("store-1", generateDataKey()),
            code("KEYRING_UNAVAILABLE"),
          );
          // Nothing is stored anywhere, so there is nothing to report as locked.
          assert.equal(await keyring.get("store-1"), undefined);
          assert.equal(await countItems("aico-data", "store-1"), 0);
        }),
    );
  },
});

Deno.test({
  name:
    "a key file unlocks through the real Secret Service, and a locked one is KEYRING_UNAVAILABLE, not NOT_FOUND",
  ignore,
  fn: () =>
    withSession(false, async () => {
      const dir = await Deno.makeTempDir({ prefix: "aico_keyring_file_" });
      try {
        const path = join(dir, "store.key");
        const created = await createKeyFile(path, "correct horse", {
          kdf: { memoryKiB: 19456, iterations: 2 },
        });
        const keyring = await openKeyring("auto", OPTIONS);
        const remembered = await rememberInKeyring(
          path,
          "correct horse",
          keyring,
        );
        assert.equal(remembered.keyId, created.keyId);
        const unlocked = await unlockWithKeyring(path, keyring);
        assert.equal(unlocked.keyId, created.keyId);
        await lockLoginCollection();
        await assert.rejects(
          unlockWithKeyring(path, keyring),
          code("KEYRING_UNAVAILABLE"),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }),
});

Deno.test({
  name: "an unreachable session bus gives KEYRING_UNAVAILABLE",
  ignore,
  fn: () =>
    onBus("unix:path=/nonexistent/aico-bus", async () => {
      await assert.rejects(
        openKeyring("auto", OPTIONS),
        code("KEYRING_UNAVAILABLE"),
      );
      const keyring = secretServiceKeyring(OPTIONS);
      await assert.rejects(keyring.get("a"), code("KEYRING_UNAVAILABLE"));
      await assert.rejects(
        keyring.set("a", generateDataKey()),
        code("KEYRING_UNAVAILABLE"),
      );
      await assert.rejects(keyring.delete("a"), code("KEYRING_UNAVAILABLE"));
    }),
});

// ---------------------------------------------------------------------------

/** Every string an error could show in a log: message, String, stack, causes. */
function renderings(err: unknown): string[] {
  const out: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 10; depth++) {
    out.push(String(current));
    if (current instanceof Error) {
      out.push(current.message, current.stack ?? "");
      out.push(JSON.stringify({ ...current, message: current.message }));
      current = current.cause;
    } else {
      out.push(JSON.stringify(current) ?? "");
      current = undefined;
    }
  }
  return out;
}

function forms(key: Uint8Array): string[] {
  const b64 = key.toBase64();
  const b64url = key.toBase64({ alphabet: "base64url" });
  return [
    key.toHex(),
    key.toHex().toUpperCase(),
    b64,
    b64.replace(/=+$/, ""),
    b64url,
    b64url.replace(/=+$/, ""),
  ];
}

async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new assert.AssertionError({ message: "expected the call to fail" });
}

Deno.test("no key material (hex, base64, base64url) appears in any keyring error", async (t) => {
  const key = generateDataKey();
  const errors: { what: string; err: unknown }[] = [];
  const collect = async (
    what: string,
    expected: AicoDataErrorCode,
    call: () => Promise<unknown>,
  ): Promise<void> => {
    const err = await failure(call);
    assert.ok(isAicoDataError(err, expected), `${what}: ${String(err)}`);
    errors.push({ what, err });
  };
  const allCalls = async (
    what: string,
    keyring: KeyringBackend,
    expected: AicoDataErrorCode,
  ): Promise<void> => {
    await collect(`${what} set`, expected, () => keyring.set("acct", key));
    await collect(`${what} get`, expected, () => keyring.get("acct"));
    await collect(`${what} delete`, expected, () => keyring.delete("acct"));
  };

  await t.step("missing tools", async () => {
    await allCalls(
      "missing secret-tool",
      secretServiceKeyring({ command: "/nonexistent/secret-tool" }),
      "KEYRING_UNAVAILABLE",
    );
    await allCalls(
      "missing security",
      macosKeychain({ command: "/nonexistent/security" }),
      "KEYRING_UNAVAILABLE",
    );
  });
  await t.step("bad input next to a key", async () => {
    await collect(
      "bad account",
      "INVALID_INPUT",
      () => secretServiceKeyring().set("-bad", key),
    );
    await collect(
      "oversized secret",
      "INVALID_INPUT",
      () => noKeyring().set("acct", new Uint8Array(8192).fill(key[0] ?? 1)),
    );
  });
  await t.step("env and none refuse writes; malformed env values", async () => {
    const variable = "AICO_TEST_LEAK_KEY";
    try {
      for (
        const text of [
          `${key.toBase64()}!`,
          key.toBase64().replace(/=+$/, ""),
          `${key.toBase64({ alphabet: "base64url" })}~`,
          `${key.toBase64()} ${key.toBase64()}`,
        ]
      ) {
        Deno.env.set(variable, text);
        await collect(
          "malformed env",
          "CORRUPT_VALUE",
          () => envKeyring({ variable }).get("acct"),
        );
      }
      Deno.env.set(variable, key.toBase64());
      await collect(
        "env set",
        "KEYRING_UNAVAILABLE",
        () => envKeyring({ variable }).set("acct", key),
      );
    } finally {
      Deno.env.delete(variable);
    }
    await collect(
      "none set",
      "KEYRING_UNAVAILABLE",
      () => noKeyring().set("acct", key),
    );
  });
  await t.step(
    "tools that echo the secret, hang or print garbage",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "aico_keyring_leak_" });
      try {
        const tool = async (name: string, body: string): Promise<string> => {
          const path = join(dir, name);
          await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
          await Deno.chmod(path, 0o700);
          return path;
        };
        const echoes = await tool(
          "echoes",
          `s=$(cat); echo "secret-tool: failed $s $(printf %s "$s" | od -An -tx1 | tr -d ' \\n')" >&2; exit 1`,
        );
        await collect(
          "tool echoing stdin to stderr",
          "KEYRING_UNAVAILABLE",
          () => secretServiceKeyring({ command: echoes }).set("acct", key),
        );
        await collect(
          "macOS tool echoing stdin to stderr",
          "KEYRING_UNAVAILABLE",
          () => macosKeychain({ command: echoes }).set("acct", key),
        );
        const hangs = await tool("hangs", "cat >/dev/null; exec sleep 30");
        await collect(
          "tool hanging after reading the secret",
          "KEYRING_UNAVAILABLE",
          () =>
            secretServiceKeyring({ command: hangs, timeoutMs: 300 }).set(
              "acct",
              key,
            ),
        );
        const b64 = key.toBase64();
        const garbage = await tool(
          "garbage",
          `printf '%s' '${b64}*'; echo '${b64}' >&2`,
        );
        await collect(
          "tool printing a corrupted key",
          "CORRUPT_VALUE",
          () => secretServiceKeyring({ command: garbage }).get("acct"),
        );
        const loud = await tool(
          "loud",
          `echo '${b64} ${key.toHex()}' >&2; exit 2`,
        );
        await collect(
          "tool printing the key on stderr",
          "KEYRING_UNAVAILABLE",
          () => secretServiceKeyring({ command: loud }).get("acct"),
        );
        await collect(
          "macOS tool printing the key on stderr",
          "KEYRING_UNAVAILABLE",
          () => macosKeychain({ command: loud }).get("acct"),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
  await t.step({
    name: "unreachable bus",
    ignore,
    fn: () =>
      onBus("unix:path=/nonexistent/aico-bus", async () => {
        await allCalls(
          "unreachable bus",
          secretServiceKeyring(OPTIONS),
          "KEYRING_UNAVAILABLE",
        );
      }),
  });
  await t.step({
    name: "a locked real keyring",
    ignore,
    fn: () =>
      withSession(false, async () => {
        const keyring = secretServiceKeyring(OPTIONS);
        await keyring.set("acct", key);
        await lockLoginCollection();
        await allCalls("locked keyring", keyring, "KEYRING_UNAVAILABLE");
      }),
  });

  const needles = forms(key);
  assert.ok(errors.length >= 20, `only ${errors.length} errors collected`);
  for (const { what, err } of errors) {
    for (const text of renderings(err)) {
      for (const needle of needles) {
        assert.ok(
          !text.includes(needle),
          `key material in the error of "${what}"`,
        );
      }
    }
  }
});
