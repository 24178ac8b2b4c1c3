"""Why a task is in the state it is in, as data: a ``Cause``, kept in its result's frontmatter
(``cause: {kind: upstream, task: T-01, status: failed}``), in its ``TaskView``, in ``status
--json`` and in the events a run writes. The sentence a person reads (``upstream T-01 failed``)
is rendered from it here, in one place (``Cause.sentence``); nothing reads a sentence back.

A result written before causes were recorded has a ``reason`` and no ``cause``: it reads with no
cause, its reason shown as it was written (``TaskView.note``), and the rules that ask a cause
(``holds``, ``run/resume/settled``) treat it as one they cannot vouch for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from orchestrator.plan.table.cells import release_command
from orchestrator.plan.table.times import not_before_reason
from orchestrator.vocabulary import TaskStatus


class CauseKind(StrEnum):
    UPSTREAM = "upstream"  # an upstream task did not complete (``task``, its ``status``): skipped, or bypassed
    CONDITION = "condition"  # its Condition was false (``condition``, what it ``seen``), or undecidable (``said``)
    REJECTED = "rejected"  # a person refused it at its gate (``gate``, ``by``, their words: ``said``)
    CANCELLED = "cancelled"  # `orchestrator cancel`, the dashboard's button (``said``)
    STOPPED = "stopped"  # the run stopped it, or did not start it: fail-fast (``task``), the cost limit, a backend down
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, SIGHUP (``said``), or its runner died (``pid``)
    HELD = "held"  # a person holds it: at its Approval ``gate``, or by its Blocked cell (``said``: its words)
    APPROVED = "approved"  # approved at its gate before it starts (``by``): it starts in the next run
    NOT_BEFORE = "not_before"  # its Not before has not come (``until``, epoch seconds)
    FAILED = "failed"  # it could not start (``said``): no attempt's output to show
    LATE = "late"  # told by a later run: its runner (``pid``) died between writing its result and telling of it
    BUDGET = "budget"  # the run's budget is spent, or what is left fits it not (``said``): `orchestrator budget +USD`


# What a dependent's sentence says of an upstream task that did not complete: ``upstream T-01 was cancelled``.
GIVEN_UP = {
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "was cancelled",
    TaskStatus.SKIPPED: "was skipped",
    TaskStatus.INTERRUPTED: "was interrupted",
    TaskStatus.REJECTED: "was rejected",
    TaskStatus.BYPASSED: "was bypassed",
}
_VAGUE = "did not run"  # of an upstream whose state the run did not know (a task added mid-run)
# What a task awaits a person's word on, by its gate.
GATES = {
    "before": "before it starts",
    "after": "of its result, before what depends on it starts",
}


@dataclass(frozen=True, slots=True)
class Cause:
    """One cause, its fields those its ``kind`` has (the others ``None``)."""

    kind: CauseKind
    task: str | None = None  # the upstream task (upstream), or the task whose failure stopped the run (stopped)
    status: TaskStatus | None = None  # that upstream's state (upstream)
    condition: str | None = None  # the Condition as written (condition)
    seen: str | None = None  # what the condition saw: ``T-01 completed, T-01.n = 0`` (condition)
    gate: str | None = None  # before, after (held, approved, rejected)
    by: str | None = None  # the person (approved, rejected)
    said: str | None = None  # words: a person's (reject, cancel, a Blocked cell), a limit's, an error's
    pid: int | None = None  # the runner that is gone (interrupted)
    until: float | None = None  # when its Not before comes (not_before)

    # --- made -------------------------------------------------------------------------------------

    @classmethod
    def upstream(cls, task: str, status: TaskStatus | None) -> Cause:
        return cls(CauseKind.UPSTREAM, task=task, status=status if status in GIVEN_UP else None)

    @classmethod
    def condition_false(cls, condition: str, seen: str) -> Cause:
        return cls(CauseKind.CONDITION, condition=condition, seen=seen)

    @classmethod
    def undecided(cls, condition: str, error: str) -> Cause:
        return cls(CauseKind.CONDITION, condition=condition, said=error)

    @classmethod
    def of(cls, kind: CauseKind, said: str | None = None, **more: Any) -> Cause:
        return cls(kind, said=said or None, **more)

    # --- read -------------------------------------------------------------------------------------

    def sentence(self, task_id: str) -> str:
        """What a person reads: in the status table, a result's heading, the run's lines."""
        kind, said = self.kind, self.said
        if kind == CauseKind.UPSTREAM:
            return f"upstream {self.task} {GIVEN_UP.get(self.status, _VAGUE) if self.status else _VAGUE}"
        if kind == CauseKind.CONDITION:
            if said is not None:
                return f"its condition could not be decided: {said}"
            return f"condition false: {self.condition} ({self.seen})"
        if kind == CauseKind.REJECTED:
            return "rejected" + (f" by {self.by}" if self.by else "") + (f": {said}" if said else "")
        if kind == CauseKind.HELD:
            if self.gate is not None:
                what = GATES.get(self.gate, GATES["after"])
                return (
                    f"awaiting approval {what}: `orchestrator approve {task_id}` (or `reject {task_id} --reason ...`)"
                )
            why = f"blocked: {said}" if said else "blocked by hand (its Blocked cell)"
            return f"{why} — `{release_command(task_id, said)}` releases it"
        if kind == CauseKind.APPROVED:
            return "approved" + (f" by {self.by}" if self.by else "") + ": starts in the next `orchestrator run`"
        if kind == CauseKind.LATE:
            runner = f"its runner (pid {self.pid})" if self.pid is not None else "its runner"
            return f"recorded late: {runner} died between writing its result and telling of it"
        if kind == CauseKind.INTERRUPTED and self.pid is not None:
            return f"runner (pid {self.pid}) is gone; attempt left behind"
        if kind == CauseKind.NOT_BEFORE and self.until is not None:
            return not_before_reason(self.until)
        if kind == CauseKind.STOPPED and said is None and self.task is not None:
            return f"stopped: {self.task} failed and the run fails fast"
        return said or _PLAIN[kind]

    def as_json(self) -> dict[str, Any]:
        """The fields it has: what a result's frontmatter, ``status --json`` and the events hold."""
        data: dict[str, Any] = {"kind": str(self.kind)}
        for spec in fields(self)[1:]:
            value = getattr(self, spec.name)
            if value is not None:
                data[spec.name] = str(value) if isinstance(value, TaskStatus) else value
        return data

    @classmethod
    def from_mapping(cls, data: object) -> Cause | None:
        """The cause a frontmatter holds, leniently (a person may have edited it): ``None`` for
        anything that is not one."""
        if not isinstance(data, Mapping):
            return None
        try:
            kind = CauseKind(str(data.get("kind")))
        except ValueError:
            return None
        status = TaskStatus.read(data["status"]) if data.get("status") is not None else None
        pid, until = data.get("pid"), data.get("until")
        return cls(
            kind,
            task=_text(data.get("task")),
            status=status,
            condition=_text(data.get("condition")),
            seen=_text(data.get("seen")),
            gate=_text(data.get("gate")),
            by=_text(data.get("by")),
            said=_text(data.get("said")),
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            until=float(until) if isinstance(until, int | float) and not isinstance(until, bool) else None,
        )


_PLAIN = {
    CauseKind.CANCELLED: "cancelled by `orchestrator cancel`",
    CauseKind.STOPPED: "not started: run stopped",
    CauseKind.INTERRUPTED: "interrupted by the user",
    CauseKind.NOT_BEFORE: "waits for its Not before",
    CauseKind.FAILED: "could not start",
    CauseKind.UPSTREAM: _VAGUE,
    CauseKind.CONDITION: "condition false",
    CauseKind.REJECTED: "rejected",
    CauseKind.HELD: "held by a person",
    CauseKind.APPROVED: "approved",
    CauseKind.LATE: "recorded late",
    CauseKind.BUDGET: "waits for a higher budget: `orchestrator budget +USD`",
}


def holds(cause: Cause | None, statuses: Mapping[str, TaskStatus]) -> bool:
    """Whether an upstream ``cause`` holds still: the task it names is in the state it names
    (or, said vaguely, in any state that gives a dependent up)."""
    if cause is None or cause.kind != CauseKind.UPSTREAM or cause.task is None:
        return False
    now = statuses.get(cause.task)
    return now is not None and now in GIVEN_UP and (cause.status is None or now == cause.status)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
