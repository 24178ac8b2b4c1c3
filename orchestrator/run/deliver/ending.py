"""A run's delivery at its end, as the runner makes it (``Runner._finish``): after the work and its
gates, before final_output.md is written (which lists what was delivered). The ``deliver`` setting
is the run's trigger's when it came from one that says (``triggers``' ``deliver``), else the plan's.

Each effect's event is told to the run's reporter and flushed to the event log before the next
step (``durable``): an intent not on disk is no intent, and nothing is tried after it. A delivery
that fails is one notice (``not delivered: ...``) and the run's exit code 5 (``UNDELIVERED``) when
it would have been 0; the work stays on the local integration branch, and the next run tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.git.github import GitHub
from orchestrator.git.repo import rev
from orchestrator.output.reporter import Recording, Reporter
from orchestrator.plan.config.deliver import Deliver
from orchestrator.run.deliver.bodies import Account
from orchestrator.run.deliver.deliver import Delivery, Undelivered, Where
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state import launches
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.effects import Effects, Entry, ledger
from orchestrator.state.events.runs import Notice
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode, TaskStatus


@dataclass(slots=True)
class Delivered:
    """What a run's end delivered (``made``: each effect, done or found done) and the exit code it
    leaves the run with."""

    code: int
    made: list[Entry] = field(default_factory=list)


def durable(reporter: Reporter) -> Callable[[EventRecord], None]:
    """Tell an effect's event and see it on disk: ``OSError`` when the run's log cannot be written."""

    def tell(event: EventRecord) -> None:
        reporter.event(event)
        reporter.flush()
        if isinstance(reporter, Recording) and reporter.log.failed is not None:
            raise OSError(f"the event log cannot be written ({reporter.log.failed}): no effect is tried unrecorded")

    return tell


class Asked(Protocol):
    """What the run was asked with that its delivery reads (``RunOptions``' ``--untrusted`` and
    ``--launch``): which trigger's ``deliver`` holds, and the launch whose origin it answers."""

    @property
    def untrusted(self) -> str | None: ...

    @property
    def launch(self) -> str | None: ...


def deliver(
    workspace: Workspace,
    prepared: Prepared,
    asked: Asked,
    reporter: Reporter,
    views: Sequence[TaskView],
    code: int,
    merges: MergeQueue | None,
) -> Delivered:
    """The run's delivery, as its setting says (none: nothing; nothing either for a run interrupted),
    then each completed task's whose own settings (its type's) say another: its branch; ``code``,
    the run's exit code so far."""
    plan, source = prepared.plan, asked.untrusted
    setting = (plan.settings.triggers.deliver(source) if source else None) or plan.settings.deliver
    own = {v.id: prepared.settings[v.id].deliver for v in views if v.id in prepared.settings}
    own = {task: d for task, d in own.items() if d is not None and d != plan.settings.deliver}
    if (setting is None and not own) or code == ExitCode.INTERRUPTED:
        return Delivered(code)
    if any(view.simulated for view in views):
        reporter.event(Notice(message="nothing delivered: a simulated run's work is made up (the fake executor)"))
        return Delivered(code)
    launch_id, origin = launches.origin_of(workspace, asked.launch)
    ending = _Ending(workspace, reporter, Effects(ledger(workspace.events_file), durable(reporter)), origin, merges)
    ok = ending.one(setting, Account(plan.goal or plan.request, list(views), code, *ending.branch(None)))
    for view in views:
        if view.id in own and view.status is TaskStatus.COMPLETED:
            ok = ending.one(own[view.id], Account(f"{view.id} {view.name}", [view], 0, *ending.branch(view.id))) and ok
    if not ok:
        return Delivered(int(ExitCode.UNDELIVERED) if code == ExitCode.OK else code, ending.made)
    if asked.launch is None and launch_id is not None:  # (a killed launch's work: delivered now)
        launches.finished(workspace, launch_id, code)
    return Delivered(code, ending.made)


class _Ending:
    """A run's deliveries at its end: the run's, and each task's of its own, into one ledger."""

    def __init__(self, workspace: Workspace, reporter: Reporter, effects: Effects, origin: dict[str, Any] | None,
                 merges: MergeQueue | None) -> None:  # fmt: skip
        self.workspace, self.reporter, self.effects, self.origin, self.merges = (
            workspace, reporter, effects, origin, merges)  # fmt: skip
        self.made: list[Entry] = []

    def branch(self, task: str | None) -> tuple[str | None, str | None, str]:
        """The commit and branch delivered (the integration branch's, or task ``task``'s), and final_output.md."""
        final = self.workspace.relative(self.workspace.final_output)
        if self.merges is None:
            return None, None, final
        trees = self.merges.trees
        branch = trees.integration if task is None else trees.branch(task)
        return rev(trees.repo, branch), branch, final

    def one(self, setting: Deliver | None, account: Account) -> bool:
        """One delivery made, what stops it said in a notice; ``False`` when it failed."""
        if setting is None:
            return True
        repo = self.merges.trees.repo if self.merges is not None else None
        delivery = Delivery(setting, Where(repo, account.branch, self.origin), self.effects, GitHub.from_environment())
        try:
            delivery.run(account)
        except (Undelivered, OSError) as exc:
            branch = account.branch
            kept = f" — the work stays on {branch}; the next run delivers it" if branch and account.commit else ""
            self.reporter.event(Notice(message=f"not delivered: {exc}{kept}"))
            return False
        finally:
            self.made += delivery.made
            for why in delivery.skipped:
                self.reporter.event(Notice(message=why))
        return True
