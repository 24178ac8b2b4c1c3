#!/usr/bin/env bash
# Install the pinned agent CLIs the tests run besides claude (tools/install-claude.sh installs
# that one) from npm into <repo>/.cache/, and print one line per CLI, the variable its backend
# reads and the binary:
#
#     ORCHESTRATOR_CODEX_BIN=<repo>/.cache/codex/node_modules/.bin/codex
#     ORCHESTRATOR_GEMINI_BIN=<repo>/.cache/gemini-cli/node_modules/.bin/gemini
#     ORCHESTRATOR_OPENCODE_BIN=<repo>/.cache/opencode/node_modules/.bin/opencode
#     ORCHESTRATOR_CLAUDE_OLDEST_BIN=<repo>/.cache/claude-code-2.1.197/node_modules/.bin/claude
#
# (the last: the oldest claude the claude backend accepts, which reports a resumed session's
# cost differently; the tests run it beside the pinned one). .ci/run exports these lines. Name
# CLIs to install only those: `bash tools/install-agents.sh codex opencode`. Idempotent: a CLI
# whose pinned version is installed already is not installed again. Works from any cwd. Needs
# node and npm (npm registry access); nothing else on the network, then or when the tests run.
#
# opencode installs its plugin package (@opencode-ai/plugin) into its global config directory
# from npm the first time it starts with one; the tests give each opencode a fresh config
# directory, so that package is installed here once, in .cache/opencode/config/opencode, and
# each test's directory links to it (tests/agentclis.py): a test run needs no network at all.
# (The AI SDK provider a project's opencode.json names, "npm": "@ai-sdk/openai", is bundled in
# the opencode binary: nothing to install for it.)
set -euo pipefail

CODEX_VERSION="${CODEX_VERSION:-0.169.0}"
GEMINI_CLI_VERSION="${GEMINI_CLI_VERSION:-0.61.0}"
OPENCODE_VERSION="${OPENCODE_VERSION:-1.18.33}"
CLAUDE_OLDEST_VERSION="${CLAUDE_OLDEST_VERSION:-2.1.197}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

installed_version() {  # the version in a package.json, or nothing
    [ -f "$1" ] || return 1
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$1" 2>/dev/null
}

# install DIR PACKAGE VERSION: the pinned PACKAGE under .cache/DIR (npm's --prefix), unless it is there.
install() {
    local prefix="$root/.cache/$1" package="$2" version="$3"
    local pkg_json="$prefix/node_modules/$package/package.json"
    if [ "$(installed_version "$pkg_json" || true)" != "$version" ]; then
        mkdir -p "$prefix"
        npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$version" >&2
        if [ "$(installed_version "$pkg_json" || true)" != "$version" ]; then
            echo "install-agents.sh: $package@$version did not install into $prefix" >&2
            return 1
        fi
    fi
}

# show VARIABLE BINARY: the line for a CLI, once its binary is there.
show() {
    if [ ! -x "$2" ]; then
        echo "install-agents.sh: $2 missing after npm install" >&2
        return 1
    fi
    echo "$1=$2"
}

# opencode's plugin package, as opencode installs it into a config directory (package.json,
# package-lock.json, node_modules), for the tests' config directories to link to.
opencode_config() {
    local dir="$root/.cache/opencode/config/opencode"
    if [ "$(installed_version "$dir/node_modules/@opencode-ai/plugin/package.json" || true)" != "$OPENCODE_VERSION" ]; then
        mkdir -p "$dir"
        printf '{\n  "dependencies": {\n    "@opencode-ai/plugin": "%s"\n  }\n}\n' "$OPENCODE_VERSION" >"$dir/package.json"
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2)
    fi
}

if ! command -v npm >/dev/null 2>&1; then
    echo "install-agents.sh: npm not found (apt-get install nodejs npm)" >&2
    exit 1
fi

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(codex gemini opencode claude-oldest)
for cli in "${wanted[@]}"; do
    case "$cli" in
        codex)
            install codex @openai/codex "$CODEX_VERSION"
            show ORCHESTRATOR_CODEX_BIN "$root/.cache/codex/node_modules/.bin/codex"
            ;;
        gemini)
            install gemini-cli @google/gemini-cli "$GEMINI_CLI_VERSION"
            show ORCHESTRATOR_GEMINI_BIN "$root/.cache/gemini-cli/node_modules/.bin/gemini"
            ;;
        opencode)
            install opencode opencode-ai "$OPENCODE_VERSION"
            opencode_config
            show ORCHESTRATOR_OPENCODE_BIN "$root/.cache/opencode/node_modules/.bin/opencode"
            ;;
        claude-oldest)
            install "claude-code-$CLAUDE_OLDEST_VERSION" @anthropic-ai/claude-code "$CLAUDE_OLDEST_VERSION"
            show ORCHESTRATOR_CLAUDE_OLDEST_BIN "$root/.cache/claude-code-$CLAUDE_OLDEST_VERSION/node_modules/.bin/claude"
            ;;
        *)
            echo "install-agents.sh: no CLI named $cli: name codex, gemini, opencode or claude-oldest" >&2
            exit 2
            ;;
    esac
done
