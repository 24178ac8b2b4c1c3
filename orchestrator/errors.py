"""The one exception hierarchy: "your input is wrong" stands apart from "the workspace is busy".

A task that fails is *not* an exception: it is an outcome (see ``orchestrator.outcome``). Only bad
input, bad usage and conditions that stop a command from starting are raised.

    OrchestratorError                 base of everything raised on purpose    exit  HTTP  JSON-RPC
    ├── PlanError                     the plan (master_plan.md, profiles, templates) is wrong      2   400  -32602
    ├── UsageError                    bad usage or arguments (a CLI's, an API's, a tool's)       2   400  -32602
    │   ├── Refused                   a request the server takes no further (its status: 401, 413...)
    │   └── NotText                   a value that is no text: not UTF-8, a lone surrogate, a NUL  2   422  -32602
    ├── WorkspaceError                no workspace where one is needed, or it cannot be written    2   400  -32602
    │   │                             (an OSError about a file becomes one: ``workspace_error_from``)
    │   └── GitError                  git refused what a worktree, a merge or ``orchestrator merge`` needed
    ├── LockedError                   another run, render, reset, aggregate or plan holds it       3   409  -32001
    │   └── RunGoingOn                (``run/launch/background``) no second runner is started
    ├── BackendUnavailableError       a backend cannot be used at all (CLI missing, misconfigured)  2   400  -32602
    ├── ClusterError                  the cluster cannot run the plan (no answer, no worker)        2   503  -32002
    ├── NoAnswerError                 the run going on did not answer ``cancel`` or ``retry``      1   504  -32003
    ├── NoOutputError                 ``output``: the task has no completed result to print         1   404  -32004
    ├── AgentCallError                a single agent call a command depends on failed              1   502  -32005
    └── InternalError                 a defect of ours: one line, the traceback in a log           70   500  -32603

Every surface says an error in one shape, ``OrchestratorError.as_json``: ``{"ok": false, "error":
CLASS, "message": LINE, "problems": [...], "exit_code": N}``, the CLI's ``--json``, an MCP tool's
structured content and an HTTP body alike; each surface maps the class to its own code by the
class (``exit_code``, ``http_status``, ``rpc_code``), never by its name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.vocabulary import ExitCode


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file, with where it is and what to do about it."""

    file: str
    line: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        return f"{where}: {self.message}" + (f" — {self.hint}" if self.hint else "")


class OrchestratorError(Exception):
    """Base class of every error the orchestrator raises on purpose."""

    exit_code: int = ExitCode.USAGE
    http_status: int = 400
    rpc_code: int = -32602  # JSON-RPC's "invalid params": what the caller gave is what is wrong
    extra: dict[str, object] = {}  # noqa: RUF012 - what the error's JSON says beside it (a run's ``pid``)

    @property
    def line(self) -> str:
        """The error's first line: what a one-line answer says."""
        text = str(self).strip()
        return text.splitlines()[0] if text else type(self).__name__

    def as_json(self, **extra: object) -> dict[str, object]:
        """The one shape every surface says an error in."""
        problems = self.problems if isinstance(self, PlanError) else []
        return {
            "ok": False,
            "error": type(self).__name__,
            "message": str(self),
            "problems": [{"file": p.file, "line": p.line, "message": p.message, "hint": p.hint} for p in problems],
            "exit_code": int(self.exit_code),
            **self.extra,
            **extra,
        }


class PlanError(OrchestratorError):
    """Raised by ``load_plan`` and friends when the plan or a file it names is wrong.

    Holds every problem found, so a user fixes them all in one pass.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=lambda p: (p.file, p.line))
        super().__init__("\n".join(str(p) for p in self.problems))

    def located(self, path: Path) -> PlanError:
        """The same problems, each that names ``path`` by its bare file name (all a function of
        text knows) naming it as a user opens it from here instead."""
        where = shown(path)
        return PlanError(replace(p, file=where) if p.file == path.name else p for p in self.problems)


class UsageError(OrchestratorError):
    """Raised by the CLI and API entry points for arguments that make no sense."""

    exit_code = ExitCode.USAGE


class Refused(UsageError):
    """A request a server takes no further (a body too large, a signature that does not match, a
    route that is off): its HTTP ``status`` and one line."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.http_status = status
        self.error = error


class NotText(UsageError):
    """A value no file, process or JSON line can hold as text, from any door: bytes that are not
    UTF-8 (a command line's word, which Python reads with a surrogate for each such byte), a lone
    surrogate (JSON's ``"\\ud800"``), a NUL. ``check`` refuses one, naming ``what`` and where."""

    http_status = 422

    @classmethod
    def check(cls, what: str, text: str) -> None:
        """A ``NotText`` naming ``what`` when ``text`` is no text; nothing when it is."""
        fault = cls.fault(text)
        if fault is not None:
            raise cls(f"{what}: not text ({fault}) — give UTF-8 text; nothing was written")

    @staticmethod
    def fault(text: str) -> str | None:
        """What makes ``text`` no text, and where (``None``: it is text)."""
        if "\0" not in text:
            try:
                text.encode("utf-8")  # (in C: a surrogate is what it refuses)
                return None
            except UnicodeEncodeError:
                pass
        for at, char in enumerate(text, start=1):
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # (a byte Python could not decode as UTF-8: "surrogateescape")
                return f"a byte that is not UTF-8, 0x{code - 0xDC00:02x}, at character {at}"
            if 0xD800 <= code <= 0xDFFF:
                return f"a lone surrogate, U+{code:04X}, at character {at}"
            if code == 0:
                return f"a NUL at character {at}"
        return None  # pragma: no cover - what failed to encode is one of the above


class WorkspaceError(OrchestratorError):
    """Raised when the ``.orchestrator/`` workspace is missing or cannot be used."""

    exit_code = ExitCode.USAGE


class GitError(WorkspaceError):
    """Raised by ``orchestrator.git`` when git refuses (or is missing for) what the tool asked of
    it: the message is git's own last line, with the command that said it."""


class LockedError(OrchestratorError):
    """Raised by ``run``, ``render``, ``reset`` and ``aggregate`` when another live one holds the workspace lock."""

    exit_code = ExitCode.LOCKED
    http_status = 409
    rpc_code = -32001


class BackendUnavailableError(OrchestratorError):
    """Raised when a backend cannot be used at all (its CLI is missing or misconfigured)."""

    exit_code = ExitCode.USAGE


class ClusterError(OrchestratorError):
    """The cluster attempts would run on cannot run them: its scheduler does not answer, it has no
    worker, or no worker has an agent CLI or a resource a task needs."""

    exit_code = ExitCode.USAGE
    http_status = 503
    rpc_code = -32002


class NoAnswerError(OrchestratorError):
    """Raised by ``cancel`` and ``retry`` when the run going on did not answer in time: not the
    user's mistake, and not done (the run may still act on the request); and by every request to
    it (``approve``, ``budget`` too) when it did not let the request into its event log in time
    (nothing asked)."""

    exit_code = ExitCode.FAILED
    http_status = 504
    rpc_code = -32003


class NoOutputError(OrchestratorError):
    """Raised by ``output`` when the task it names has no output to print: it has not run, or its
    result is not a completed one (failed, skipped, cancelled...). Not bad usage: the task is the
    plan's, and may have one later."""

    exit_code = ExitCode.FAILED
    http_status = 404
    rpc_code = -32004


class AgentCallError(OrchestratorError):
    """Raised by ``plan`` and ``aggregate --agent`` when the one agent call they make fails."""

    exit_code = ExitCode.FAILED
    http_status = 502
    rpc_code = -32005


class OverBudget(OrchestratorError):
    """Raised by ``run`` (every door) when the forecast of what it would run is over its
    ``max_cost``: nothing started, and a person's word goes on (a higher budget, or
    ``--over-forecast``), as a task at its gate waits for one."""

    exit_code = ExitCode.HELD
    http_status = 402  # Payment Required: what it is for
    rpc_code = -32006


class InternalError(OrchestratorError):
    """A defect of ours, not the caller's: ``internal`` makes one of any unexpected exception, its
    traceback kept in a log file the line names."""

    exit_code = ExitCode.INTERNAL
    http_status = 500
    rpc_code = -32603  # JSON-RPC's "internal error"


def internal(exc: BaseException, where: str | os.PathLike[str] | None = None) -> InternalError:
    """An unexpected exception as one line: its traceback appended to ``errors.log`` in ``where``
    (a workspace's ``logs/``), else in the user's state directory (``$XDG_STATE_HOME/orchestrator``)."""
    import time
    import traceback

    from orchestrator import redaction

    folder = Path(where) if where is not None else _state_home()
    log = folder / "errors.log"
    text = redaction.text("".join(traceback.format_exception(exc)))  # (a value in a message: no secret kept)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} pid {os.getpid()}\n{text}")
        kept = f"its traceback is in {shown(log)}"
    except OSError:
        kept = "its traceback could not be kept"
    said = redaction.text(str(exc).strip().splitlines()[0])[:300] if str(exc).strip() else ""
    return InternalError(
        f"internal error (a defect of orchestrator's, not yours): {type(exc).__name__}{': ' + said if said else ''}"
        f" — {kept}; please report it"
    )


def _state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "orchestrator"


# What to do about a file the workspace needs that the system will not let us have, by errno.
_OS_HINTS: dict[int, str] = {
    errno.EACCES: "this user may not write there: fix its permissions, or use a workspace you can write",
    errno.EPERM: "the system refuses the change (permissions, or an immutable flag: lsattr shows it)",
    errno.EROFS: "the file system is read-only: use a workspace on a writable one",
    errno.ENOSPC: "the disk is full: free some space, then run the command again",
    errno.EDQUOT: "the disk quota is used up: free some space, then run the command again",
    errno.EEXIST: "something that is not a directory stands where a directory must be: move it aside",
    errno.ENOTDIR: "something that is not a directory stands where a directory must be: move it aside",
    errno.EISDIR: "a directory stands where a file must be: move it aside",
    errno.ENAMETOOLONG: "the path is too long: use a workspace with a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or lower max_parallel",
    errno.ENOENT: "a file or directory it needs is missing: check the workspace is whole, then run the command again",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f): raise the limit",
    errno.EIO: "the disk reported an I/O error: check it, then run the command again",
    errno.ELOOP: "a symlink stands where the orchestrator writes a file, and nothing is written through one: remove it",
}

# store's temporary names: ``.tmp-<name>.<pid>.<n>`` beside the file (or directory) they stand for.
_TEMP_NAME = re.compile(r"^\.tmp-(?P<name>.+)\.\d+\.\d+$")


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as a user at this directory names it: relative when it is under the current
    directory, else as it is (absolute), so that an error's ``file:line`` opens from here."""
    text = os.fspath(path)
    # (another drive on Windows, or a current directory deleted meanwhile: keep it as it is)
    with contextlib.suppress(ValueError, OSError):
        relative = os.path.relpath(text)
        if not relative.startswith(os.pardir):
            return relative
    return text


def workspace_error_from(exc: OSError) -> WorkspaceError | None:
    """The one-line ``WorkspaceError`` for an ``OSError`` about a file the command needed (a
    workspace that cannot be written, a full disk, a file where a directory must be), naming the
    file the user knows rather than a temporary one beside it; ``None`` when it names no file (a
    programming error, which keeps its traceback)."""
    if exc.filename is None:
        return None
    path = os.fsdecode(exc.filename)
    head, name = os.path.split(path)
    temp = _TEMP_NAME.match(name)
    if temp is not None:
        path = os.path.join(head, temp.group("name"))
    path = shown(path)
    reason = exc.strerror or type(exc).__name__
    hint = getattr(exc, "hint", None) or _OS_HINTS.get(exc.errno or 0, "")
    return WorkspaceError(f"{path}: {reason}" + (f" — {hint}" if hint else ""))


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C: a ``KeyboardInterrupt``, or the error Python makes of one that
    lands while a class is being made (a module imported when first needed defines dataclasses,
    and an interrupt in a field's ``__set_name__`` comes out as a ``RuntimeError`` caused by it)."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        if isinstance(found, KeyboardInterrupt):
            return True
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return False
