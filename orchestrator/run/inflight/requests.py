"""Cancel and retry asked from outside a run: what ``orchestrator cancel`` and ``retry`` do, and
the dashboard's buttons, through the same function (``request``).

A run going on takes what is asked within a second (``run/inflight/live``): a request is appended to the
event log and the run's answer waited for there. With no run going on, what the next run does is
changed, holding the workspace lock as ``reset`` does; a run that has the lock but cannot take
requests yet (it is starting) is waited for, as is another command holding the lock, for a while.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator import timing
from orchestrator.errors import LockedError, NoAnswerError, PlanError
from orchestrator.moments import now_iso
from orchestrator.plan.model import Plan, Task
from orchestrator.state import approvals, events
from orchestrator.state.events import EventRecord
from orchestrator.state.events.base import event_name
from orchestrator.state.lock import WorkspaceLock
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import TaskStatus, counted

if TYPE_CHECKING:  # (the records: imported as a run is asked, or its events read; `add` asks none)
    from orchestrator.state.causes import Cause
    from orchestrator.state.events.runs import RunStarted
    from orchestrator.state.events.tasks import TaskCancelled, TaskRequeued

Kind = Literal["cancel", "retry"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What came of a cancel or a retry: ``said`` is the sentence to show (a refusal's, prefixed
    by what was asked), ``notes`` what to warn of on the way (a hand-edited result kept)."""

    ok: bool
    task: str
    run: str | None  # the run going on that answered; None when the workspace was changed
    event: str | None  # the run's answering event (task_cancelled, task_requeued, request_refused)
    reason: str | None
    said: str
    notes: tuple[str, ...] = ()
    already: bool = False  # what was asked held already (a second approve, reject): nothing done

    def as_json(self) -> dict[str, Any]:
        """As ``cancel --json`` and ``retry --json`` print it."""
        data: dict[str, Any] = {"ok": self.ok, "task": self.task, "run": self.run}
        if self.run is not None:
            data["event"] = self.event
        data["reason"] = self.reason
        return data


def request(
    workspace: Workspace, plan: Plan, task: Task, kind: Kind, reason: str | None = None, *, within: float | None = None
) -> Answer:
    """Cancel or retry ``task``: asked of the run going on, or done to the workspace with none.
    ``LockedError`` when the lock stays held with no run to ask; ``NoAnswerError`` when the run
    going on did not answer in time. ``within``: seconds it may take in all (a ``spawn`` that
    Ctrl-C interrupts): the lock is waited for no longer, and a run going on that has not
    answered by then is left the request, which it takes at its next look (an ``Answer`` with
    no ``event``: the run may still refuse it, as ``watch`` shows)."""
    if kind == "cancel" and reason is None:
        reason = "cancelled by `orchestrator cancel`"
    answer_wait = timing.current().answer_wait  # (the run's answer; beyond the task's kill grace)
    deadline = None if within is None else time.monotonic() + within
    while True:
        found = run_or_lock(workspace, _left(deadline, answer_wait + plan.settings.kill_grace))
        if isinstance(found, WorkspaceLock):
            return _offline(kind, workspace, plan, [task], reason, found)[0]
        wait = answer_wait + _kill_grace(workspace, plan, task, found)  # (a cancel stops its processes first)
        answered = _ask(kind, workspace, task, reason, found, _left(deadline, wait), patient=deadline is None)
        if answered is not None:
            return answered
        # The run ended before it answered: what the next run does is changed instead.


def request_all(workspace: Workspace, plan: Plan, tasks: Sequence[Task], kind: Kind) -> list[Answer]:
    """``request`` of each of ``tasks`` at once (``retry T-03 --failed``: thousands of a row's
    items): with no run going on, one hold of the lock, one reading of the views and one writing
    of the plan's status blocks for them all; with one, every request appended at once and their
    answers waited for together. An answer each, in order."""
    answers: dict[str, Answer] = {}
    left = list(tasks)
    while left:
        found = run_or_lock(workspace, timing.current().answer_wait + plan.settings.kill_grace)
        if isinstance(found, WorkspaceLock):
            answers.update((a.task, a) for a in _offline(kind, workspace, plan, left, None, found))
        else:  # (the run takes them in one look: the wait of one, and more for a crowd of them)
            wait = timing.current().answer_wait * (1 + len(left) / 1000) + plan.settings.kill_grace
            got = _asked(kind, workspace, left, None, found, wait)
            going_on = events.live_run(workspace.events_file) is not None  # (else: those not answered, offline)
            answers.update(
                (t.id, _answer_of(kind, t.id, got.get(t.id), found)) for t in left if t.id in got or going_on
            )
        left = [task for task in left if task.id not in answers]  # (the run ended before it answered)
    return [answers[task.id] for task in tasks]


def _left(deadline: float | None, wait: float) -> float:
    """``wait``, or with a ``deadline`` the seconds until it."""
    return wait if deadline is None else max(0.0, deadline - time.monotonic())


def _kill_grace(workspace: Workspace, plan: Plan, task: Task, live: RunStarted) -> float:
    """The grace the run going on gives ``task``'s processes to stop before it kills them: as its
    ``run_started`` recorded it (the plan on disk may say otherwise by now), else the task's as the
    plan says (its profile's, its row's)."""
    ran_with = events.task_limits(live, task.id, events.added_limits(workspace.events_file, live))
    if ran_with is not None and ran_with["kill_grace"] is not None:
        return ran_with["kill_grace"]
    from orchestrator.plan.config.profiles import Profiles

    try:
        return Profiles(workspace).settings_for(plan, task).kill_grace
    except PlanError:
        return plan.settings.kill_grace


def wait_for(
    workspace: Workspace,
    live: RunStarted | None,
    answer: Callable[[EventRecord], bool],
    *,
    offset: int | None = None,
    wait: float | None = None,
) -> EventRecord | None:
    """The first event of the run ``live`` (from ``offset``) that ``answer`` accepts, waited for up to
    ``wait`` seconds (``timing.add_wait`` when None); ``None`` with no run, or when it ends or dies first."""
    if live is None:
        return None
    from orchestrator.state.events.runs import RunFinished

    cursor = events.Cursor(offset if offset is not None else events.last_run_start(workspace.events_file) or 0)
    clock = timing.current()
    deadline = time.monotonic() + (clock.add_wait if wait is None else wait)
    while True:
        for event in events.read_new(workspace.events_file, cursor):
            if event.run == live.run and answer(event):
                return event
            if isinstance(event, RunFinished) and event.run == live.run:
                return None
        if time.monotonic() > deadline:
            return None
        if not events.runner_alive(live):  # one last look: it may have answered as it ended
            late = [e for e in events.read_new(workspace.events_file, cursor) if e.run == live.run]
            return next((e for e in late if answer(e)), None)
        time.sleep(clock.request_poll)


def run_or_lock(workspace: Workspace, wait: float) -> RunStarted | WorkspaceLock:
    """The run going on, to ask; or, with none, the workspace lock, held, to change what the next
    run does. A run holds the lock from before it can take requests (its ``run_started``) to after
    it stops taking them (its ``run_finished``): a lock held with no run going on is waited for, up
    to ``wait`` seconds, until a run goes on or the lock is free; past that, ``LockedError``."""
    from orchestrator.errors import LockedError

    workspace.check_inside()
    clock = timing.current()
    deadline = time.monotonic() + wait
    while True:
        live = events.live_run(workspace.events_file)
        if live is not None:
            return live
        lock = WorkspaceLock(workspace.lock_file, workspace.root.name)
        try:
            lock.acquire()
        except LockedError:
            if time.monotonic() > deadline:
                raise
        else:
            return lock  # (no run can be going on: a runner holds this lock until it has finished)
        time.sleep(clock.request_poll)


def _ask(
    kind: Kind,
    workspace: Workspace,
    task: Task,
    reason: str | None,
    live: RunStarted,
    wait: float,
    *,
    patient: bool = True,
) -> Answer | None:
    """Ask the run going on, and wait for its answer; ``None`` when it ended without one. Not
    ``patient``: a run that goes on without an answer by then is left the request."""
    got = _asked(kind, workspace, [task], reason, live, wait).get(task.id)
    if got is not None:
        return _answer_of(kind, task.id, got, live)
    if events.live_run(workspace.events_file) is not None:
        if not patient:
            return _answer_of(kind, task.id, None, live, reason)
        raise NoAnswerError(
            f"the run going on (pid {live.pid}) did not answer the {kind} of {task.id} within {wait:g} s; "
            "it may still do it: `orchestrator watch` shows what it does"
        )
    return None


def _asked(
    kind: Kind, workspace: Workspace, tasks: Sequence[Task], reason: str | None, live: RunStarted, wait: float
) -> dict[str, EventRecord]:
    """Each of ``tasks`` asked of the run going on (its requests appended at once) and its answers
    waited for together, up to ``wait`` seconds: the answering event of each that has one."""
    from orchestrator.state.events.runs import CancelRequested, RequestRefused, RetryRequested  # (as it asks)
    from orchestrator.state.events.tasks import TaskCancelled, TaskRequeued

    ids = {uuid.uuid4().hex[:12]: task.id for task in tasks}
    offset = events.size(workspace.events_file)
    made = CancelRequested if kind == "cancel" else RetryRequested
    named = tasks[0].id if len(tasks) == 1 else counted(len(tasks), "task")
    submit(workspace, live, [made(run=live.run, task=t, request=r, reason=reason) for r, t in ids.items()],
        f"the {kind} of {named}", wait)  # fmt: skip
    done = TaskCancelled if kind == "cancel" else TaskRequeued
    waiting = set(ids.values())
    got: dict[str, EventRecord] = {}

    def answer(event: EventRecord) -> bool:
        if isinstance(event, RequestRefused) and event.request in ids:
            got.setdefault(ids[event.request], event)
        elif isinstance(event, done) and event.task in waiting:
            got.setdefault(event.task, event)
        return len(got) == len(ids)

    wait_for(workspace, live, answer, offset=offset, wait=wait)
    return got


def submit(workspace: Workspace, live: RunStarted, asked: Sequence[EventRecord], what: str, wait: float) -> None:
    """``asked`` appended to the event log for the run going on, as ``asking`` appends it: within
    ``wait`` seconds, else ``NoAnswerError`` (``what``: what is asked, as it says it), nothing asked."""
    with asking(workspace, live, what, wait) as put:
        put(asked)


@contextlib.contextmanager
def asking(
    workspace: Workspace, live: RunStarted, what: str, wait: float
) -> Iterator[Callable[[Iterable[EventRecord]], None]]:
    """The event log's lock, waited for ``wait`` seconds at most, held while what asks the run
    going on is written, and the way to append its request under it. A run stopped as it wrote
    its events (SIGSTOP, Ctrl-Z) holds the lock, and would answer no sooner: ``NoAnswerError``
    then, nothing asked or written. ``what``: what is asked, as the error says it."""
    held = contextlib.ExitStack()
    try:
        put = held.enter_context(events.holding(workspace.events_file, within=wait))
    except LockedError:
        raise NoAnswerError(
            f"the run going on (pid {live.pid}) did not let {what} into its event log within {wait:g} s "
            "(a run stopped, or busy writing, holds it): nothing was asked; `orchestrator watch` shows "
            "whether it goes on, then ask again"
        ) from None
    with held:
        yield put


def _answer_of(
    kind: Kind, task_id: str, got: EventRecord | None, live: RunStarted, reason: str | None = None
) -> Answer:
    """What the run going on answered of ``task_id`` (``got``), or, with no answer yet, that it
    was left the request (for ``reason``), which it takes at its next look."""
    from orchestrator.state.events.runs import RequestRefused
    from orchestrator.state.events.tasks import TaskCancelled

    if got is None:
        said = f"✋ {kind} of {task_id} asked of the run going on (pid {live.pid}), which takes it within a second"
        return Answer(True, task_id, live.run, None, reason, said + " (`orchestrator watch` shows it)")
    refused = isinstance(got, RequestRefused)
    why = got.reason if isinstance(got, RequestRefused | TaskCancelled) else None
    if refused:
        said = f"{kind} {task_id}: {why}"
    elif kind == "cancel":
        said = f"⏹️ {task_id} cancelled in the run going on (pid {live.pid}): {why}"
    else:
        said = f"↩️ {task_id} is back in the queue of the run going on (pid {live.pid})"
    return Answer(not refused, task_id, live.run, event_name(got), why, said)


def _offline(
    kind: Kind, workspace: Workspace, plan: Plan, tasks: Sequence[Task], reason: str | None, lock: WorkspaceLock
) -> list[Answer]:
    """No run going on: change what the next run does, holding the workspace ``lock`` (released
    here), as the machine's ``cancel-asked`` and ``retry-asked`` rules say of each of ``tasks`` as
    it is now; the views read once, the plan's status blocks written once, for them all."""
    from orchestrator.machine.core import Machine
    from orchestrator.machine.stimuli import CancelAsked, RetryAsked
    from orchestrator.output.sections import update_plan_file
    from orchestrator.run.items import recount, rows_of
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.run.telling import Between, Desk
    from orchestrator.state import planfile, store
    from orchestrator.state.causes import Cause, CauseKind
    from orchestrator.state.events.tasks import TaskRequeued
    from orchestrator.state.plans.identity import book_outdated, write_book
    from orchestrator.state.status import States

    answers: list[Answer] = []
    told: list[TaskCancelled | TaskRequeued] = []
    try:
        view_of = {v.id: v for v in current_views(plan, workspace)}  # (settled: what the next run leaves)
        desk = Desk(Machine(tasks=States(view_of)), Between())  # (the machine replayed: the views' states)
        cause = Cause.of(CauseKind.CANCELLED, reason)
        book = book_outdated(workspace, plan.book) if kind == "cancel" else False
        for task in tasks:
            notes: list[str] = []
            view = view_of[task.id]
            status = view.status
            if kind == "cancel":
                asked = desk.tell(CancelAsked(id=desk.stamp(), task=task.id, cause=cause, running=False, live=False))
            else:
                upstream = next((d for d in task.dependencies if view_of[d].status == TaskStatus.CANCELLED), None)
                asked = desk.tell(RetryAsked(id=desk.stamp(), task=task.id, live=False, settled=bool(view.settled),
                                             cancelled_upstream=upstream))  # fmt: skip
            refused, said = asked.refused, asked.already or ""
            if kind == "cancel":
                if asked.cancel_waiting:
                    if book:  # the agent ids it was given stay every task's
                        write_book(workspace, plan.book)
                        book = False
                    said, event = _cancelled(workspace, task, view.attempts, cause, notes)
                    told.append(event)
            elif asked.revive:
                store.remove(
                    workspace.result(task)
                )  # (cancelled, rejected; a skip or a bypass that stayed: a sentence)
                if status == TaskStatus.REJECTED:  # its gate asks again
                    approvals.record(workspace, task.id, approvals.REOPENED)
                if status in (TaskStatus.CANCELLED, TaskStatus.REJECTED):
                    said = f"↩️ {task.id} is back in the queue: it runs in the next `orchestrator run`"
                else:
                    said = f"↩️ {task.id} is back in the queue: the next `orchestrator run` decides it again"
                told.append(TaskRequeued(task=task.id, agent=task.agent, was=str(status)))
            if refused is not None:
                answers.append(
                    Answer(False, task.id, None, None, refused, f"{kind} {task.id}: {refused}", tuple(notes))
                )
            else:
                answers.append(Answer(True, task.id, None, None, None, said, tuple(notes)))
        if told:  # (changes made with no run going on, their ``run`` null: for ``watch`` and ``history``)
            events.append(workspace.events_file, told)
        changed = [answer.task for answer in answers if answer.ok]
        if changed:
            views = current_views(plan, workspace)
            recount(plan, workspace, {view.id: view.status for view in views}, rows_of(plan, changed))
            with contextlib.suppress(planfile.PlanFileUnreadable, OSError):
                update_plan_file(plan, workspace, views)
    finally:
        lock.release()
    return answers


def _cancelled(
    workspace: Workspace, task: Task, attempts: int, cause: Cause, notes: list[str]
) -> tuple[str, TaskCancelled]:
    """``task`` cancelled with no run going on: its result written so (a hand-edited one kept
    aside, said in ``notes``); what to say, and the event that tells it."""
    from orchestrator.state.events.tasks import TaskCancelled
    from orchestrator.state.results import ResultRecord, not_run_body, write_result

    words = cause.sentence(task.id)
    record = ResultRecord(task=task.id, agent=task.agent, name=task.title, status=TaskStatus.CANCELLED,
                          attempts=attempts, run_attempts=0, reason=words, cause=cause, finished=now_iso())  # fmt: skip
    path = workspace.result(task)
    written = write_result(path, record, not_run_body(task.id, TaskStatus.CANCELLED, words))
    if written.kept is not None:
        notes.append(written.kept.notice(workspace.relative(path)))
    said = f"⏹️ {task.id} cancelled: no run starts it (its dependents are skipped) until `orchestrator retry {task.id}`"
    event = TaskCancelled(task=task.id, agent=task.agent, reason=words, cause=cause, duration=None,
                          result=workspace.result_name(task), result_digest=written.digest)  # fmt: skip
    return said, event
