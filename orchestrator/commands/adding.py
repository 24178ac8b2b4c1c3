"""A row added to the plan (``add``, ``spawn``): the options checked, the row written into
master_plan.md as ``plan/edit`` writes one, the plan with it checked as ``validate`` checks it, taken
by the run going on (within a second) or left for the next run; nothing written when anything is
refused. One edit of the plan at a time (``plan_edit_lock``), never losing a save made meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import documents, timing
from orchestrator.commands import words
from orchestrator.commands.options import Arguments
from orchestrator.errors import OrchestratorError, PlanError, Problem, UsageError, shown
from orchestrator.plan.markdown import split_lines
from orchestrator.plan.table.cells import NO_COMMAND
from orchestrator.state import events
from orchestrator.state.lock import WorkspaceLock, plan_edits
from orchestrator.state.plans import plan_of

if TYPE_CHECKING:  # (run/inflight/requests is imported where a command asks a run: `--help` needs it not)
    from orchestrator.plan.edit import NewTask
    from orchestrator.plan.model import ArchivedTask, Plan
    from orchestrator.state.events.runs import RunStarted
    from orchestrator.state.events.tasks import TaskAdded
    from orchestrator.state.workspace import Workspace

Given = argparse.Namespace | Arguments  # add's options, from the command line or a program


@contextlib.contextmanager
def plan_edit_lock(workspace: Workspace) -> Iterator[None]:
    """One edit of the plan at a time per workspace (``add``, ``update``): each reads the plan with
    the rows the others wrote (``state/lock.plan_edits``: a run's end takes it too)."""
    with plan_edits(workspace.state_dir):
        yield


#: The signals that end a command from outside: Ctrl-C, ``kill``, a terminal closed.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """``STOPPING`` held off while the block runs and taken as it ends (Python raises a Ctrl-C's
    ``KeyboardInterrupt`` as the mask is put back): what the block writes is written whole, and
    the block tells its caller so, before any of them is acted on."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


# --- add ------------------------------------------------------------------------------------------


def _on_details(exc: PlanError, text: str, task_id: str, details: str | None, file: str | None) -> PlanError:
    """``exc`` with each problem on a line the details file gave the plan named at that file's
    line: the plan is not written, so its line would name nothing the user can open."""
    if details is None or file is None:
        return exc
    lines = [line.rstrip("\r\n") for line in split_lines(text)]  # as the parser numbers them
    lead = len(details) - len(details.lstrip("\n"))  # blank lines above are not written (plan.edit)
    body = [line.rstrip("\r\n") for line in split_lines(details.strip("\n").replace("\r\n", "\n"))]
    heading = next(  # the new task's heading is the one the details follow
        (
            n
            for n in range(len(lines), 0, -1)
            if lines[n - 1].startswith(f"### {task_id}") and lines[n : n + len(body)] == body
        ),
        0,
    )
    return PlanError(
        replace(p, file=file, line=p.line - heading + lead)
        if heading and heading < p.line <= heading + len(body)
        else p
        for p in exc.problems
    )


def _lacks_command(plan: Plan, workspace: Workspace, task_id: str) -> bool:
    """Whether the new row is a shell task with no command to run."""
    from orchestrator import backends
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.run.checks.preflight import command_fault

    task = plan.tasks[task_id]
    backend = Profiles(workspace).settings_for(plan, task).backend
    return backend in backends.names() and command_fault(task, backend) == "missing" and task.blocked is None


def _check_options(plan: Plan, workspace: Workspace, task_id: str) -> None:
    """The plan with the new row held to what ``validate`` holds it to (``reading.checked``), its
    problems on that row said of the options that made it: the plan is not written, so a line of
    it would name nothing to open."""
    from orchestrator import backends
    from orchestrator.commands.reading import checked
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.run.checks.preflight import command_fault

    task, profiles = plan.tasks[task_id], Profiles(workspace)
    backend = profiles.settings_for(plan, task).backend
    fault = command_fault(task, backend) if backend in backends.names() else None
    if fault == "missing" and task.blocked is None:
        raise UsageError(
            f"--command is missing: {task_id} would run on the shell backend, which runs a command, never a "
            "description — give it one: --command 'CMD', or --details-file FILE holding a ```bash block"
        )
    if fault == "unused":
        raise UsageError(
            f"--command: {task_id} would run on '{backend}', which does not run commands — add --backend shell, "
            "or leave --command out"
        )
    checked(plan, workspace, profiles, rows=(task_id,))


def _refused(
    exc: PlanError, workspace: Workspace, text: str, task_id: str, details: str | None, file: str | None
) -> OrchestratorError:
    """``exc``, a problem of the plan ``text`` (with the new row) as the user can act on it: on a
    line the details file gave, named at that file's line (``_on_details``); on the row's own
    line, said of the options that made it: validate's words and what to do, with no line of a
    file that was not written; any other as it is."""
    from orchestrator.plan.parser import parse_plan

    exc = _on_details(exc, text, task_id, details, file)
    try:  # (a refusal only: where the row stands, as the parser numbers it)
        line = parse_plan(text, workspace.plan_file).tasks[task_id].line
    except (PlanError, KeyError):
        return exc
    row = [p for p in exc.problems if p.file == shown(workspace.plan_file) and p.line == line]
    if not row:
        return exc
    return UsageError("; ".join(p.message + (f" — {p.hint}" if p.hint else "") for p in row))


@dataclass(frozen=True, slots=True)
class Added:
    """A row ``add`` (or ``spawn``) wrote: its id, the run going on when it was written (``None``:
    none), that run's ``task_added`` for it (``None``: not taken, or no run), and whether it waits
    for a command (``NO_COMMAND``); the ``plan`` as it was checked with the row, the bytes
    written (what its answer shows the task from, not the file read once more)."""

    id: str
    live: RunStarted | None
    taken: TaskAdded | None
    held: bool = False
    plan: Plan | None = None


def read_details(details_file: str | None) -> str | None:
    """``--details-file``'s text, refused in one line when it cannot be the task's details."""
    from orchestrator.plan.edit import details_heading

    if details_file is None:
        return None
    try:
        details = Path(details_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--details-file {details_file}: cannot read it ({exc})") from None
    heading = details_heading(details)
    if heading is not None:
        line, what, fix = heading
        raise UsageError(f"{details_file}:{line}: {what} would end the task's details in master_plan.md — {fix}")
    return details


def add_row(
    args: Given,
    workspace: Workspace,
    description: str,
    details: str | None,
    details_file: str | None,
    *,
    wait: bool = True,
    written: Callable[[str], None] | None = None,
    hold: bool = False,
) -> Added:
    """The row ``args`` describe (``add``'s options: ``spawn`` takes the same), written into the
    plan: taken by the run going on (waited for unless not ``wait``: ``taken_by``), or left for
    the next run. Nothing is written when the options are refused (a ``UsageError`` naming the
    option) or the plan would not parse. ``written`` is handed the new task's id once its row is
    in the file, before a Ctrl-C that came as it was written is taken (``spawn``: the task it
    must then cancel). ``hold``: a shell task given no command is written blocked
    (``NO_COMMAND``), where it waits for one, rather than refused. Every row written has its
    ``task_added``: the run's that takes it; else, as that run ends, the run's own for the rows it
    did not take (``run/inflight/live``); else this command's."""
    from orchestrator.run.inflight.requests import run_or_lock
    from orchestrator.state import planfile

    check_words(args, description)
    row = _Row(args, workspace, _new_task(args, workspace, description, details), details, details_file, hold)
    workspace.check_inside()
    text = documents.read_text(workspace.plan_file)  # (the plan is parsed once, with the row: ``_Row.change``)
    row.ids_in(text)  # (refused before the lock is taken: nothing written)
    grace = _kill_grace(text)
    while True:
        # A run that is starting has read the plan, or will, before it follows it: whether it has the
        # row from its start or takes it once it follows the plan cannot be told from here. So the
        # row is written once a run goes on (it follows the plan from its run_started: it takes the
        # row, and says so; as it ends, under the same lock, it tells of the rows it did not take),
        # or with none, holding the lock that a run starting must take first.
        found = run_or_lock(workspace, timing.current().answer_wait + grace)
        live = None if isinstance(found, WorkspaceLock) else found
        try:
            with plan_edit_lock(workspace), signals_held():  # (a Ctrl-C as it waits for the lock: nothing written)
                if live is not None and not _goes_on(workspace, live):
                    continue  # (it ended as this waited: once its lock is free, the row is this command's)
                since = events.size(workspace.events_file)
                planfile.rewrite(workspace.plan_file, row.change)
                if written is not None:
                    written(row.id)
                if live is None:
                    events.append(workspace.events_file, [row.added()])
            break
        finally:
            if isinstance(found, WorkspaceLock):
                found.release()
    taken = taken_by(workspace, live, row.id) if wait else None
    if taken is None and live is not None and wait:
        _told_of(workspace, live, since, row)
    return Added(row.id, live, taken, row.new.blocked == NO_COMMAND, row.plan)


class _Row:
    """The row ``add`` writes, checked against the plan's text as it is when written (``change``)."""

    def __init__(
        self, args: Given, workspace: Workspace, new: NewTask, details: str | None, file: str | None, hold: bool
    ) -> None:
        from orchestrator.state.kept.archive import archived_tasks

        self.args, self.workspace, self.new, self.hold = args, workspace, new, hold
        self.details, self.file = details, file  # (the details file: a refusal names its lines)
        self.archived = archived_tasks(workspace)
        self.id = ""
        self.plan: Plan | None = None  # (the plan with the row, as written)
        self._checked: str | None = None  # (the plan's text whose ids were checked)

    def ids_in(self, text: str | None) -> None:
        """``--id`` and ``--after`` checked against the ids of the task table in ``text`` (read off
        the table, no plan parsed; no table, or no text: the plan's parse says what is wrong)."""
        from orchestrator.plan.edit import task_ids

        if text is not None and text == self._checked:
            return  # (the text checked before the lock, unchanged under it)
        with contextlib.suppress(PlanError):
            _check_ids(task_ids(text or ""), self.archived, self.args.id, self.new.after)
        self._checked = text

    def change(self, text: str) -> str:
        """``text`` with the row, held to what ``validate`` holds the plan to."""
        self.ids_in(text)  # (again: the plan as it is now, under the lock)
        result, task_id, plan = self._with_row(text)
        if self.hold and _lacks_command(plan, self.workspace, task_id):
            self.new.blocked = NO_COMMAND  # (the same row, held: what it waits for in its Blocked cell)
            result, task_id, plan = self._with_row(text)
        if self.args.id is not None and any(t.lower() == task_id.lower() for t in plan.tasks if t != task_id):
            raise UsageError(f"--id {task_id}: the plan has that task already")
        try:
            _check_options(plan, self.workspace, task_id)
        except PlanError as exc:
            raise _refused(exc, self.workspace, result, task_id, self.details, self.file) from None
        self.id, self.plan = task_id, plan
        return result

    def _with_row(self, text: str) -> tuple[str, str, Plan]:
        """The plan's text with the row, its id, and the plan it makes."""
        from orchestrator.plan.edit import add_task
        from orchestrator.plan.markdown import FrontmatterError

        where = self.workspace.plan_file
        try:
            result, task_id = add_task(text, self.new, taken=list(self.archived))
        except FrontmatterError as exc:
            raise PlanError([Problem(shown(where), exc.line, str(exc), exc.hint)]) from None
        except PlanError as exc:
            raise exc.located(where) from None
        try:  # (read as validate reads the file: its parameters, and where each may stand, checked)
            plan = plan_of(self.workspace, text=result)
        except PlanError as exc:
            raise _refused(exc, self.workspace, result, task_id, self.details, self.file) from None
        return result, task_id, plan

    def added(self) -> TaskAdded:
        """Its ``task_added`` when no run takes it: for the next run."""
        from orchestrator.state.events.tasks import TaskAdded

        return TaskAdded(task=self.id, name=self.args.name or "", after=tuple(self.new.after))


def _goes_on(workspace: Workspace, live: RunStarted) -> bool:
    """Whether the run ``live`` still goes on: its runner alive, no ``run_finished`` of it yet."""
    now = events.live_run(workspace.events_file)
    return now is not None and now.run == live.run


def _told_of(workspace: Workspace, live: RunStarted, since: int, row: _Row) -> None:
    """The row written for the run ``live``, which did not take it: once that run is over, its
    ``task_added`` for the next run, unless one was written since ``since`` (the run's, as it
    ended: under the plan's edit lock, which this takes too). A run that goes on takes it yet."""
    from orchestrator.state.events.tasks import TaskAdded

    with plan_edit_lock(workspace):
        if _goes_on(workspace, live):
            return
        told = events.read_new(workspace.events_file, events.Cursor(since), only=(b'"task_added"',))
        if not any(isinstance(event, TaskAdded) and event.task == row.id for event in told):
            events.append(workspace.events_file, [row.added()])


def _new_task(args: Given, workspace: Workspace, description: str, details: str | None) -> NewTask:
    """The row ``add``'s options describe (``spawn``'s too), as ``plan/edit`` writes one."""
    from orchestrator.plan.edit import NewTask
    from orchestrator.plan.table.cells import split_ids

    return NewTask(
        description=description,
        id=args.id,
        name=args.name,
        after=[d for part in args.after or () for d in split_ids(part)],
        priority=words.priority(args.priority),
        profile=args.assignee,
        backend=args.backend,
        command=args.command,
        details=details,
        tags=words.tags(args.tag),
        retries=args.retries,
        timeout=words.duration_text(args.timeout, "--timeout"),
        type=words.task_type(args.type, plan_of(workspace).types) if args.type is not None else None,
        each=words.each(args.each) if getattr(args, "each", None) else None,
    )


def _check_ids(ids: list[str], archived: Mapping[str, ArchivedTask], given: str | None, after: list[str]) -> None:
    """``--id`` names no task the plan has (its table's ``ids``) or had (``archived``: an id is
    never used twice), and ``--after`` only tasks it has: said of the option, before a row is
    written."""
    gone = {t.lower(): entry for t, entry in archived.items()}
    if given is not None and (entry := gone.get(given.lower())) is not None:
        raise UsageError(f"--id {given}: {entry.task.id} is archived in {entry.file}, and an id is never used twice")
    known = {t.lower() for t in [*ids, *archived]}
    if given is not None and given.lower() in known:
        raise UsageError(f"--id {given}: the plan has that task already")
    unknown = [task for task in after if task.lower() not in known]
    if unknown:  # said of --after, not of a row and a line the plan does not have yet
        raise UsageError(f"--after: no task {', '.join(unknown)} in the plan")


def _kill_grace(text: str | None) -> float:
    """How long the run going on may take to stop a task's processes (``kill_grace``), as the
    plan's frontmatter in ``text`` says it (read alone: the plan itself is parsed once, with the
    row), or the default when it says nothing readable (the plan's own parse says what)."""
    from orchestrator.plan.config.settings import Settings, parse_setting

    try:
        found = documents.parse(text or "")[0]
    except ValueError:
        found = {}
    raw = found.get("kill_grace", found.get("kill-grace"))
    try:
        return float(parse_setting("kill_grace", raw)) if raw is not None else Settings().kill_grace
    except (ValueError, TypeError):
        return Settings().kill_grace


def taken_by(workspace: Workspace, live: RunStarted | None, task_id: str) -> TaskAdded | None:
    """The ``task_added`` of the run ``live`` for ``task_id``, waited for up to 5 s."""
    from orchestrator.run.inflight.requests import wait_for
    from orchestrator.state.events.tasks import TaskAdded

    found = wait_for(workspace, live, lambda e: isinstance(e, TaskAdded) and e.task == task_id)
    return found if isinstance(found, TaskAdded) else None


def check_words(args: Given, description: str) -> None:
    """The description and ``--id``, refused before anything else is read."""
    from orchestrator.plan.table.cells import id_problem

    if not description.strip():
        raise UsageError("the description is empty: say what the task does")
    if args.id is not None and (problem := id_problem(args.id)):
        raise UsageError(f"--id: {problem}")


def task_json_of(workspace: Workspace, task_id: str, plan: Plan | None = None) -> dict[str, Any]:
    """A task as ``list --json`` (and ``status --json``) show it; ``plan``: the plan as just
    written (else read)."""
    from orchestrator.commands.shown import task_json
    from orchestrator.run.resume.freshness import current_view

    plan = plan if plan is not None else plan_of(workspace)
    view = current_view(plan, workspace, task_id)
    return task_json(plan.tasks[task_id], view)
