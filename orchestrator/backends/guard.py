"""What no agent may write, wherever it runs, and what on this machine holds it there.

The walls (``Walls``) are three places, and their copies in a task's worktree:

- the workspace (``.orchestrator/``): the plan, its types, profiles and templates, the briefs,
  results and state a run reads and then runs. An agent that wrote a ``shell`` row into
  ``master_plan.md`` would have the run going on take it and run it with your rights;
- the project's ``.claude/`` and ``.mcp.json``: what the next claude starts with, hooks and MCP
  servers among it, code that runs with your rights outside any agent's limits;
- in a worktree (``isolation: worktree``), the copies of those the repository holds: committed
  there after the attempt, they reach the integration branch, the next task's worktree and, with
  ``orchestrator merge``, the project. The agent's own worktree, under the workspace's
  ``worktrees/``, is its to write; the integration branch's (``worktrees/.integration``) is not.

Open in them: the workspace's ``context/``, which the channels an agent is told to call
(``orchestrator share``...) write, and which no run reads as code.

Each backend words the walls in its own CLI's rules (claude's ``permissions.deny`` and sandbox,
codex's permission profile, gemini's policy: each module says how), so that a refused write is
a refused tool call, and the task ``denied``. Where a CLI's shell tool has no such rules
(gemini's ``yolo``; each backend's ``guard`` says whether it is one), the CLI runs behind the
walls put up by bubblewrap (``backends/fence``; ``fenced``). ``Guard`` says, for a backend's
settings on this machine, which of the two holds, or that none does and what to install:
``validate`` and ``doctor`` tell it, and a run from outside refuses such a task.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.executors import sandbox
from orchestrator.git.remote import NOWHERE
from orchestrator.git.worktrees import INTEGRATION_DIR
from orchestrator.plan.config.tasktypes import TYPES_FILE
from orchestrator.state.workspace import Workspace

if TYPE_CHECKING:
    from orchestrator.backends.base import Job

# The project's files the next claude starts with: each a directory or a file (a placeholder of
# its kind stands where one is missing, behind bubblewrap's walls).
PROJECT_FILES = {".claude": "directory", ".mcp.json": "file"}


@dataclass(frozen=True, slots=True)
class Walls:
    """The places one attempt's agent may not create, change or delete anything in."""

    workspace: Path  # the workspace's root (absolute)
    project: Path  # the project directory (absolute)
    isolated: bool  # the agent runs in a worktree under the workspace's worktrees/
    to_project: str = "."  # the project's place from the agent's directory (``..`` when it runs in a subdirectory)

    @property
    def trees(self) -> Path:
        return Workspace(self.workspace).worktrees_dir

    def closed(self) -> list[Path]:
        """The absolute places no write may reach, in order: the workspace (``opened`` then opens
        what is open in it), the integration branch's worktree, the project's files."""
        project = [self.project / name for name in PROJECT_FILES]
        if not self.isolated:
            return [self.workspace, *project]
        return [self.workspace, self.trees / INTEGRATION_DIR, *project]

    def opened(self) -> list[Path]:
        """What is open inside the workspace: ``context/``, where the channels an agent is told to
        call (``orchestrator share``...) write, which no run reads as code; and its worktrees, for
        an agent that runs in one of them."""
        return [Workspace(self.workspace).context_dir, *([self.trees] if self.isolated else [])]

    def entries(self) -> list[Path]:
        """The workspace's closed places, each named: those there now, and those a command reads
        that are not there yet, but for what is open. What a rule that cannot open one directory
        inside another names (claude's)."""
        workspace = Workspace(self.workspace)
        found = {self.workspace / name for name in _listed(self.workspace)}
        found |= {*workspace.places, workspace.plan_file, workspace.final_output, self.workspace / TYPES_FILE}
        if not self.isolated:
            found.add(self.trees)
        return sorted(found - set(self.opened()))

    def copies(self) -> list[str]:
        """The walled places of a worktree, relative to the project's place in it: the project's
        files, and the workspace when the repository could hold it (it is inside the project)."""
        found = list(PROJECT_FILES)
        inside = _relative(self.workspace, self.project)
        if inside is not None:
            found.append(inside)
        return found

    def in_repository(self) -> str | None:
        """The project's place in its git repository (``""`` at its top), where each worktree holds
        it; None when it is in none."""
        top = self.project
        while not (top / ".git").exists():
            if top.parent == top:
                return None
            top = top.parent
        return _relative(self.project, top) or ""

    def names(self) -> list[str]:
        """The walled places' own names, as a path's last parts: the workspace's, the project's files."""
        return [self.workspace.name, *PROJECT_FILES]


def fenced(argv: Sequence[str], walls: Walls) -> list[str]:
    """The command line that runs ``argv`` behind ``walls``, put up by bubblewrap (``fence``)."""
    from orchestrator.backends import fence

    kinds = {**PROJECT_FILES, walls.workspace.name: "directory"}
    walled = [f"--closed={kinds.get(path.name, 'directory')}:{path}" for path in walls.closed()]
    walled += [f"--open={path}" for path in walls.opened()]
    if walls.isolated:  # (its copies, where it starts: its worktree)
        walled += [f"--copy={kinds.get(c, 'directory')}:{os.path.join(walls.to_project, c)}" for c in walls.copies()]
    return [sys.executable, "-I", "-S", fence.__file__, *walled, f"--bwrap={bwrap_bin()}", "--", *argv]


def job_walls(job: Job) -> Walls:
    """The walls of one attempt: its agent starts in ``job.cwd`` (the project's directory, or one
    in it; in its worktree, the same place there)."""
    cwd, project = job.cwd, job.project_dir
    to_project = os.path.relpath(project, cwd) if cwd != project else "."
    return Walls(job.workspace.absolute(), project.absolute(), job.settings.isolation == "worktree", to_project)


def _listed(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _relative(path: Path, base: Path) -> str | None:
    try:
        return path.relative_to(base).as_posix() if path != base else ""
    except ValueError:
        return None


# --- what holds them on this machine ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Guard:
    """What keeps an agent out of the walls, for ``validate``, ``doctor`` and a run from outside."""

    holds: bool
    how: str  # in plain words: the CLI's own rules, its sandbox, bubblewrap; or why it does not hold
    needs: str | None = None  # what to install (or change) for it to hold, when it does not

    def said(self) -> str:
        return self.how if self.holds else f"{self.how} — {self.needs}" if self.needs else self.how


WALLS = ".orchestrator/, the project's .claude/ and .mcp.json"
BUBBLEWRAP = sandbox.INSTALL  # (what to install: bubblewrap is executors/sandbox's, for a run from outside too)


def bwrap_bin() -> str:
    return sandbox.program()


def bubblewrap() -> bool:
    """Whether bubblewrap runs here (``executors/sandbox.missing``: installed, and let make the
    namespaces it needs; a container may forbid it)."""
    return sys.platform.startswith("linux") and sandbox.missing() is None


def refused_write(output: str, walls: Iterable[str] = ()) -> bool:
    """Whether a shell command's (or a file tool's) output says a write was stopped by the walls:
    the read-only file system they stand on, or a place walled off named beside a refusal, on its
    line (a sandbox answers a file it keeps from being made so; claude's, a start-up file of the
    shell's it keeps, ``bash: ~/.bashrc: Permission denied``, is no refusal of the command's); or a
    push the attempt's git sent nowhere (``git/remote.no_push``: git names the place it went, on
    every CLI alike), which the run delivers itself: a task whose work needed it is not done."""
    said = output.lower()
    if "read-only file system" in said or "erofs" in said or NOWHERE.lower() in said:
        return True
    return any(  # (on one line: a shell's warning about its own start-up file is not the walls')
        ("permission denied" in line.lower() or "operation not permitted" in line.lower()) and names_walled(line, walls)
        for line in output.splitlines()
    )


def names_walled(text: str, walls: Iterable[str]) -> bool:
    """Whether ``text`` names a walled place as a part of a path (``.claude/settings.json``,
    ``/p/.orchestrator``), not as a part of a word (``foo.claude``)."""
    return any(re.search(rf"(?:^|[/\s'\"(`]){re.escape(name)}(?:[/\s'\")`:]|$)", text) for name in walls)
