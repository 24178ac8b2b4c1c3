"""The one narrow interface every backend implements, and the records that cross it.

A backend turns a ``Job`` (a task, its brief, the prompt with upstream results, settings) into an
``Invocation`` (argv, stdin, environment), and afterwards turns what the process did into an
``AgentResult``. CLI formats stop here: nothing above the backends knows them.

    job ──invocation()──▶ Invocation ──executor──▶ ProcessRun ──interpret()──▶ AgentResult
                                         │
                                  observer.feed(line)   (streamed stdout, e.g. claude's NDJSON)
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from orchestrator.backends.guard import Guard
from orchestrator.backends.probe import Cli
from orchestrator.executors.base import Limits, ProcessRun
from orchestrator.plan.config.kinds import Presets
from orchestrator.plan.config.profiles import Profile
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Task
from orchestrator.vocabulary import ErrorClass

Covers = Literal["session", "attempt"]


@dataclass(frozen=True, slots=True)
class Job:
    """Everything one attempt of one task needs."""

    task: Task
    settings: Settings
    brief: str  # the brief's body (as on disk, hand edits included)
    prompt: str  # brief + upstream results inline, what an agent receives on stdin ("" if unread)
    project_dir: Path
    workspace: Path
    attempt: int
    inputs: tuple[Path, ...] = ()  # upstream result files
    resume_session: str | None = None
    profile: Profile | None = None
    brief_name: str = "its brief"  # the brief's file as a person types it, for messages
    # The command the prompt tells the agent to call the channels with (``share``, ``note``,
    # ``discover``, ``sync``, ``context``), or None when it offers none.
    channels: str | None = None

    @property
    def cwd(self) -> Path:
        return (self.project_dir / self.settings.cwd).resolve() if self.settings.cwd else self.project_dir


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: tuple[str, ...]
    stdin: str | None  # text for stdin; None = /dev/null
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)


@dataclass(slots=True)
class AgentResult:
    """One result record, whatever the backend: the runner's only view of an attempt."""

    completed: bool
    text: str = ""
    error_class: ErrorClass | None = None
    message: str | None = None
    exit_code: int | None = None
    session_id: str | None = None
    cost_usd: float | None = None
    tokens: dict[str, int] | None = None
    turns: int | None = None
    reset_at: float | None = None  # usage limit: epoch seconds when work may go on
    retry_after: float | None = None  # rate limit: seconds the API asked us to wait
    permission_denials: list[Any] = field(default_factory=list)
    structured: Any = None
    # What ``cost_usd`` and ``tokens`` count when the attempt continued an agent session: the
    # session's running total ("session": claude's cost since 2.1.277, codex's tokens), which
    # ``run.books.SessionCosts`` makes the attempt's own, or this invocation's alone ("attempt").
    cost_covers: Covers = "session"
    tokens_cover: Covers = "attempt"
    # Once the runner has added it to the task's (``run.scheduler.TaskSpend``): ``cost_usd`` and
    # ``tokens`` are the task's in this run of it, and these what the attempt alone cost and spent.
    attempt_cost_usd: float | None = None
    attempt_tokens: dict[str, int] | None = None

    @property
    def retryable(self) -> bool:
        return not self.completed and self.error_class is not None and self.error_class.retryable


class CannotInvoke(Exception):
    """Raised by ``Backend.invocation`` when the job cannot be run as its brief stands (a shell
    task whose brief has no script, say): the attempt fails at once with this message."""


class Observer:
    """Watches one attempt's stdout lines as they arrive. The default ignores them."""

    def feed(self, line: bytes) -> None:
        """Called for each complete stdout line."""

    @property
    def session_id(self) -> str | None:
        return None


def json_event(line: bytes) -> dict[str, Any] | None:
    """One line of an agent's JSON event stream as a dict; anything else (log noise, a cut-off
    line, a JSON value that is not an object) is ``None``: parse leniently, never fail on a line."""
    line = line.strip()
    if not line.startswith(b"{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def json_lines(*events: Mapping[str, Any]) -> str:
    """``events`` as an agent's JSON event stream prints them: one object a line."""
    return "".join(json.dumps(event) + "\n" for event in events)


def tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of a text file (decoded leniently)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit * 4))
            data = handle.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")[-limit:]


def head(path: Path, limit: int) -> tuple[str, bool]:
    """The first ``limit`` characters of a text file and whether there was more."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit * 4 + 1)
            more = bool(handle.read(1))
    except OSError:
        return "", False
    text = data.decode("utf-8", errors="replace")
    return text[:limit], more or len(text) > limit


class Backend(ABC):
    """Turns a job into a process and a process into a result. One instance serves a whole run."""

    name: ClassVar[str]
    #: Whether ``--resume <session>`` can continue an interrupted attempt.
    resumable: ClassVar[bool] = False
    #: Whether ``invocation`` reads ``job.prompt``. When it does not, the runner leaves the prompt
    #: empty rather than read every upstream result file into it for nothing (a subclass of a
    #: backend that sets it False, and reads the prompt, sets it back to True).
    reads_prompt: ClassVar[bool] = True
    #: What an Access cell gives a task on this backend: for each word (``read``: it reads and
    #: changes nothing; ``edit``: it edits files in its directory) the settings it replaces the
    #: plan's and the profile's with. None: an Access cell does not limit it (``validate`` says so).
    access: ClassVar[Presets] = {}
    #: Whether its task is a script it runs (its Command cell, else the first code block of its
    #: Task Details; never its description): what it prints is a program's output, markdown only
    #: when it plainly is, and no agent is there to resolve a merge conflict (a person does).
    runs_script: ClassVar[bool] = False
    #: Whether its agent CLI offers a hook headless to ask a person about a call its permissions
    #: would refuse (``ask: true``; claude's ``--permission-prompt-tool``). An agent backend that
    #: does not refuses ``ask: true`` (``asks_problem``); a script's has nothing to ask.
    asks: ClassVar[bool] = False
    #: Whether a run from outside runs its attempts in a sandbox (``executors/sandbox``): a program of
    #: the plan's (shell, command) has no permissions of its own; an agent CLI has its own
    #: (its tools, its Access) and, for claude and codex, a sandbox of its own.
    sandboxed: ClassVar[bool] = False
    #: What ``init --backend NAME`` writes in the plan's ``command`` setting, for a plan of it to
    #: run as it stands (the command backend's stand-in, until the plan names the real program).
    stand_in: ClassVar[str] = ""

    @abstractmethod
    def invocation(self, job: Job) -> Invocation:
        """The command to run for this attempt: what its brief says (``job.brief``, as on disk,
        hand edits included). Raises ``CannotInvoke`` with a one-line reason when it cannot be."""

    def observer(self, job: Job) -> Observer:
        return Observer()

    def answering(self, schema: str) -> Backend | None:
        """This backend made to answer with a JSON object that matches the JSON schema ``schema``,
        its CLI holding it to it (claude's ``--json-schema``), or None when its CLI cannot: then
        the prompt asks for it (``orchestrator plan``)."""
        return None

    def simulated(self, text: str, session: str) -> str:
        """What its command prints for an answer ``text`` in agent session ``session``: the
        made-up success a simulating executor (the fake) writes, in the format ``interpret``
        reads. The default: the text, as a plain process prints it."""
        return text + "\n"

    @abstractmethod
    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        """What the attempt achieved, from how the process ended and what it wrote."""

    def recover(self, settings: Settings, stdout: Path, stderr: Path) -> AgentResult | None:
        """What an attempt's logs alone prove it achieved, when the runner that started it died
        before it could read the attempt's end (a kill -9; the agent may have finished since).
        Only an outcome the output itself states counts: a completed result, or None (no such
        evidence, or not a success: the task runs again). The default: None. A plain process's
        log never says how it exited."""
        return None

    def check(self, settings: Settings) -> str | None:
        """Why this backend cannot run at all with these settings (a setting it does not take), or None."""
        return None

    def asks_problem(self, settings: Settings) -> str | None:
        """Why ``ask: true`` cannot be: an agent CLI with no hook to ask a person while it runs."""
        if not settings.ask or self.asks or self.cli() is None:
            return None
        return (
            f"ask: true, and {self.name}'s CLI offers no hook to ask a person about a call while it runs "
            "headless (claude's --permission-prompt-tool is the one there is): drop ask for its tasks"
        )

    def cli(self) -> Cli | None:
        """The agent CLI this backend starts, for ``doctor`` and a run's preflight (None: none to
        install: a shell script, the plan's own command)."""
        return None

    def powers(self, settings: Settings) -> str:
        """What an agent started with ``settings`` may do, and the risk, in plain words."""
        return "not said by this backend: it runs with your user's rights unless its own settings limit it"

    def guard(self, settings: Settings) -> Guard | None:
        """What keeps an agent started with ``settings`` out of the walls (``backends/guard``: the
        workspace, the project's ``.claude/`` and ``.mcp.json``) on this machine, or that nothing
        does and what to install; None for a backend that starts no agent (a script is the plan's
        own code)."""
        return None

    def read_only(self, settings: Settings) -> bool:
        """Whether an agent started with ``settings`` can change nothing (no edit, no command that
        writes): its answer is all its work, so the cache may give it back (``run/resume/reuse``). Only
        what the settings themselves guarantee counts; the default: it may change things."""
        return False

    def check_task(self, task: Task, settings: Settings, profile: Profile | None = None) -> tuple[str, str] | None:
        """Why ``task`` (with ``settings`` and its ``profile``) cannot run on this backend as the
        plan states it, and what to do about it (``validate`` asks, before any brief is rendered),
        or None."""
        return None


def fed_from_log(observer: Observer, log: Path) -> bool:
    """Feed ``observer`` every line of an attempt's stdout log, as it would have been fed live
    (``recover``); False when the log cannot be read."""
    try:
        with log.open("rb") as lines:
            for line in lines:
                observer.feed(line)
    except OSError:
        return False
    return True


def limits_for(settings: Settings) -> Limits:
    return Limits(
        timeout=settings.timeout,
        inactivity=settings.inactivity_timeout,
        grace=settings.kill_grace,
        log_cap=settings.log_cap,
    )


OUTPUT_CAP = 1_000_000  # characters of output kept in a result file; the log holds the rest
_OUTPUT_BYTES = OUTPUT_CAP * 4  # the most those characters take in UTF-8


class OutputKept(Observer):
    """A plain process's stdout as it comes, up to what a result holds: its result is read from
    here when ``log_cap`` cut the log shorter (the cap is the log's, never the result's that the
    task's dependents read). Used only where the cap is below what a result holds."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.size = 0
        self.more = False

    def feed(self, line: bytes) -> None:
        if self.more:
            return
        if self.size + len(line) + 1 > _OUTPUT_BYTES:
            self.more = True
            return
        self.lines.append(line.removesuffix(b"\n"))  # (a log replayed gives its lines' ends)
        self.size += len(line) + 1

    def text(self, total: int) -> str:
        """What was kept, decoded: the lines with their ends (``total``: the bytes the stream
        carried, which says whether the last line had one)."""
        data = b"\n".join(self.lines)
        if self.more or len(data) + 1 == total:
            data += b"\n"
        return data.decode("utf-8", errors="replace")


def kept_output(settings: Settings) -> Observer:
    """The observer of a plain process: ``OutputKept`` where ``log_cap`` may cut its log short of
    what its result holds, else one that keeps nothing (the log has it all)."""
    cap = settings.log_cap
    return OutputKept() if cap is not None and cap < _OUTPUT_BYTES else Observer()


def process_result(
    run: ProcessRun, stdout: Path, stderr: Path, limits: Limits, observer: Observer | None = None
) -> AgentResult:
    """The plain-process verdict shared by ``shell`` and ``command``: exit status is the truth.
    Its output is its stdout log's, or where ``log_cap`` cut the log, what ``observer`` kept."""
    cap = limits.log_cap
    if isinstance(observer, OutputKept) and cap is not None and run.stdout_bytes > cap:
        text = observer.text(run.stdout_bytes)
        more = observer.more or len(text) > OUTPUT_CAP
        text = text[:OUTPUT_CAP]
    else:
        text, more = head(stdout, OUTPUT_CAP) if run.stdout_bytes else ("", False)  # no output: no log file
    if more:
        where = (
            f"its log {stdout.name} kept its first {cap:,} bytes of {run.stdout_bytes:,} (log_cap): the rest is gone"
            if cap is not None and run.stdout_bytes > cap
            else f"the full output is in {stdout.name}"
        )
        text += f"\n\n… output truncated at {OUTPUT_CAP:,} characters; {where}\n"
    if run.ok:
        return AgentResult(True, text=text, exit_code=0)
    if run.start_error:
        error = ErrorClass.START
    elif run.timed_out == "timeout":
        error = ErrorClass.TIMEOUT
    elif run.timed_out == "inactivity":
        error = ErrorClass.HANG
    else:
        error = ErrorClass.EXIT
    return AgentResult(False, text=text, error_class=error, message=run.describe(limits), exit_code=run.exit_code)


def modes_and_tools(settings: Settings, modes: tuple[str, ...], named: str, no_tools: str) -> str | None:
    """``Backend.check`` of an agent CLI whose permission modes are ``modes`` (``named``: how its
    message calls them, "codex's sandboxes (-s)") and that cannot be given a list of tools
    (``no_tools``: what to do instead): why it cannot run with ``settings``, or None."""
    from orchestrator.plan.config.values import suggest

    mode = settings.permission_mode
    if mode is not None and mode not in modes:
        return f"permission_mode {mode!r} is not one of {named}{suggest(mode, modes)}: {', '.join(modes)}"
    return no_tools if settings.tools is not None else None
