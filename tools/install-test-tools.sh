#!/usr/bin/env bash
# What the tests need of the system, from Debian's packages (no browser build downloaded by a tool):
# chromium and chromium-driver (the dashboard's tests drive the system's headless Chromium), cron
# (test_schedule starts the cron daemon), bubblewrap and socat (claude's sandbox, and the sandbox of
# runs from outside), zsh (the zsh completion test), strace (the agent tests watch each CLI reach no
# host but 127.0.0.1), curl (the API's runnable docs), git. Installs what is missing (apt-get, with sudo
# when not root), says what it found, and exits non-zero when something cannot be had: a test that
# would skip for a missing tool is a test that does not run.
set -euo pipefail

packages=(chromium chromium-driver cron bubblewrap socat zsh strace curl git)
programs=(/usr/bin/chromium /usr/bin/chromedriver /usr/sbin/cron bwrap socat zsh strace curl git)

missing=()
for i in "${!programs[@]}"; do
  program="${programs[$i]}"
  if [[ "$program" == /* ]]; then [ -x "$program" ] || missing+=("${packages[$i]}"); continue; fi
  command -v "$program" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
command -v crontab >/dev/null 2>&1 || missing+=(cron)

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "the tests need: ${missing[*]} (Debian's package names); this system has no apt-get: install them" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi
echo "test tools: $(/usr/bin/chromium --version 2>/dev/null | head -n 1); $(bwrap --version); zsh $(zsh --version | cut -d' ' -f2)"
