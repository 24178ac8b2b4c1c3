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

from orchestrator.git.github import GitHub
from orchestrator.git.repo import rev
from orchestrator.output.reporter import Recording, Reporter
from orchestrator.plan.model import Plan
from orchestrator.run.deliver.bodies import Account
from orchestrator.run.deliver.deliver import Delivery, Undelivered, Where
from orchestrator.run.prepare import RunOptions
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state import launches
from orchestrator.state.effects import Effects, Entry, ledger
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import Notice
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode


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


def deliver(
    workspace: Workspace,
    plan: Plan,
    options: RunOptions,
    reporter: Reporter,
    views: Sequence[TaskView],
    code: int,
    merges: MergeQueue | None,
) -> Delivered:
    """The run's delivery, as its setting says (none: nothing; nothing either for a run interrupted);
    ``code``, the run's exit code so far."""
    source, launch = options.untrusted, options.launch
    setting = (plan.settings.triggers.deliver(source) if source else None) or plan.settings.deliver
    if setting is None or code == ExitCode.INTERRUPTED:
        return Delivered(code)
    if any(view.simulated for view in views):
        reporter.event(Notice(message="nothing delivered: a simulated run's work is made up (the fake executor)"))
        return Delivered(code)
    launch_id, origin = launches.origin_of(workspace, launch)
    repo = merges.trees.repo if merges is not None else None
    branch = merges.trees.integration if merges is not None else None
    commit = rev(merges.trees.integration_path, "HEAD") if merges is not None else None
    account = Account(plan.goal or plan.request, list(views), code, commit, branch,
                      workspace.relative(workspace.final_output))  # fmt: skip
    effects = Effects(ledger(workspace.events_file), durable(reporter))
    delivery = Delivery(setting, Where(repo, branch, origin), effects, GitHub.from_environment())
    try:
        delivery.run(account)
    except (Undelivered, OSError) as exc:
        kept = f" — the work stays on {branch}; the next run delivers it" if branch and commit else ""
        reporter.event(Notice(message=f"not delivered: {exc}{kept}"))
        return Delivered(int(ExitCode.UNDELIVERED) if code == ExitCode.OK else code, delivery.made)
    finally:
        for why in delivery.skipped:
            reporter.event(Notice(message=why))
    if launch is None and launch_id is not None:  # (the work of a launch whose runner was killed: delivered now)
        launches.finished(workspace, launch_id, code)
    return Delivered(code, delivery.made)
