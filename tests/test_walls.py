"""The walls (``orchestrator/backends/guard``) without an agent CLI: what ``validate`` and
``doctor`` say keeps each agent out of the workspace here, a run from outside refusing an agent
nothing keeps out, and bubblewrap's walls (``backends/fence``) around a plain command.

What each real CLI does behind them is in ``tests/agentwalls.py`` (run by each
``test_agents_<name>.py``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runner_helpers import cli

from orchestrator.backends.gemini import walled_paths
from orchestrator.backends.guard import Walls, fenced

NO_BWRAP = {"ORCHESTRATOR_BWRAP_BIN": "/nonexistent/bwrap"}  # a machine without bubblewrap
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="no bubblewrap here (apt install bubblewrap)")


def _plan(project: Path, backend: str, rows: list[tuple[str, str]], settings: str = "") -> Path:
    workspace = project / ".orchestrator"
    workspace.mkdir(parents=True, exist_ok=True)
    table = "".join(f"| {task} | Tidy the README | None | {access} |\n" for task, access in rows)
    (workspace / "master_plan.md").write_text(
        f"---\nbackend: {backend}\n{settings}---\n# Plan\n\n## Original Request\n> Tidy\n\n## Task Decomposition\n"
        f"| Task ID | Description | Dependencies | Access |\n|---|---|---|---|\n{table}",
        encoding="utf-8",
    )
    return workspace


@pytest.mark.parametrize(
    ("backend", "settings", "access", "unguarded"),
    [
        pytest.param("opencode", "", "edit", ["T-01"], id="opencode-bash"),
        pytest.param("gemini", "permission_mode: yolo\n", "", ["T-01"], id="gemini-yolo-shell"),
        pytest.param("gemini", "", "edit", [], id="gemini-no-shell"),
        pytest.param("claude", "allowed_tools: [Bash]\n", "edit", ["T-01"], id="claude-unchecked-commands"),
        pytest.param("claude", "ask: true\n", "edit", ["T-01"], id="claude-a-person-may-allow-one"),
        pytest.param("claude", "", "edit", [], id="claude-checked-commands"),
        pytest.param("codex", "permission_mode: danger-full-access\n", "", [], id="codex-its-own-sandbox"),
    ],
)
def test_validate_names_each_agent_nothing_keeps_out_of_the_workspace_here(
    tmp_path: Path, backend: str, settings: str, access: str, unguarded: list[str]
) -> None:
    """With no bubblewrap, an agent whose shell no rule of its CLI's holds (opencode's bash,
    gemini's in yolo, the commands claude has not checked: pre-approved, or a person's to allow)
    may write the workspace: ``validate`` says so at its line, and what to install; one that reads
    only (T-02) is not named."""
    _plan(tmp_path, backend, [("T-01", access), ("T-02", "read")], settings)
    done = cli(tmp_path, "validate", "--json", env=NO_BWRAP)
    assert done.code == 0, done.stderr
    told = [line for line in json.loads(done.stdout)["notices"] if "out of .orchestrator/" in line]
    assert [re.search(r"(T-\d+): nothing keeps", line).group(1) for line in told] == unguarded, told  # type: ignore[union-attr]
    for line in told:
        assert "master_plan.md:" in line and "install bubblewrap" in line, line


def test_a_run_from_outside_refuses_an_agent_nothing_keeps_out_and_writes_nothing(tmp_path: Path) -> None:
    """The run a webhook, the API or MCP starts (``--untrusted``) does not start an agent that
    nothing keeps out of the workspace: the problem at the task's line, with what to install,
    exit 2, and nothing written. The same run from the terminal goes on (``validate`` tells it)."""
    workspace = _plan(tmp_path, "opencode", [("T-01", "edit")])
    before = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))
    done = cli(tmp_path, "run", "--untrusted", "github", env=NO_BWRAP)
    assert done.code == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(".orchestrator/master_plan.md:12: T-01: nothing keeps its agent (opencode) out"), lines
    assert "this run came from outside (github)" in lines[0] and "install bubblewrap" in lines[0], lines
    assert lines[1:] == ["1 problem; nothing was written."], lines
    assert sorted(p.relative_to(workspace) for p in workspace.rglob("*")) == before


@needs_bwrap
def test_doctor_says_what_keeps_each_group_of_tasks_out_of_the_workspace(tmp_path: Path) -> None:
    _plan(tmp_path, "opencode", [("T-01", "edit"), ("T-02", "read")])
    here = json.loads(cli(tmp_path, "doctor", "--json").stdout)
    bare = json.loads(cli(tmp_path, "doctor", "--json", env=NO_BWRAP).stdout)
    uses = {tuple(u["tasks"]): u["walls"] for b in here["backends"] if b["backend"] == "opencode" for u in b["uses"]}
    assert uses[("T-02",)] is None  # it writes nothing
    assert uses[("T-01",)]["holds"] and "bubblewrap" in uses[("T-01",)]["how"], uses
    without = {tuple(u["tasks"]): u["walls"] for b in bare["backends"] if b["backend"] == "opencode" for u in b["uses"]}
    assert not without[("T-01",)]["holds"] and "install bubblewrap" in without[("T-01",)]["needs"], without
    text = cli(tmp_path, "doctor", env=NO_BWRAP).stdout
    assert "⚠️ walls: .orchestrator/, the project's .claude/ and .mcp.json: nothing holds its bash" in text, text


def _fenced(project: Path, cwd: Path, script: str, *, isolated: bool) -> subprocess.CompletedProcess[str]:
    walls = Walls(project / ".orchestrator", project, isolated)  # (it starts at the project's place, in its worktree)
    argv = fenced(["bash", "-c", script], walls)
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_bwrap
@pytest.mark.parametrize("isolated", [False, True], ids=["isolation-none", "isolation-worktree"])
def test_behind_bubblewrap_a_command_writes_nothing_walled_and_all_else(tmp_path: Path, isolated: bool) -> None:
    """A command behind the walls writes the project, its own worktree and the channels'
    ``context/``, and nothing of the workspace, the integration branch's worktree, ``.claude/``
    or ``.mcp.json`` (there or not, in the project or in the worktree): each write fails
    "Read-only file system", and no placeholder the walls stood on is left."""
    project = tmp_path / "project"
    workspace = project / ".orchestrator"
    tree = workspace / "worktrees" / "T-01"
    for place in (workspace / "state", tree, workspace / "worktrees" / ".integration", project / ".claude"):
        place.mkdir(parents=True)
    (workspace / "master_plan.md").write_text("plan\n", encoding="utf-8")
    cwd = tree if isolated else project
    walled = [workspace / "master_plan.md", workspace / "state" / "x", workspace / "types.yaml"]
    walled += [workspace / "worktrees" / ".integration" / "x", project / ".claude" / "x", project / ".mcp.json"]
    if isolated:
        walled += [tree / ".claude" / "x", tree / ".mcp.json", tree / ".orchestrator" / "x"]
    open_ = [cwd / "made.txt", workspace / "context" / "shared.md"]
    script = "".join(f"mkdir -p {p.parent} 2>/dev/null; echo x >> {p} && echo wrote {p}\n" for p in [*walled, *open_])
    before = sorted(str(p) for p in project.rglob("*"))
    done = _fenced(project, cwd, script, isolated=isolated)
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[1] for line in done.stdout.splitlines()] == [str(p) for p in open_], done.stdout
    assert done.stderr.count("Read-only file system") + done.stderr.count("Permission denied") >= len(walled)
    after = sorted(str(p) for p in project.rglob("*"))
    assert sorted({*before, *(str(p) for p in open_), str(workspace / "context")}) == after


GEMINI_UNSAFE = re.compile(r"\([^)]*[*+?{].*\)[*+?{]")  # gemini 0.61.0's isSafeRegExp: it refuses a policy so


@pytest.mark.parametrize("isolated", [False, True], ids=["isolation-none", "isolation-worktree"])
def test_gemini_takes_the_walls_policy_and_it_matches_every_path_into_them(isolated: bool) -> None:
    """gemini applies a policy's pattern only when it judges it safe (no quantified group, at most
    2048 characters; else it goes on without it): the walls' are, and match a call's
    ``file_path`` into them however written, and none beside (its own worktree's files)."""
    walls = Walls(Path("/p/.orchestrator"), Path("/p"), isolated)
    patterns = walled_paths(walls)
    assert patterns and all(not GEMINI_UNSAFE.search(p) and len(p) <= 2048 for p in patterns), patterns
    found = [re.compile(p.replace("\\x00", "\x00")) for p in patterns]

    def denied(path: str) -> bool:
        args = '{\x00"content":"see .orchestrator/"\x00,\x00"file_path":' + json.dumps(path) + "\x00}"
        return any(p.search(args) for p in found)

    inside = [".claude/settings.json", "a/../.mcp.json", ".orchestrator/master_plan.md", '/p/x"y/.claude/z']
    inside += ["/p/.orchestrator/worktrees/T-01/.orchestrator/plan.md", "/p/.orchestrator/worktrees/T-01/.claude"]
    beside = ["src/x.py", "/p/src/x.py", "/p/x.orchestrator", "foo.claude", "/p/.mcp.json.bak"]
    if isolated:
        beside.append("/p/.orchestrator/worktrees/T-01/src/x.py")  # its own (the workspace: out of gemini's)
    else:
        inside.append("/p/.orchestrator/state/x.json")
    assert [path for path in inside if not denied(path)] == []
    assert [path for path in beside if denied(path)] == []


@needs_bwrap
def test_behind_the_walls_an_agent_still_shares_through_the_channels(tmp_path: Path) -> None:
    """The channels an agent is told to call (``orchestrator share``...) write ``context/``, which
    is open; the run's event log is not, and the entry is kept all the same, said so."""
    workspace = _plan(tmp_path, "opencode", [("T-01", "edit")])
    (workspace / "state").mkdir()
    done = _fenced(
        tmp_path, tmp_path, f"{sys.executable} -m orchestrator share T-01 'the API pages at 100'", isolated=False
    )
    assert done.returncode == 0, done.stderr
    assert "not in the run's record" in done.stderr
    assert "the API pages at 100" in (workspace / "context" / "shared.md").read_text(encoding="utf-8")
    assert not (workspace / "state" / "events.jsonl").exists()


def test_a_refusal_is_the_walls_only_on_the_line_that_names_them() -> None:
    """claude's sandbox keeps a project's ``.bashrc``: a shell started there says it cannot read
    it. That line beside a command's own output naming ``.orchestrator`` made a command that ran
    count as denied (the channel commands, in the full suite, where HOME is the project)."""
    from orchestrator.backends.guard import refused_write

    walls = (".orchestrator", ".claude", ".mcp.json")
    ran = "/usr/bin/bash: /p/.bashrc: Permission denied\nShared: .orchestrator/context/discoveries.md\n"
    assert not refused_write(ran, walls)
    assert refused_write("touch: cannot touch '/p/.orchestrator/master_plan.md': Permission denied\n", walls)
    assert refused_write("cp: cannot create regular file 'x': Read-only file system\n", walls)
    assert not refused_write("rm: cannot remove '/etc/x': Permission denied\n", walls)
