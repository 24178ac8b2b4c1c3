"""``codex``: ``codex exec --json --skip-git-repo-check [-m M] (-s read-only | -c PROFILE...) [resume THREAD] -``,
prompt on stdin.

A task that may write runs in a permission profile of codex's own, given on the command line
(``codex_config.walled_profile``): its sandbox (``workspace-write`` or ``danger-full-access``)
with the walls (``backends/guard``: the workspace, the project's ``.claude/`` and ``.mcp.json``)
read-only, for its commands and its patches alike.

stdout is JSONL: ``thread.started{thread_id}``, ``item.completed{item:{type:"agent_message", text}}``,
``turn.completed{usage}``, ``turn.failed{error:{message}}`` and ``error{message}``. Codex reports
no cost; its ``usage`` (``input_tokens`` with the ``cached_input_tokens`` in them,
``output_tokens``) is recorded as ``input`` (less the cached), ``cache_read`` and ``output``, and
is the thread's running total: a resumed thread's counts the attempts before
(``tokens_cover="session"``: the runner keeps the attempt's own).

An ``error`` event is not always the end: codex prints one for each retry of a dropped stream
("Reconnecting... 1/5 (...)", its StreamError) and the turn may then complete. So an error a
later ``turn.completed`` follows was overcome; one after the last completed turn (or with none)
fails the task. A call codex refused (a command that asked to leave the sandbox, a write or a
patch the sandbox stopped) leaves no item in the JSON at all: only the thread's session file
tells it (``codex_rollout``), and the task fails as ``denied``, whatever the agent then says. So
does a ``command_execution`` or ``file_change`` item that completes ``"status": "declined"``, and
a command that ran ``failed`` with what codex itself takes for its sandbox stopping it
(``sandbox_stopped``: a write the read-only sandbox stopped says "Read-only file system"). Which
of the two a stopped command leaves is a race in codex: one that fails within 150 ms of its start
is refused before its item begins, a slower one (a loaded machine, a real model's pace) was begun
and ends ``failed``; the model is told the same either way. A command that failed for its own
reasons (``grep`` finding nothing) ran: the agent saw that. A log whose last completed turn no
error follows is a finished task (``recover``). ``resume THREAD`` continues an interrupted
attempt's thread; an id codex no longer has starts a new thread silently, which fails the
attempt (the short "go on" prompt alone would be all the new thread knew). Offline it can retry
forever, so the runner's timeouts are what stop it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.backends.base import (
    AgentResult,
    Backend,
    Invocation,
    Job,
    Observer,
    fed_from_log,
    json_event,
    json_lines,
    limits_for,
    modes_and_tools,
)
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.codex_config import provider_login, walled_profile
from orchestrator.backends.codex_rollout import home_of, read_rollout
from orchestrator.backends.guard import Guard, job_walls, refused_write
from orchestrator.backends.probe import Cli
from orchestrator.backends.refusals import denied, refusal
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.kinds import Presets
from orchestrator.plan.config.settings import Settings
from orchestrator.vocabulary import ErrorClass


class CodexObserver(Observer):
    def __init__(
        self, resumed: str | None = None, sandbox: str = "workspace-write", walls: tuple[str, ...] = ()
    ) -> None:
        self.resumed = resumed  # the thread the attempt was asked to continue
        self.sandbox = sandbox  # codex exec -s: what its commands ran in
        self.walls = walls  # the walled places' names (``Walls.names``)
        self.thread_id: str | None = None
        self.messages: list[str] = []
        self.usage: dict[str, int] = {}
        self.turns = 0
        # Errors since the last completed turn: those before it were retries codex got past.
        self.errors: list[str] = []
        self.completed = False
        self.denials: list[dict[str, Any]] = []  # the calls codex declined to run

    @property
    def session_id(self) -> str | None:
        return self.thread_id

    def feed(self, line: bytes) -> None:
        event = json_event(line)
        if event is None:
            return
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = event.get("thread_id") or self.thread_id
        elif kind == "item.completed":
            item = event.get("item")
            if not isinstance(item, dict):
                return
            if item.get("type") in ("agent_message", "assistant_message") and item.get("text"):
                self.messages.append(str(item["text"]))
            elif item.get("status") == "declined" or sandbox_stopped(item, self.sandbox, self.walls):
                self._declined(item)
        elif kind == "turn.completed":
            self.turns += 1
            self.completed = True
            self.errors.clear()
            # The thread's running total (codex counts it from its own totals), so the last one.
            usage = event.get("usage")
            if isinstance(usage, dict):
                self.usage = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
        elif kind == "turn.failed":
            self.completed = False
            error = event.get("error")
            self.errors.append(str((error.get("message") if isinstance(error, dict) else error) or "turn failed"))
        elif kind == "error":
            self.errors.append(str(event.get("message") or "error"))

    def _declined(self, item: dict[str, Any]) -> None:
        if item.get("type") == "command_execution":
            self.denials.append(refusal("command", command=str(item.get("command") or "")))
        elif item.get("type") == "file_change":
            changes = item.get("changes")
            paths = [str(c.get("path")) for c in changes if isinstance(c, dict)] if isinstance(changes, list) else []
            self.denials.append(refusal("patch", path=", ".join(paths)))


# What codex takes for its sandbox having stopped a command (codex-rs's is_likely_sandbox_denied,
# which decides what it refuses): one of these in what a command printed as it failed...
SANDBOX_WORDS = (
    "operation not permitted",
    "permission denied",
    "read-only file system",
    "seccomp",
    "sandbox",
    "landlock",
    "failed to write file",
)
NOT_THE_SANDBOX = (2, 126, 127)  # ...else not these exits (a shell's misuse, not executable, not found)
KILLED_BY_SECCOMP = 128 + 31  # ...but a SIGSYS, seccomp's


def sandbox_stopped(item: dict[str, Any], sandbox: str, walls: tuple[str, ...] = ()) -> bool:
    """Whether a ``command_execution`` is one codex's sandbox stopped: one that ended ``failed``
    as codex itself judges it when it refuses a command before its item begins (so that the same
    command gets the same verdict whichever side of codex's race it fell), and one, failed or
    not, whose write the walls refused (a command that went on after it, ``touch x; echo done``,
    exits 0). With ``danger-full-access`` the walls are codex's only sandbox."""
    if item.get("type") != "command_execution":
        return False
    said = str(item.get("aggregated_output") or "")
    if refused_write(said, walls):
        return True
    if item.get("status") != "failed" or sandbox == "danger-full-access":
        return False
    code = item.get("exit_code")
    if not isinstance(code, int) or isinstance(code, bool) or code == 0:
        return False
    if any(word in said.lower() for word in SANDBOX_WORDS):
        return True
    return code == KILLED_BY_SECCOMP


# What lets a refused call run: codex takes no list of tools, only a sandbox.
CODEX_REMEDY = "permission_mode: a sandbox that allows it, such as workspace-write"

# What each codex exec -s mode lets a headless agent do, in plain words.
SANDBOX_POWERS = {
    "read-only": "it reads files and runs commands that only read; it writes nothing and has no network",
    "workspace-write": "it edits files and runs commands in its working directory, no network. Risk: "
    "it can rewrite or delete anything in that directory",
    "danger-full-access": "no sandbox but the walls: any command, any file, the network, with your user's rights. "
    "Risk: only in a sandbox or a throwaway checkout",
}
SANDBOX_MODES = tuple(SANDBOX_POWERS)  # codex exec -s


TESTED = ("0.169.0", "0.169.0")  # the codex versions this backend was tested with (tests/test_agents_codex.py)


def sandbox_of(settings: Settings) -> str:
    """The sandbox a task's commands run in (``codex exec -s``)."""
    return settings.permission_mode or "workspace-write"


def codex_bin() -> str:
    return os.environ.get("ORCHESTRATOR_CODEX_BIN", "codex")


class CodexBackend(Backend):
    name = "codex"
    resumable = True
    access: ClassVar[Presets] = {
        "read": {"permission_mode": "read-only"},
        "edit": {"permission_mode": "workspace-write"},
    }

    def simulated(self, text: str, session: str) -> str:
        return json_lines(
            {"type": "thread.started", "thread_id": session},
            {"type": "item.completed", "item": {"type": "agent_message", "text": text}},
            {"type": "turn.completed"},
        )

    def cli(self) -> Cli:
        return Cli(
            codex_bin(),
            install="npm install -g @openai/codex (or set ORCHESTRATOR_CODEX_BIN)",
            keys=("OPENAI_API_KEY", "CODEX_API_KEY"),
            credentials=("${CODEX_HOME}/auth.json", "~/.codex/auth.json"),
            login="log in with `codex login` or set OPENAI_API_KEY",
            tested=TESTED,
            configured=provider_login,
        )

    def powers(self, settings: Settings) -> str:
        mode = sandbox_of(settings)
        return f"sandbox {mode} (codex exec -s): {SANDBOX_POWERS.get(mode, '?')}"

    def guard(self, settings: Settings) -> Guard:
        if sandbox_of(settings) == "read-only":
            return Guard(True, "its read-only sandbox writes nothing anywhere")
        return Guard(True, "its sandbox, in a permission profile of its own, holds them read-only for its commands "
                     "and patches")  # fmt: skip

    def read_only(self, settings: Settings) -> bool:
        return settings.permission_mode == "read-only"

    def check(self, settings: Settings) -> str | None:
        return modes_and_tools(
            settings,
            SANDBOX_MODES,
            "codex's sandboxes (-s)",
            "codex cannot be given a list of tools, so tools would not restrict it; "
            "restrict it with permission_mode: read-only (or workspace-write), and remove tools",
        )

    def invocation(self, job: Job) -> Invocation:
        settings = job.settings
        argv = [codex_bin(), "exec", "--json", "--skip-git-repo-check"]
        if settings.model:
            argv += ["-m", settings.model]
        sandbox = sandbox_of(settings)
        if sandbox == "read-only" or sandbox not in SANDBOX_MODES:
            argv += ["-s", sandbox]
        else:
            walls = job_walls(job)
            for place in walls.opened():  # (a place open inside a closed one must be there to bind)
                place.mkdir(parents=True, exist_ok=True)
            argv += walled_profile(sandbox, walls)
        if job.resume_session:
            argv += ["resume", job.resume_session]
        argv.append("-")
        return Invocation(tuple(argv), job.prompt, limits=limits_for(settings))

    def observer(self, job: Job) -> Observer:
        return CodexObserver(job.resume_session, sandbox_of(job.settings), tuple(job_walls(job).names()))

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        assert isinstance(observer, CodexObserver)
        _refused(observer, job.settings)
        return interpret_codex(run, observer, limits_for(job.settings))

    def recover(self, settings: Settings, stdout: Path, stderr: Path) -> AgentResult | None:
        """codex states a finished task in its log: a ``turn.completed`` event, no ``turn.failed``
        or ``error`` event after it (one before it was a retry codex got past), and an answer (its
        last ``agent_message``): the rule ``interpret`` applies (the calls it refused from its
        session file, as there)."""
        observer = CodexObserver(sandbox=sandbox_of(settings))
        if not fed_from_log(observer, stdout) or not observer.completed or observer.errors or not observer.messages:
            return None
        _refused(observer, settings)
        # Its exit status is not known: the log decides, as interpret does of a turn that completed.
        result = interpret_codex(ProcessRun(0, None, 0.0), observer, limits_for(settings))
        result.exit_code = None
        return result if result.completed else None


def _refused(observer: CodexObserver, settings: Settings) -> None:
    """Add to ``observer`` what codex's JSON does not show, from the thread's session file
    (``codex_rollout``), when this machine has it: the calls codex refused, and the thread's
    tokens when the turn failed before ``turn.completed`` told them."""
    found = read_rollout(home_of(settings.env), observer.thread_id)
    if found is None:
        return
    observer.denials += found.refused
    if not observer.usage:
        observer.usage = dict(found.usage)


def codex_tokens(usage: dict[str, int]) -> dict[str, int] | None:
    """codex's ``usage`` under the record's keys (claude's), so that their sum is what was spent:
    its ``input_tokens`` include the ``cached_input_tokens`` (codex's own ``non_cached_input`` is
    the one less the other), so ``input`` is the input not read from the cache."""
    if not usage:
        return None
    cached = max(0, usage.get("cached_input_tokens", 0))
    return {
        "input": max(0, usage.get("input_tokens", 0) - cached),
        "output": max(0, usage.get("output_tokens", 0)),
        "cache_read": cached,
    }


def interpret_codex(run: ProcessRun, obs: CodexObserver, limits: Any = None) -> AgentResult:
    common: dict[str, Any] = {
        "text": obs.messages[-1] if obs.messages else "",
        "session_id": obs.thread_id,
        "tokens": codex_tokens(obs.usage),
        "tokens_cover": "session",
        "turns": obs.turns or None,
        "exit_code": run.exit_code,
        "permission_denials": list(obs.denials),
    }
    if run.start_error:
        return AgentResult(False, error_class=ErrorClass.START, message=run.describe(limits), **common)
    if run.timed_out:
        return AgentResult(
            False,
            error_class=ErrorClass.TIMEOUT if run.timed_out == "timeout" else ErrorClass.HANG,
            message=run.describe(limits),
            **common,
        )
    if obs.resumed and obs.thread_id and obs.thread_id != obs.resumed:
        # codex started a new thread: the one to continue is gone, and the new one was told only
        # to go on. The next attempt starts afresh, with the whole brief.
        message = f"codex did not continue thread {obs.resumed} (it started {obs.thread_id}): it no longer has it"
        return AgentResult(False, error_class=ErrorClass.AGENT_ERROR, message=message, **common)
    if obs.errors:
        message = obs.errors[-1]
        return AgentResult(
            False, error_class=classify(message), message=f"codex: {message}", reset_at=reset_time(message), **common
        )
    if run.exit_code == 0 and obs.completed:
        if obs.denials:
            # Whatever the agent then claims, what it was refused was not done: never a success.
            message = denied(obs.denials, CODEX_REMEDY)
            return AgentResult(False, error_class=ErrorClass.DENIED, message=message, **common)
        return AgentResult(True, **common)
    return AgentResult(
        False, error_class=ErrorClass.EXIT, message=f"codex: {run.describe(limits)} without a completed turn", **common
    )
