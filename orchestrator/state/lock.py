"""One writer per workspace: an ``flock`` on ``state/runner.lock``, held by ``run``, ``render``,
``reset`` and ``aggregate`` (and ``plan``/``init --force`` replacing a plan), that dies with its holder.

The kernel drops the lock when the holding process exits for any reason, ``kill -9`` included, so
a lock left by a dead runner is simply taken over by the next one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, TracebackType

from orchestrator.errors import LockedError, UsageError
from orchestrator.paths import PLAN_FILE
from orchestrator.state import store
from orchestrator.state.workspace import Workspace


def posix_locks() -> ModuleType:
    """The ``fcntl`` module, imported where a lock is taken rather than with the package: where
    there is none (Windows without WSL), importing works and ``doctor`` says what to do; taking a
    lock is one line that says it (exit 2)."""
    try:
        import fcntl
    except ImportError:
        raise UsageError(
            "this system has no fcntl (file locks), which orchestrator needs: it runs on Linux and macOS; "
            "on Windows, run it inside WSL (see `orchestrator doctor`)"
        ) from None
    return fcntl


@contextlib.contextmanager
def turn(path: Path, mode: int = 0o644, *, within: float | None = None) -> Iterator[None]:
    """One holder at a time of the lock file ``path`` (made, with its folder, if missing): an
    ``flock`` waited for, not refused, and dropped by the kernel when its holder dies. Short
    read-modify-writes take it (``add``'s plan edit, the launches record, the words and links);
    a symlink put in its place is not followed. ``within``: seconds it is waited for at most,
    then ``LockedError``: a holder that is stopped (SIGSTOP, a suspended terminal) never lets go,
    and a command that asks a run must not wait for it for ever."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        fcntl = posix_locks()
        if within is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            _take_within(fcntl, fd, path, within)
        yield
    finally:
        os.close(fd)


def _take_within(fcntl: ModuleType, fd: int, path: Path, within: float) -> None:
    """The lock on ``fd`` taken within ``within`` seconds, looked at again every few
    milliseconds (``flock`` itself waits for ever or not at all); else ``LockedError``."""
    deadline = time.monotonic() + within
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockedError(
                    f"{path} stayed locked for {within:g} s: a process holds it that does not let go (a run stopped "
                    "with SIGSTOP or Ctrl-Z, or a command still writing); nothing was written: resume that "
                    "process (`orchestrator watch` shows whether the run goes on) and try again"
                ) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)


def plan_edits(state_dir: Path) -> contextlib.AbstractContextManager[None]:
    """One edit of the plan at a time (``add``, ``update``, ``archive``), and a run's end between
    them: a run that ends tells of the rows it did not take holding it (``state/events``:
    ``run_finished`` written first), so an ``add`` holding it next finds the run over."""
    return turn(state_dir / "plan-edit.lock")


@contextlib.contextmanager
def looking(path: Path) -> Iterator[None]:
    """A reader's turn at the lock file ``path``: shared with other readers, while writers wait
    (``verify`` reads where the event log ends and its head in one). The file is opened for
    reading only, and never made: with none there, nobody has written under it yet."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        yield
        return
    try:
        fcntl = posix_locks()
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class WorkspaceLock:
    def __init__(self, path: Path, workspace_name: str) -> None:
        self.path = path
        self.workspace_name = workspace_name
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink put in its place is not followed (and truncated) outside the workspace.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl = posix_locks()
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except UsageError:
            os.close(fd)
            raise
        except BlockingIOError:
            holder = self.holder(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise LockedError(
                f"another run, render, reset, aggregate or plan ({who}) is using {self.workspace_name}/ — wait for "
                f"it to finish, or stop it (kill {holder or '<pid>'})"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: the lock is not kept, and the error names its file
            os.close(fd)
            raise store.named_error(exc, self.path) from exc
        self._fd = fd

    @staticmethod
    def holder(fd: int) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            os.lseek(fd, 0, os.SEEK_SET)
            return int(os.read(fd, 32).decode().strip() or 0) or None
        return None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


@contextlib.contextmanager
def replacing_plan(root: Path) -> Iterator[None]:
    """The workspace's lock, held while ``plan`` or ``init --force`` replaces the master_plan.md at
    ``root``: a run going on would take the new plan's tasks into its own half way, a mix of two
    plans, so it is refused as beside any other writer (exit 3). With no plan there yet, no run
    can be going on: nothing is taken, nor made."""
    if not (root / PLAN_FILE).exists():
        yield
        return
    workspace = Workspace(root.resolve())
    workspace.check_inside()
    with WorkspaceLock(workspace.lock_file, workspace.root.name):
        yield
