#!/usr/bin/env bash
# Runs a command against a private, throwaway Secret Service (gnome-keyring).
#
#   bash .ci/keyring_session.sh [--locked] [--] COMMAND [ARG...]
#
# The command runs inside its own `dbus-run-session` with a fresh temporary
# HOME and XDG directories, so it never touches the caller's real keyring.
# gnome-keyring-daemon (secrets component only) is started and its login
# collection unlocked with a random throwaway password; with --locked the
# collection is locked again before COMMAND runs (a "locked keyring").
# DBUS_SESSION_BUS_ADDRESS points COMMAND at that bus. The temporary
# directory is removed afterwards; the exit status is COMMAND's.
#
# Needs (Debian): gnome-keyring libsecret-tools dbus-x11 (dbus-run-session,
# dbus-send come with dbus).
#
# Example: bash .ci/keyring_session.sh deno task test
set -euo pipefail

if [[ "${1:-}" == "--inner" ]]; then
  mode="$2"
  shift 2
  export HOME="$AICO_KEYRING_SESSION_DIR/home"
  export XDG_DATA_HOME="$HOME/.local/share"
  export XDG_CONFIG_HOME="$HOME/.config"
  export XDG_CACHE_HOME="$HOME/.cache"
  export XDG_RUNTIME_DIR="$AICO_KEYRING_SESSION_DIR/run"
  mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
  mkdir -m 700 -p "$XDG_RUNTIME_DIR"
  unset AICO_KEYRING_SESSION_DIR
  password="$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf %s "$password" |
    gnome-keyring-daemon --unlock --components=secrets >/dev/null
  unset password
  # The daemon forks before it owns its bus name: wait for it, otherwise the
  # first client would D-Bus-activate a second, locked daemon.
  for _ in $(seq 1 100); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus \
      /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
      string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
      break
    fi
    sleep 0.05
  done
  if [[ "$mode" == "locked" ]]; then
    dbus-send --session --print-reply --dest=org.freedesktop.secrets \
      /org/freedesktop/secrets org.freedesktop.Secret.Service.Lock \
      array:objpath:/org/freedesktop/secrets/collection/login >/dev/null
  fi
  exec "$@"
fi

mode=unlocked
if [[ "${1:-}" == "--locked" ]]; then
  mode=locked
  shift
fi
if [[ "${1:-}" == "--" ]]; then
  shift
fi
if [[ $# -eq 0 ]]; then
  echo "usage: bash .ci/keyring_session.sh [--locked] [--] COMMAND [ARG...]" >&2
  exit 2
fi
for tool in dbus-run-session dbus-send gnome-keyring-daemon secret-tool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "keyring_session.sh: '$tool' not found (apt-get install gnome-keyring libsecret-tools dbus-x11)" >&2
    exit 127
  fi
done

session_dir="$(mktemp -d)"
trap 'rm -rf "$session_dir"' EXIT
status=0
AICO_KEYRING_SESSION_DIR="$session_dir" \
  dbus-run-session -- bash "${BASH_SOURCE[0]}" --inner "$mode" "$@" || status=$?
exit "$status"
