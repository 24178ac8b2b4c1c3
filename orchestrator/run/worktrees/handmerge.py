"""A task that ``on_conflict: fail`` failed, its conflict resolved by a person: merged, never run again.

With ``isolation: worktree`` and ``on_conflict: fail``, a task whose branch conflicts with the
integration branch fails with its work done: its attempt completed, only the merge did not. The
person resolves the conflict where that work is, on the task's branch (``HandMerge.advice``: in its
worktree, ``git merge <integration_branch>``, resolve, ``git commit``), and runs again. Running
the task a second time then would do its work again on top of the resolution (a script that
writes a file writes over the other side's lines in it: the other side lost), so a run does not.
While the task is what that attempt ran (its fingerprint: brief, settings, inputs) and that
attempt's work is still on its branch (``HandMerge.standing``):

- its branch still conflicts with the integration branch, the resolution is not committed yet,
  or it was committed with git's conflict markers left in: the task stays failed as it was
  recorded (``Scheduler`` skips what depends on it), the run says again what to do, and
  nothing runs;
- its branch merges now: that attempt's outcome, read again from its logs (``HandMerge.kept``),
  goes to the merge queue (``MergeQueue.land``: markers, the merge, ``verify``) as if it had
  just ended; its dependents then run on the integration branch that holds both sides.

A task changed since, or whose work is no longer on its branch (the person reset it), runs again
as any failed task does.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.backends.base import AgentResult, fed_from_log
from orchestrator.executors.base import ProcessRun
from orchestrator.git.merging import Integration
from orchestrator.git.repo import changes, diffstat, is_ancestor, merge_conflicts, merging, rev
from orchestrator.git.work import Work
from orchestrator.git.worktrees import Trees
from orchestrator.run.attempts import Attempt, Outcome
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ErrorClass, TaskStatus

KEPT = "nothing was merged, and its worktree and branch are kept"  # (how a record says it: ``failed_on_conflict``)


def failed_on_conflict(record: ResultRecord | None) -> bool:
    """Whether ``record`` is a task's that ``on_conflict: fail`` failed, its attempt's work committed."""
    return (
        record is not None
        and record.status == TaskStatus.FAILED
        and record.error_class == ErrorClass.CONFLICT
        and bool(record.commit)
        and KEPT in (record.merge or "")
    )


@dataclass(frozen=True, slots=True)
class Standing:
    merges: bool  # the branch merges into the integration branch now
    why: str = ""  # else why not, and what to do


class HandMerge:
    """A task's branch in conflict with the integration branch, and a person resolving it there:
    what to do about it (``advice``), where the resolution stands (``standing``), and the outcome
    the attempt that failed on it stands for once its branch merges (``kept``)."""

    def __init__(self, trees: Trees) -> None:
        self.trees = trees
        self.integration = Integration(trees.integration_path)

    def advice(self, task_id: str) -> str:
        """What to do about a task's branch in conflict with the integration branch, to the letter."""
        where, integration = self.trees.path(task_id), self.trees.integration
        return (
            f"resolve it on its branch: in {where}, run `git merge {integration}`, resolve "
            f"those files, `git add` them and `git commit`; then `orchestrator run` merges it, both sides kept, "
            f"without running {task_id} again"
        )

    def standing(self, task_id: str, commit: str) -> Standing | None:
        """Where the conflict of ``task_id``'s branch stands; ``None`` when the work of the attempt
        that failed on it (``commit``) is no longer on the branch: nothing of it to merge."""
        path, branch = self.trees.path(task_id), self.trees.branch(task_id)
        tip = rev(self.trees.repo, f"refs/heads/{branch}")
        if tip is None or not is_ancestor(self.trees.repo, commit, tip):
            return None
        then = f"then `orchestrator run` merges it without running {task_id} again"
        if (path / ".git").exists() and (merging(path) or changes(path, untracked=False)):
            why = f"the resolution in {path} is not committed yet — `git add` the files and `git commit` there"
            return Standing(False, f"{why}, {then}")
        left = self.integration.conflict_markers(branch)
        if left:
            why = f"conflict markers are left in {', '.join(left)} on its branch {branch} — resolve them in {path}"
            return Standing(False, f"{why}, `git commit`, {then}")
        files = merge_conflicts(self.trees.repo, self.trees.integration, tip)
        if files:
            clash = f"its branch {branch} still conflicts with {self.trees.integration} in {', '.join(files)}"
            return Standing(False, f"{clash} — {self.advice(task_id)}")
        return Standing(True)

    def kept(self, ws: Workspace, attempt: Attempt, record: ResultRecord) -> Outcome | None:
        """The outcome ``attempt`` stands for, run by nobody: the completed attempt that failed on the
        conflict (its output read again from its logs, what it spent counted then), its branch as the
        person left it; ``None`` when the task is to run after all (changed since, its work gone)."""
        if record.fingerprint != attempt.fingerprint or record.commit is None:
            return None
        task_id = attempt.task.id
        found = self.standing(task_id, record.commit)
        if found is None or not found.merges:
            return None
        number = record.attempts
        out, err = ws.log(attempt.task, number, "out"), ws.log(attempt.task, number, "err")
        then = ProcessRun(0, None, record.duration or 0.0, stdout_bytes=_size(out), stderr_bytes=_size(err))
        fed_from_log(attempt.observer, out)
        result = attempt.backend.interpret(attempt.job, then, out, err, attempt.observer)
        if not result.completed:  # (its logs gone: what it said is not known, its work is on the branch)
            result = AgentResult(True, exit_code=0)
        note = f"not run again: attempt {number}'s work, merged once its conflict was resolved by hand"
        result = dataclasses.replace(result, message=note, cost_usd=None, tokens=None, turns=None)
        branch = self.trees.branch(task_id)
        tip = rev(self.trees.repo, f"refs/heads/{branch}")
        work = Work(branch, tip, diffstat(self.trees.repo, self.trees.integration, f"refs/heads/{branch}"))
        return Outcome(attempt, ProcessRun(0, None, 0.0, work=work), result, time.time())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
