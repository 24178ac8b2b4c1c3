"""``orchestrator doctor`` and the preflight of ``run``: the agent CLIs a plan needs, found (or
not) on this machine as a run would start them, and what each group of tasks may do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import find_claude
from runner_helpers import HANG_GUARD, Spec, cli, cli_in_process, write_plan

from orchestrator import backends
from orchestrator.plan.config.settings import Settings


def stub_claude(directory: Path) -> Path:
    """A program that answers ``--version`` as claude does, and counts how often it is started."""
    stub = directory / "claude-stub"
    stub.write_text(
        '#!/bin/sh\necho started >> "$(dirname "$0")/starts"\n'
        'if [ "$1" = "--version" ]; then echo "2.1.329 (Claude Code)"; exit 0; fi\nexit 1\n'
    )
    stub.chmod(0o755)
    return stub


def reviewer_plan(project: Path) -> None:
    workspace = project / ".orchestrator"
    (workspace / "agents").mkdir(parents=True)
    (workspace / "agents" / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: Reviews\ntools: Read, Grep, Glob\n---\nYou review.\n", encoding="utf-8"
    )
    (workspace / "master_plan.md").write_text(
        "---\nbackend: claude\npermission_mode: acceptEdits\n---\n# Plan\n\n## Original Request\n> Review\n\n"
        "## Task Decomposition\n| Task ID | Description | Dependencies | Assignee |\n|---|---|---|---|\n"
        "| T-01 | Change the code | None | - |\n| T-02 | Review it | T-01 | reviewer |\n"
        "| T-03 | Review again | T-01 | reviewer |\n",
        encoding="utf-8",
    )


def test_run_stops_before_anything_starts_when_an_agent_cli_is_missing(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo a"), Spec("T-02", "echo b", deps=["T-01"])], {"backend": "claude"})
    missing = str(tmp_path / "no-such" / "claude")
    result = cli(tmp_path, "run", env={"ORCHESTRATOR_CLAUDE_BIN": missing})
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{missing} is not installed (needed by T-01, T-02): npm install -g @anthropic-ai/")
    assert "nothing was started" in lines[0] and "orchestrator doctor" in lines[0]
    workspace = tmp_path / ".orchestrator"
    assert not (workspace / "state").exists() and not (workspace / "results").exists()
    # The same in JSON, for scripts.
    as_json = cli(tmp_path, "run", "--json", env={"ORCHESTRATOR_CLAUDE_BIN": missing})
    report = json.loads(as_json.stdout.splitlines()[-1])
    assert as_json.code == 2 and report["ok"] is False and report["error"] == "BackendUnavailableError"


def test_a_machine_without_claude_runs_the_rest_once_the_claude_tasks_are_done(tmp_path: Path) -> None:
    """A claude task done elsewhere (or earlier) made every later run refuse for want of claude,
    though nothing it would run needed it: CI without claude could not run the plan's shell tasks."""
    fake = Path(__file__).resolve().parent.parent / "examples" / "bin" / "fake-claude"
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    head = "---\nbackend: shell\n---\n## Task Decomposition\n"
    head += "| Task ID | Description | Dependencies | Backend | Command |\n"
    plan.write_text(head + "|---|---|---|---|---|\n| T-01 | Review the code | None | claude | |\n", encoding="utf-8")
    assert cli(tmp_path, "run", env={"ORCHESTRATOR_CLAUDE_BIN": str(fake)}).code == 0
    text = plan.read_text(encoding="utf-8").replace(
        "| T-01 | Review the code | None | claude | |\n",
        "| T-01 | Review the code | None | claude | |\n| T-02 | Count | None | shell | touch counted |\n",
    )
    plan.write_text(text, encoding="utf-8")
    missing = str(tmp_path / "no-such" / "claude")
    ran = cli(tmp_path, "run", env={"ORCHESTRATOR_CLAUDE_BIN": missing})
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "counted").exists()
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-01.md"
    before = brief.read_bytes()
    plan.write_text(text.replace("Review the code", "Review the code again"), encoding="utf-8")  # T-01 will run
    refused = cli(tmp_path, "run", env={"ORCHESTRATOR_CLAUDE_BIN": missing})
    assert refused.code == 2
    assert refused.stderr.startswith(f"{missing} is not installed (needed by T-01)"), refused.stderr
    assert "nothing was started" in refused.stderr
    assert brief.read_bytes() == before  # refused before its brief was written again


def test_plan_looks_for_its_agent_cli_before_writing_anything(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such" / "claude")
    for extra in ((), ("--dry-run",), ("--json",)):
        result = cli(tmp_path, "plan", "Summarise this project", *extra, env={"ORCHESTRATOR_CLAUDE_BIN": missing})
        assert result.code == 2, result.stderr
        text = result.stdout if extra == ("--json",) else result.stderr
        assert f"{missing} is not installed (needed to plan)" in text and "nothing was written" in text
        assert list(tmp_path.iterdir()) == [], list(tmp_path.rglob("*"))


def test_a_rehearsal_with_the_fake_executor_needs_no_cli(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo a")], {"backend": "claude"})
    result = cli(tmp_path, "run", "--executor", "fake", env={"ORCHESTRATOR_CLAUDE_BIN": str(tmp_path / "none")})
    assert result.code == 0, result.stderr


def test_doctor_shows_the_cli_its_login_and_what_each_group_of_tasks_may_do(tmp_path: Path) -> None:
    reviewer_plan(tmp_path)
    stub = stub_claude(tmp_path)
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(stub), "ANTHROPIC_API_KEY": "sk-test", "HOME": str(tmp_path)}
    result = cli(tmp_path, "doctor", "--json", env=env)
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["plan"] == ".orchestrator/master_plan.md"
    claude = report["backends"][0]
    assert claude["backend"] == "claude" and claude["needed"] is True
    assert claude["path"] == str(stub) and claude["version"] == "2.1.329 (Claude Code)"
    assert claude["login"] == "authenticated by $ANTHROPIC_API_KEY" and claude["logged_in"] is True
    uses = {u["profile"]: u for u in claude["uses"]}
    assert uses[None]["tasks"] == ["T-01"] and uses["reviewer"]["tasks"] == ["T-02", "T-03"]
    assert "every tool claude has" in uses[None]["powers"] and "acceptEdits" in uses[None]["powers"]
    assert "Risk: it can rewrite or delete any file" in uses[None]["powers"]
    assert uses["reviewer"]["powers"].startswith("tools: only Read, Grep, Glob;")
    assert [b["backend"] for b in report["backends"]] == ["claude", "codex", "gemini", "opencode"]
    assert claude["untested"] is None  # the pinned version: tested
    assert not report["backends"][1]["needed"] and report["backends"][1]["problem"] is None
    # The same for a person: the plan's file, the version, the login, the reviewer's powers.
    text = cli(tmp_path, "doctor", env=env)
    assert text.code == 0
    assert f"✅ claude: {stub} (2.1.329 (Claude Code))" in text.stdout
    assert "T-02, T-03 (profile reviewer): tools: only Read, Grep, Glob;" in text.stdout
    assert text.stdout.rstrip().endswith("All the plan needs is here.")


def test_doctor_finds_a_login_file_and_says_when_there_is_none(tmp_path: Path) -> None:
    reviewer_plan(tmp_path)
    stub = stub_claude(tmp_path)
    env = {
        "ORCHESTRATOR_CLAUDE_BIN": str(stub),
        "HOME": str(tmp_path),
        "ANTHROPIC_API_KEY": "",
        "ANTHROPIC_AUTH_TOKEN": "",
        "CLAUDE_CODE_OAUTH_TOKEN": "",
        "CLAUDE_CONFIG_DIR": str(tmp_path / "no-config"),
    }
    result = cli(tmp_path, "doctor", "--json", env=env)
    claude = json.loads(result.stdout)["backends"][0]
    assert result.code == 1 and claude["logged_in"] is False
    assert claude["problem"].startswith("no API key or login found: log in with `claude`")
    text = cli(tmp_path, "doctor", env=env)
    assert text.code == 1 and "⚠️ no API key or login found" in text.stdout
    credentials = tmp_path / ".claude" / ".credentials.json"
    credentials.parent.mkdir()
    credentials.write_text("{}")
    again = json.loads(cli(tmp_path, "doctor", "--json", env=env).stdout)["backends"][0]
    assert again["logged_in"] is True and again["login"] == f"logged in ({credentials})"


def test_doctor_without_a_plan_checks_every_agent_cli(tmp_path: Path) -> None:
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(tmp_path / "none"), "ORCHESTRATOR_CODEX_BIN": str(stub_claude(tmp_path))}
    result = cli(tmp_path, "doctor", "--json", env=env)
    report = json.loads(result.stdout)
    assert result.code == 0 and report["plan"] is None
    found = {b["backend"]: b["installed"] for b in report["backends"]}
    assert found == {"claude": False, "codex": True, "gemini": found["gemini"], "opencode": found["opencode"]}
    missing = cli(tmp_path, "doctor", str(tmp_path / "nowhere"))
    assert missing.code == 2 and len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", ["claude", "codex", "gemini", "opencode", "shell", "command"])
def test_every_backend_says_what_its_default_lets_an_agent_do(backend: str) -> None:
    powers = backends.get(backend).powers(Settings())
    assert len(powers) > 40 and "?" not in powers


def test_every_permission_mode_has_its_risk_in_words() -> None:
    """The modes a backend takes are those it has words for; a mode that lets the agent change
    files or run commands unasked says the risk."""
    from orchestrator.backends import claude_permissions, codex, gemini, opencode

    for name, table, risky in (
        ("claude", claude_permissions.MODE_POWERS, {"acceptEdits", "auto", "bypassPermissions"}),
        ("codex", codex.SANDBOX_POWERS, {"workspace-write", "danger-full-access"}),
        ("gemini", gemini.APPROVAL_POWERS, {"auto_edit", "yolo"}),
        # opencode's defaults let an agent edit and run commands: its own config decides
        ("opencode", opencode.PERMISSION_POWERS, {"default", "auto"}),
    ):
        backend = backends.get(name)
        for mode, words in table.items():
            assert backend.check(Settings(permission_mode=mode, env={"IS_SANDBOX": "1"})) is None, (name, mode)
            assert ("Risk:" in words) == (mode in risky), (name, mode)
        assert backend.check(Settings(permission_mode="everything")) is not None


def test_doctor_warns_of_a_cli_version_outside_those_its_backend_was_tested_with(tmp_path: Path) -> None:
    """An older claude (before 2.1.197) or a newer one than the pinned: doctor says so, beside
    its version; the plan still runs (a warning, not a problem)."""
    reviewer_plan(tmp_path)
    stub = tmp_path / "bin" / "claude"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "2.0.9 (Claude Code)"; exit 0; fi\nexit 1\n')
    stub.chmod(0o755)
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(stub), "ANTHROPIC_API_KEY": "sk-test", "HOME": str(tmp_path)}
    report = json.loads(cli(tmp_path, "doctor", "--json", env=env).stdout)
    claude = report["backends"][0]
    assert report["ok"] is True and claude["problem"] is None
    assert claude["untested"].startswith("older than the versions this backend was tested with (2.1.197 to ")
    text = cli(tmp_path, "doctor", env=env)
    assert text.code == 0 and "    ⚠️ version 2.0.9 (Claude Code): older than the versions" in text.stdout


_PROVIDER = 'model_provider = "corp"\n\n[model_providers.corp]\nbase_url = "https://llm.corp.example/v1"\n'
_BY_PROFILE = 'profile = "work"\n\n[profiles.work]\nmodel_provider = "corp"\n\n[model_providers.corp]\n'


@pytest.mark.parametrize(
    ("config", "key", "logged_in", "said"),
    [
        pytest.param(_PROVIDER + 'env_key = "CORP_KEY"\n', "sk-corp", True, "authenticated by $CORP_KEY, which codex's "
                     "model provider 'corp' (", id="its-key-set"),
        pytest.param(_PROVIDER + 'env_key = "CORP_KEY"\n', "", False, "no $CORP_KEY set: codex's model provider "
                     "'corp' (", id="its-key-missing"),
        pytest.param(_BY_PROFILE + 'env_key = "CORP_KEY"\n', "sk-corp", True, "authenticated by $CORP_KEY",
                     id="by-its-profile"),
        pytest.param(_PROVIDER, "", True, "codex's model provider 'corp' (", id="a-local-model-no-key"),
        pytest.param(_PROVIDER + "requires_openai_auth = true\n", "sk-corp", False, "no API key or login found: log in "
                     "with `codex login`", id="openai-login-wanted"),
        pytest.param('model_provider = "corp\n', "", False, "does not read as TOML", id="not-toml"),
    ],
)  # fmt: skip
def test_doctor_reads_codex_login_from_its_own_config(
    tmp_path: Path, config: str, key: str, logged_in: bool, said: str
) -> None:
    """codex's key may come from its own config.toml's model provider (``env_key``), not OpenAI's
    variables: doctor reads the file as codex does ($CODEX_HOME/config.toml) and says which."""
    (tmp_path / ".orchestrator").mkdir()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(
        "---\nbackend: codex\n---\n# Plan\n\n## Original Request\n> Work\n\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies |\n|---|---|---|\n| T-01 | Work | None |\n",
        encoding="utf-8",
    )
    stub = tmp_path / "codex"
    stub.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "codex-cli 0.169.0"; exit 0; fi\nexit 1\n')
    stub.chmod(0o755)
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(config, encoding="utf-8")
    env = {"ORCHESTRATOR_CODEX_BIN": str(stub), "HOME": str(tmp_path), "CODEX_HOME": str(home), "CORP_KEY": key}
    env |= {"OPENAI_API_KEY": "", "CODEX_API_KEY": ""}
    result = cli(tmp_path, "doctor", "--json", env=env)
    codex = next(b for b in json.loads(result.stdout)["backends"] if b["backend"] == "codex")
    assert codex["logged_in"] is logged_in and said in codex["login"], codex
    assert result.code == (0 if logged_in else 1), result.stdout + result.stderr
    shown = cli(tmp_path, "doctor", env=env)
    assert "Traceback" not in shown.stderr and said in shown.stdout, shown.stdout + shown.stderr


def test_doctor_with_the_real_claude_reads_its_version(tmp_path: Path) -> None:
    real = find_claude()
    if real is None:
        pytest.skip("claude CLI not installed: run tools/install-claude.sh (needs npm)")
    reviewer_plan(tmp_path)
    result = cli(tmp_path, "doctor", "--json", env={"ORCHESTRATOR_CLAUDE_BIN": real, "ANTHROPIC_API_KEY": "x"})
    claude = json.loads(result.stdout)["backends"][0]
    assert result.code == 0 and claude["version"].endswith("(Claude Code)")


def test_cli_integration_states_every_modes_risk_as_doctor_does() -> None:
    from orchestrator.backends import claude_permissions, codex, gemini, opencode

    text = (Path(__file__).parent.parent / "cli-integration.md").read_text(encoding="utf-8")
    tables = (claude_permissions.MODE_POWERS, codex.SANDBOX_POWERS, gemini.APPROVAL_POWERS, opencode.PERMISSION_POWERS)
    for table in tables:
        for mode, words in table.items():
            assert f"| `{mode}`" in text and f"| {words} |" in text, mode


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"backend": "gemini", "permission_mode": "plan"}, "approval mode plan: read-only"),
        ({"backend": "codex"}, "sandbox workspace-write (codex exec -s)"),
        ({"backend": "claude", "tools": ["Read", "Grep"]}, "tools: only Read, Grep; pre-approved: none"),
    ],
)
def test_an_agent_is_told_what_it_may_do(tmp_path: Path, settings: dict[str, object], words: str) -> None:
    """The prompt (after the brief) says what the agent may do and not to claim what a denied
    call did not do; the brief file stays as rendered, so no result goes out of date."""
    write_plan(tmp_path, [Spec("T-01", "echo a")], settings)
    assert cli(tmp_path, "run", "--executor", "fake").code == 0
    workspace = tmp_path / ".orchestrator"
    prompt = (workspace / "logs" / "agent-01.attempt-1.in").read_text(encoding="utf-8")
    assert "## Your permissions" in prompt and f"You run headless, with {words}" in prompt
    assert "never report work as done that a denied call did not do" in prompt
    assert "Your permissions" not in (workspace / "agent_tasks" / "agent-01.md").read_text(encoding="utf-8")


def test_a_shell_task_gets_no_permissions_section(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo a")], {"backend": "shell"})
    assert cli(tmp_path, "run").code == 0
    assert not list((tmp_path / ".orchestrator" / "logs").glob("*.in"))


ACCESS_PLAN = """---
backend: claude
permission_mode: default
allowed_tools: ["Bash(git log:*)"]
---
## Task Decomposition
| Task ID | Description | Dependencies | Access | Backend |
|---|---|---|---|---|
| T-01 | Review the code | None | read | - |
| T-02 | Fix what the review found | T-01 | edit | - |
| T-03 | Summarise | T-02 | - | - |
| T-04 | Review with codex | None | Read-only | codex |
"""


def test_an_access_cell_gives_each_task_the_powers_its_work_needs(tmp_path: Path) -> None:
    """read: the agent reads and changes nothing; edit: it edits files. On claude, read is a
    tool set of Read, Grep, Glob (nothing pre-approved), edit is acceptEdits; on codex, the
    read-only and workspace-write sandboxes."""
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    (workspace / "master_plan.md").write_text(ACCESS_PLAN, encoding="utf-8")
    assert cli(tmp_path, "run", "--executor", "fake").code == 0
    logs = workspace / "logs"
    told = {n: (logs / f"agent-0{n}.attempt-1.in").read_text(encoding="utf-8") for n in (1, 2, 3, 4)}
    assert "with tools: only Read, Grep, Glob; pre-approved: none; permission mode default" in told[1]
    assert "pre-approved: Bash(git log:*); permission mode acceptEdits" in told[2]
    every_tool = "every tool claude has (Bash, Edit, Write, WebFetch, sub-agents, MCP tools)"
    assert f"{every_tool}; pre-approved: Bash(git log:*); permission mode default" in told[3]
    assert "sandbox read-only (codex exec -s)" in told[4]
    report = json.loads(cli(tmp_path, "doctor", "--json").stdout)
    claude = next(b for b in report["backends"] if b["backend"] == "claude")
    assert sorted(u["tasks"] for u in claude["uses"]) == [["T-01"], ["T-02"], ["T-03"]]


def test_a_read_task_under_accept_edits_is_told_it_edits_nothing(tmp_path: Path) -> None:
    """Access: read gives a claude task only Read, Grep and Glob: under an acceptEdits plan it
    still edits nothing, and neither the agent nor doctor is told "it can rewrite any file". The
    edit task beside it is. codex's and gemini's read is a read-only mode: its own words."""
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    plan = ACCESS_PLAN.replace(
        'permission_mode: default\nallowed_tools: ["Bash(git log:*)"]', "permission_mode: acceptEdits"
    )
    plan = plan.replace("| T-03 | Summarise | T-02 | - | - |", "| T-03 | Summarise | T-02 | read | gemini |")
    (workspace / "master_plan.md").write_text(plan, encoding="utf-8")
    assert cli(tmp_path, "run", "--executor", "fake").code == 0
    logs = workspace / "logs"
    told = {n: (logs / f"agent-0{n}.attempt-1.in").read_text(encoding="utf-8") for n in (1, 2, 3, 4)}
    reading = (
        "tools: only Read, Grep, Glob; pre-approved: none; permission mode acceptEdits: with no tool that edits "
        "files or runs commands, it edits nothing and runs no command, whatever the mode"
    )
    assert reading in told[1] and "rewrite" not in told[1]
    assert "permission mode acceptEdits: file edits in its directory run without asking" in told[2], told[2]
    assert "rewrite or delete any file" in told[2]
    assert "approval mode plan: read-only" in told[3] and "sandbox read-only (codex exec -s)" in told[4]
    report = json.loads(cli(tmp_path, "doctor", "--json").stdout)
    claude = next(b for b in report["backends"] if b["backend"] == "claude")
    powers = {tuple(u["tasks"]): u["powers"] for u in claude["uses"]}
    assert powers[("T-01",)] == reading and "rewrite or delete any file" in powers[("T-02",)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("| T-01 | Look | None | readish | - |", "master_plan.md:9: T-01: unknown access 'readish'"),
        ("| T-01 | Look | None | read | shell |", "master_plan.md:9: T-01: an Access cell does not limit a shell task"),
    ],
)
def test_a_wrong_access_cell_is_one_line_naming_its_row(tmp_path: Path, row: str, message: str) -> None:
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    head = ACCESS_PLAN.split("| T-01")[0]
    (workspace / "master_plan.md").write_text(head + row + "\n", encoding="utf-8")
    result = cli_in_process(tmp_path, "validate")
    assert result.code == 2 and message in result.stderr.splitlines()[-2] + result.stderr, result.stderr
    assert all(line.startswith(".orchestrator/master_plan.md:9: T-01") for line in result.stderr.splitlines()[:-1])
    assert not (workspace / "agent_tasks").exists()


def test_cli_integration_states_what_each_access_gives() -> None:
    """Every backend's Access presets (``Backend.access``), as cli-integration.md's table says them."""
    text = (Path(__file__).parent.parent / "cli-integration.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in text.splitlines():  # (the first table: the presets; the next says what each runs unasked)
        if line.startswith(("| `read` |", "| `edit` |")):
            rows.setdefault(line.split("|")[1].strip(), line)
    presets = {name: backends.get(name).access for name in backends.names()}
    assert {name for name, table in presets.items() if table} == set(backends.agents())
    for backend, table in presets.items():
        for access, changes in table.items():
            row = rows[f"`{access}`"]
            for key, value in changes.items():
                if value:
                    shown = ", ".join(value) if isinstance(value, tuple) else value
                    assert f"{key}: {shown}" in row, (backend, access)


def test_cli_integration_says_exactly_which_commands_claudes_edit_runs_unasked() -> None:
    """Issue 78: the docs' example question was one acceptEdits never asks. The table of what each
    Access runs unasked names claude's list, every command of it, and the example asked is none."""
    from orchestrator.backends.claude_permissions import ACCEPT_EDITS_COMMANDS, MODE_POWERS

    text = (Path(__file__).parent.parent / "cli-integration.md").read_text(encoding="utf-8")
    [unasked] = [line for line in text.splitlines() if line.startswith("| `edit` | reads, and edits files")]
    claude = unasked.split("|")[2]
    assert ACCEPT_EDITS_COMMANDS and all(f"`{name}`" in claude for name in ACCEPT_EDITS_COMMANDS), claude
    assert all(name in MODE_POWERS["acceptEdits"] for name in ACCEPT_EDITS_COMMANDS)
    examples = set(re.findall(r"asks Q\d: Bash\((\S+)", text))
    assert examples and not examples & set(ACCEPT_EDITS_COMMANDS), examples


def test_the_plans_env_overrides_what_claude_is_started_with(tmp_path: Path) -> None:
    """CLAUDE_CODE_MAX_RETRIES=2 is ours by default; a plan that wants claude to re-send more
    (a crowded API) says so in its env, and that wins."""
    from orchestrator.backends.base import Job
    from orchestrator.plan.model import Task

    backend = backends.get("claude")
    task = Task(id="T-01", name="x", description="x")
    mine = backend.invocation(Job(task, Settings(), "b", "p", tmp_path, tmp_path, 1))
    assert mine.env["CLAUDE_CODE_MAX_RETRIES"] == "2"
    settings = Settings(env={"CLAUDE_CODE_MAX_RETRIES": "10"})
    theirs = backend.invocation(Job(task, settings, "b", "p", tmp_path, tmp_path, 1))
    assert "CLAUDE_CODE_MAX_RETRIES" not in theirs.env  # the plan's env (applied before) stands


# --- the system -----------------------------------------------------------------------------------


def test_doctor_names_the_system_and_that_it_is_supported(tmp_path: Path) -> None:
    shown = cli(tmp_path, "doctor")
    assert "system: Linux (supported)" in shown.stdout.splitlines()[1], shown.stdout
    as_json = json.loads(cli(tmp_path, "doctor", "--json").stdout)
    assert as_json["system"] == {"name": "Linux", "supported": True, "problem": None}


_WITHOUT_FCNTL = (
    "import sys; sys.modules['fcntl'] = None; from orchestrator.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def test_without_fcntl_the_package_imports_doctor_says_unsupported_and_run_says_use_wsl(tmp_path: Path) -> None:
    """A system without ``fcntl`` (Windows outside WSL): importing the package crashed at import
    time, a traceback for every command. Now it imports; ``doctor`` says the system cannot run
    plans and to use WSL; ``run`` says so in one line (exit 2), with nothing written."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])

    def without_fcntl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _WITHOUT_FCNTL, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )

    doctor = without_fcntl("doctor")
    assert doctor.returncode == 1, doctor.stderr
    assert "Traceback" not in doctor.stderr
    assert "system: ❌" in doctor.stdout and "WSL" in doctor.stdout, doctor.stdout
    report = json.loads(without_fcntl("doctor", "--json").stdout)
    assert report["ok"] is False and report["system"]["supported"] is False
    ran = without_fcntl("run")
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "WSL" in ran.stderr, ran.stderr
    assert not (tmp_path / ".orchestrator" / "results").exists()
