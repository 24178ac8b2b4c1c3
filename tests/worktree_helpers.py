"""What the tests of ``isolation: worktree`` share (test_worktrees.py, test_worktrees_checks.py): a
real git repository in ``tmp_path``, git as on a fresh machine (``no_git_identity``, which each
of those modules imports so that it holds for every test there), the plan, and the person's
checkout as it is.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from runner_helpers import Spec, cli, write_plan

INTEGRATION = "orchestrator/integration"


@pytest.fixture(autouse=True)
def no_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git as on a fresh machine: no user.name or user.email anywhere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)


def git(project: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=project, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout


def repository(tmp_path: Path, files: Mapping[str, str]) -> Path:
    """A git repository with ``files`` committed on ``main``; the workspace kept out of git."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    (project / ".git" / "info" / "exclude").write_text(".orchestrator/\n", encoding="utf-8")
    return project


def checkout(project: Path) -> tuple[str, str, str, str, dict[str, str]]:
    """What the person's checkout is: HEAD, its branch, the index, git status, every file's text."""
    files = {
        str(p.relative_to(project)): p.read_text(encoding="utf-8")
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.parts and ".orchestrator" not in p.parts
    }
    return (
        git(project, "rev-parse", "HEAD"),
        git(project, "symbolic-ref", "HEAD"),
        git(project, "ls-files", "-s"),
        git(project, "status", "--porcelain", "--untracked-files=all"),
        files,
    )


def plan(project: Path, specs: Sequence[Spec], **settings: Any) -> None:
    write_plan(project, specs, {"isolation": "worktree", **settings})


def on(project: Path, ref: str, name: str) -> str | None:
    done = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=project, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def block_plan(project: Path, specs: Sequence[Spec], **settings: Any) -> Path:
    """As ``plan``, with the frontmatter a setting a line (as people write it), for errors that name one."""
    path = write_plan(project, specs, {"isolation": "worktree", **settings})
    _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
    block = yaml.safe_dump(yaml.safe_load(front), sort_keys=False, default_flow_style=False)
    path.write_text(f"---\n{block}---\n{body}", encoding="utf-8")
    return path


def refused(project: Path, command: str, *, fresh: bool = True) -> str:
    """``command`` (validate or run) refuses the plan: exit 2, one line (returned); a run begins
    nothing (no event) and, in a ``fresh`` workspace, writes nothing."""
    result = cli(project, command, "--json") if command == "run" else cli(project, command)
    assert result.code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[1:] == ["1 problem; nothing was written."], lines
    if command == "run":
        assert [e.get("event") for e in result.events] == [None], result.stdout  # not even run_started
        assert result.events[0]["error"] == "PlanError"
    if fresh:
        assert sorted(p.name for p in (project / ".orchestrator").iterdir()) == ["master_plan.md"]
    return lines[0]
