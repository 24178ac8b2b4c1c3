"""``orchestrator spawn``: one task added and started now, as ``docker run`` starts a container.

The row is written as ``add`` writes it (``adding.add_row``: the same options, checks and
locks; ``--label`` is ``add``'s ``--tag``, the ``Tags`` column). Then, in a workspace with a run
going on, that run takes it and ``spawn`` follows it there; with none, ``spawn`` runs it, alone,
as ``run --only ID`` would (``run/launch/spawned.see_through``). It ends when the task does, with its
outcome: the answer (its result's body, as ``output`` prints it) on stdout, what happens on the
way on stderr. ``--detach`` prints the id and returns at once, the task left to the run going on
or to a runner of its own in the background (its own session, its lines in
``logs/<agent>.spawn.log``).

Ctrl-C (SIGTERM, SIGHUP) from the moment the row is in the file stops the task: a run going on
is asked to cancel it, and its answer waited for a second at most (a task its run stops within
its kill grace is left to it); a run of its own stops it as ``run`` does.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from orchestrator import timing
from orchestrator.cli import queue
from orchestrator.cli.output import Commands, add_command, emit_json, find_workspace, warn
from orchestrator.commands import adding
from orchestrator.errors import UsageError, interrupted
from orchestrator.state import events
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import ExitCode, TaskStatus

if TYPE_CHECKING:
    from orchestrator.state.workspace import Workspace

USAGE = 'orchestrator spawn [DIR] "<prompt>"'


def _prompt_parts(prompt: str) -> tuple[str, str | None]:
    """The row's description and its Task Details: a prompt of one line is the description; one
    of several lines is the details whole (the brief's instructions), its first line the
    description (the title is made from it)."""
    lines = [line for line in prompt.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return prompt.strip(), None
    from orchestrator.plan.edit import details_heading

    heading = details_heading(prompt)
    if heading is not None:
        line, what, fix = heading
        raise UsageError(f"the prompt's line {line}: {what} would end the task's details in master_plan.md — {fix}")
    return lines[0].strip(), prompt.strip("\n")


def _upstream_not_done(workspace: Workspace, after: list[str]) -> list[str]:
    """The tasks ``--after`` names that have no completed result."""
    from orchestrator.plan.table.cells import split_ids
    from orchestrator.state.results import read_record

    plan = plan_of(workspace)
    lowered = {task_id.lower(): task for task_id, task in plan.tasks.items()}
    missing: list[str] = []
    for wanted in (d for part in after for d in split_ids(part)):
        task = lowered.get(wanted.lower())
        if task is None:
            continue  # (add_row names it: no such task)
        record = read_record(workspace.result(task), task.id)
        if record is None or record.status != TaskStatus.COMPLETED:
            missing.append(task.id)
    return missing


def cmd_spawn(args: argparse.Namespace) -> int:
    if args.task is not None:  # (the runner --detach leaves behind: the row is written already)
        if len(args.words) > 1:
            raise UsageError("too many arguments: orchestrator spawn --task ID [DIR]")
        workspace = find_workspace(args.words[0] if args.words else None)
        return _finish(args, workspace, args.task, args.since or 0, detached=True)
    workspace, (prompt,) = queue.split_words(args.words, USAGE)
    description, details = _prompt_parts(prompt)
    adding.check_words(args, description)
    if args.after and events.live_run(workspace.events_file) is None:
        waiting = _upstream_not_done(workspace, args.after)
        if waiting:
            raise UsageError(
                f"--after: {', '.join(waiting)} has not completed, and no run is going on to run it — "
                f"run it first (`orchestrator run --only {waiting[0]}`), or `orchestrator add` this task "
                "and `orchestrator run` them both"
            )
    since = events.size(workspace.events_file)
    written: list[str] = []  # (the row's id, as soon as it is in the file: a Ctrl-C then stops its task)
    signals = [] if args.detach else _interrupted_by_any()
    try:
        added = adding.add_row(args, workspace, description, details, None, wait=False, written=written.append)
        return _spawned(args, workspace, added, since)
    except (KeyboardInterrupt, RuntimeError) as exc:  # (a Ctrl-C as a lazy import made a class: a RuntimeError)
        if not interrupted(exc):
            raise
        if written and not args.detach:
            with adding.signals_held():  # (a second Ctrl-C is taken once the cancel is asked: a second at most)
                _cancel(workspace, written[0], signals[-1] if signals else "Ctrl-C")
        raise KeyboardInterrupt from exc


def _interrupted_by_any() -> list[str]:
    """SIGTERM and SIGHUP (``kill``, ``timeout``, a terminal closed) stop a ``spawn`` in the
    foreground as Ctrl-C does, and its task with it, unless ignored (``nohup``); the list they
    are named in as they come. (A run of its own takes all three as its own: ``Runner``.)"""
    came: list[str] = []

    def interrupt(number: int, _frame: object) -> None:
        came.append(signal.Signals(number).name)
        raise KeyboardInterrupt

    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, interrupt)
    return came


def _spawned(args: argparse.Namespace, workspace: Workspace, added: adding.Added, since: int) -> int:
    """Once the row is written: the task followed to its end, or (``--detach``) left to run."""
    task_id, live = added.id, added.live
    joined = adding.taken_by(workspace, live, task_id) is not None
    run = live.run if joined and live else None
    from orchestrator.state.events.tasks import TaskSpawned

    events.append(
        workspace.events_file,
        [TaskSpawned(run=run, task=task_id, labels=tuple(_labels(args)), detach=bool(args.detach))],
    )
    where = workspace.relative(workspace.plan_file)
    if args.detach:
        log = None if joined else _detach(workspace, task_id, since)
        if args.json:
            task = adding.task_json_of(workspace, task_id)
            emit_json({"ok": True, "id": task_id, "run": run, "joined": joined, "detached": True,
                       "log": log, "task": task})  # fmt: skip
            return ExitCode.OK
        print(task_id)
        if joined and live is not None:
            warn(f"➕ {task_id} added to {where}; the run going on (pid {live.pid}) runs it")
        else:
            warn(f"➕ {task_id} added to {where}; it runs in the background (its lines: {log})")
        return ExitCode.OK
    if joined and live is not None:
        warn(f"➕ {task_id} added to {where}; the run going on (pid {live.pid}) runs it")
    else:
        warn(f"➕ {task_id} added to {where}; running it now")
    return _finish(args, workspace, task_id, since, detached=False)


def _labels(args: argparse.Namespace) -> list[str]:
    from orchestrator.commands import words

    return words.tags(args.tag)


def _finish(args: argparse.Namespace, workspace: Workspace, task_id: str, since: int, *, detached: bool) -> int:
    """Wait for the task's end (running it here if no run going on will), then say how it ended:
    its answer on stdout, or one JSON object; exit with its outcome."""
    from orchestrator.output.lines import describe
    from orchestrator.output.reporter import PlainReporter
    from orchestrator.run.launch.spawned import see_through

    def show(event: events.EventRecord) -> None:
        if event.run is None:  # (what a command did with no run going on: the add, this spawn)
            return
        line = describe(event, workspace.root)
        if line is not None:
            warn(line)

    outcome = see_through(workspace, task_id, since, show=show, reporter=lambda: PlainReporter(sys.stderr))
    answer = _answer(workspace, task_id) if outcome.status == TaskStatus.COMPLETED else None
    if args.json:
        data: dict[str, Any] = {
            "ok": outcome.exit_code == ExitCode.OK,
            "id": task_id,
            "run": outcome.run,
            "joined": not outcome.own_run,
            "detached": detached,
            "status": outcome.status,
            "reason": outcome.reason,
            "exit_code": outcome.exit_code,
            "output": answer[1] if answer else None,
            "result_file": answer[0] if answer else None,
            "task": adding.task_json_of(workspace, task_id),
        }
        emit_json(data)
    elif answer is not None:
        sys.stdout.write(answer[1])
        sys.stdout.flush()
    else:
        why = f": {outcome.reason}" if outcome.reason else ""
        warn(f"{task_id} {outcome.status}{why} — `orchestrator logs {task_id}` shows what it printed")
    return outcome.exit_code


def _answer(workspace: Workspace, task_id: str) -> tuple[str, str] | None:
    """The completed task's result file and its body (as ``output`` prints it)."""
    from orchestrator.documents import read_output

    plan = plan_of(workspace)
    task = plan.tasks.get(task_id)
    if task is None:
        return None
    path = workspace.result(task)
    body = read_output(path)
    return (workspace.relative(path), body) if body is not None else None


def _cancel(workspace: Workspace, task_id: str, why: str) -> None:
    """Ctrl-C of a ``spawn`` that follows its task in a run going on: the task is cancelled there
    (the run goes on with its other tasks). A run of its own stopped the task itself. The run's
    answer is waited for ``timing.interrupt_wait`` at most: one that stops the task's processes within
    their kill grace, or answers late, is left the request."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.run.inflight.requests import request

    deadline = time.monotonic() + timing.current().interrupt_wait
    live = events.live_run(workspace.events_file)
    if live is None or live.pid == os.getpid():
        return
    try:
        plan = plan_of(workspace)
        task = plan.tasks.get(task_id)
        if task is not None:
            reason = f"`orchestrator spawn` was interrupted ({why})"
            answer = request(workspace, plan, task, "cancel", reason, within=max(0.0, deadline - time.monotonic()))
            warn(answer.said)
    except (OrchestratorError, OSError) as exc:
        warn(f"{task_id} was not cancelled: {exc}")


def _detach(workspace: Workspace, task_id: str, since: int) -> str:
    """A runner in the background for the task (its own session: no terminal, no signal of this
    one's), its lines in the workspace's logs; not waited for: it outlives this command."""
    plan = plan_of(workspace)
    log = workspace.logs_dir / f"{plan.tasks[task_id].slug}.spawn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "orchestrator", "spawn", "--task", task_id, "--since", str(since)]
    with open(log, "ab") as out:
        subprocess.Popen(  # (not waited for: it outlives this command, and init reaps it)
            [*command, str(workspace.root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return workspace.relative(log)


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "spawn",
        cmd_spawn,
        "add one task and run it now (in the run going on, or alone); its answer on stdout",
        json_help="print one JSON object: the task, how it ended and its answer",
    )
    p.add_argument("words", nargs="*", metavar="[DIR] PROMPT", help="what the task does (after an optional workspace)")
    p.usage = (
        "%(prog)s [-h] [--json] [--detach] [--label L] [--after IDS] [-p P] [--name NAME] [--assignee PROFILE] "
        '[--retries N] [--timeout DURATION] [--backend B] [--command CMD] [--id ID] [DIR] "<prompt>"'
    )
    p.add_argument("-d", "--detach", action="store_true", help="print the id and return at once; it runs on")
    queue.task_options(
        p,
        tag_flags=("--label", "--tag"),
        tag_help="a label (repeatable, or a comma list): the Tags column, as add --tag",
    )
    p.add_argument("--task", help=argparse.SUPPRESS)  # the background runner of --detach: the task to see through
    p.add_argument("--since", type=int, help=argparse.SUPPRESS)  # ...and the event log's offset it was added at
