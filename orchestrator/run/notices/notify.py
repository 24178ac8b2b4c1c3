"""The run's notifications: which events are told to whom, and when a running task looks stuck.

``notifying`` wraps the run's reporter. Every event still goes where it went (shown, and kept in
``state/events.jsonl``); those a person must hear about (``NOTIFY_EVENTS``: run_finished,
task_failed, run_paused, budget_reached, task_stuck, approval_requested, deadline_at_risk,
deadline_missed) are
also handed to the ``Courier`` (``delivery.py``), for
each target that wants them. The targets are the user's (``user_config_path``: ``notify:`` in
``$XDG_CONFIG_HOME/orchestrator/config.yaml``, else ``~/.config/orchestrator/config.yaml``) and
then the plan's own ``notify`` setting: a plan adds targets, it never removes the user's.

A task is *stuck* (one ``task_stuck`` event per attempt, whether or not anyone is notified) when
its attempt has run for ``STUCK_RUNNING`` (80%) of its ``timeout``, or printed nothing (no byte
added to its stdout or stderr log) for ``STUCK_SILENT`` (half) of its ``inactivity_timeout``:
early enough that a person can look before the watchdog kills it.

Each message is an effect of the ledger (``state/events/effects``, kind ``notify``): its key names
the target, the event's kind, its task and attempt and the run (``#2`` for a second of the same in
one run); its intent, holding the message, is on disk before the message is queued, and its outcome
is recorded when the target's thread hands it back (``Courier.outcomes``, read on the run's thread
at each tick and at the end). The receiver gets an idempotency key made of the workspace and that
key. A run that finds an intent with no outcome (its run was killed in between) sends it again
first, under the same key; one with an outcome, it never sends again.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import timing
from orchestrator.moments import iso_at
from orchestrator.output.payloads import headline, payload
from orchestrator.output.reporter import Recording
from orchestrator.plan.config.settings import Settings, format_duration
from orchestrator.plan.config.targets import EVENT_NAMES, Target, parse_targets
from orchestrator.plan.model import Plan, Task
from orchestrator.run.notices.delivery import Courier, Message
from orchestrator.run.notices.digest import Digest
from orchestrator.state.events import effects
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.runs import (
    BudgetReached,
    EffectDone,
    EffectFailed,
    EffectIntended,
    Notice,
    RunFinished,
    RunStarted,
)
from orchestrator.state.events.tasks import (
    ApprovalRequested,
    PermissionAnswered,
    PermissionAsked,
    TaskCompleted,
    TaskFailed,
    TaskInterrupted,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskStuck,
)
from orchestrator.state.words import links
from orchestrator.state.workspace import Workspace

STUCK_RUNNING = 0.8
STUCK_SILENT = 0.5
CONFIG_NAME = "config.yaml"


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/orchestrator/config.yaml``, else ``~/.config/orchestrator/config.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "orchestrator" / CONFIG_NAME


def user_targets(path: Path | None = None) -> tuple[tuple[Target, ...], str | None]:
    """The targets of the user's config file (none when there is no file), and what is wrong
    with it, in one line naming the file and line: a bad file is ignored, not a reason to stop."""
    import yaml

    path = path or user_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return (), None
    except (OSError, UnicodeDecodeError) as exc:
        return (), f"{path}: unreadable ({exc}); its notify targets are ignored"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        return (), f"{path}{line}: not valid YAML; its notify targets are ignored"
    if data is None:
        return (), None
    if not isinstance(data, dict):
        return (), f"{path}:1: not a mapping of settings (notify: ...); ignored"
    try:
        return parse_targets(data.get("notify")), None
    except ValueError as exc:
        at = next((n for n, row in enumerate(text.splitlines(), 1) if row.startswith("notify")), 1)
        return (), f"{path}:{at}: bad value for 'notify': {exc}; its notify targets are ignored"


@dataclass(slots=True)
class _Running:
    task: str
    agent: str
    attempt: int
    since: float
    told: bool = False
    asking: bool = False  # its agent waits for a person's answer: silent, and not stuck
    answered: float = 0.0  # when a person last answered it: its silence counts from then


class StuckWatch(EventReporter[None]):
    """The running attempts, from the run's events, and which of them look stuck now."""

    def __init__(self, workspace: Workspace, plan: Plan, settings: dict[str, Settings]) -> None:
        self.workspace = workspace
        self.plan = plan
        self.settings = settings  # each task's (its profile's and row's applied)
        self.running: dict[str, _Running] = {}

    def any_event(self, event: EventRecord) -> None:
        """Nothing to do with a running attempt."""

    def task_started(self, event: TaskStarted) -> None:
        self.running[event.task] = _Running(event.task, event.agent, event.attempt, time.time())

    def _ended(self, event: TaskCompleted | TaskFailed | TaskRetrying | TaskInterrupted | TaskSkipped) -> None:
        self.running.pop(event.task, None)

    task_completed = task_failed = task_retrying = task_interrupted = task_skipped = _ended

    def permission_asked(self, event: PermissionAsked) -> None:
        if event.task in self.running:
            self.running[event.task].asking = True

    def permission_answered(self, event: PermissionAnswered) -> None:
        running = self.running.get(event.task)
        if running is not None:  # (its silence counts from the answer: the wait was a person's)
            running.asking, running.answered = False, time.time()

    def stuck(self, now: float) -> list[TaskStuck]:
        found: list[TaskStuck] = []
        for run in self.running.values():
            settings, task = self.settings.get(run.task), self.plan.tasks.get(run.task)
            if run.told or settings is None or task is None:
                continue
            running = now - run.since
            quiet = settings.inactivity_timeout
            # Silent no longer than it has run: its logs are looked at only once that could be enough.
            could_be_silent = quiet is not None and quiet > 0 and running >= STUCK_SILENT * quiet and not run.asking
            why = _why(settings, running, now - self._last_output(task, run) if could_be_silent else 0.0)
            if why is not None:
                run.told = True
                when = iso_at(now)
                found.append(TaskStuck(time=when, task=run.task, agent=run.agent, attempt=run.attempt, why=why))
        return found

    def due(self, now: float) -> float | None:
        """The soonest moment after ``now`` when a running attempt may come to look stuck (80%
        of its timeout; half its inactivity limit since it started, at the earliest): for the
        run to look then, not at its next once-a-second look, which for a short timeout comes
        at 100% of it, too late to warn of anything."""
        soonest: float | None = None
        for run in self.running.values():
            settings = self.settings.get(run.task)
            if run.told or settings is None:
                continue
            for limit, share in ((settings.timeout, STUCK_RUNNING), (settings.inactivity_timeout, STUCK_SILENT)):
                at = run.since + share * limit if limit else None
                if at is not None and at > now and (soonest is None or at < soonest):
                    soonest = at
        return soonest

    def _last_output(self, task: Task, run: _Running) -> float:
        latest = max(run.since, run.answered)
        for stream in ("out", "err"):
            try:
                latest = max(latest, os.stat(self.workspace.log(task, run.attempt, stream)).st_mtime)
            except OSError:
                continue
        return latest


def _why(settings: Settings, running: float, silent: float) -> str | None:
    """Why an attempt that has run ``running`` seconds, the last ``silent`` of them without
    output, looks stuck; ``None`` when it does not."""
    timeout, quiet = settings.timeout, settings.inactivity_timeout
    if timeout and running >= STUCK_RUNNING * timeout:
        return f"running for {format_duration(running)} of its {format_duration(timeout)} timeout"
    if quiet and silent >= STUCK_SILENT * quiet:
        return f"no output for {format_duration(silent)} (inactivity limit {format_duration(quiet)})"
    return None


class Notifying(Recording):
    """The run's reporter (``Recording``), which also notifies its targets and tells of stuck tasks."""

    def __init__(self, inner: Recording, targets: tuple[Target, ...], watch: StuckWatch, problem: str | None) -> None:
        super().__init__(inner.shown, inner.log)
        self.targets = targets
        self.watch = watch
        workspace = watch.workspace
        self.courier = Courier(targets, cwd=workspace.project_dir) if targets else None
        self.workspace = str(workspace.root)
        self.project = workspace.project_dir.name
        self._problem = problem
        self.digest = Digest(timing.current().notify_digest)  # (a row's items' failures: one message a while)
        self.labels = [label(target) for target in targets]
        self.plan_id = hashlib.sha256(str(workspace.root.resolve()).encode()).hexdigest()[:16]
        self.keys: dict[str, int] = {}  # each effect key's uses in this run (a second: ``#2``)
        self.events_file = workspace.events_file

    def run_finished(self, event: RunFinished) -> None:
        for digest in self.digest.all(time.monotonic()):  # (a row's failures not told yet: before the end)
            self.any_event(digest)
        # its notification delivered (or given up) first: it is the last event
        self._send(event)
        self._drain()
        super().any_event(event)

    def run_started(self, event: RunStarted) -> None:
        self.any_event(event)
        if self._problem:
            self._notice(self._problem)
            self._problem = None
        if self.courier is not None:
            self._send_again()

    def any_event(self, event: EventRecord) -> None:
        super().any_event(event)
        self.watch.tell(event)
        if isinstance(event, TaskFailed) and "[" in event.task:  # an item's: told in its row's digest
            for digest in self.digest.failed(event, time.monotonic()):
                self.any_event(digest)
            return
        self._send(event)

    def _send(self, event: EventRecord) -> None:
        kind = str(event.event)
        if self.courier is None or kind not in EVENT_NAMES:
            return
        text = headline(event, self.project)
        wanted = [(index, target) for index, target in enumerate(self.targets) if kind in target.events]
        found = links_for(self.watch.workspace, self.watch.plan, event, self.log.run) if wanted else None
        messages: list[tuple[int, Message]] = []
        for index, target in wanted:
            body = payload(event, target.format, workspace=self.workspace, project=self.project, links=found)
            name, said = self._effect(event, self.labels[index])
            sent = self.idempotency_key(name)
            if target.format == "generic":  # (slack's and discord's bodies are their APIs': the header only)
                body = {**body, "idempotency_key": sent}
            message = Message(kind, body, text, sent, name)
            intent = {"target": self.labels[index], "event": kind, "body": body, "text": text, "key": sent}
            super().any_event(EffectIntended(key=name, kind=effects.NOTIFY, target=said, message=intent))
            messages.append((index, message))
        self.flush()  # (each intent on disk before its message may leave)
        for index, message in messages:
            self.courier.send(index, message)

    def _effect(self, event: EventRecord, target: str) -> tuple[str, str]:
        """The key of ``event``'s notification to ``target`` in this run, and what it is for."""
        task, attempt = getattr(event, "task", None), getattr(event, "attempt", None)
        of = f" {task}" if isinstance(task, str) else ""
        of += f" attempt {attempt}" if isinstance(attempt, int) else ""
        said = f"{target}: {event.event}{of} in run {self.log.run}"
        name = effects.key(effects.NOTIFY, said)
        count = self.keys[name] = self.keys.get(name, 0) + 1
        if count > 1:
            said += f" #{count}"
        return effects.key(effects.NOTIFY, said), said

    def idempotency_key(self, effect: str) -> str:
        """What a receiver is handed for the notification of ``effect``: the same on every try."""
        return "orch-" + hashlib.sha256(f"{self.plan_id}\n{effect}".encode()).hexdigest()[:32]

    def _send_again(self) -> None:
        """The notifications a killed run intended and never knew the outcome of: sent again,
        each under its own key (to a target still named; else given up, and said so)."""
        assert self.courier is not None
        for intent in effects.unsent(self.events_file):
            message = intent.message or {}
            named = str(message.get("target"))
            index = self.labels.index(named) if named in self.labels else None
            common = {"key": intent.key, "kind": intent.kind, "target": intent.target}
            if index is None or not isinstance(message.get("body"), dict):
                super().any_event(EffectFailed(**common, error="its target is no longer notified: not sent again"))
                continue
            again = Message(str(message.get("event")), message["body"], str(message.get("text", "")),
                            message.get("key"), intent.key)  # fmt: skip
            self.courier.send(index, again)

    def next_tick(self, now: float, every: float) -> float:
        """Seconds until the run's clock should tick again: ``every``, or sooner when an attempt
        may come to look stuck before that (``StuckWatch.due``)."""
        due = self.watch.due(now)
        return every if due is None else max(0.0, min(every, due - now))

    def tick(self) -> None:
        super().tick()
        for event in self.watch.stuck(time.time()):
            self.event(event)
        for digest in self.digest.due(time.monotonic()):
            self.any_event(digest)
        self._told()

    def close(self) -> None:
        self._drain()
        super().close()

    def _told(self) -> None:
        if self.courier is not None:
            for message in self.courier.notices():
                self._notice(message)
            self._settled(self.courier)

    def _settled(self, courier: Courier) -> None:
        """Each notification's outcome, as its target's thread handed it back: in the log, now (the
        loop may not flush for a long task's while, and a kill meanwhile would send it again)."""
        settled = courier.outcomes()
        for name, problem in settled:
            kind, _, said = name.partition(":")
            if problem is None:
                super().any_event(EffectDone(key=name, kind=kind, target=said))
            else:
                super().any_event(EffectFailed(key=name, kind=kind, target=said, error=problem))
        if settled:
            self.flush()

    def _drain(self) -> None:
        """The end of the run: what is still queued gets ``timing.notify_drain``, then is given up."""
        courier, self.courier = self.courier, None
        if courier is None:
            return
        drain = timing.current().notify_drain
        given_up = courier.close(drain)
        for message in courier.notices():
            self._notice(message)
        self._settled(courier)
        for name in courier.left():
            why = f"not delivered within {drain:g}s of the run's end; given up"
            super().any_event(EffectFailed(key=name, kind=effects.NOTIFY, target=name.partition(":")[2], error=why))
        if given_up:
            plural = "s" if given_up != 1 else ""
            self._notice(f"{given_up} notification{plural} not delivered within {drain:g}s; given up")

    def _notice(self, message: str) -> None:
        super().any_event(Notice(message=message))


def label(target: Target) -> str:
    """A target as its notifications' keys name it: its name and a digest of all of it (two URLs of
    one host differ by their path, which may be a secret and is not shown)."""
    whole = target.url or "\0".join(target.argv) or target.shell or ""
    return f"{target.name} [{hashlib.sha256(whole.encode()).hexdigest()[:8]}]"


def links_for(workspace: Workspace, plan: Plan, event: EventRecord, run: str | None = None) -> dict[str, str] | None:
    """The links a notification of ``event`` carries: a gate's approve and reject (bound to the
    inputs it is asked on), a question's allow and deny, a run's budget raised by as much again
    (bound to ``run``, the run telling it); none without ``public_url``, with
    ``approvals.links: off``, or for another event."""
    base, valid = plan.settings.public_url, plan.settings.approvals.links
    if base is None or valid is None:
        return None
    if isinstance(event, ApprovalRequested) and event.inputs:
        tokens = links.pair(workspace, event.task, event.inputs, valid, question=False)
    elif isinstance(event, PermissionAsked):
        tokens = links.pair(workspace, event.task, event.question, valid, question=True)
    elif isinstance(event, BudgetReached) and (run := event.run or run):  # (raised by as much again)
        tokens = {links.RAISE: links.raising(workspace, run, f"+{event.limit:g}", valid)}
    else:
        return None
    return {word: links.url(base, token) for word, token in tokens.items()}


def notifying(reporter: Recording, workspace: Workspace, plan: Plan, settings: dict[str, Settings]) -> Notifying:
    """``reporter``, notifying the user's and the plan's targets, and telling of stuck tasks."""
    mine, problem = user_targets()
    return Notifying(reporter, mine + plan.settings.notify, StuckWatch(workspace, plan, settings), problem)
