"""The four agent CLIs the tests run for real, each pointed at a fake of its vendor's API.

A :class:`Vendor` is what the agent suite (``tests/agentsuite.py``) needs of one: where its
binary is (``$ORCHESTRATOR_<NAME>_BIN``, the repository's ``.cache`` where
``tools/install-claude.sh`` and ``tools/install-agents.sh`` put the pinned versions, ``PATH``),
the fake it talks to and the environment and configuration files that point it there (each
CLI's own documented configuration, never a patch), and the vendor's words for the scripted
cases: a tool call the agent may make, one it is refused, a 429, a 5xx, a usage limit.

What the real CLIs showed against these fakes (pinned versions, Linux, as root):

claude 2.1.329 (and 2.1.197, the oldest the backend accepts): ``tests/fakeapi.py``'s notes.
``total_cost_usd`` of a resumed session is the whole session's from 2.1.277 on, the
invocation's own up to 2.1.276 (bisected over the releases).

codex 0.169.0 (``codex exec --json``)
  * ``OPENAI_BASE_URL`` is ignored (it tries its default host over a WebSocket, then hangs
    "Reconnecting... waiting for network"); a model provider of its own in
    ``$CODEX_HOME/config.toml`` (``base_url`` ending ``/v1``, ``wire_api = "responses"``,
    ``env_key``) works, and ``--strict-config`` accepts every key written here. It streams
    ``POST /v1/responses`` with 10 tools (``exec_command``, ``write_stdin``, ``apply_patch`` as a
    freeform ``custom`` tool, ...). It sends OpenTelemetry metrics to ab.chatgpt.com unless
    ``[analytics] enabled = false``, and syncs its plugin marketplace from github.com and
    chatgpt.com as it starts unless ``[features] plugins = false``.
  * With ``$CODEX_HOME`` under ``$TMPDIR`` (pytest's ``tmp_path`` is under /tmp) it refuses to
    make its sandbox helper ("Refusing to create helper binaries under temporary dir"), and where
    bubblewrap is installed every sandboxed command then fails (``bwrap: execvp
    codex-linux-sandbox: No such file or directory``): the tests give it a ``TMPDIR`` of its own.
  * ``turn.completed``'s ``usage`` is the thread's running total (a resumed thread's includes
    the turns before), summed over the turn's requests; a 429 is retried after its
    ``retry-after`` (``Reconnecting... n/5``: ``stream_max_retries``, 5 by default), then the
    turn fails with "exceeded retry limit, last status: 429 Too Many Requests" (no wait told); a
    500 is retried at once. ChatGPT's ``usage_limit_reached`` is "You've hit your usage limit.
    ... try again at 9:57 PM." (local time, whole minutes), ``insufficient_quota`` "Quota
    exceeded. Check your plan and billing details.", both exit 1 at once.
  * Refusals leave no item in ``--json`` at all: a read-only task's command that asks for
    escalation (``sandbox_permissions: "require_escalated"``) is answered to the model "approval
    policy is Never; reject command ..." and logged on stderr (``ERROR codex_core::tools::router``);
    a write the read-only sandbox stopped (``touch made.txt``: "Read-only file system") and a
    read-only ``apply_patch`` ("patch rejected: writing is blocked by read-only sandbox") likewise.
    Only the session's rollout (``$CODEX_HOME/sessions/Y/M/D/rollout-*-<thread>.jsonl``) holds the
    call and its output, and no ``item_completed`` for it: what ``backends/codex.py`` reads. That is
    a command the sandbox stopped within 150 ms of its start; a slower one (``sleep 0.5; touch
    made.txt``, or any on a loaded machine) codex begins, and its item completes ``failed``, exit
    1, "Read-only file system": the model is told the same either way.
  * ``codex exec resume <thread> -`` continues the thread (same id, history re-sent); an unknown
    id silently starts a new thread, exit 0.

gemini 0.61.0 (``gemini -p ... -o stream-json``)
  * Needs ``GEMINI_API_KEY``, ``GOOGLE_GEMINI_BASE_URL`` and a settings file selecting API-key
    auth (``security.auth.selectedType: "gemini-api-key"``), else exit 41. It reports usage to
    play.googleapis.com unless ``privacy.usageStatisticsEnabled`` is false.
  * Its ``stats`` sum the API's ``usageMetadata``: ``input_tokens`` its ``promptTokenCount``,
    ``output_tokens`` its ``candidatesTokenCount``, ``total_tokens`` its ``totalTokenCount``,
    which alone holds the ``thoughtsTokenCount`` (the thinking, billed as output).
  * Before each user turn it asks a router model (a ``generateContent`` of flash-lite with no
    tools, a JSON answer wanted: ``complexity_score``); its tokens are a second model in the
    stats (role ``utility_router``). The main turn streams ``streamGenerateContent?alt=sse``.
  * Headless in the default approval mode it offers no ``write_file`` nor
    ``run_shell_command``; a call of either is a ``tool_result`` with ``status: "error"`` and
    ``error.type: "tool_not_registered"`` ("Tool "write_file" not found. Did you mean one of:
    ..."; no longer "not found in registry"), as is a call a ``--policy`` rule denies.
  * A 429's wait comes from the error body's ``RetryInfo`` (``retryDelay``), not a header; it
    retries (``general.maxAttempts``, 10 by default, then exit 173 with "Suggested retry after
    Ns." in the result's error). A daily quota ("...PerDay..." quota id) is not retried: "You
    have exhausted your daily quota on this model.", exit 173. A 500 is retried after ~4 s.
  * ``stream-json`` prints ``init`` (``session_id``) first; ``--resume <uuid>`` continues a
    session of the same directory (an unknown one: exit 42, "Invalid session identifier");
    a resumed invocation's stats count its own requests only.

opencode 1.18.33 (``opencode run --format json``)
  * Reaches a local endpoint through a provider with ``"npm": "@ai-sdk/openai"`` (bundled in
    the binary, nothing downloaded), ``options.baseURL`` and its models listed, in a config file
    (``OPENCODE_CONFIG``, or a project's ``opencode.json``), with
    ``OPENCODE_DISABLE_MODELS_FETCH=1`` (else it fetches models.dev). The first time it starts
    with a config directory it installs ``@opencode-ai/plugin`` there from npm (in the
    background): the tests link a directory ``tools/install-agents.sh`` filled.
  * It runs where ``$PWD`` says, not in its working directory: the backend passes ``--dir``.
  * Without ``--title`` it first asks the model for a session title (a request with no tools).
  * Events: ``step_start``, ``text``, ``tool_use`` (``part.state.status``), ``step_finish``
    (``tokens``, ``cost`` of the step, computed from the model's price in the config), ``error``
    (``error.data``: ``message``, ``statusCode``, ``responseHeaders``, ``responseBody``). A 429 is
    retried after its ``retry-after`` 5 times, then an ``error`` event and exit 1; a 429 without
    one (a quota) after 2, 4, 8, 16 and 32 s.
  * A call its permission config says ``ask`` is refused headless ("permission requested: bash
    (...); auto-rejecting" on stderr; the ``tool_use`` fails "The user rejected permission to use
    this specific tool call.") and the run ends there, exit 0; a tool denied outright is not
    offered, and a call of it becomes a call of the ``invalid`` tool ("Model tried to call
    unavailable tool 'write'"). ``--agent plan`` denies edits but runs commands.
  * ``--session <id>`` continues a session (history re-sent; its events count its own steps);
    an unknown id: "Error: Session not found", exit 1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import fake_gemini
import fake_openai
from agenthome import agent_environment
from fake_gemini import FakeGemini
from fake_openai import FakeOpenAI
from fakeapi import FakeAnthropic, FakeServer, Reply, claude_env, repo_root

FAKE_KEY = "FAKE_OPENAI_API_KEY"
PROVIDER = "fake"  # the provider id the codex and opencode configs name
OPENCODE_MODEL = "gpt-5.5"
# What the fake model costs in opencode's config, dollars per million tokens: the default reply
# (100 in, 20 out) then costs 100 * 2 / 1e6 + 20 * 8 / 1e6 = $0.00036.
OPENCODE_PRICE = {"input": 2.0, "output": 8.0}


@dataclass(frozen=True)
class Vendor:
    """One agent CLI as the suite drives it."""

    backend: str  # the orchestrator's backend name
    variable: str  # the variable its backend reads for the binary
    cache: str  # where the install script puts it, under .cache/
    fake: type[FakeServer]
    configure: Callable[[FakeServer, Path], dict[str, str]]  # (its fake, a home) -> the environment
    rate_limited: Callable[[float], Reply]
    server_error: Callable[[], Reply]
    usage_limit: Callable[[int], Reply]  # (epoch seconds it resets) -> the vendor's answer
    read: Callable[[Path], Reply]  # a call that reads a file: the agent may make it
    write: Callable[[Path], tuple[Reply, ...]]  # calls that write it: a read-only agent is refused them
    limited_in_a_row: int  # the 429s after which the CLI gives up (as configured here)
    tells_wait: bool  # whether what it prints when it gives up on 429s says how long to wait
    costs: bool  # whether it reports a cost
    startup: float  # seconds it may print nothing as it starts (a loaded machine): the hang test's watchdog
    plan: Mapping[str, str] = field(default_factory=dict)  # frontmatter every plan of the suite sets
    read_only: Mapping[str, str] = field(default_factory=dict)  # settings of a task that may only read
    usage_reset: str = "exact"  # how exactly its usage limit tells the reset: exact, minute, none
    reads: str = ""  # the variable its backend reads for the binary, when not ``variable``

    def binary(self) -> str | None:
        named = os.environ.get(self.variable)
        if named:
            return named if os.access(named, os.X_OK) else None
        local = repo_root() / ".cache" / self.cache
        if os.access(local, os.X_OK):
            return str(local)
        return shutil.which(Path(self.cache).name)

    def missing(self) -> str:
        named = os.environ.get(self.variable)
        if named:
            return f"{self.variable}={named} is not an executable: point it at a {self.backend} binary, or unset it"
        script = "tools/install-claude.sh" if self.variable == "ORCHESTRATOR_CLAUDE_BIN" else "tools/install-agents.sh"
        return (
            f"the {self.backend} CLI is not installed: run `bash {script}` (it needs node and npm; it puts the "
            f"pinned version in .cache/, where the tests look), or set {self.variable}"
        )

    def environment(self, api: FakeServer, home: Path, binary: str) -> dict[str, str]:
        """The environment an ``orchestrator run`` gets: the CLI's own settings at the fake, a
        home of its own (nothing of the person's: no key, no config, no shell start-up:
        ``agenthome``), the binary named."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_VENDOR_PREFIXES)}
        env = agent_environment(env, home)
        env.update(self.configure(api, home))
        env[self.reads or self.variable] = binary
        return env


_VENDOR_PREFIXES = ("ANTHROPIC_", "CLAUDE", "OPENAI_", "CODEX_", "GEMINI_", "GOOGLE_", "OPENCODE_", "XDG_")


def _own_tmp(home: Path) -> str:
    """A temporary directory of the CLI's own, outside its home (codex refuses a home under it)."""
    tmp = home.parent / f"{home.name}-tmp"
    tmp.mkdir(exist_ok=True)
    return str(tmp)


# --- claude ---------------------------------------------------------------------------------------


def _claude(api: FakeServer, home: Path) -> dict[str, str]:
    config = home / "claude-config"
    config.mkdir(exist_ok=True)
    return {k: v for k, v in claude_env(api.base_url, config).items() if k.startswith(("ANTHROPIC_", "CLAUDE"))}


def claude_subscriber(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` as a subscriber's: claude reads a usage limit only from a subscriber's answers."""
    found = {k: v for k, v in env.items() if k != "ANTHROPIC_API_KEY"}
    found["CLAUDE_CODE_OAUTH_TOKEN"] = "fake-oauth-token"
    return found


def _claude_server_error() -> Reply:
    return Reply.error(500, "api_error", "Internal server error")


CLAUDE = Vendor(
    backend="claude",
    variable="ORCHESTRATOR_CLAUDE_BIN",
    cache="claude-code/node_modules/.bin/claude",
    fake=FakeAnthropic,
    configure=_claude,
    rate_limited=lambda seconds: Reply.rate_limited(retry_after=round(seconds)),
    server_error=_claude_server_error,
    usage_limit=lambda resets: Reply.usage_limit(resets),
    read=lambda path: Reply.tool("Read", {"file_path": str(path)}),
    write=lambda path: (Reply.tool("Write", {"file_path": str(path), "content": "made\n"}),),
    limited_in_a_row=3,  # CLAUDE_CODE_MAX_RETRIES=2, as the backend sets it
    tells_wait=True,
    costs=True,
    startup=8.0,
    read_only={"tools": "[Read, Grep, Glob]"},
)
# The oldest claude the backend accepts (tools/install-agents.sh installs it beside the pinned one).
CLAUDE_OLDEST = replace(
    CLAUDE,
    variable="ORCHESTRATOR_CLAUDE_OLDEST_BIN",
    cache="claude-code-2.1.197/node_modules/.bin/claude",
    reads="ORCHESTRATOR_CLAUDE_BIN",
)


# --- codex ----------------------------------------------------------------------------------------


def _codex(api: FakeServer, home: Path) -> dict[str, str]:
    codex_home = home / "codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        f"""model = "{fake_openai.DEFAULT_MODEL}"
model_provider = "{PROVIDER}"

[analytics]
enabled = false

[features]
plugins = false

[model_providers.{PROVIDER}]
name = "Fake OpenAI (tests/fake_openai.py)"
base_url = "{api.base_url}/v1"
wire_api = "responses"
env_key = "{FAKE_KEY}"
stream_max_retries = 1
request_max_retries = 0
""",
        encoding="utf-8",
    )
    return {"CODEX_HOME": str(codex_home), FAKE_KEY: "dummy", "TMPDIR": _own_tmp(home)}


def _codex_escalation(path: Path) -> Reply:
    return Reply.tool(
        "exec_command",
        {"cmd": f"touch {path.name}", "sandbox_permissions": "require_escalated", "justification": "I must write it"},
    )


CODEX = Vendor(
    backend="codex",
    variable="ORCHESTRATOR_CODEX_BIN",
    cache="codex/node_modules/.bin/codex",
    fake=FakeOpenAI,
    configure=_codex,
    rate_limited=fake_openai.rate_limited,
    server_error=fake_openai.server_error,
    usage_limit=lambda resets: fake_openai.usage_limit(resets),
    read=lambda path: Reply.tool("exec_command", {"cmd": f"cat {path.name}"}),
    # a command that asks to leave the sandbox, then a write the sandbox stops: at once (codex
    # refuses it unseen), and past 150 ms (codex begins it, and it ends "failed"), as on a loaded machine
    write=lambda path: (
        _codex_escalation(path),
        Reply.tool("exec_command", {"cmd": f"touch {path.name}"}),
        Reply.tool("exec_command", {"cmd": f"sleep 0.5; touch {path.name}"}),
    ),
    limited_in_a_row=2,  # stream_max_retries = 1 in its config
    tells_wait=False,
    costs=False,
    startup=8.0,
    read_only={"permission_mode": "read-only"},
    usage_reset="minute",
)


# --- gemini ---------------------------------------------------------------------------------------


def _gemini(api: FakeServer, home: Path) -> dict[str, str]:
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    given = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"maxAttempts": 1},  # a 429 is the orchestrator's to wait out
    }
    settings.write_text(json.dumps(given, indent=2), encoding="utf-8")
    return {"GEMINI_API_KEY": "dummy", "GOOGLE_GEMINI_BASE_URL": api.base_url, "TMPDIR": _own_tmp(home)}


GEMINI = Vendor(
    backend="gemini",
    variable="ORCHESTRATOR_GEMINI_BIN",
    cache="gemini-cli/node_modules/.bin/gemini",
    fake=FakeGemini,
    configure=_gemini,
    rate_limited=fake_gemini.rate_limited,
    server_error=fake_gemini.server_error,
    usage_limit=lambda resets: fake_gemini.quota_exhausted(),
    read=lambda path: Reply.tool("read_file", {"file_path": path.name}),
    write=lambda path: (Reply.tool("write_file", {"file_path": path.name, "content": "made\n"}),),
    limited_in_a_row=1,  # general.maxAttempts = 1 in its settings
    tells_wait=True,
    costs=False,
    startup=15.0,
    read_only={"permission_mode": "plan"},
    usage_reset="none",
)


# --- opencode -------------------------------------------------------------------------------------


def _opencode(api: FakeServer, home: Path) -> dict[str, str]:
    config = home / "opencode.json"
    config.write_text(
        json.dumps(
            {
                "$schema": "https://opencode.ai/config.json",
                "provider": {
                    PROVIDER: {
                        "npm": "@ai-sdk/openai",
                        "name": "Fake OpenAI (tests/fake_openai.py)",
                        "options": {"baseURL": f"{api.base_url}/v1", "apiKey": "dummy"},
                        "models": {OPENCODE_MODEL: {"name": OPENCODE_MODEL, "cost": OPENCODE_PRICE}},
                    }
                },
                "model": f"{PROVIDER}/{OPENCODE_MODEL}",
                "autoupdate": False,
                "share": "disabled",
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    xdg = {name: home / name.lower().removeprefix("xdg_").removesuffix("_home") for name in _XDG}
    for path in xdg.values():
        path.mkdir(exist_ok=True)
    _link_plugin(xdg["XDG_CONFIG_HOME"] / "opencode")
    return {
        "OPENCODE_CONFIG": str(config),
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "TMPDIR": _own_tmp(home),
        **{name: str(path) for name, path in xdg.items()},
    }


_XDG = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def _link_plugin(directory: Path) -> None:
    """opencode's config directory with its plugin package installed (by
    ``tools/install-agents.sh``, once): else it installs it from npm as it starts."""
    shared = repo_root() / ".cache" / "opencode" / "config" / "opencode"
    directory.mkdir(parents=True, exist_ok=True)
    if not (shared / "node_modules").is_dir():
        return  # (not installed: opencode reaches npm, the network test says so)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(shared / name, directory / name)
    if not (directory / "node_modules").exists():
        (directory / "node_modules").symlink_to(shared / "node_modules")


OPENCODE = Vendor(
    backend="opencode",
    variable="ORCHESTRATOR_OPENCODE_BIN",
    cache="opencode/node_modules/.bin/opencode",
    fake=FakeOpenAI,
    configure=_opencode,
    rate_limited=fake_openai.rate_limited,
    server_error=fake_openai.server_error,
    usage_limit=lambda resets: fake_openai.usage_limit(resets),
    read=lambda path: Reply.tool("read", {"filePath": str(path)}),
    write=lambda path: (Reply.tool("write", {"filePath": str(path), "content": "made\n"}),),
    limited_in_a_row=6,
    tells_wait=True,
    costs=True,
    startup=30.0,
    read_only={"permission_mode": "read-only"},
)

VENDORS = {vendor.backend: vendor for vendor in (CLAUDE, CODEX, GEMINI, OPENCODE)}


# --- CI -------------------------------------------------------------------------------------------


def required() -> bool:
    """Whether a CLI missing must fail its tests (CI sets ``ORCHESTRATOR_AGENTS_REQUIRED=1``: it
    installed them, and a skip there would pass CI without them)."""
    return os.environ.get("ORCHESTRATOR_AGENTS_REQUIRED") == "1"


# --- no host but 127.0.0.1 ---------------------------------------------------------------------------

_CONNECT = re.compile(r'connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), [^}]*?"([0-9a-f.:]+)"')


def hosts_reached(trace: Path) -> set[str]:
    """Every ``host:port`` an ``strace -f -e trace=connect`` log shows a process connect to
    over IP (DNS lookups included: port 53)."""
    return {f"{host}:{port}" for port, host in _CONNECT.findall(trace.read_text(encoding="utf-8", errors="replace"))}


def loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


__all__ = [
    "CLAUDE",
    "CLAUDE_OLDEST",
    "CODEX",
    "GEMINI",
    "OPENCODE",
    "VENDORS",
    "Vendor",
    "claude_subscriber",
    "hosts_reached",
    "loopback",
    "required",
]
