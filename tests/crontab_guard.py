"""This user's crontab, put back however a test that edits it ends.

    with kept(before): ...   # the test edits the real crontab
    put_back_leftover()      # what a test killed before its end left: put back

``kept`` saves the crontab as it was to a file first (``saved_path``: under
``$XDG_STATE_HOME``, else ``~/.local/state``, so that it outlives the session and a reboot), and
puts it back when the block ends, however it ends: a failure or an error (the ``finally``), the
interpreter's exit (``atexit``), SIGTERM or SIGHUP (a CI's timeout, a closed terminal: put back,
then the signal's own action). A kill -9 runs none of those: the file stays, and the next test
that guards the crontab first puts back what it saved, once the process that saved it is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator.state.procs import pid_alive, process_started

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def saved_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "orchestrator-tests" / "crontab.json"


def read() -> str | None:
    """This user's crontab; None when there is none."""
    done = _crontab("-l")
    return done.stdout if done.returncode == 0 else None


def write(text: str | None) -> None:
    """``text`` as this user's crontab; None: none at all."""
    if text is None:
        _crontab("-r")
    else:
        _crontab("-", text=text)


def put_back_leftover() -> bool:
    """Put back the crontab a test saved and did not live to put back (its process gone); whether
    there was one."""
    saved = _load()
    if saved is None:
        return False
    pid, started = saved.get("pid"), saved.get("started")
    if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid, started if isinstance(started, int) else None):
        return False  # (another session's test is at it now)
    _put_back()
    return True


@contextlib.contextmanager
def kept(before: str | None) -> Iterator[None]:
    """Within the block, this user's crontab ``before`` the test is put back however it ends."""
    path = saved_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    path.write_text(json.dumps({"pid": me, "started": process_started(me), "crontab": before}), encoding="utf-8")
    previous = {sig: signal.signal(sig, _on_signal) for sig in SIGNALS}
    atexit.register(_put_back)
    try:
        yield
    finally:
        _put_back()
        atexit.unregister(_put_back)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _put_back()
    signal.signal(signum, signal.SIG_DFL)  # then what the signal would have done
    os.kill(os.getpid(), signum)


def _put_back() -> None:
    saved = _load()
    if saved is None:
        return
    text = saved.get("crontab")
    write(text if isinstance(text, str) else None)
    saved_path().unlink(missing_ok=True)


def _load() -> dict[str, Any] | None:
    try:
        found = json.loads(saved_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _crontab(*args: str, text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["crontab", *args], input=text, capture_output=True, text=True, check=False, timeout=30)
