"""The effect ledger: every outward effect a run makes (a branch pushed, a pull request opened or
updated, a comment posted), kept in the chained event log so that none is ever done twice.

An effect has a key made of what it is for, never of who does it or when: its kind, where it goes
and the work it carries (``push:origin orchestrator/integration@<sha>``, ``comment:acme/app#7@<sha>``;
a pull request, ``pr:acme/app orchestrator/integration``: one per branch, and once it was merged or
closed one more, ``... after #1``; a task's own delivery, its branch's). A retry, a rerun, a resume
after a kill -9, a hedge or a losing candidate asks for the same key, and finds it done.

Its intent (``effect_intended``) is on disk before the effect is attempted; its outcome
(``effect_done``: the remote's answer, a pull request's number and URL, the commit) after, or
``effect_failed``. An intent with no outcome after it (a crash in between, or a failure that may
have reached the remote all the same: a timeout) is *unknown*: ``Effects.do`` asks the remote
(``reconcile``: the open pull requests of that head branch, the remote's ref, the comments that
carry the key) before it tries again, and takes what it finds as done (``found``).

A notification (``notify``: an event told to a target of the ``notify`` setting, a row's digest of
failures one message) is an effect too, with a key of its own (``run/notices/notify``): the target,
the event's kind, its task and attempt, the run. Its receiver is handed an idempotency key made of
it, and no receiver can be asked whether it has one: an intent a crash left with no outcome is sent
again by the next run (``unsent``), under the same key, for the receiver to drop if it had it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.state.events.base import EventRecord

DONE, UNKNOWN, FAILED = "done", "unknown", "failed"
_WORDS = {"push": "push of", "pr": "pull request for", "pr_update": "pull request update to", "comment": "comment on",
          "notify": "notification to"}  # fmt: skip
NOTIFY = "notify"  # a notification or a webhook (``run/notices``): one effect a message and target


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the remote answered: a pull request's or a comment's ``number`` and ``url``."""

    number: int | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """An effect as the ledger holds it: its last word (``state``: done, unknown, failed)."""

    key: str
    kind: str
    target: str
    commit: str | None
    state: str
    time: str
    run: str | None
    number: int | None = None
    url: str | None = None
    found: bool = False
    error: str | None = None
    intended: str | None = None  # when its intent was first written (``None``: never: a failure to ask)

    def as_json(self) -> dict[str, Any]:
        """As ``status --json``, ``history --json``, ``verify --json`` and the dashboard show it."""
        return {"key": self.key, "kind": self.kind, "target": self.target, "commit": self.commit,
                "state": self.state, "time": self.time, "run": self.run, "number": self.number, "url": self.url,
                "found": self.found, "error": self.error, "said": self.said()}  # fmt: skip

    def said(self) -> str:
        """Its line: ``📬 pull request for acme/app orchestrator/integration: https://...``."""
        mark = {DONE: "📬", UNKNOWN: "❔", FAILED: "⚠️"}[self.state]
        how = {
            DONE: f": {self.url}" if self.url else "",
            UNKNOWN: " — outcome unknown (its run was killed): the next run asks the remote before trying again",
            FAILED: f" failed: {self.error}",
        }[self.state]
        return f"{mark} {effect_said(self)}{how}"


def key(kind: str, target: str, commit: str | None = None) -> str:
    """An effect's key: what it is for (a pull request: one per repository and branch, whatever it holds)."""
    return f"{kind}:{target}" + (f"@{commit}" if commit and kind != "pr" else "")


def effect_said(event: Any) -> str:
    """What an effect's event is about, in words: ``pull request for acme/app orchestrator/integration``."""
    commit = f" at {event.commit[:12]}" if event.commit else ""
    return f"{_WORDS.get(event.kind, event.kind)} {event.target}{commit}"


def read(records: Iterable[EventRecord]) -> dict[str, Entry]:
    """Each effect's last word, by key, from the log's records (oldest first)."""
    records = list(records)
    if not records:  # (the records' module is loaded only for a line that holds one: status's import stays light)
        return {}
    from orchestrator.state.events.runs import EffectDone, EffectFailed, EffectIntended

    found: dict[str, Entry] = {}
    first: dict[str, str] = {}  # (when each key was first intended: what a look at the remote starts from)
    for event in records:
        if not isinstance(event, EffectIntended | EffectDone | EffectFailed):
            continue
        before = found.get(event.key)
        if before is not None and before.state == DONE and not isinstance(event, EffectDone):
            continue  # (a done effect stays done)
        if isinstance(event, EffectIntended):
            first.setdefault(event.key, event.time)
        state = DONE if isinstance(event, EffectDone) else FAILED if isinstance(event, EffectFailed) else UNKNOWN
        done = event if isinstance(event, EffectDone) else None
        found[event.key] = Entry(
            event.key, event.kind, event.target, event.commit, state, event.time, event.run,
            done.number if done else None, done.url if done else None, bool(done and done.found),
            event.error if isinstance(event, EffectFailed) else None, first.get(event.key),
        )  # fmt: skip
    return found


def ledger(events_file: Path) -> dict[str, Entry]:
    """The workspace's ledger, read from ``state/events.jsonl`` (only the effects' lines are parsed)."""
    from orchestrator.state.events.log import Cursor, read_new

    return read(read_new(events_file, Cursor(0), only=(b'"effect_',)))


def current(entries: dict[str, Entry], limit: int = 10) -> list[Entry]:
    """What ``status`` and the dashboard show: the last word on each thing delivered to (a remote's
    branch, a pull request, an issue's comments), the ``limit`` latest, oldest first; a notification
    only while it is not done (many are sent, and one delivered says nothing a person must do)."""
    last: dict[tuple[str, str], Entry] = {}
    for entry in sorted(entries.values(), key=lambda e: e.time):
        if entry.kind == NOTIFY and entry.state == DONE:
            continue
        kind = "pr" if entry.kind == "pr_update" else entry.kind
        target = entry.target if entry.kind != "pr_update" else f"{entry.target} (update)"
        last[(kind, target)] = entry
    return list(last.values())[-limit:]


def said(entries: Iterable[Entry]) -> list[str]:
    """The lines ``history`` and ``verify`` show of ``entries``: each effect's, but the
    notifications delivered, counted in one line (a run may send many, and they need no one)."""
    entries = list(entries)
    sent = sum(1 for e in entries if e.kind == NOTIFY and e.state == DONE)
    lines = [e.said() for e in entries if e.kind != NOTIFY or e.state != DONE]
    return lines + ([f"📬 {sent} notification{'s' if sent != 1 else ''} delivered"] if sent else [])


def unsent(events_file: Path) -> list[Any]:
    """The notifications whose intent has no outcome (its run died between them): each intent,
    which holds its message, oldest first."""
    from orchestrator.state.events.log import Cursor, read_new
    from orchestrator.state.events.runs import EffectIntended

    records = read_new(events_file, Cursor(0), only=(b'"effect_',))
    entries = read(records)
    intents = {e.key: e for e in records if isinstance(e, EffectIntended) and e.kind == NOTIFY and e.message}
    return [intent for name, intent in intents.items() if entries[name].state == UNKNOWN]


def of_run(entries: dict[str, Entry], run: str | None) -> list[Entry]:
    """The effects a run wrote a word of (its last), in the order they were first intended."""
    return [entry for entry in entries.values() if run is not None and entry.run == run]


class EffectFailedError(Exception):
    """An effect not done: what the remote said (or that it said nothing)."""


class Effects:
    """A run's hand on the ledger: ``tell`` writes an event to the log and returns once it is on
    disk (raising ``OSError`` when it cannot be: then nothing is attempted)."""

    def __init__(self, entries: dict[str, Entry], tell: Callable[[EventRecord], None]) -> None:
        self.entries = entries
        self.tell = tell

    def done(self, kind: str, target: str, commit: str | None = None) -> Entry | None:
        """The effect of that key, when the ledger has it done."""
        entry = self.entries.get(key(kind, target, commit))
        return entry if entry is not None and entry.state == DONE else None

    def do(
        self,
        kind: str,
        target: str,
        commit: str | None,
        act: Callable[[], Outcome],
        reconcile: Callable[[], Outcome | None],
        *,
        ask_first: bool = False,
    ) -> Entry:
        """The effect done once: found done in the ledger, or (an intent a crash or a failure left
        without an outcome; with ``ask_first``, always) found done on the remote by ``reconcile``,
        else ``act``ed, its intent written first. ``EffectFailedError`` when ``act`` (or
        ``reconcile``) fails."""
        from orchestrator.state.events.runs import EffectDone, EffectFailed, EffectIntended

        name = key(kind, target, commit)
        entry = self.entries.get(name)
        if entry is not None and entry.state == DONE:
            return entry
        common: dict[str, Any] = {"key": name, "kind": kind, "target": target, "commit": commit}
        try:
            found = reconcile() if entry is not None or ask_first else None
            if found is None:
                self.tell(EffectIntended(**common))
                outcome, was_found = act(), False
            else:
                outcome, was_found = found, True
        except EffectFailedError as exc:
            self.tell(EffectFailed(**common, error=str(exc)))
            self.entries = {**self.entries, name: Entry(name, kind, target, commit, FAILED, "", None, error=str(exc))}
            raise
        done = EffectDone(**common, number=outcome.number, url=outcome.url, found=was_found or None)
        self.tell(done)
        made = Entry(name, kind, target, commit, DONE, done.time, None, outcome.number, outcome.url, was_found)
        self.entries = {**self.entries, name: made}
        return made
