// The CLI with the OS keyring: remember, unlock with --keyring, rotate, forget,
// all in one private Secret Service session (.ci/keyring_session.sh), never
// the caller's own keyring.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { withDir } from "./_helpers.ts";

const SESSION = fileURLToPath(
  new URL("../.ci/keyring_session.sh", import.meta.url),
);
const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const TOOLS = [
  "bash",
  "dbus-run-session",
  "dbus-send",
  "gnome-keyring-daemon",
  "secret-tool",
];

const missing = Deno.build.os !== "linux"
  ? TOOLS
  : TOOLS.filter((tool) =>
    !new Deno.Command("sh", {
      args: ["-c", 'command -v "$1" >/dev/null', "sh", tool],
      stdout: "null",
      stderr: "null",
    }).outputSync().success
  );
if (missing.length > 0) {
  // deno-lint-ignore no-console
  console.warn(
    `cli_keyring_test.ts: ignored, missing ${missing.join(", ")} ` +
      "(apt-get install gnome-keyring libsecret-tools dbus-x11)",
  );
}

Deno.test({
  name:
    "aico-data remembers the key in the OS keyring, unlocks with --keyring, rotates and forgets",
  ignore: missing.length > 0,
  fn: async () => {
    await withDir(async (dir) => {
      const deno = Deno.execPath();
      const run =
        `"${deno}" run --allow-read --allow-write --allow-env --allow-ffi --allow-sys --allow-run=secret-tool "${MAIN}"`;
      // One session for the whole scenario; each step prints a marker line.
      const script = [
        `export AICO_DATA_PASSPHRASE=pw`,
        `${run} init --dir "${dir}/d" --remember || exit 11`,
        `printf '%s\\n' '{"conversation":"c","role":"user","content":"hello"}' > "${dir}/in.jsonl"`,
        `(unset AICO_DATA_PASSPHRASE; ${run} import --keyring --dir "${dir}/d" "${dir}/in.jsonl") || exit 12`,
        `(unset AICO_DATA_PASSPHRASE; ${run} status --keyring --dir "${dir}/d" </dev/null) || exit 13`,
        `${run} rotate-key --yes --keyring --dir "${dir}/d" || exit 14`,
        `(unset AICO_DATA_PASSPHRASE; ${run} status --keyring --dir "${dir}/d" </dev/null) || exit 15`,
        `${run} forget --dir "${dir}/d" || exit 16`,
        `(unset AICO_DATA_PASSPHRASE; ${run} status --keyring --dir "${dir}/d" </dev/null) && exit 17`,
        `exit 0`,
      ].join("\n");
      const out = await new Deno.Command("bash", {
        args: [SESSION, "bash", "-c", script],
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /the OS keyring holds the data key/);
      assert.match(text, /imported 1 messages in 1 new conversations/);
      assert.match(text, /the OS keyring now holds the new key/);
      assert.match(text, /forgot the data key/);
      // After forget, --keyring finds nothing: NOT_FOUND, not a weaker fallback.
      assert.match(text, /NOT_FOUND/);
      assert.equal(text.match(/conversations 1\n/g)?.length, 2);
    });
  },
});
