"""What a person or a script sees while a run goes on.

Every state change is one event (a dict with ``event`` and ``task`` keys, and more). Three
reporters render them: ``JsonReporter`` (one JSON object per line, for scripts), ``PlainReporter``
(one line per event, when stdout is not a terminal) and ``LiveReporter`` (a live view on a terminal).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from orchestrator.output.views import SIMULATED, simulated_mark
from orchestrator.plan.params import shown_values
from orchestrator.plan.settings import format_duration
from orchestrator.plan.times import spoken_in
from orchestrator.printable import visible
from orchestrator.state.events import EventLog
from orchestrator.state.workspace import DEFAULT_DIR, from_here

Event = dict[str, Any]


# The live panel's count an event adds to (a task bypassed or rejected is done with, as a skip is).
_PANEL_COUNT = {"task_completed": "completed", "task_failed": "failed", "task_skipped": "skipped",
                "task_cancelled": "skipped", "task_bypassed": "skipped", "task_rejected": "skipped"}  # fmt: skip


class Reporter:
    def event(self, event: Event) -> None:
        """One state change: task_started, task_retrying, task_completed, task_failed, task_skipped,
        task_interrupted, task_cancelled, task_added, task_changed, task_requeued, run_paused, run_started,
        run_finished, notice."""

    def flush(self) -> None:
        """Show what the events so far have to show: the runner calls it whenever it has nothing
        to do but wait, so events may be gathered until then."""

    def tick(self) -> None:
        """A second has passed (the runner calls it once a second while a run goes on): a view
        with clocks shows them moving."""

    def close(self) -> None:
        """The run is over."""


class Recording(Reporter):
    """Shows each event through ``shown`` and keeps it in the run's event log (``state/events.py``),
    written when the loop waits, as the lines shown are."""

    def __init__(self, shown: Reporter, log: EventLog) -> None:
        self.shown = shown
        self.log = log

    def event(self, event: Event) -> None:
        self.log.add(event)
        self.shown.event(event)

    def flush(self) -> None:
        self.shown.flush()
        self.log.flush()

    def tick(self) -> None:
        self.shown.tick()

    def close(self) -> None:
        self.shown.close()
        self.log.close()


class _LineReporter(Reporter):
    """One line per event on a stream, written with ``flush`` (a run flushes each time its loop
    waits: one write for the events of one turn, not one each, whether or not the stream is
    buffered) and on ``close``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.closed = False
        self._lines: list[str] = []

    def _write(self, line: str) -> None:
        if not self.closed:
            self._lines.append(line + "\n")

    def flush(self) -> None:
        """Write the lines gathered; a reader that went away (``run | head -1``) must not stop the run."""
        if self.closed or not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError as exc:  # EPIPE: `run | head -1`; EIO: the terminal was closed
            self.closed = True
            reader_gone(self.stream, exc)

    def close(self) -> None:
        self.flush()


def to_stderr(line: str) -> None:
    """A line for the person outside the run's events (what ``run --wait-orphans`` waits for,
    before the run starts): on stderr, so that ``--json``'s stdout holds events only."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def reader_gone(stream: TextIO, exc: OSError) -> None:
    """Whoever read ``stream`` went away (a pipe's reader, a closed terminal): point it at
    /dev/null, so that neither the rest of the run nor the interpreter's final flush fails on it
    (and stderr too when the terminal itself is gone). The run goes on."""
    import errno

    targets = [stream]
    if exc.errno == errno.EIO and stream is not sys.stderr:
        targets.append(sys.stderr)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for target in targets:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, target.fileno())
    finally:
        os.close(devnull)


class JsonReporter(_LineReporter):
    def event(self, event: Event) -> None:
        self._write(json.dumps(event, ensure_ascii=False, default=str))


def describe(event: Event, workspace: Path | None = None) -> str | None:
    """The line an event is shown as (``None``: none), what agents printed in it made visible
    (``printable.visible``): a terminal, ``watch`` and the dashboard are never sent a control
    character an agent wrote."""
    line = _describe(event, workspace)
    return visible(line) if line is not None else None


def estimate_line(event: Event) -> str:
    """A ``run_estimate`` as ``watch`` and the live view say it (``run`` prints none: one a task)."""
    cost = f", expected cost ${event['expected_cost']:.4f}" if event.get("expected_cost") is not None else ""
    end = str(event.get("expected_end", ""))[11:16]
    left = format_duration(float(event["seconds_left"]))
    return f"⏱️ {event.get('finished', 0)}/{event.get('total', 0)} done: about {left} left (ends about {end}){cost}"


def _describe(event: Event, workspace: Path | None = None) -> str | None:
    """The plain-text line for an event; ``workspace``: the run's, whose parent its paths are
    relative to, to show them from where the user stands."""
    kind = event["event"]
    task = event.get("task", "")
    agent = f" [{event['agent']}]" if event.get("agent") else ""
    if kind == "run_started":
        return (
            f"▶ run: {event['to_run']} to run, {event['already_done']} already done, "
            f"max {event['max_parallel']} in parallel"
            + (f", with {shown_values(event['params'])}" if event.get("params") else "")
            + (
                f" ({SIMULATED}: the fake executor runs nothing, every result is made up)"
                if event.get("simulated")
                else ""
            )
        )
    if kind == "task_started":
        # A retry says which of this run's attempts it is; a task's first attempt in a later run
        # is no retry, whatever number its files carry (``logs`` says which run it was).
        in_run = event.get("in_run", event.get("attempt")) or 1
        attempt = f" (attempt {in_run} of {event.get('of') or in_run})" if in_run > 1 else ""
        return f"🔵 {task}{agent} started{attempt}: {event.get('name', '')}"
    if kind == "task_completed":
        cost = f", ${event['cost_usd']:.4f}" if event.get("cost_usd") is not None else ""
        warning = f" ⚠️ {event['warning']}" if event.get("warning") else ""
        made_up = simulated_mark(bool(event.get("simulated")))
        where = f" on {event['worker']}" if event.get("worker") else ""
        if event.get("reused"):  # from the cache: no process started
            return f"♻️ {task}{agent} reused{made_up}: {spoken_in(str(event['reused']))}"
        return f"✅ {task}{agent} completed{made_up}{where} in {format_duration(event.get('duration'))}{cost}{warning}"
    if kind == "task_retrying":
        wait = format_duration(float(event["delay"]))
        return f"🔄 {task}{agent} {event['reason']}; attempt {event['attempt']} in {wait}"
    if kind == "task_failed":
        lines = event.get("stderr_tail") or ()
        stderr = "".join(f"\n   │ {line}" for line in lines)
        if lines:
            where = from_here(workspace) if workspace is not None else ".orchestrator"
            named = "" if where == DEFAULT_DIR else f"{where} "
            stderr += f"\n   └ all of it: orchestrator logs {named}{task}"
        made_up = simulated_mark(bool(event.get("simulated")))
        where = f" on {event['worker']}" if event.get("worker") else ""
        return f"❌ {task}{agent} failed{made_up}{where}: {event['reason']}{stderr}"
    if kind == "task_skipped":
        return f"⏭️ {task}{agent} skipped: {event['reason']}"
    if kind == "task_interrupted":
        return f"⏹️ {task}{agent} interrupted"
    if kind == "task_blocked":
        return f"🚧 {task}{agent} {event['reason']}; what depends on it waits"
    if kind == "task_bypassed":
        return f"↪️ {task}{agent} bypassed: {event['reason']}"
    if kind == "task_rejected":
        return f"🚫 {task}{agent} {event['reason']}"
    if kind == "approval_requested":
        return f"✋ {task}{agent} {event['reason']}"
    if kind in ("approval_given", "approval_refused"):
        by = f" by {event['by']}" if event.get("by") else ""
        said = "approved" if kind == "approval_given" else "rejected"
        return f"{'👍' if kind == 'approval_given' else '👎'} {task}{agent} {said}{by}" + (
            f": {event['reason']}" if event.get("reason") else ""
        )
    if kind == "task_released":
        return f"▶️ {task}{agent} released: it starts once what it depends on is done"
    if kind == "task_cancelled":
        took = f" after {format_duration(event['duration'])}" if event.get("duration") is not None else ""
        return f"⏹️ {task}{agent} cancelled{took}: {event['reason']}"
    if kind == "task_added":
        after = f" after {', '.join(event['after'])}" if event.get("after") else ""
        return f"➕ {task}{agent} added{after}: {event.get('name', '')}"
    if kind == "task_changed":
        what = ", ".join(event.get("changed") or ()) or "its row"
        return f"✏️ {task}{agent} takes its row as edited while it waited ({what}): {event.get('name', '')}"
    if kind == "task_requeued":
        return f"↩️ {task}{agent} back in the queue ({event.get('was', 'retry')})"
    if kind in ("cancel_requested", "retry_requested"):
        what = kind.partition("_")[0]
        return f"✋ {what} {task} asked" + (f": {event['reason']}" if event.get("reason") else "")
    if kind == "task_stuck":
        return f"⚠️ {task}{agent} looks stuck: {event.get('why', '')}"
    if kind == "discovered":
        return f"💡 {task} discovered: {event.get('text', '')}"
    if kind == "shared":
        return f"💬 {task} shared: {event.get('text', '')}"
    if kind == "synced":
        return f"🏁 sync{f' ({task})' if task else ''}: {event.get('text', '')}"
    if kind == "request_refused":
        return f"✋ {event.get('request_kind', 'request')} {task} refused: {event['reason']}"
    if kind == "run_paused":
        return f"⏸️ paused until {event['until']}: {event['reason']}"
    if kind == "task_failover":
        return f"🔀 {task}: on {event['backend']} instead of {event['fallback_from']}: {event.get('reason', '')}"
    if kind == "notice":
        return f"ℹ️ {event['message']}"
    if kind in ("deadline_at_risk", "deadline_missed"):
        return str(event["message"])
    if kind == "plan_file":
        return f"{'ℹ️' if event.get('present') else '⚠️'} {event['message']}"
    if kind == "run_finished":
        found = event["counts"]
        parts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in found.items() if n)
        parts += f" ({event['simulated']} {SIMULATED})" if event.get("simulated") else ""
        cost = f"; cost ${event['cost_usd']:.4f}" if event.get("cost_usd") else ""
        final = event["final_output"]
        if final and workspace is not None:
            final = from_here(workspace.parent / final)
        branch = event.get("integration_branch")
        written = f" → {final}" if final else ""  # (none when it was interrupted before it started)
        finished = (
            f"■ run finished in {format_duration(event['wall_seconds'])}: {parts}{cost}{written}"
            + (f" ({event['stopped']})" if event.get("stopped") else "")
            + (f"; the work is on branch {branch}: `orchestrator merge` brings it into yours" if branch else "")
        )
        step = next_step(event, workspace)
        return finished + (f"\n{step}" if step else "")
    return None


def next_step(event: Event, workspace: Path | None) -> str | None:
    """The last line of a run that did not complete everything: what to do next. The rule
    everywhere: `orchestrator logs T-03` shows why a task failed, and a plain `orchestrator run`
    runs every task not completed again (failed, skipped, interrupted), keeping the completed
    ones; `reset --failed` is not needed for that. A cancelled task stays so until `retry`."""
    found = event.get("counts") or {}
    failed, cancelled = event.get("failed") or [], event.get("cancelled") or []
    named = _named(workspace)
    if event.get("exit_code") == 130:
        return f"next: `orchestrator run{named}` resumes where it stopped"
    back = f"`orchestrator retry{named} {cancelled[0]}` runs a cancelled task again" if cancelled else ""
    again = f"`orchestrator run{named}` runs what did not complete again (completed tasks are kept)"
    if failed:
        return f"next: `orchestrator logs{named} {failed[0]}` shows why it failed; {again}" + (
            f"; {back}" if back else ""
        )
    if any(found.get(state) for state in ("skipped", "interrupted")) and not back:
        return f"next: `orchestrator status{named}` shows why; {again}"
    if back:
        return f"next: {back} (a plain `orchestrator run` keeps it cancelled)"
    awaiting = event.get("awaiting_approval") or []
    if awaiting:
        return (
            f"next: `orchestrator approve{named} {awaiting[0]}` (or `reject{named} {awaiting[0]} --reason ...`) "
            f"decides at its gate, then `orchestrator run{named}` goes on"
        )
    blocked = event.get("blocked") or []
    if blocked:
        return (
            f"next: `orchestrator update{named} {blocked[0]} --status pending` releases {blocked[0]} (blocked by a "
            f"person), then `orchestrator run{named}` goes on with it"
        )
    return None


def _named(workspace: Path | None) -> str:
    """The workspace as a command names it: nothing when the commands find it from here without a name."""
    try:
        here = Path.cwd() / ".orchestrator"
    except OSError:  # the current directory was deleted: the workspace is named as it is
        here = None
    if workspace is None or (here is not None and workspace.resolve() == here.resolve()):
        return ""
    return " " + shlex.quote(from_here(workspace.parent if workspace.name == ".orchestrator" else workspace))


def workspace_of(event: Event) -> Path | None:
    """The workspace a ``run_started`` event names."""
    workspace = event.get("workspace") if event["event"] == "run_started" else None
    return Path(workspace) if workspace else None


class PlainReporter(_LineReporter):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.workspace: Path | None = None

    def event(self, event: Event) -> None:
        self.workspace = workspace_of(event) or self.workspace
        line = describe(event, self.workspace)
        if line is not None:
            self._write(line)


class LiveReporter(Reporter):
    """On a terminal: the lines of ``PlainReporter``, which stay on screen (as cargo's or docker
    build's do), above a panel of counts, a progress bar and the running tasks with their
    clocks. Lines gathered from events are printed, and the panel redrawn, on ``flush`` (once per
    turn of the run's loop) and every second (``tick``), so a long agent is seen to be running,
    not hung. The panel goes at the end; the lines stay."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.closed = False  # the terminal went away: nothing more is shown
        self.console = Console()
        self.running: dict[str, tuple[str, float]] = {}
        self.done = {"completed": 0, "failed": 0, "skipped": 0}
        self.total = 0
        self.paused: str | None = None
        self.estimate: str | None = None  # the run's end as its latest run_estimate said it
        self.simulated = False  # run --executor fake: the panel says nothing it shows is real work
        self.workspace: Path | None = None
        self._lines: list[str] = []
        # Redrawn by the run itself (``flush``, ``tick``), never by a thread of rich's own: what
        # the panel shows is changed and drawn on one thread, and a closed terminal is met there.
        self.live = Live(self._render(), console=self.console, auto_refresh=False, transient=True)
        self._guarded(self.live.__enter__)

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        finished = sum(self.done.values())
        colour = "red" if self.done["failed"] else "green"  # rich's own is red-pink: red says a task failed
        table.add_row(
            ProgressBar(
                total=max(self.total, 1), completed=finished, width=30, complete_style=colour, finished_style=colour
            ),
            f"{finished}/{self.total}  🔵 {len(self.running)} running  ✅ {self.done['completed']}  "
            f"❌ {self.done['failed']}  ⏭️ {self.done['skipped']}",
        )
        if self.simulated:
            table.add_row(f"🎭 {SIMULATED}", "the fake executor runs nothing: every result is made up")
        # What a plan or an agent wrote (a task's name, a pause's reason) goes in as Text: drawn as
        # written, never read as rich markup (a name holding "[/]" stopped the run), its control
        # characters made visible where it enters the panel (``event``).
        if self.paused:
            table.add_row("⏸️ paused", Text(self.paused))
        if self.estimate:
            table.add_row("", Text(self.estimate))
        now = time.monotonic()
        for task, (name, since) in list(self.running.items())[:20]:
            table.add_row(Text(f"  {task}"), Text(f"{format_duration(now - since)}  {name}"))
        if len(self.running) > 20:
            table.add_row("", f"… and {len(self.running) - 20} more")
        return table

    def event(self, event: Event) -> None:
        kind = event["event"]
        task = event.get("task", "")
        if kind == "run_started":
            self.total = event["to_run"]
            self.simulated = bool(event.get("simulated"))
        elif kind == "task_started":
            self.running[task] = (visible(str(event.get("name", ""))), time.monotonic())  # (the plan's words)
        elif kind in {"task_completed", "task_failed", "task_skipped", "task_interrupted", "task_retrying",
                      "task_cancelled", "task_bypassed", "task_rejected", "approval_requested"}:  # fmt: skip
            self.running.pop(task, None)
            key = _PANEL_COUNT.get(kind)
            if key:
                self.done[key] += 1
        elif kind == "task_added":
            self.total += 1
        elif kind == "task_requeued":
            self.total += 1  # (counted done once already: it is to do again)
        elif kind == "run_estimate":
            self.estimate = visible(estimate_line(event))
        elif kind == "run_paused":
            self.paused = visible(f"until {event['until']}: {event['reason']}")  # (the agent's words)
        if kind in {"task_completed", "task_started", "run_started"}:
            self.paused = None
        self.workspace = workspace_of(event) or self.workspace
        line = describe(event, self.workspace)
        if line is not None:
            self._lines.append(line)

    def flush(self) -> None:
        """Print the lines gathered (above the panel, where they stay; as text, never as rich
        markup) in one write, and redraw the panel."""
        self._guarded(lambda: self.live.update(self._render(), refresh=True))  # what a print below redraws
        if self._lines:
            text = "\n".join(self._lines)
            self._lines.clear()
            self._guarded(lambda: self.live.console.print(text, markup=False, highlight=False, emoji=False))

    def tick(self) -> None:
        self.flush()

    def _guarded(self, draw: Callable[[], object]) -> None:
        if self.closed:
            return
        try:
            draw()
        except OSError as exc:  # the terminal was closed: the run goes on, unseen
            self.closed = True
            reader_gone(sys.stdout, exc)

    def close(self) -> None:
        self.flush()
        try:
            self.live.__exit__(None, None, None)
        except OSError as exc:
            reader_gone(sys.stdout, exc)


def make_reporter(*, as_json: bool, stream: TextIO | None = None) -> Reporter:
    if as_json:
        return JsonReporter(stream)
    out = stream or sys.stdout
    if out.isatty():
        return LiveReporter()
    return PlainReporter(out)
