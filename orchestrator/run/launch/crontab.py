"""The user's crontab, and the block of it ``orchestrator schedule`` manages: no daemon of ours,
the machine's cron starts each scheduled run.

The block sits at the end of the crontab, between two marker lines; each workspace scheduled is a
comment naming it and its cron line::

    # BEGIN orchestrator (managed by `orchestrator schedule`: do not edit between these lines)
    # workspace: /home/me/proj/.orchestrator
    0 2 * * * cd /home/me/proj && PATH=... HOME=/home/me /usr/bin/python3 -m orchestrator schedule fire
      /home/me/proj/.orchestrator >> /home/me/proj/.orchestrator/logs/schedule.log 2>&1
    # END orchestrator

Everything outside the block (the user's own lines, comments, blank lines, ``MAILTO=``) is
written back byte for byte. A change is read, made, and written only if the crontab still reads
as it did (read again just before): one changed meanwhile by ``crontab -e`` is read afresh and the
change made again, never overwritten; ``schedule`` commands at once take turns on a lock file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.state.lock import turn

BEGIN = "# BEGIN orchestrator (managed by `orchestrator schedule`: do not edit between these lines)"
END = "# END orchestrator"
_NAMED = "# workspace: "
_TRIES = 5
_WAIT = 30.0  # seconds a crontab command may take


@dataclass(frozen=True, slots=True)
class Entry:
    """One scheduled workspace: its absolute path, its cron expression and its whole cron line."""

    workspace: str
    cron: str
    line: str


@dataclass(frozen=True, slots=True)
class Crontab:
    """The crontab as read: the user's text before and after the block, and the block's entries."""

    before: str
    entries: tuple[Entry, ...]
    after: str
    unended: bool = False  # as read, its last line had no newline, which Debian's cron ignores

    def text(self) -> str:
        """The crontab to write: every line ended with a newline (the last one too: Debian's
        ``crontab`` refuses, or cron ignores, a last line without one)."""
        if not self.entries:
            text = self.before + self.after
        else:
            lines = [BEGIN, *(f"{_NAMED}{e.workspace}\n{e.line}" for e in self.entries), END]
            ended = self.before if not self.before or self.before.endswith("\n") else self.before + "\n"
            text = ended + "\n".join(lines) + "\n" + self.after
        return text if not text or text.endswith("\n") else text + "\n"

    def find(self, workspace: str) -> Entry | None:
        return next((e for e in self.entries if e.workspace == workspace), None)


def parse(text: str) -> Crontab:
    """The crontab ``text`` split around its block; a ``UsageError`` when the block's markers are
    not one pair, or a line inside it is not one this tool wrote (it would not know what to keep)."""
    lines = text.splitlines(keepends=True)
    begins = [n for n, line in enumerate(lines) if line.rstrip("\n") == BEGIN]
    ends = [n for n, line in enumerate(lines) if line.rstrip("\n") == END]
    unended = bool(text) and not text.endswith("\n")
    if not begins and not ends:
        return Crontab(text, (), "", unended)
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise UsageError(
            "your crontab's orchestrator block is not one BEGIN line and one END line after it — "
            "fix it with `crontab -e` (or delete the block's lines), then run the command again"
        )
    inside = [line.rstrip("\n") for line in lines[begins[0] + 1 : ends[0]]]
    entries: list[Entry] = []
    while inside:
        named = inside.pop(0)
        if not named.startswith(_NAMED) or not inside:
            raise UsageError(
                f"your crontab's orchestrator block has a line this tool did not write ({named!r}) — "
                "move your own lines out of the block with `crontab -e`, then run the command again"
            )
        line = inside.pop(0)
        fields = line.split()
        expression = " ".join(fields[:1] if line.startswith("@") else fields[:5])
        entries.append(Entry(named.removeprefix(_NAMED), expression, line))
    return Crontab("".join(lines[: begins[0]]), tuple(entries), "".join(lines[ends[0] + 1 :]), unended)


def line_for(expression: str, workspace: Path, project: Path, log: Path, *, keep_done: bool = False) -> str:
    """The cron line that runs ``schedule fire`` on ``workspace`` with this Python, from the
    project directory, with this PATH and HOME (cron's own are bare: the agent CLIs would not be
    found), its output appended to ``log``; ``keep_done``: its runs redo nothing up to date."""
    python = sys.executable
    for text in (str(workspace), python):
        if any(c in text for c in "%\n\r"):
            raise UsageError(f"{text}: cron cannot be given a path with '%' or a line break in it — use one without")
    env = " ".join(f"{name}={shlex.quote(os.environ.get(name, default))}" for name, default in _ENV)
    command = (
        f"cd {shlex.quote(str(project))} && {env} {shlex.quote(python)} -m orchestrator schedule fire "
        f"{'--keep-done ' if keep_done else ''}{shlex.quote(str(workspace))} >> {shlex.quote(str(log))} 2>&1"
    )
    return f"{expression} {command}"


_ENV = (("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", str(Path.home())))


def read() -> str:
    """The user's crontab (``crontab -l``); empty when there is none."""
    done = _crontab(["-l"])
    if done.returncode == 0:
        return done.stdout
    if "no crontab for" in done.stderr:
        return ""
    raise UsageError(f"crontab -l: {_said(done)} — check that cron is installed and this user may use it")


def write(text: str) -> None:
    done = _crontab(["-"], text) if text else _crontab(["-r"])
    if done.returncode != 0 and not (not text and "no crontab for" in done.stderr):
        raise UsageError(f"crontab refused the change: {_said(done)} — nothing was changed")


def change(edit: Callable[[Crontab], Crontab]) -> tuple[Crontab, Crontab]:
    """Apply ``edit`` (a function of the ``Crontab`` read to the one wanted) and write it: only while
    the crontab still reads as it did when ``edit`` was applied; tried again on a fresh read
    otherwise. Returns the crontab before and after."""
    with _turn():
        for _ in range(_TRIES):
            text = read()
            old = parse(text)
            new = edit(old)
            if new.text() == text:
                return old, new
            if read() != text:  # changed meanwhile (crontab -e): do it again on what is there now
                continue
            write(new.text())
            return old, new
    raise UsageError("your crontab kept changing while this command tried to change it — run the command again")


@contextlib.contextmanager
def _turn() -> Iterator[None]:
    """One ``schedule`` command at a time changes this user's crontab (an flock in the temporary directory)."""
    with turn(Path(tempfile.gettempdir()) / f"orchestrator-crontab-{os.getuid()}.lock", 0o600):
        yield


def _crontab(arguments: list[str], text: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["crontab", *arguments],
            input=text,
            capture_output=True,
            text=True,
            timeout=_WAIT,
            start_new_session=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError(
            "crontab: not installed — install cron (Debian and Ubuntu: apt-get install cron) to schedule runs"
        ) from None
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"crontab {' '.join(arguments)} did not answer in {_WAIT:.0f}s — nothing was changed"
        ) from None


def _said(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {done.returncode}"


def daemon_running() -> bool | None:
    """Whether a cron daemon (``cron``, ``crond``) runs on this machine; ``None`` when /proc cannot tell."""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() in {"cron", "crond"}:
                return True
    return False
