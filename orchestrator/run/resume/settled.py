"""Which finished tasks stay as they are: the one rule ``run`` (``selection.select``: what it
runs) and ``status`` (``freshness.out_of_date``: what it calls out of date) share, so that a
finished plan is a fixed point: run again with nothing changed, nothing starts, nothing is asked,
no result is written again.

A task's result stays, each of its dependencies staying too (every task after its dependencies):

- completed: its fingerprint is the one it would have now (``expected``); a plain task's
  dependencies all completed, a task with a Condition's condition holding still;
- bypassed or skipped: what the run would decide of it now is what its cause says. A Condition
  false is decided again on the outcomes and fields it reads, and stays while it sees the same
  (``condition_verdict``, the function the run's gate decides with); a task given up for an
  upstream task stays while that task stays given up as its cause names;
- cancelled: always, until `orchestrator retry` (or ``run --rerun``);
- rejected: while its inputs are those it was refused on (``approvals.same_inputs``), or while
  what it depends on runs again (it is judged once that is settled: refused still, or asked again);
- failed: only where a fallback took it over: a dependent that runs *because* it failed
  (``holds.runs_because_it_failed``) completed, and stays. A task that fails whatever a run
  does is left to a person (`orchestrator cancel`, a fix): the next run tries it again.

Anything else (interrupted, awaiting a person's word, a skip because the run stopped, a result
written before causes were recorded) is taken up by the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import documents
from orchestrator.machine import policy
from orchestrator.machine.stimuli import Judged
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import ConditionError, compile_condition, output_fields
from orchestrator.state import fallbacks
from orchestrator.state.approvals import same_inputs
from orchestrator.state.causes import Cause, CauseKind, holds
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus

Verdict = tuple[TaskStatus, Cause] | None  # what becomes of a task that does not run, and why; None: it runs
Fields = Callable[[str], Mapping[str, Any] | None]  # a task's output fields (its completed result's JSON object)


def condition_verdict(plan: Plan, task: Task, outcomes: Mapping[str, str], fields: Fields) -> Verdict:
    """What ``task``'s Condition decides, on its dependencies' ``outcomes`` and ``fields``, by
    the machine's own judgement of it (``machine/policy.condition``): ``None``, it runs."""
    return policy.condition(judged(plan, task, outcomes, fields))


def judged(plan: Plan, task: Task, outcomes: Mapping[str, str], fields: Fields) -> Judged:
    """``task``'s Condition read against the plan, with the facts it is decided on: its
    dependencies' ``outcomes``, and the output fields (``fields``: read here, once a task) of each
    task it reads a field of."""
    text = task.condition or ""
    try:
        condition = compile_condition(text, plan.tasks, task.dependencies)
    except ConditionError as exc:
        return Judged(text=text, read=None, problem=str(exc), outcomes=outcomes)
    outputs = {dep: fields(dep) for dep, _ in condition.fields}
    return Judged(text=text, read=condition, outcomes=outcomes, outputs=outputs)


def fields_in(workspace: Workspace, plan: Plan, records: Mapping[str, ResultRecord]) -> Fields:
    """A ``Fields`` of the completed results on disk: each read once, when first asked for."""
    found: dict[str, Mapping[str, Any] | None] = {}

    def fields(task_id: str) -> Mapping[str, Any] | None:
        if task_id not in found:
            record, task = records.get(task_id), plan.tasks.get(task_id)
            if record is None or record.status != TaskStatus.COMPLETED or task is None:
                found[task_id] = None
            else:
                found[task_id] = output_fields(documents.read_body(workspace.result(task)) or "")
        return found[task_id]

    return fields


@dataclass(slots=True)
class Settled:
    """The tasks whose result stays: each with the state it stays in."""

    states: dict[str, TaskStatus] = field(default_factory=dict)

    @property
    def done(self) -> set[str]:
        """Those that stay completed: their dependents may start."""
        return {task_id for task_id, status in self.states.items() if status == TaskStatus.COMPLETED}

    @property
    def given_up(self) -> dict[str, TaskStatus]:
        """Those that stay as they are and are not completed: what depends on them is given up
        (a task with a Condition decides on them)."""
        return {task_id: status for task_id, status in self.states.items() if status != TaskStatus.COMPLETED}

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.states


def settle(
    order: Iterable[str],
    plan: Plan,
    expected: Mapping[str, str],
    records: Mapping[str, ResultRecord],
    fields: Fields,
    *,
    simulated_done: bool = False,
    inputs: Callable[[Task], str | None] | None = None,
) -> Settled:
    """The tasks whose result stays (the module's rule). ``order``: every task after its
    dependencies; ``expected``: the fingerprints the completed (and rejected) results would have
    now; ``simulated_done``: a result the fake executor made up stays (for another fake run,
    and for ``status``); ``inputs``: each task's inputs now (``run/resume/basis``), which a rejection
    is judged against (without it, a rejection stays)."""
    order = list(order)
    # A failure stays only where a fallback that stays took it over; which ones do is known only
    # once the walk is done: taken to stay, then those no fallback took over dropped, until none is.
    assumed = {task_id for task_id, record in records.items() if record.status == TaskStatus.FAILED}
    children: dict[str, list[str]] = {}
    if assumed:  # (the graph without networkx: ``status`` builds none)
        for task in plan.tasks.values():
            for dep in task.dependencies:
                children.setdefault(dep, []).append(task.id)
    while True:
        settled = _walk(order, plan, expected, records, fields, assumed, simulated_done, inputs)
        taken = {
            task_id for task_id in assumed if _taken_over(plan, task_id, children.get(task_id, ()), settled.states)
        }
        if taken == assumed:
            return settled
        assumed = taken


def _walk(
    order: list[str],
    plan: Plan,
    expected: Mapping[str, str],
    records: Mapping[str, ResultRecord],
    fields: Fields,
    assumed: set[str],
    simulated_done: bool,
    inputs: Callable[[Task], str | None] | None,
) -> Settled:
    settled = Settled()
    states = settled.states
    for task_id in order:
        record, task = records.get(task_id), plan.tasks.get(task_id)
        if record is None or task is None:
            continue
        status = record.status
        settled_deps = all(dep in states for dep in task.dependencies)
        if status == TaskStatus.CANCELLED or (status == TaskStatus.REJECTED and not settled_deps):
            states[task_id] = status  # (a person's word: whatever runs before it)
            continue
        if not settled_deps:
            continue
        if status == TaskStatus.COMPLETED:
            stays = (simulated_done or not record.simulated) and record.fingerprint == expected.get(task_id)
            if stays and task.condition:
                stays = _verdict(plan, task, states, fields) is None
            elif stays:
                stays = all(states[dep] == TaskStatus.COMPLETED for dep in task.dependencies)
        elif status in (TaskStatus.BYPASSED, TaskStatus.SKIPPED):
            stays = _still(plan, task, record, states, fields)
        elif status == TaskStatus.REJECTED:
            made, now = record.inputs, inputs(task) if inputs is not None else None
            stays = made is None or now is None or same_inputs(made, now)
        else:
            stays = status == TaskStatus.FAILED and task_id in assumed
        if stays:
            states[task_id] = status
    return settled


def _verdict(plan: Plan, task: Task, states: Mapping[str, TaskStatus], fields: Fields) -> Verdict:
    outcomes = {dep: str(states[dep]) for dep in task.dependencies}
    return condition_verdict(plan, task, outcomes, fields)


def _still(plan: Plan, task: Task, record: ResultRecord, states: Mapping[str, TaskStatus], fields: Fields) -> bool:
    """Whether a task bypassed or skipped would be so again now, for the cause it records."""
    cause = record.cause
    if cause is None:  # (written before causes were: nothing to vouch for it)
        return False
    if task.condition:
        verdict = _verdict(plan, task, states, fields)
        return verdict is not None and verdict[0] == record.status and verdict[1] == cause
    if cause.kind != CauseKind.UPSTREAM or all(states[dep] == TaskStatus.COMPLETED for dep in task.dependencies):
        return False
    named = states.get(cause.task or "")
    given = TaskStatus.BYPASSED if named == TaskStatus.BYPASSED else TaskStatus.SKIPPED
    return holds(cause, states) and record.status == given


def _taken_over(plan: Plan, failed: str, children: Iterable[str], states: Mapping[str, TaskStatus]) -> bool:
    """Whether a dependent of ``failed`` that ran because it failed (``state/fallbacks``) stays
    completed."""
    return any(
        plan.tasks[child].condition
        and states.get(child) == TaskStatus.COMPLETED
        and fallbacks.runs_because_it_failed(plan, states, plan.tasks[child], failed)
        for child in children
    )
