"""Following runs from another terminal: ``watch`` (the run's events as they come, from its
start) and ``history`` (every attempt of every run, from the event log)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import timing
from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands, add_command, find_workspace
from orchestrator.errors import UsageError
from orchestrator.printable import visible
from orchestrator.state import events
from orchestrator.state.events import EventRecord
from orchestrator.state.events.base import event_name
from orchestrator.state.events.runs import RunFinished, RunStarted
from orchestrator.state.events.tasks import (
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskInterrupted,
    TaskRetrying,
    TaskStarted,
)
from orchestrator.state.procs import pid_alive
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.output.quiet import Quiet
    from orchestrator.plan.model import Task
    from orchestrator.state.workspace import Workspace

_ENDS = (TaskCompleted, TaskFailed, TaskRetrying, TaskInterrupted, TaskCancelled)  # an attempt's output ends
OUTPUT_LINE_LIMIT = 2000  # characters of one output line that `watch --output` shows


def _line(event: EventRecord, workspace: Workspace) -> str:
    """How ``watch`` shows an event: as ``run`` does, or its kind and words for one it does not know
    (what agents share, discover, sync)."""
    from orchestrator.output.lines import describe  # (imported as `watch` shows a line: `--help` needs it not)

    try:
        shown = describe(event, workspace.root, estimates=True)
    except (KeyError, TypeError, ValueError, AttributeError):
        shown = None
    if shown is not None:
        return shown
    data = event.as_line()  # (whatever its kind: its words, as its line holds them)
    words = data.get("text") or data.get("message") or data.get("reason") or data.get("milestone") or ""
    task = f" {data['task']}" if data.get("task") else ""
    return f"• {event_name(event)}{task}" + (f": {words}" if words else "")


@dataclass(slots=True)
class _Tail:
    """One attempt's output files, read as they grow (``watch --output``)."""

    task: str
    stem: Path
    offsets: dict[str, int] = field(default_factory=lambda: {"out": 0, "err": 0})
    partial: dict[str, bytes] = field(default_factory=lambda: {"out": b"", "err": b""})

    def lines(self, final: bool = False) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for stream in ("out", "err"):
            path = self.stem.with_name(f"{self.stem.name}.{stream}")
            try:
                with open(path, "rb") as file:
                    file.seek(self.offsets[stream])
                    data = file.read(1 << 20)
            except FileNotFoundError:
                continue
            self.offsets[stream] += len(data)
            data = self.partial[stream] + data
            *whole, rest = data.split(b"\n")
            self.partial[stream] = rest
            if final and rest:
                whole.append(rest)
                self.partial[stream] = b""
            found += [(stream, raw.decode("utf-8", errors="replace")[:OUTPUT_LINE_LIMIT]) for raw in whole]
        return found


def cmd_watch(args: argparse.Namespace) -> int:
    from orchestrator.output.quiet import Quiet
    from orchestrator.state.events.runs import Notice

    row = args.task
    if row is None and args.directory and not Path(args.directory).exists():  # (`watch T-03`: a row, not a folder)
        args.directory, row = None, args.directory
    workspace = find_workspace(args.directory)
    quiet = Quiet(verbose=args.verbose, row=row.split("[", 1)[0].upper() if row else None)
    path = workspace.events_file
    start = events.last_run_start(path)
    if start is None:  # said on a terminal or not: a script's log, an agent's Bash tool, see it too
        sys.stderr.write(
            f"waiting for a run to start in {workspace.relative(workspace.root)}/ … (no run has started there yet; "
            "Ctrl-C to stop)\n"
        )
        sys.stderr.flush()
    while start is None:
        time.sleep(timing.current().follow_poll)
        start = events.last_run_start(path)
    cursor = events.Cursor(start)
    run: str | None = None
    begun: RunStarted | None = None  # the run's run_started: it names its runner
    tails: dict[str, _Tail] = {}
    quiet_since = time.monotonic()
    while True:
        found = events.read_new(path, cursor)
        for event in found:
            if run is None and isinstance(event, RunStarted):
                run, begun = event.run, event
            _show(args, event, workspace, quiet)
            if args.output and isinstance(event, TaskStarted) and event.log:
                tails[event.task] = _Tail(event.task, workspace.root / event.log)
            elif args.output and isinstance(event, _ENDS) and event.task in tails:
                _show_output(tails.pop(event.task), as_json=args.json, framed=True, final=True)
            if isinstance(event, RunFinished) and event.run == run:
                sys.stdout.flush()
                return int(event.exit_code)
        for tail in tails.values():
            _show_output(tail, as_json=args.json, framed=True)
        if not args.json:
            sys.stdout.write("".join(f"{line}\n" for line in quiet.progress()))
        sys.stdout.flush()
        if found:
            quiet_since = time.monotonic()
        elif (
            time.monotonic() - quiet_since > 1.0
            and begun is not None
            and begun.pid
            and not events.runner_alive(begun)
            and not events.read_new(path, events.Cursor(cursor.offset))  # nothing it wrote as it died
        ):
            message = f"the runner (pid {begun.pid}) died before the run finished — `orchestrator run` resumes it"
            _show(args, Notice(run=run, message=message), workspace, quiet)
            return ExitCode.FAILED
        time.sleep(timing.current().follow_poll)


def _show(args: argparse.Namespace, event: EventRecord, workspace: Workspace, quiet: Quiet) -> None:
    """``event`` as ``watch`` shows it: its line as written (``--json``), or as ``run`` tells it, a
    row over many items counted (``output/quiet``)."""
    if args.json:  # (its line as written, read back: a version's keys, its ``prev``)
        sys.stdout.write(json.dumps(event.as_line(), ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write("".join(f"{visible(line)}\n" for line in quiet.lines(event, _line(event, workspace))))


def _show_output(tail: _Tail, *, as_json: bool, framed: bool, final: bool = False) -> None:
    """The lines ``tail`` has now: as JSON, or framed under the task (``watch``), or as they were
    printed, stderr's on stderr (``logs --follow``)."""
    for stream, text in tail.lines(final):
        if as_json:
            line = {"event": "output", "task": tail.task, "stream": stream, "line": text}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        elif framed:
            sys.stdout.write(f"   {tail.task} {'│' if stream == 'out' else '┊'} {visible(text)}\n")
        else:  # (what it printed, shown: a control character as \x1b, never acted on by the terminal)
            (sys.stdout if stream == "out" else sys.stderr).write(visible(text) + "\n")
    sys.stdout.flush()


def follow_logs(workspace: Workspace, task: Task, number: int | None, *, as_json: bool) -> int:
    """``logs --follow``: the attempt's output as it comes (the attempt going on, or the next one
    if none is and a run is), until it ends."""
    from orchestrator.state import journal

    def running() -> int | None:
        state = journal.read(workspace.journal_file)
        found = state.open.get(task.id)
        alive = state.runner_pid is not None and pid_alive(state.runner_pid, state.runner_start)
        return found.attempt if found is not None and alive else None

    if number is None:
        number = running()
        while number is None and events.live_run(workspace.events_file) is not None:
            time.sleep(timing.current().follow_poll)
            number = running()
        if number is None:
            from orchestrator.state.logs import attempts

            made = attempts(workspace, task)
            if not made:
                raise UsageError(f"{task.id} has no logs, and no run is going on to start it")
            number = max(made)
    elif number != running():
        from orchestrator.state.logs import attempts, numbers

        made = attempts(workspace, task)
        if number not in made:  # (it printed nothing and said exit 0)
            known = f"its attempts: {numbers(made)}" if made else "it has not run yet"
            raise UsageError(f"{task.id} has no attempt {number}; {known}")
    tail = _Tail(task.id, workspace.log_stem(task, number))
    while True:
        over = running() != number  # read before the last lines: nothing written after is missed
        _show_output(tail, as_json=as_json, framed=False, final=over)
        if over:
            return ExitCode.OK
        time.sleep(timing.current().follow_poll)


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "watch", cmd_watch, "follow the run going on (or the last one) from its start, until it ends",
        json_help="one JSON object per event (as `run --json` prints them)",
    )  # fmt: skip
    p.add_argument("directory", nargs="?", help="the workspace (default: .orchestrator in the current directory)")
    p.add_argument("task", nargs="?", help="a row run per item: each of its items told (after an optional workspace)")
    p.add_argument("--output", action="store_true", help="the running tasks' output lines too")
    p.add_argument("--verbose", action="store_true", help="each item of every row run per item told")
    register_command(sub, "history")  # (its work: commands/history)
