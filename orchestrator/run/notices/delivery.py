"""Notifications delivered beside the run, never in its way.

Each target has a worker thread and a queue: the run only puts a message on the queue (no I/O on
the run's thread), so a slow or dead endpoint neither slows nor fails it. A message that cannot be
delivered is tried again after 0.5 s, 1 s and 2 s (``timing.notify_retry``, twice it, four times
it: four tries; a 4xx answer other than 429 is not tried again); once all its tries failed, the
target counts as down: the run is told once (a ``notice``), and later messages are tried once each
until one gets through. At the end of the run ``close`` waits at most ``timing.notify_drain`` for
what is still queued, never for a target that is down, and says how many it gave up.

What leaves is redacted first (``redaction``: no secret a task printed is posted or handed on).
A webhook is one POST of JSON (urllib; proxies from the environment, none for loopback) with a
``timing.notify_timeout``. A command runs in its own process group (session) with the event as
JSON on stdin and in ``ORCHESTRATOR_EVENT_JSON``, the event's name in ``ORCHESTRATOR_EVENT``, its
one-line text in ``ORCHESTRATOR_NOTIFY_TEXT``; it is killed (its whole group) past its ``timeout``
and reaped, and its group is killed once it exits so nothing it started outlives it. Its exit
status decides as soon as it exits: a child it left in the background (``sleep 300 &``) is killed
with its group, and never waited for.

Each message carries its idempotency key (``Message.key``: the same on every try, and on the next
run's when this one died before its outcome was known): a webhook's ``Idempotency-Key`` header, a
command's ``ORCHESTRATOR_IDEMPOTENCY_KEY``. Its outcome (delivered, or not: why) is handed back to
the run's thread (``outcomes``), the one writer of the event log, which records it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from orchestrator import redaction, timing
from orchestrator.plan.config.targets import Target
from orchestrator.version import __version__

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class Message:
    """One event for one target: the body to post (or give a command) and what names it."""

    kind: str
    body: dict[str, Any]
    text: str
    key: str | None = None  # its idempotency key, handed to the receiver
    effect: str | None = None  # its effect's key in the ledger (``state/events/effects``)


class DeliveryFailed(Exception):
    """One try to deliver a message failed; ``final``: trying again would not help (a 4xx)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class Courier:
    """The targets' worker threads. ``send`` from the run's thread; ``notices`` says (once per
    target) which went down; ``close`` drains, within a bound."""

    def __init__(self, targets: tuple[Target, ...], *, cwd: Path, delays: tuple[float, ...] | None = None) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._notices: list[str] = []
        self._outcomes: list[tuple[str, str | None]] = []
        if delays is None:
            first = timing.current().notify_retry
            delays = (first, 2 * first, 4 * first)
        self._lines = [_Line(target, self, cwd, delays) for target in targets]
        for line in self._lines:
            line.thread.start()

    def send(self, target_index: int, message: Message) -> None:
        self._lines[target_index].put(message)

    def tell(self, notice: str) -> None:
        with self._lock:
            self._notices.append(notice)

    def settled(self, message: Message, problem: str | None) -> None:
        """``message`` delivered (``problem``: ``None``) or given up, from a target's thread."""
        if message.effect is not None:
            with self._lock:
                self._outcomes.append((message.effect, problem))

    def outcomes(self) -> list[tuple[str, str | None]]:
        """Each message's outcome since the last call, by its effect's key: ``None`` when it was
        delivered, else why not; for the run's thread to record."""
        with self._lock:
            found, self._outcomes = self._outcomes, []
        return found

    def left(self) -> list[str]:
        """The effects of the messages still queued or under way: after ``close``, those given up."""
        return [effect for line in self._lines for effect in line.holding()]

    def notices(self) -> list[str]:
        """What went wrong since the last call (each target's first failure only)."""
        with self._lock:
            found, self._notices = self._notices, []
        return found

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def close(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds for the messages still queued (not for a target that is
        down), then stop; how many were given up."""
        clock = timing.current()
        deadline = time.monotonic() + (clock.notify_drain if timeout is None else timeout)
        while time.monotonic() < deadline and any(line.busy() for line in self._lines):
            time.sleep(clock.stop_poll)
        self._stop.set()
        given_up = sum(line.abandon() for line in self._lines)
        joined_by = time.monotonic() + clock.notify_join  # a command being killed is reaped; a request times out alone
        for line in self._lines:
            line.thread.join(timeout=max(0.0, joined_by - time.monotonic()))
        return given_up


class _Line:
    """One target: its queue, its thread, whether it is down."""

    def __init__(self, target: Target, courier: Courier, cwd: Path, delays: tuple[float, ...]) -> None:
        self.target = target
        self.courier = courier
        self.cwd = cwd
        self.delays = delays
        self.queue: queue.Queue[Message] = queue.Queue()
        self._held: dict[str, None] = {}  # the effects of the messages queued or under way
        self.pending = 0  # queued or being delivered
        self.down = False
        self.told = False
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._work, name=f"notify {target.name}", daemon=True)

    def put(self, message: Message) -> None:
        with self._lock:
            self.pending += 1
            if message.effect is not None:
                self._held[message.effect] = None
        self.queue.put(message)

    def busy(self) -> bool:
        """Whether the end of the run should wait for this target: it has messages and is up."""
        with self._lock:
            return self.pending > 0 and not self.down

    def holding(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def abandon(self) -> int:
        """Stop: a command under way is killed (its thread reaps it); how many messages are left."""
        process = self.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        with self._lock:
            return self.pending

    def _work(self) -> None:
        stop = self.courier.stopping
        while not stop.is_set():
            try:
                message = self.queue.get(timeout=timing.current().notify_poll)
            except queue.Empty:
                continue
            try:
                problem = self._deliver(message)
            finally:
                with self._lock:
                    self.pending -= 1
            if problem is not False:  # (stopped between its tries: given up, told by ``close``)
                with self._lock:
                    self._held.pop(message.effect or "", None)
                self.courier.settled(message, problem)

    def _deliver(self, message: Message) -> str | Literal[False] | None:
        """``None`` once delivered, else why not; ``False`` when the courier stopped between tries."""
        stop = self.courier.stopping
        tries = 1 if self.down else 1 + len(self.delays)
        problem = ""
        for attempt in range(tries):
            if attempt and stop.wait(self.delays[attempt - 1]):
                return False
            try:
                self._once(message)
            except DeliveryFailed as exc:
                problem = str(exc)
                if exc.final:
                    break
                continue
            self.down = False
            return None
        self.down = True
        if not self.told:
            self.told = True
            self.courier.tell(
                f"notifications to {self.target.name} fail ({problem}); the run goes on, and later ones "
                "are tried once each"
            )
        return problem or "not delivered"

    def _once(self, message: Message) -> None:
        if self.target.url is not None:
            post(self.target.url, message.body, key=message.key)
        else:
            self._command(message)

    def _command(self, message: Message) -> None:
        target = self.target
        argv = list(target.argv) if target.argv else ["/bin/sh", "-c", target.shell or ""]
        data = redaction.current().dumps(message.body)
        env = {
            **os.environ,
            "ORCHESTRATOR_EVENT": message.kind,
            "ORCHESTRATOR_EVENT_JSON": data,
            "ORCHESTRATOR_NOTIFY_TEXT": redaction.text(message.text),
            **({"ORCHESTRATOR_IDEMPOTENCY_KEY": message.key} if message.key else {}),
        }
        # The event goes in, and what the command says comes out, through unlinked files, not
        # pipes: a child it leaves running in the background holds a pipe open, and waiting for
        # that pipe's end (as ``communicate`` does) would wait for the child, not the command.
        with contextlib.ExitStack() as files:
            try:
                given = files.enter_context(tempfile.TemporaryFile())
                said = files.enter_context(tempfile.TemporaryFile())
                given.write(data.encode("utf-8"))
                given.seek(0)
            except OSError as exc:  # a full disk, a TMPDIR that is gone: a failed try, not a dead thread
                raise DeliveryFailed(f"cannot make its temporary files: {exc.strerror or exc}") from None
            try:
                process = subprocess.Popen(
                    argv,
                    stdin=given,
                    stdout=subprocess.DEVNULL,
                    stderr=said,
                    cwd=self.cwd,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise DeliveryFailed(f"{argv[0]}: {exc.strerror or exc}", final=True) from None
            self.process = process
            try:
                process.wait(timeout=target.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
                raise DeliveryFailed(f"still running after {target.timeout:g}s: killed") from None
            finally:
                _kill_group(process.pid)  # what it left in its group goes with it
                self.process = None
            err = _tail(said)
        if process.returncode != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise DeliveryFailed(f"exit {process.returncode}{': ' + last[0][:200] if last[0] else ''}")


def _tail(file: IO[bytes], size: int = 4096) -> bytes:
    """The last ``size`` bytes written to ``file``: what a failed command said last."""
    end = file.seek(0, os.SEEK_END)
    file.seek(max(0, end - size))
    return file.read(size)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def post(url: str, body: dict[str, Any], timeout: float | None = None, *, key: str | None = None) -> None:
    """POST ``body`` as JSON (``key``: its ``Idempotency-Key`` header); ``DeliveryFailed`` unless the answer is 2xx."""
    import urllib.error  # (here: 20 ms of every run's start-up, for the runs that notify a webhook)
    import urllib.request

    data = redaction.current().dumps(body).encode("utf-8")  # (no secret leaves for the network)
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"orchestrator/{__version__}",
            **({"Idempotency-Key": key} if key else {}),
        },
    )
    handlers = [urllib.request.ProxyHandler({})] if urlsplit(url).hostname in _LOOPBACK else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timing.current().notify_timeout if timeout is None else timeout) as answer:
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        final = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}", final=final) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(str(reason) or type(exc).__name__) from None
