#!/usr/bin/env bash
# Install the pinned Claude Code CLI (npm package @anthropic-ai/claude-code)
# into <repo>/.cache/claude-code and print the path of the `claude` binary.
# Idempotent: does nothing if the pinned version is already installed.
# Works from any cwd. Needs node + npm (npm registry access).
set -euo pipefail

CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.329}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.cache/claude-code"
bin="$prefix/node_modules/.bin/claude"
pkg_json="$prefix/node_modules/@anthropic-ai/claude-code/package.json"

installed_version() {
    [ -f "$pkg_json" ] || return 1
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg_json" 2>/dev/null
}

if [ -x "$bin" ] && [ "$(installed_version || true)" = "$CLAUDE_CODE_VERSION" ]; then
    echo "$bin"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install-claude.sh: npm not found (apt-get install nodejs npm)" >&2
    exit 1
fi

mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2

if [ ! -x "$bin" ]; then
    echo "install-claude.sh: $bin missing after npm install" >&2
    exit 1
fi
echo "$bin"
