"""What ``isolation: worktree`` needs of the git repository, checked before a run starts anything
(``validate`` and ``run``: a problem is one line, exit 2, and nothing is written), and the one
thing it tells rather than refuses.

Refused, because every task would fail to start or the run would die on git's own words:

- no repository, or one with no commit (a worktree starts from a commit);
- branch names git does not take;
- the integration branch checked out in a worktree that is not this workspace's own
  ``worktrees/.integration`` (the person's checkout, or another workspace keeping the same
  ``integration_branch``): git checks a branch out in one worktree only;
- a directory tasks run in that is outside the repository, or not in the commit the worktrees
  start from (a project directory made and not committed yet: the worktree has no such place);
- with ``base`` (``validate``, and ``run`` before it begins: not a run reading its plan again),
  the person's HEAD in conflict with the integration branch an earlier run left: a run brings
  HEAD into it first, and the person merges it by hand.

Told once (a notice): files of the workspace that git tracks and a run writes. The run writes
them in the person's checkout, which then shows them changed, and ``orchestrator merge`` refuses
a working tree with uncommitted changes; the docs say to keep ``.orchestrator/`` out of git.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

from orchestrator.errors import Problem, shown
from orchestrator.git.repo import (
    branch_exists,
    checked_out,
    git,
    has_directory,
    merge_conflicts,
    rev,
    toplevel,
    tracked,
)
from orchestrator.git.worktrees import INTEGRATION_DIR, RUN_AGAIN, by_hand, ref_part
from orchestrator.plan.config.settings import Settings, setting_line
from orchestrator.plan.model import Plan, Task
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import counted, listed

NEVER_WRITTEN = ("templates", "agents")  # the workspace's directories a run only reads
DOCS = 'cli-integration.md, "Worktrees and the merge queue": "Keep `.orchestrator/` out of git"'


def delivery_problem(plan: Plan, isolated: list[tuple[Task, str | None]]) -> Problem | None:
    """``deliver: push`` or ``pr`` in a plan none of whose tasks runs in a worktree: there is no
    integration branch to push (a trigger's own ``deliver`` too)."""
    triggers = plan.settings.triggers
    said = [plan.settings.deliver, *(triggers.deliver(name) for name in ("github", *triggers.hooks))]
    if isolated or not any(d is not None and d.pushes for d in said):
        return None
    what = "deliver: push and pr push the integration branch, which only isolation: worktree makes"
    return Problem(shown(plan.path), setting_line(plan.text, "deliver"), what,
                   "set isolation: worktree, or deliver: comment")  # fmt: skip


def problems(
    plan: Plan, workspace: Workspace, isolated: list[tuple[Task, str | None]], *, base: bool = False
) -> list[Problem]:
    """Why the tasks in ``isolated`` (each with its ``cwd``) could not run in worktrees; with
    ``base``, the person's HEAD checked against the integration branch too."""
    if not isolated:
        return []
    file = shown(plan.path)
    first = isolated[0][0]
    line, where = (first.line, f"{first.id}: ") if first.isolation else (setting_line(plan.text, "isolation"), "")
    repo = toplevel(workspace.project_dir)
    if repo is None:
        message = f"{where}isolation: worktree needs a git repository, and {workspace.project_dir} is in none"
        return [Problem(file, line, message, "run `git init` there and commit, or set isolation: none")]
    head = rev(repo, "HEAD")
    if head is None:
        message = f"{where}isolation: worktree starts from a commit, and {repo} has none yet"
        return [Problem(file, line, message, "commit once (git commit), then run")]
    found: list[Problem] = []
    integration = plan.settings.integration_branch
    for branch, task in ((integration, None), *((f"{integration}-{ref_part(t.id)}", t) for t, _ in isolated)):
        if not git(["check-ref-format", "--branch", branch], repo, check=False).ok:
            at = task.line if task is not None else setting_line(plan.text, "integration_branch")
            found.append(Problem(file, at, f"'{branch}' is not a branch name git takes", "change the name"))
            break
    else:  # (a name git does not take is checked out nowhere)
        held = _held(plan, workspace, repo, line, where)
        if held is not None:
            found.append(held)
    placed = _placed(plan, workspace, repo, head, isolated, line, where)
    if placed is not None:
        found.append(placed)
    if base and not found and branch_exists(repo, integration):
        files = merge_conflicts(repo, integration, head)
        if files:
            said = f"{counted(len(files), 'file')}: {listed(files[:3], len(files))}"
            message = (
                f"{where}isolation: worktree brings your HEAD into {integration} first, and they conflict ({said})"
            )
            found.append(Problem(file, line, message, f"{by_hand(repo, integration)}{RUN_AGAIN}"))
    return found


def _held(plan: Plan, workspace: Workspace, repo: Path, line: int, where: str) -> Problem | None:
    """The integration branch checked out anywhere but this workspace's own integration worktree
    (where the tool checked it out on an earlier run: that is as it should be)."""
    integration = plan.settings.integration_branch
    at = checked_out(repo).get(integration)
    if at is None or _same(at, workspace.root / "worktrees" / INTEGRATION_DIR):
        return None
    named = setting_line(plan.text, "integration_branch")
    own = _own_name(workspace, integration)
    file = shown(plan.path)
    workspace_of = at.name == INTEGRATION_DIR and at.parent.name == "worktrees"  # another workspace's merge queue
    if workspace_of:
        other = at.parent.parent
        named_as = other.relative_to(repo) if other.is_relative_to(repo) else other
        holder = f"the integration branch of the workspace {named_as} in this repository"
    elif _same(at, repo):
        holder = "checked out in your checkout"
    else:
        holder = f"checked out in the worktree {at}"
    switch = "" if workspace_of else f", or check another branch out in {at} (git switch)"
    if named > 1:
        message = f"integration_branch '{integration}' is {holder}, and a run merges into it in a worktree of its own"
        hint = f"name a new branch for this workspace alone (integration_branch: {own}){switch}"
        return Problem(file, named, message, hint)
    message = (
        f"{where}isolation: worktree merges into '{integration}' (the default integration_branch), and it is {holder}"
    )
    hint = f"give this workspace a branch of its own: add `integration_branch: {own}` to the frontmatter{switch}"
    return Problem(file, line, message, hint)


def _placed(
    plan: Plan,
    workspace: Workspace,
    repo: Path,
    head: str,
    isolated: list[tuple[Task, str | None]],
    line: int,
    where: str,
) -> Problem | None:
    """A directory tasks run in that no worktree will have: outside the repository, or not in
    the commit worktrees start from (the person's HEAD; or the integration branch, which holds it)."""
    file = shown(plan.path)
    integration = plan.settings.integration_branch
    refs = [head, *([integration] if branch_exists(repo, integration) else [])]
    top, project = repo.resolve(), workspace.project_dir.resolve()
    seen: set[str | None] = set()
    for task, cwd in isolated:
        if cwd in seen:
            continue
        seen.add(cwd)
        place = Path(os.path.normpath(workspace.project_dir / (cwd or ".")))
        if not place.resolve().is_relative_to(top):
            message = f"{task.id}: cwd {place} is outside the repository {repo}"
            hint = "a task in a worktree runs inside the repository: change cwd"
            return Problem(file, setting_line(plan.text, "cwd"), message, hint)
        if not place.is_dir():
            continue  # the cwd setting's own check says so
        # verify runs at the project directory's place, and a task without cwd runs there: only
        # then must the worktrees hold it (a workspace beside the code, with cwd: ../src, need not)
        needed = [place.resolve()] + ([project] if cwd and plan.settings.verify else [])
        for directory in needed:
            relative = directory.relative_to(top).as_posix()
            if any(has_directory(repo, ref, relative) for ref in refs):
                continue
            blame = line if directory == project or not cwd else setting_line(plan.text, "cwd")
            message = (
                f"{where}isolation: worktree runs tasks in {relative}/ of worktrees made from your last commit "
                f"({head[:12]}), and {relative}/ is not in that commit"
            )
            alone = ", and .orchestrator/, which git ignores, is none" if directory == project else ""
            hint = f"commit a file in it first (git keeps a directory only through its files{alone}), then run"
            return Problem(file, blame, message, hint)
    return None


def notices(workspace: Workspace, plan: Plan, settings: Iterable[Settings]) -> list[str]:
    """One notice when tasks run in worktrees and git tracks files of the workspace that a run
    writes (not ``templates/`` or ``agents/``; ``master_plan.md`` when its status blocks are
    written or a conflict may add a resolution task to it); else none."""
    isolated = [s for s in settings if s.isolation == "worktree"]
    if not isolated:
        return []
    plan_written = plan.settings.status_blocks or any(s.on_conflict == "resolve" for s in isolated)
    written = [
        name
        for name in tracked(workspace.root)
        if name.split("/")[0] not in NEVER_WRITTEN and (name != "master_plan.md" or plan_written)
    ]
    if not written:
        return []
    name = shown(workspace.root)
    # The command works from wherever it is said (outside the repository too), and with spaces.
    project = shown(workspace.project_dir)
    where = "" if project == "." else f"-C {shlex.quote(project)} "
    command = f"git {where}rm -r --cached {shlex.quote(workspace.root.name)}"
    return [
        f"{name}/ has files git tracks that a run writes ({listed(written[:3], len(written))}): your checkout will "
        f"show them changed, and `orchestrator merge` refuses until they are committed — keep {name}/ out of git "
        f"({command}, then add it to .gitignore; {DOCS})"
    ]


def _same(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False


def _own_name(workspace: Workspace, integration: str) -> str:
    """A branch name for this workspace alone: ``orchestrator/<its project directory's name>``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", workspace.project_dir.resolve().name).strip("-.") or "work"
    own = f"orchestrator/{stem}"
    return own if own != integration else f"{own}-2"
