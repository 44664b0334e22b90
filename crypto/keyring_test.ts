import assert from "node:assert/strict";
import { join } from "node:path";
import { AicoDataError, isAicoDataError } from "../errors.ts";
import type { AicoDataErrorCode } from "../errors.ts";
import {
  envKeyring,
  type KeyringKind,
  type KeyringOptions,
  macosKeychain,
  noKeyring,
  openKeyring,
  resolveKeyringOptions,
  secretServiceKeyring,
} from "./keyring.ts";
import { MacosKeychain } from "./_keyring_macos.ts";
import { SecretServiceKeyring } from "./_keyring_secret_service.ts";
import {
  runTool,
  sanitizeToolText,
  type ToolRequest,
  type ToolResult,
} from "./_keyring_run.ts";

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

const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

Deno.test("resolveKeyringOptions() applies the defaults of each kind", () => {
  const table: [KeyringKind, string][] = [
    ["secret-service", "secret-tool"],
    ["macos-keychain", "security"],
    ["env", ""],
    ["none", ""],
  ];
  for (const [kind, command] of table) {
    const options = resolveKeyringOptions(kind);
    assert.deepEqual(options, {
      service: "aico-data",
      label: "@aico/data key",
      command,
      timeoutMs: 10_000,
      variable: "AICO_DATA_KEY",
    });
    assert.ok(Object.isFrozen(options));
  }
});

Deno.test("resolveKeyringOptions() keeps valid overrides", () => {
  const options = resolveKeyringOptions("secret-service", {
    service: "my app",
    label: "My app key",
    command: "/usr/bin/secret-tool",
    timeoutMs: 1,
    variable: "_MY_KEY_2",
  });
  assert.deepEqual(options, {
    service: "my app",
    label: "My app key",
    command: "/usr/bin/secret-tool",
    timeoutMs: 1,
    variable: "_MY_KEY_2",
  });
});

Deno.test("resolveKeyringOptions() rejects bad options with INVALID_INPUT", () => {
  const bad: [string, KeyringKind, KeyringOptions][] = [
    ["empty service", "secret-service", { service: "" }],
    ["long service", "secret-service", { service: "s".repeat(256) }],
    ["control char", "secret-service", { service: "a\nb" }],
    ["leading dash", "secret-service", { service: "--all" }],
    ["non-string service", "env", { service: 1 as unknown as string }],
    ["empty label", "secret-service", { label: "" }],
    ["empty command", "secret-service", { command: "" }],
    ["empty macOS command", "macos-keychain", { command: "" }],
    ["zero timeout", "secret-service", { timeoutMs: 0 }],
    ["fractional timeout", "secret-service", { timeoutMs: 1.5 }],
    ["NaN timeout", "secret-service", { timeoutMs: NaN }],
    ["huge timeout", "secret-service", { timeoutMs: 3_600_001 }],
    ["digit-first variable", "env", { variable: "1KEY" }],
    ["dash in variable", "env", { variable: "MY-KEY" }],
    ["empty variable", "env", { variable: "" }],
  ];
  for (const [what, kind, options] of bad) {
    assert.throws(
      () => resolveKeyringOptions(kind, options),
      code("INVALID_INPUT"),
      what,
    );
  }
  assert.throws(
    () => resolveKeyringOptions("file" as KeyringKind),
    code("INVALID_INPUT"),
  );
});

Deno.test("every backend rejects a bad account or secret with INVALID_INPUT", async () => {
  const backends = [
    secretServiceKeyring({ command: "no-such-secret-tool" }),
    macosKeychain({ command: "no-such-security" }),
    envKeyring({ variable: "AICO_TEST_UNSET_KEY" }),
    noKeyring(),
  ];
  const accounts = ["", "-x", "a\u0000b", "a".repeat(256)];
  for (const keyring of backends) {
    for (const account of accounts) {
      await assert.rejects(keyring.get(account), code("INVALID_INPUT"));
      await assert.rejects(keyring.delete(account), code("INVALID_INPUT"));
      await assert.rejects(keyring.set(account, KEY), code("INVALID_INPUT"));
    }
    for (const secret of [new Uint8Array(0), new Uint8Array(4097), "key"]) {
      await assert.rejects(
        keyring.set("ok", secret as Uint8Array),
        code("INVALID_INPUT"),
        keyring.kind,
      );
    }
  }
});

Deno.test("envKeyring() reads a base64 variable and refuses writes", async (t) => {
  const variable = "AICO_TEST_ENV_KEYRING";
  const keyring = envKeyring({ variable });
  assert.equal(keyring.kind, "env");
  try {
    await t.step("an unset or blank variable reads as undefined", async () => {
      Deno.env.delete(variable);
      assert.equal(await keyring.get("a"), undefined);
      Deno.env.set(variable, "  ");
      assert.equal(await keyring.get("a"), undefined);
    });
    await t.step(
      "a base64 variable reads as its bytes, for any account",
      async () => {
        Deno.env.set(variable, `${KEY.toBase64()}\n`);
        assert.deepEqual(await keyring.get("a"), KEY);
        assert.deepEqual(await keyring.get("b"), KEY);
      },
    );
    await t.step("malformed text is CORRUPT_VALUE", async () => {
      for (
        const text of [
          `${KEY.toBase64()}*`,
          KEY.toBase64().replace(/=+$/, ""),
          KEY.toBase64({ alphabet: "base64url" }).replace(/=+$/, "") + "-_",
          "====",
          "ab cd",
        ]
      ) {
        Deno.env.set(variable, text);
        await assert.rejects(keyring.get("a"), code("CORRUPT_VALUE"), text);
      }
    });
    await t.step(
      "set() and delete() fail with KEYRING_UNAVAILABLE",
      async () => {
        Deno.env.set(variable, KEY.toBase64());
        await assert.rejects(
          keyring.set("a", KEY),
          code("KEYRING_UNAVAILABLE"),
        );
        await assert.rejects(keyring.delete("a"), code("KEYRING_UNAVAILABLE"));
        assert.equal(Deno.env.get(variable), KEY.toBase64());
      },
    );
  } finally {
    Deno.env.delete(variable);
  }
});

Deno.test("noKeyring() keeps nothing and refuses set() with KEYRING_UNAVAILABLE", async () => {
  const keyring = noKeyring();
  assert.equal(keyring.kind, "none");
  await assert.rejects(keyring.set("a", KEY), code("KEYRING_UNAVAILABLE"));
  assert.equal(await keyring.get("a"), undefined);
  assert.equal(await keyring.delete("a"), false);
});

Deno.test("openKeyring() returns the backend asked for by name", async () => {
  assert.equal((await openKeyring("none")).kind, "none");
  assert.equal((await openKeyring("env")).kind, "env");
  await assert.rejects(
    openKeyring("file" as KeyringKind),
    code("INVALID_INPUT"),
  );
  await assert.rejects(
    openKeyring("env", { variable: "no-dash" }),
    code("INVALID_INPUT"),
  );
});

Deno.test("openKeyring() never falls back to a weaker store when the OS keyring is missing", async () => {
  for (const kind of ["auto", "secret-service"] as const) {
    await assert.rejects(
      openKeyring(kind, { command: "no-such-secret-tool" }),
      code("KEYRING_UNAVAILABLE"),
      kind,
    );
  }
});

Deno.test("a missing secret-tool is KEYRING_UNAVAILABLE for every call", async () => {
  const keyring = secretServiceKeyring({ command: "/nonexistent/secret-tool" });
  await assert.rejects(keyring.get("a"), code("KEYRING_UNAVAILABLE"));
  await assert.rejects(keyring.set("a", KEY), code("KEYRING_UNAVAILABLE"));
  await assert.rejects(keyring.delete("a"), code("KEYRING_UNAVAILABLE"));
});

Deno.test("sanitizeToolText() keeps one line and redacts long base64 or hex runs", () => {
  assert.equal(
    sanitizeToolText(
      "\nsecret-tool: Cannot create an item in a locked collection\nmore",
    ),
    "secret-tool: Cannot create an item in a locked collection",
  );
  const text = sanitizeToolText(
    `leak ${KEY.toBase64()} and ${KEY.toHex()} and ${
      KEY.toBase64({ alphabet: "base64url" })
    }\tend`,
  );
  assert.equal(text, "leak [redacted] and [redacted] and [redacted] end");
  assert.equal(sanitizeToolText("x".repeat(500)), "[redacted]");
  assert.equal(sanitizeToolText("a b ".repeat(100)).length, 203);
});

// ---------------------------------------------------------------------------
// The real runner against small fake tools (real processes). These are extra
// fast tests; the real secret-tool runs in tests/keyring_secret_service_test.ts.

async function withFakeTool(
  script: string,
  fn: (command: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "aico_keyring_" });
  try {
    const command = join(dir, "fake-tool");
    await Deno.writeTextFile(command, `#!/bin/sh\n${script}\n`);
    await Deno.chmod(command, 0o700);
    await fn(command, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the Secret Service backend sends the secret over stdin, never argv", async () => {
  await withFakeTool(
    `printf '%s\\n' "$@" > "$(dirname "$0")/argv"; cat > "$(dirname "$0")/stdin"`,
    async (command, dir) => {
      const keyring = secretServiceKeyring({ command, service: "svc" });
      await keyring.set("acct", KEY);
      const argv = await Deno.readTextFile(join(dir, "argv"));
      assert.deepEqual(argv.trimEnd().split("\n"), [
        "store",
        "--label=@aico/data key",
        "service",
        "svc",
        "account",
        "acct",
      ]);
      assert.equal(await Deno.readTextFile(join(dir, "stdin")), KEY.toBase64());
    },
  );
});

Deno.test("a tool that hangs is killed after timeoutMs with KEYRING_UNAVAILABLE", async () => {
  await withFakeTool("exec sleep 30", async (command) => {
    const keyring = secretServiceKeyring({ command, timeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(keyring.set("a", KEY), code("KEYRING_UNAVAILABLE"));
    await assert.rejects(keyring.get("a"), code("KEYRING_UNAVAILABLE"));
    // Both calls returned long before the child's 30 s sleep would end.
    assert.ok(Date.now() - started < 20_000);
  });
});

Deno.test("a tool that prints malformed data gives CORRUPT_VALUE", async () => {
  await withFakeTool("printf 'not base64!'", async (command) => {
    const keyring = secretServiceKeyring({ command });
    await assert.rejects(keyring.get("a"), code("CORRUPT_VALUE"));
  });
});

Deno.test("a failing tool's stderr reaches the message without key material", async () => {
  await withFakeTool(
    `echo "secret-tool: refused $(cat)" >&2; exit 3`,
    async (command) => {
      const keyring = secretServiceKeyring({ command });
      const err = await keyring.set("a", KEY).then(
        () => assert.fail("set() should fail"),
        (e: unknown) => e,
      );
      assert.ok(isAicoDataError(err, "KEYRING_UNAVAILABLE"));
      assert.match(err.message, /secret-tool: refused \[redacted\]/);
      assert.ok(!err.message.includes(KEY.toBase64()));
    },
  );
});

Deno.test("SecretServiceKeyring reports a locked item as KEYRING_UNAVAILABLE, an absent one as undefined", async () => {
  // Fake runner: lookup and clear fail silently as secret-tool does for both
  // cases; search lists the item (locked) or nothing (absent).
  let listed = true;
  const calls: string[][] = [];
  const run = (request: ToolRequest): Promise<ToolResult> => {
    calls.push([...request.args]);
    const stdout = request.args[0] === "search" && listed
      ? new TextEncoder().encode("[/1]\nlabel = x\n")
      : new Uint8Array(0);
    return Promise.resolve({
      code: request.args[0] === "search" ? 0 : 1,
      stdout,
      stderr: "",
    });
  };
  const keyring = new SecretServiceKeyring(
    resolveKeyringOptions("secret-service"),
    run,
  );
  await assert.rejects(keyring.get("a"), code("KEYRING_UNAVAILABLE"));
  await assert.rejects(keyring.delete("a"), code("KEYRING_UNAVAILABLE"));
  listed = false;
  assert.equal(await keyring.get("a"), undefined);
  assert.equal(await keyring.delete("a"), false);
  assert.deepEqual(calls[1], [
    "search",
    "--all",
    "service",
    "aico-data",
    "account",
    "a",
  ]);
});

// ---------------------------------------------------------------------------
// macOS Keychain: untested against a real Keychain (Linux machine); these
// check what goes to argv and what goes to stdin, with a fake runner.

function fakeSecurity(
  results: Partial<ToolResult>[],
): { run: (r: ToolRequest) => Promise<ToolResult>; requests: ToolRequest[] } {
  const requests: ToolRequest[] = [];
  return {
    requests,
    run: (request) => {
      requests.push({
        ...request,
        ...(request.stdin === undefined
          ? {}
          : { stdin: request.stdin.slice() }),
      });
      const next = results.shift() ?? {};
      return Promise.resolve({
        code: next.code ?? 0,
        stdout: next.stdout ?? new Uint8Array(0),
        stderr: next.stderr ?? "",
      });
    },
  };
}

Deno.test("macosKeychain set() puts the secret in the stdin command, not argv", async () => {
  const fake = fakeSecurity([{}]);
  const keyring = new MacosKeychain(
    resolveKeyringOptions("macos-keychain", { service: "svc" }),
    fake.run,
  );
  await keyring.set("my acct", KEY);
  const [request] = fake.requests;
  assert.ok(request);
  assert.equal(request.command, "security");
  assert.deepEqual(request.args, ["-i"]);
  assert.ok(!request.args.join(" ").includes(KEY.toBase64()));
  assert.equal(
    new TextDecoder().decode(request.stdin),
    `add-generic-password -U -s "svc" -a "my acct" -l "@aico/data key" -w "${KEY.toBase64()}"\n`,
  );
});

Deno.test("macosKeychain maps find/delete exit codes", async (t) => {
  const options = resolveKeyringOptions("macos-keychain");
  await t.step("get() decodes the password and asks with -w", async () => {
    const fake = fakeSecurity([{
      stdout: new TextEncoder().encode(`${KEY.toBase64()}\n`),
    }]);
    const keyring = new MacosKeychain(options, fake.run);
    assert.deepEqual(await keyring.get("a"), KEY);
    assert.deepEqual(fake.requests[0]?.args, [
      "find-generic-password",
      "-s",
      "aico-data",
      "-a",
      "a",
      "-w",
    ]);
  });
  await t.step("exit 44 (item not found) is undefined / false", async () => {
    const keyring = new MacosKeychain(
      options,
      fakeSecurity([{ code: 44 }, { code: 44 }]).run,
    );
    assert.equal(await keyring.get("a"), undefined);
    assert.equal(await keyring.delete("a"), false);
  });
  await t.step(
    "exit 36 (interaction not allowed: locked) is KEYRING_UNAVAILABLE",
    async () => {
      const keyring = new MacosKeychain(
        options,
        fakeSecurity([{ code: 36 }, { code: 36 }, { code: 51 }]).run,
      );
      await assert.rejects(keyring.get("a"), code("KEYRING_UNAVAILABLE"));
      await assert.rejects(keyring.delete("a"), code("KEYRING_UNAVAILABLE"));
      await assert.rejects(keyring.set("a", KEY), code("KEYRING_UNAVAILABLE"));
    },
  );
  await t.step(
    "stderr after `security -i` is KEYRING_UNAVAILABLE",
    async () => {
      const keyring = new MacosKeychain(
        options,
        fakeSecurity([{ stderr: "security: SecKeychainItemCreate failed" }])
          .run,
      );
      await assert.rejects(keyring.set("a", KEY), code("KEYRING_UNAVAILABLE"));
    },
  );
  await t.step("delete() with exit 0 is true", async () => {
    const keyring = new MacosKeychain(options, fakeSecurity([{}]).run);
    assert.equal(await keyring.delete("a"), true);
  });
  await t.step("quotes or backslashes in names are INVALID_INPUT", async () => {
    const fake = fakeSecurity([]);
    const keyring = new MacosKeychain(options, fake.run);
    await assert.rejects(keyring.set('a"b', KEY), code("INVALID_INPUT"));
    await assert.rejects(keyring.set("a\\b", KEY), code("INVALID_INPUT"));
    assert.equal(fake.requests.length, 0);
  });
});

// ---------------------------------------------------------------------------
// Permissions: a child Deno process with narrow flags.

Deno.test("missing --allow-run / --allow-env give PERMISSION_DENIED naming the flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aico_keyring_perm_" });
  try {
    const script = join(dir, "probe.ts");
    const moduleUrl = new URL("./keyring.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { envKeyring, secretServiceKeyring, openKeyring } from ${
        JSON.stringify(moduleUrl)
      };
const out: string[] = [];
for (const call of [
  () => secretServiceKeyring().get("a"),
  () => secretServiceKeyring().set("a", new Uint8Array(32)),
  () => openKeyring("auto"),
  () => envKeyring({ variable: "AICO_PERM_KEY" }).get("a"),
]) {
  try { await call(); out.push("ok"); } catch (e) { out.push(e.code + " " + e.message); }
}
console.log(JSON.stringify(out));
`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-env=OTHER", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const lines: string[] = JSON.parse(
      new TextDecoder().decode(output.stdout),
    );
    assert.equal(lines.length, 4);
    for (const line of lines.slice(0, 3)) {
      assert.match(line, /^PERMISSION_DENIED .*--allow-run=secret-tool/);
    }
    assert.match(
      lines[3] ?? "",
      /^PERMISSION_DENIED .*--allow-env=AICO_PERM_KEY/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runTool() reports a missing tool as KEYRING_UNAVAILABLE with its cause", async () => {
  const err = await runTool({
    command: "/nonexistent/tool",
    args: [],
    timeoutMs: 1000,
    action: "Cannot test",
  }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof AicoDataError);
  assert.equal(err.code, "KEYRING_UNAVAILABLE");
  assert.ok(err.cause instanceof Deno.errors.NotFound);
});

Deno.test("a tool that exits without reading stdin fails cleanly with KEYRING_UNAVAILABLE", async () => {
  await withFakeTool("exit 1", async (command) => {
    const keyring = secretServiceKeyring({ command });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        keyring.set("a", new Uint8Array(4096).fill(i + 1)),
        code("KEYRING_UNAVAILABLE"),
      );
    }
  });
});
