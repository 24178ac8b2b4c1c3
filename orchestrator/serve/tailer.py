"""One reader of ``state/events.jsonl`` per server, however many browsers watch.

``Tailer.run`` looks at the workspace four times a second: the size of the event log (new lines
are read from its ``Cursor`` and sent to every subscriber as they are), and the few files whose
change alters what the page shows without an event (master_plan.md, the pause, the journal,
results/, context/, and the approvals: a gate decided with no run going). When anything moved
it builds the page's state once (``Board.snapshot``, in a worker thread) and sends that to
every subscriber too. A browser that connects late gets the latest state first, then the
stream. A subscriber that falls behind by ``BUFFER`` messages is dropped (its stream ends); the
browser's EventSource reconnects and starts from a fresh state.

A row run over many items is sent as its counts, not its items' lives: an item's start,
completion or skip (``T-03[137]``) is neither sent nor kept in the feed (the row's counts come
with the state, ``state/items``), its failures are, the first ``ITEM_FAILURES`` of each row; and
while nothing but items moved, the state is built again at most each ``ITEMS_EVERY`` seconds.
5,000 items are a few state messages a second at most, not 10,000 events.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator import timing
from orchestrator.output.lines import describe
from orchestrator.printable import visible_data
from orchestrator.serve.board import Board, FileKey
from orchestrator.state import approvals
from orchestrator.state.events import Cursor, read_new
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.reporter import EventReporter
from orchestrator.state.events.runs import RunEstimate, RunFinished, RunStarted
from orchestrator.state.events.tasks import (
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskInterrupted,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
)
from orchestrator.state.procs import pid_alive, ticks

BUFFER = 256  # messages a subscriber may lag behind before it is dropped
ITEMS_EVERY = 2.0  # seconds at least between two states built while only a row's items moved
ITEM_FAILURES = 5  # an item's failure sent, at most this many a row
_ITEM_KEYS = (0, 3, 4)  # of ``_look``'s files, those an item moves: the event log, the journal, results/
_LOOKED = 7  # ``_look``'s files before the rows' folders of results/, which an item moves too


def _not_items(keys: tuple[FileKey | None, ...]) -> list[FileKey | None]:
    """Of ``_look``'s keys, those of the files an item does not move."""
    return [key for index, key in enumerate(keys[:_LOOKED]) if index not in _ITEM_KEYS]


FEED = 100  # recent events a late browser is given
NOTABLE = 200  # recent events of other kinds (discoveries, shares, notices...) a late browser is given

# The events of a task's or a run's life, which the page shows as states; any other kind
# (notice, discover, share, task_added...) is listed as it comes, whatever its name.
LIFECYCLE = (
    RunStarted,
    RunFinished,
    TaskStarted,
    TaskRetrying,
    TaskCompleted,
    TaskFailed,
    TaskSkipped,
    TaskInterrupted,
    TaskCancelled,
    RunEstimate,  # (the run's expected end, as it goes: the page's eta)
)


@dataclass(frozen=True, slots=True)
class Message:
    """One server-sent event: its ``event:`` name and its JSON, encoded once for every subscriber."""

    kind: str
    data: str

    def encode(self) -> str:
        return f"event: {self.kind}\ndata: {self.data}\n\n"


Event = dict[str, Any]  # an event as the page is sent it: its line as written, and ``said``


class Tailer:
    def __init__(self, board: Board, interval: float | None = None) -> None:
        self.board = board
        self.interval = timing.current().serve_poll if interval is None else interval  # between looks at the files
        self.path = board.workspace.events_file
        self.cursor = Cursor()
        self.feed: deque[Event] = deque(maxlen=FEED)
        self.notable: deque[Event] = deque(maxlen=NOTABLE)
        self.last_run = LastRun()
        self.latest = Message("state", "{}")
        self._subscribers: set[MemoryObjectSendStream[Message]] = set()
        self._keys: tuple[FileKey | None, ...] = ()
        self._built: tuple[FileKey | None, ...] = ()  # the files as they were when ``latest`` was built
        self._building = anyio.Lock()
        self._alive: bool | None = None
        self._stale = False  # something moved since the state was last built
        self._next_state = 0.0  # (monotonic) when the state may be built again
        self._item_failures: dict[str, int] = {}  # row -> its items' failures sent
        self._items_state_at = 0.0  # (monotonic) when a state may be built for a row's items alone

    async def start(self) -> None:
        """Read the log so far and build the first state (before the first browser is served)."""
        await anyio.to_thread.run_sync(self._catch_up)

    def _catch_up(self) -> None:
        self._keys = self._built = self._look()
        self._absorb(read_new(self.path, self.cursor))
        self._alive = self._runner_alive()
        self.latest = self._snapshot()

    async def run(self) -> None:
        """Look every ``interval`` seconds for as long as the server lives. A workspace file that
        cannot be read (permissions, a disk error) is said once on stderr, and looked at again."""
        said: set[str] = set()
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.tick()
            except OSError as exc:
                problem = f"dashboard: cannot read the workspace: {exc}"
                if problem not in said:
                    said.add(problem)
                    print(problem, file=sys.stderr, flush=True)

    async def tick(self) -> None:
        """One look at the files: publish the new events, then the state if anything moved."""
        keys = self._look()
        events: list[Event] = []
        size = keys[0].size if keys[0] is not None else 0
        if size < self.cursor.offset:  # the log was replaced by a shorter one: read it again
            self.cursor = Cursor()
        items_only = False  # (events came, none of them sent: a row's items alone moved)
        if size > self.cursor.offset:
            read = await anyio.to_thread.run_sync(read_new, self.path, self.cursor)
            events = self._absorb(read)
            items_only = bool(read) and not events
            if events:
                self._publish(Message("events", json.dumps(events, ensure_ascii=False, default=str)))
        alive = self._runner_alive()
        if events or items_only or keys != self._keys or alive != self._alive:
            # (what an item moves: the log, the journal, results/; anything else is more than items)
            others = _not_items(keys) != _not_items(self._keys)
            moved_else = bool(events) or alive != self._alive or others  # (results/ alone: an item's, or a hand's)
            self._keys, self._alive = keys, alive
            self._stale = True
            if not moved_else:  # (a row's items alone: its counts, a state each ITEMS_EVERY seconds at most)
                self._next_state = max(self._next_state, self._items_state_at)

        if self._stale and time.monotonic() >= self._next_state:
            self._stale = False
            started = time.monotonic()
            async with self._building:
                await self._build(keys)
            # A big plan's state takes a while to build: build it at most a fifth of the time
            # (the events themselves go out at once, and the page applies them as they come).
            self._next_state = time.monotonic() + 4 * (time.monotonic() - started)
            self._items_state_at = time.monotonic() + ITEMS_EVERY
            self._publish(self.latest)

    async def current(self) -> Message:
        """The state as the files are now, for a request (``GET /api/state``): ``latest`` while
        nothing changed since it was built, else built again first. A program that adds a task
        and then reads the state sees it, whatever the pushes' pace."""
        keys = self._look()
        if keys != self._built:
            async with self._building:
                if keys != self._built:  # (a request waiting here may find it built meanwhile)
                    await self._build(keys)
                    self._stale = True  # (the pages are sent it at the next look)
        return self.latest

    async def _build(self, keys: tuple[FileKey | None, ...]) -> None:
        """``latest`` built again from the files, which were ``keys`` before it began (a change
        made while it builds is found at the next look)."""
        self.latest = await anyio.to_thread.run_sync(self._snapshot)
        self._built = keys

    def _look(self) -> tuple[FileKey | None, ...]:
        workspace = self.board.workspace
        return (
            FileKey.of(self.path),
            FileKey.of(workspace.plan_file),
            FileKey.of(workspace.state_dir / "pause.json"),
            FileKey.of(workspace.journal_file),
            FileKey.of(workspace.results_dir),
            FileKey.of(self.board.context_dir),
            FileKey.of(approvals.path(workspace)),
            *(FileKey.of(folder) for folder in workspace.item_folders()),  # (rows' items' results: an item's)
        )

    def _runner_alive(self) -> bool | None:
        """Whether the last run's runner lives, while its log has not said it finished (a runner
        killed with -9 says nothing: its tasks turn interrupted on the page when it goes)."""
        pid = self.last_run.data.get("pid")
        if not pid or self.last_run.data.get("finished") is not None:
            return None
        return pid_alive(int(pid), ticks(self.last_run.data.get("pid_start")))

    def _said(self, event: EventRecord) -> Event:
        """``event`` as the page is sent it: its line as written (``as_line``), with ``said``, the
        line the CLI prints for it (``lines.describe``), when the CLI has one (a kind it does not
        know, or an event missing what its line needs, has none: the page says its fields); what
        agents printed in it (``stderr_tail``, a reason) made ``visible``, as every string the page
        is sent."""
        try:
            line = describe(event, self.board.workspace.root)
        except (KeyError, TypeError, ValueError, AttributeError):
            line = None
        shown = event.as_line()
        return visible_data({**shown, "said": line} if line else shown)

    def _absorb(self, events: list[EventRecord]) -> list[Event]:
        """``events`` taken in: the feed and the last run told of them; as the page is sent them
        (a row's items' lives left out but their first failures: the row's counts say them)."""
        told: list[Event] = []
        for event in events:
            if not self._sent(event):
                continue
            shown = self._said(event)
            told.append(shown)
            self.feed.append(shown)
            if not isinstance(event, LIFECYCLE):
                self.notable.append(shown)
            self.last_run.tell(event)
        return told

    def _sent(self, event: EventRecord) -> bool:
        """Whether the page is sent ``event``: not an item's start, completion or skip; an item's
        failure, the first ``ITEM_FAILURES`` of its row."""
        task = getattr(event, "task", None)
        if not isinstance(task, str) or "[" not in task or not isinstance(event, LIFECYCLE):
            return True
        if not isinstance(event, TaskFailed):
            return False
        row = task.partition("[")[0]
        self._item_failures[row] = self._item_failures.get(row, 0) + 1
        return self._item_failures[row] <= ITEM_FAILURES

    def _snapshot(self) -> Message:
        last_run = visible_data(dict(self.last_run.data))  # (as every string the page is sent)
        data = self.board.snapshot(last_run, list(self.feed), list(self.notable))
        return Message("state", json.dumps(data, ensure_ascii=False, default=str))

    def subscribe(self) -> MemoryObjectReceiveStream[Message]:
        """A stream of every message from now on (the caller sends ``latest`` first)."""
        send, receive = anyio.create_memory_object_stream[Message](BUFFER)
        self._subscribers.add(send)
        return receive

    def _publish(self, message: Message) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(message)
            except anyio.WouldBlock:  # too far behind: drop it, its browser reconnects
                send.close()
                self._subscribers.discard(send)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):  # its browser went away
                self._subscribers.discard(send)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def stop(self) -> None:
        """End every subscriber's stream (the server is stopping)."""
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()


class LastRun(EventReporter[None]):
    """The last run as the page shows it (``data``), from its ``run_started`` and ``run_finished``."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def any_event(self, event: EventRecord) -> None:
        """Nothing of the run as a whole."""

    def run_started(self, event: RunStarted) -> None:
        self.data = {
            "name": event.run,
            "started": event.time or event.run,
            "pid": event.pid or None,
            "pid_start": event.pid_start,
            "to_run": event.to_run,
            "finished": None,
        }

    def run_finished(self, event: RunFinished) -> None:
        if event.run == self.data.get("name"):
            self.data = {
                **self.data,
                "finished": event.time,
                "exit_code": event.exit_code,
                "wall_seconds": event.wall_seconds,
                "stopped": event.stopped,
            }
