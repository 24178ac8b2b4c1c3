"""``tools`` (what an agent has) apart from ``allowed_tools`` (what it may use without asking), and
the permission modes each backend really takes: a setting an agent CLI would refuse, or that
would not restrict what it says, is a plan error before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.backends.claude_line import claude_argv
from orchestrator.plan.config.settings import Settings, settings_from_mapping
from orchestrator.run.resume.selection import settings_signature


def settings(**data: object) -> Settings:
    found, problems = settings_from_mapping(data)
    assert problems == []
    return found


def test_tools_restrict_and_allowed_tools_preapprove() -> None:
    argv = claude_argv(settings(tools="Read, Grep, Bash(git log:*)", allowed_tools=["Read"]), None)
    assert argv[argv.index("--tools") + 1] == "Read,Grep,Bash"
    assert argv[argv.index("--allowedTools") + 1] == "Read,Bash(git log:*)"  # a rule narrows what is approved


def test_no_tools_setting_leaves_the_default_set_and_none_means_none() -> None:
    assert "--tools" not in claude_argv(settings(allowed_tools="Read"), None)
    assert "--tools" not in claude_argv(settings(tools="default"), None)
    argv = claude_argv(settings(tools=[]), None)
    assert argv[argv.index("--tools") + 1] == ""


def test_a_plan_without_tools_keeps_its_results_up_to_date() -> None:
    # The signature of a plan that does not set tools is what it was before tools existed.
    assert '"tools"' not in settings_signature(settings(allowed_tools="Read"))
    assert '"tools"' in settings_signature(settings(tools="Read"))


def project(tmp_path: Path, frontmatter: str, profile: str | None = None) -> Path:
    workspace = tmp_path / ".orchestrator"
    workspace.mkdir()
    assignee = " reviewer |" if profile else ""
    (workspace / "master_plan.md").write_text(
        f"---\n{frontmatter}---\n## Task Decomposition\n"
        f"| Task ID | Description | Dependencies |{' Assignee |' if profile else ''}\n"
        f"|---|---|---|{'---|' if profile else ''}\n| T-01 | Look | None |{assignee}\n",
        encoding="utf-8",
    )
    if profile is not None:
        (workspace / "agents").mkdir()
        (workspace / "agents" / "reviewer.md").write_text(profile, encoding="utf-8")
    return workspace


def validate(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", str(tmp_path / ".orchestrator")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("frontmatter", "expected"),
    [
        ("permission_mode: yolo\n", "backend 'claude': permission_mode 'yolo' is not one of claude's: default,"),
        ("backend: codex\npermission_mode: acceptEdits\n", "is not one of codex's sandboxes (-s): read-only,"),
        ("backend: gemini\npermission_mode: bypassPermissions\n", "is not one of gemini's approval modes"),
        ("backend: codex\ntools: Read\n", "codex cannot be given a list of tools"),
        ("backend: gemini\ntools: Read\n", "gemini backend cannot restrict its tools by name"),
        ("tools: Read\nallowed_tools: Write\n", "allowed_tools names Write, which tools does not give the agent"),
        ("tools: Bash(git log:*)\npermission_mode: acceptEdits\n", "tools narrows Bash(git log:*), but"),
    ],
)
def test_settings_an_agent_would_refuse_or_not_honour_fail_validate(
    tmp_path: Path, frontmatter: str, expected: str
) -> None:
    project(tmp_path, frontmatter)
    proc = validate(tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "frontmatter",
    [
        "permission_mode: dontAsk\ntools: Read, Bash(git log:*)\n",
        "permission_mode: default\n",
        "backend: codex\npermission_mode: read-only\n",
        "backend: gemini\npermission_mode: auto_edit\n",
    ],
)
def test_settings_the_agent_takes_validate(tmp_path: Path, frontmatter: str) -> None:
    project(tmp_path, frontmatter)
    proc = validate(tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_profile_problem_names_the_profile(tmp_path: Path) -> None:
    project(tmp_path, "backend: codex\n", "---\nname: reviewer\ntools: Read, Grep\n---\nReview.\n")
    proc = validate(tmp_path)
    assert proc.returncode == 2
    assert "agents/reviewer.md:1: backend 'codex': codex cannot be given a list of tools" in proc.stderr


@pytest.mark.parametrize(("cleared", "code"), [("allowed_tools: []\n", 0), ("", 2)], ids=["cleared", "inherited"])
def test_a_profile_clears_the_plans_pre_approvals_with_an_empty_list(tmp_path: Path, cleared: str, code: int) -> None:
    """A reviewer with only Read, Grep and Glob under a plan that pre-approves ``Bash(echo:*)``:
    ``allowed_tools: []`` in the profile was ignored (an empty list read as "not set")."""
    profile = "---\nname: reviewer\ntools: Read, Grep, Glob\n" + cleared + "---\nReview.\n"
    project(tmp_path, 'permission_mode: dontAsk\nallowed_tools: ["Bash(echo:*)"]\n', profile)
    proc = validate(tmp_path)
    assert proc.returncode == code, proc.stderr
    if code:
        assert "allowed_tools names Bash(echo:*), which tools does not give the agent" in proc.stderr


def test_results_of_a_profile_with_tools_stay_up_to_date_after_the_upgrade(tmp_path: Path) -> None:
    """The fixture is a workspace the version before the tools setting ran to completion (its
    profile's tools were pre-approvals then): the same settings now mean a restriction, but the
    work done is what it was, and nothing is run again (paid for again) on upgrading."""
    import json
    import os
    import shutil

    fixture = Path(__file__).parent / "fixtures" / "legacy-profile-tools"
    shutil.copytree(fixture, tmp_path, dirs_exist_ok=True)
    fake = Path(__file__).resolve().parent.parent / "examples" / "bin" / "fake-claude"
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(tmp_path / ".orchestrator"), "--json"],
        cwd=tmp_path,
        env={**os.environ, "ORCHESTRATOR_CLAUDE_BIN": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    started = json.loads(proc.stdout.splitlines()[0])
    assert (started["to_run"], started["already_done"]) == (0, 1)
