"""Following runs from another terminal: ``watch`` (the run's events as they come, from its
start) and ``history`` (every attempt of every run, from the event log)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import timing
from orchestrator.cli.output import Commands, add_command, emit_json, find_workspace, looks_like_workspace
from orchestrator.errors import UsageError
from orchestrator.plan.config.settings import format_duration
from orchestrator.printable import visible
from orchestrator.state import approvals, events
from orchestrator.state.kept.history import attempts_of
from orchestrator.state.kept.history import seconds as _seconds
from orchestrator.state.procs import pid_alive
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.plan.model import Task
    from orchestrator.state.workspace import Workspace

_ENDS = {"task_completed", "task_failed", "task_retrying", "task_interrupted", "task_cancelled"}
OUTPUT_LINE_LIMIT = 2000  # characters of one output line that `watch --output` shows


def _line(event: events.Event, workspace: Workspace) -> str:
    """How ``watch`` shows an event: as ``run`` does, or its kind and words for one it does not know
    (what agents share, discover, sync)."""
    from orchestrator.output.lines import describe  # (imported as `watch` shows a line: `--help` needs it not)

    try:
        shown = describe(event, workspace.root, estimates=True)
    except (KeyError, TypeError, ValueError, AttributeError):
        shown = None
    if shown is not None:
        return shown
    words = event.get("text") or event.get("message") or event.get("reason") or event.get("milestone") or ""
    task = f" {event['task']}" if event.get("task") else ""
    return f"• {event['event']}{task}" + (f": {words}" if words else "")


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
    from orchestrator.state.events.runs import Notice

    workspace = find_workspace(args.directory)
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
    begun: events.Event | None = None  # the run's run_started: it names its runner
    tails: dict[str, _Tail] = {}
    quiet_since = time.monotonic()
    while True:
        found = events.read_new(path, cursor)
        for event in found:
            if run is None and event["event"] == "run_started":
                run, begun = event.get("run"), event
            _show(args, event, workspace)
            task = str(event.get("task", ""))
            if args.output and event["event"] == "task_started" and event.get("log"):
                tails[task] = _Tail(task, workspace.root / str(event["log"]))
            elif args.output and event["event"] in _ENDS and task in tails:
                _show_output(tails.pop(task), as_json=args.json, framed=True, final=True)
            if event["event"] == "run_finished" and event.get("run") == run:
                sys.stdout.flush()
                return int(event.get("exit_code", ExitCode.FAILED))
        for tail in tails.values():
            _show_output(tail, as_json=args.json, framed=True)
        sys.stdout.flush()
        if found:
            quiet_since = time.monotonic()
        elif (
            time.monotonic() - quiet_since > 1.0
            and begun is not None
            and isinstance(begun.get("pid"), int)
            and not events.runner_alive(begun)
            and not events.read_new(path, events.Cursor(cursor.offset))  # nothing it wrote as it died
        ):
            message = f"the runner (pid {begun['pid']}) died before the run finished — `orchestrator run` resumes it"
            _show(args, Notice(run=run, message=message).as_json(), workspace)
            return ExitCode.FAILED
        time.sleep(timing.current().follow_poll)


def _show(args: argparse.Namespace, event: events.Event, workspace: Workspace) -> None:
    if args.json:
        sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(visible(_line(event, workspace)) + "\n")


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


# --- history --------------------------------------------------------------------------------------


def _stats(workspace: Workspace, attempts: list[dict[str, Any]], as_json: bool) -> int:
    """``history --stats``: per task and per kind of task (its type, else its profile and backend,
    else its backend: as each attempt's ``task_started`` says, else as the plan says now)."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.output.stats import history_stats, stats_text
    from orchestrator.run.forecasts.estimates import kinds_of

    for attempt in attempts:
        attempt["duration"] = _seconds(attempt)
    kinds: dict[str, str] = {}
    with contextlib.suppress(OrchestratorError):  # (a plan that does not load now: kinds unknown, figures kept)
        kinds = kinds_of(workspace.load_plan(), workspace)
    stats = history_stats(attempts, kinds)
    if as_json:
        emit_json({"ok": True, **stats})
    else:
        print(stats_text(stats))
    return ExitCode.OK


def _labelled(workspace: Workspace, every: list[events.Event], wanted: list[str]) -> set[str]:
    """The tasks (lowered) with every label of ``wanted`` (``--label`` repeated, or a comma list):
    as the plan's Tags column says, or as ``spawn`` gave them (its ``task_spawned`` events: a task
    whose row is gone since is found too)."""
    from orchestrator.cli.words import tags

    labels: dict[str, set[str]] = {}
    for event in every:
        if event["event"] == "task_spawned" and isinstance(event.get("labels"), list):
            labels.setdefault(str(event.get("task", "")).lower(), set()).update(str(x).lower() for x in event["labels"])
    if workspace.plan_file.exists():
        for task in workspace.load_plan().tasks.values():
            labels.setdefault(task.id.lower(), set()).update(tag.lower() for tag in task.tags)
    asked = {label.lower() for label in tags(wanted)}
    return {task for task, have in labels.items() if asked <= have}


def cmd_history(args: argparse.Namespace) -> int:
    from orchestrator.output.views import simulated_mark

    words = list(args.words)
    if len(words) > 2:
        raise UsageError("too many arguments: orchestrator history [DIR] [TASK]")
    directory = None
    if len(words) == 2 or (words and looks_like_workspace(words[0])):
        directory = words.pop(0)
    workspace = find_workspace(directory)
    wanted = words[0] if words else None
    every = events.read_all(workspace.events_file)
    attempts = attempts_of(every)
    if args.label:
        labelled = _labelled(workspace, every, args.label)
        attempts = [a for a in attempts if str(a["task"]).lower() in labelled]
    if wanted is not None:
        plan = workspace.load_plan()
        lowered = {task_id.lower(): task_id for task_id in plan.tasks}
        known = {str(a["task"]).lower() for a in attempts}
        if wanted.lower() not in lowered and wanted.lower() not in known:
            raise UsageError(f"no task {wanted} in the plan or its history")
        attempts = [a for a in attempts if str(a["task"]).lower() == wanted.lower()]
    if args.stats:  # (of the task asked for, if one is)
        return _stats(workspace, attempts, args.json)
    for attempt in attempts:
        attempt["duration"] = _seconds(attempt)
    said = [w for w in approvals.every(workspace) if wanted is None or w.task.lower() == wanted.lower()]
    if args.json:
        emit_json({"ok": True, "attempts": attempts, "words": [_word_json(w) for w in said]})
        return ExitCode.OK
    if not attempts:
        labels = f" labelled {', '.join(args.label)}" if args.label else ""
        print("no attempt recorded yet" + (f" for {wanted}" if wanted else "") + labels)
        return ExitCode.OK
    run = object()
    for attempt in attempts:
        if attempt["run"] != run:
            run = attempt["run"]
            print(f"run {str(run).replace('T', ' ')[:19]}")
        cost = f" ${attempt['cost_usd']:.4f}" if attempt.get("cost_usd") is not None else ""
        took = f" in {format_duration(attempt['duration'])}" if attempt["duration"] is not None else ""
        why = f": {attempt['reason']}" if attempt.get("reason") else ""
        outcome = attempt["outcome"] + simulated_mark(attempt["simulated"])
        print(f"  {attempt['task']} attempt {attempt['attempt']}: {outcome}{took}{cost}{why}")
        for asked in attempt.get("asked", ()):
            print("    " + _asked_line(asked))
    if said:
        print("words at the gates")
    for word in said:
        mark = "👍" if word.decision == approvals.APPROVED else "👎"
        print(f"  {mark} {word.task} {approvals.said(word)}" + (f" — {word.url}" if word.url else ""))
    return ExitCode.OK


def _word_json(word: approvals.Decision) -> dict[str, Any]:
    return {key: value for key, value in asdict(word).items() if value not in (None, "")}


def _asked_line(asked: dict[str, Any]) -> str:
    """A question an attempt asked, and who answered it how."""
    mark = "👍 allowed" if asked.get("answer") == "allow" else "👎 denied"
    by = " (no answer in time)" if asked.get("by") == "timeout" else f" by {asked.get('by')}" if asked.get("by") else ""
    via = f" ({asked['via']})" if asked.get("via") else ""
    return f"{mark} {asked.get('said')}{by}{via}" + (", and from then on" if asked.get("always") else "")


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "watch", cmd_watch, "follow the run going on (or the last one) from its start, until it ends",
        json_help="one JSON object per event (as `run --json` prints them)",
    )  # fmt: skip
    p.add_argument("directory", nargs="?", help="the workspace (default: .orchestrator in the current directory)")
    p.add_argument("--output", action="store_true", help="the running tasks' output lines too")
    p = add_command(sub, "history", cmd_history, "every attempt of every run, and how each ended")
    p.add_argument("words", nargs="*", metavar="[DIR] [TASK]", help="one task's attempts (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--stats] [--label L] [DIR] [TASK]"
    p.add_argument(
        "--stats", action="store_true", help="per task and per type: runs, success rate, median and p90 time, cost"
    )
    p.add_argument(
        "--label", "--tag", action="append", metavar="L", help="only tasks with this label (repeated: with all of them)"
    )
