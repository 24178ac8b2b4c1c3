"""``opencode``: ``opencode run --format json --dir DIR --title TITLE [--model P/M] [--auto] [--session S]``.

The brief goes on stdin. ``--dir`` is the task's directory: opencode runs where ``$PWD`` says,
not where it was started, and the runner changes the directory without ``$PWD``. ``--title``
names the session after the task, which spares the request opencode otherwise makes of the
model to title it.

stdout is JSONL, one event a line as the agent goes: ``step_start``, ``text`` (``part.text``),
``tool_use`` (``part.tool``, ``part.state``: ``status``, ``input``, ``output`` or ``error``),
``step_finish`` (``part.reason``: ``stop`` for a last answer, ``tool-calls`` when it goes on;
``part.tokens``: ``input`` (without the cached), ``output``, ``reasoning``, ``cache.read``,
``cache.write``; ``part.cost``, dollars, from the model's price in opencode's config) and
``error`` (``error.name``, ``error.data``: ``message``, ``statusCode``, ``responseHeaders``,
``responseBody``). Every event carries ``sessionID``; ``--session`` continues one, and its
events count its own steps (tokens and cost cover the attempt). A log whose last step finished
``stop`` with no error after it is a finished task (``recover``).

Exit codes: 0, and 1 with an ``error`` event (an API error opencode retried and gave up on: a
429 after its ``retry-after`` five times, one without, such as a quota, after 2 to 32 s) or a
line on stderr ("Error: Session not found" for a ``--session`` it does not have).

A call its permissions say to ask about is refused headless ("permission requested: ...;
auto-rejecting" on stderr): the ``tool_use`` fails "The user rejected permission to use this
specific tool call." and the run ends there, exit 0. A call a rule denies fails "...a rule which
prevents you from using this specific tool call". A tool denied outright is not offered, and a
call of it becomes a call of the ``invalid`` tool ("Model tried to call unavailable tool
'write'"). Each is a refused call: the task fails as ``denied``, whatever the agent then says.
A tool that ran and failed is no refusal.

Unless it may only read, opencode runs behind the walls (``backends/guard``) that bubblewrap puts
up (``backends/fence``): its bash has no rule of opencode's that keeps a command out of a place,
and its permissions' path patterns would replace a person's own ``edit`` word were they given
(``OPENCODE_PERMISSION`` is merged over the config, a word under an object lost). A write the walls'
read-only file system stopped, a command's or a file tool's, is a refused call.
"""

from __future__ import annotations

import json
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
    head,
    json_event,
    json_lines,
    limits_for,
    modes_and_tools,
)
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.guard import BUBBLEWRAP, Guard, bubblewrap, fenced, job_walls, names_walled, refused_write
from orchestrator.backends.probe import Cli
from orchestrator.backends.refusals import denied, refusal
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.kinds import Presets
from orchestrator.plan.config.settings import Settings
from orchestrator.vocabulary import ErrorClass

TESTED = ("1.18.33", "1.18.33")  # the opencode versions this backend was tested with (tests/test_agents_opencode.py)
# What opencode's permissions may be set to for a task (``permission_mode``), in plain words.
PERMISSION_POWERS = {
    "default": "its opencode config decides; a call the config says to ask about is refused (headless, "
    "nobody can approve it). Risk: opencode's defaults let it edit files and run any command in its directory",
    "read-only": "it reads and searches files; edits, commands, web fetches and sub-agents are denied",
    "auto": "every call its config does not deny runs without asking (--auto). Risk: it can delete files, run "
    "any command and reach the network with your user's rights; only in a sandbox or a throwaway checkout",
}
PERMISSION_MODES = tuple(PERMISSION_POWERS)
# read-only: the permissions opencode takes from OPENCODE_PERMISSION, over its config's.
READ_ONLY = {"edit": "deny", "bash": "deny", "task": "deny", "webfetch": "deny"}
OPENCODE_ENV = {"OPENCODE_DISABLE_AUTOUPDATE": "1"}
OPENCODE_REMEDY = "permission_mode: auto, or a permission in its opencode config that allows it"
# What opencode answers a call it refused with (the tool_use's error, or the invalid tool's input).
_REFUSALS = ("rejected permission", "prevents you from using this specific tool call")
_UNAVAILABLE = "Model tried to call unavailable tool"
_WRITERS = frozenset({"apply_patch", "write", "edit", "patch"})  # its tools that write a file
_QUOTAS = frozenset({"insufficient_quota", "usage_limit_reached", "usage_not_included"})


def opencode_bin() -> str:
    return os.environ.get("ORCHESTRATOR_OPENCODE_BIN", "opencode")


class OpencodeObserver(Observer):
    """Reads opencode's events; keeps what the result record needs."""

    def __init__(self, resumed: str | None = None, walls: tuple[str, ...] = ()) -> None:
        self.resumed = resumed
        self.walls = walls  # the walled places' names (``Walls.names``)
        self._session: str | None = None
        self.texts: dict[str, list[str]] = {}  # each message's text parts, in order
        self.last_text: str | None = None  # the message that said something last
        self.tokens: dict[str, int] = {}
        self.cost: float | None = None
        self.steps = 0
        self.reason: str | None = None  # the last step's end: "stop" (an answer) or "tool-calls"
        self.refused: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None  # the last error event's ``error``
        self.after_error = False  # a step finished after the last error (opencode got past it)

    @property
    def session_id(self) -> str | None:
        return self._session

    def feed(self, line: bytes) -> None:
        event = json_event(line)
        if event is None:
            return
        if isinstance(event.get("sessionID"), str):
            self._session = event["sessionID"]
        part = _dict(event.get("part"))
        kind = event.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            message = str(part.get("messageID"))
            self.texts.setdefault(message, []).append(part["text"])
            self.last_text = message
        elif kind == "tool_use":
            self._tool(part)
        elif kind == "step_finish":
            self._step(part)
        elif kind == "error":
            error = event.get("error")
            self.error = error if isinstance(error, dict) else {"data": {"message": str(error)}}
            self.after_error = False

    def _tool(self, part: dict[str, Any]) -> None:
        state = _dict(part.get("state"))
        given = _dict(state.get("input"))
        words = {k: str(v) for k, v in given.items() if isinstance(v, str | int | float) and k != "error"}
        tool = str(part.get("tool"))
        if tool == "invalid" and str(given.get("error", "")).startswith(_UNAVAILABLE):
            self.refused.append(refusal(str(given.get("tool") or "?")))
        elif self._denied(tool, state):
            self.refused.append(refusal(tool, **words))

    def _denied(self, tool: str, state: dict[str, Any]) -> bool:
        """Whether a call was refused: by its permissions, or by the walls' read-only file system
        (a command's output says so; its file tools, only "Unknown: FileSystem.writeFile (PATH)")."""
        failed = state.get("status") == "error"
        said = f"{state.get('output') or ''} {state.get('error') or ''}"
        if failed and any(word in str(state.get("error", "")) for word in _REFUSALS):
            return True
        return refused_write(said, self.walls) or (failed and tool in _WRITERS and names_walled(said, self.walls))

    def _step(self, part: dict[str, Any]) -> None:
        self.steps += 1
        self.reason = str(part.get("reason") or "")
        self.after_error = True
        tokens = _dict(part.get("tokens"))
        cache = _dict(tokens.get("cache"))
        said = [n for n in (_count(tokens.get("output")), _count(tokens.get("reasoning"))) if n is not None]
        counts = {
            "input": tokens.get("input"),
            "output": sum(said) if said else None,  # (a step that says none spent none we know of)
            "cache_read": cache.get("read"),
            "cache_creation": cache.get("write"),
        }
        for key, value in counts.items():
            number = _count(value)
            if number is not None:
                self.tokens[key] = self.tokens.get(key, 0) + number
        cost = part.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost = round((self.cost or 0.0) + float(cost), 10)

    @property
    def answer(self) -> str:
        return "".join(self.texts.get(self.last_text or "", []))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class OpencodeBackend(Backend):
    name = "opencode"
    resumable = True
    access: ClassVar[Presets] = {"read": {"permission_mode": "read-only"}, "edit": {"permission_mode": "default"}}

    def simulated(self, text: str, session: str) -> str:
        part = {"messageID": "simulated"}
        return json_lines(
            {"type": "text", "sessionID": session, "part": {**part, "text": text}},
            {"type": "step_finish", "sessionID": session, "part": {**part, "reason": "stop"}},
        )

    def cli(self) -> Cli:
        return Cli(
            opencode_bin(),
            install="npm install -g opencode-ai (or set ORCHESTRATOR_OPENCODE_BIN)",
            keys=("OPENCODE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENCODE_CONFIG"),
            credentials=("~/.local/share/opencode/auth.json", "${XDG_DATA_HOME}/opencode/auth.json"),
            login="run `opencode auth login`, or name a provider and its key in opencode's config",
            tested=TESTED,
        )

    def powers(self, settings: Settings) -> str:
        mode = settings.permission_mode or "default"
        return f"permissions {mode}: {PERMISSION_POWERS.get(mode, '?')}"

    def guard(self, settings: Settings) -> Guard:
        if settings.permission_mode == "read-only":
            return Guard(True, "its edits and commands are denied (OPENCODE_PERMISSION)")
        if bubblewrap():
            return Guard(True, "it runs behind bubblewrap, which holds them read-only for every tool, bash included")
        held = "nothing holds its bash here (no rule of opencode's keeps a command out of a place)"
        return Guard(False, held, BUBBLEWRAP)

    def read_only(self, settings: Settings) -> bool:
        return settings.permission_mode == "read-only"  # (edits, commands and sub-agents denied by OPENCODE_PERMISSION)

    def check(self, settings: Settings) -> str | None:
        return modes_and_tools(
            settings,
            PERMISSION_MODES,
            "opencode's",
            "the opencode backend cannot restrict its tools by name, so tools would not restrict it; "
            "use permission_mode: read-only, or permissions in its opencode config, and remove tools",
        )

    def invocation(self, job: Job) -> Invocation:
        settings = job.settings
        argv = [opencode_bin(), "run", "--format", "json", "--dir", str(job.cwd)]
        argv += ["--title", f"{job.task.id} {job.task.title}".strip()]
        if settings.model:
            argv += ["--model", settings.model]
        if settings.permission_mode == "auto":
            argv.append("--auto")
        if job.resume_session:
            argv += ["--session", job.resume_session]
        env = {k: v for k, v in OPENCODE_ENV.items() if k not in settings.env}  # the plan's env wins
        if settings.permission_mode == "read-only":
            env["OPENCODE_PERMISSION"] = json.dumps(READ_ONLY)
        elif bubblewrap():  # (its bash: no rule of opencode's holds it)
            argv = fenced(argv, job_walls(job))
        return Invocation(tuple(argv), job.prompt, env=env, limits=limits_for(settings))

    def observer(self, job: Job) -> Observer:
        return OpencodeObserver(job.resume_session, tuple(job_walls(job).names()))

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        assert isinstance(observer, OpencodeObserver)
        return interpret_opencode(run, observer, head(stderr, 20_000)[0], limits_for(job.settings))

    def recover(self, settings: Settings, stdout: Path, stderr: Path) -> AgentResult | None:
        """opencode's last step says whether its agent answered: a log whose last step finished
        ``stop`` with no error after it is a finished task, whatever became of the process."""
        observer = OpencodeObserver()
        if not fed_from_log(observer, stdout) or observer.reason != "stop":
            return None
        result = interpret_opencode(ProcessRun(0, None, 0.0), observer, head(stderr, 20_000)[0], limits_for(settings))
        result.exit_code = None
        return result if result.completed else None


def _api_error(error: dict[str, Any]) -> tuple[str, ErrorClass, float | None, float | None]:
    """What an ``error`` event says: its words, class, the wait the API asked (``retry-after``)
    and when a usage limit lifts (the body's ``resets_at``)."""
    data = _dict(error.get("data"))
    message = " ".join(str(data.get("message") or error.get("name") or "error").split())
    status = data.get("statusCode") if isinstance(data.get("statusCode"), int) else None
    body: Any = {}
    if isinstance(data.get("responseBody"), str):
        try:
            body = json.loads(data["responseBody"])
        except ValueError:
            body = {}
    inner = _dict(_dict(body).get("error"))
    if error.get("name") == "ProviderAuthError" or status in (401, 403):
        return message, ErrorClass.AUTH, None, None
    if inner.get("type") in _QUOTAS or inner.get("code") in _QUOTAS:
        resets = inner.get("resets_at")
        reset = float(resets) if isinstance(resets, int | float) and not isinstance(resets, bool) else None
        return message, ErrorClass.USAGE_LIMIT, None, reset or reset_time(message)
    if status == 429:
        return message, ErrorClass.RATE_LIMIT, _wait(data.get("responseHeaders")), None
    return message, classify(message, status), None, reset_time(message)


def _wait(headers: Any) -> float | None:
    """The wait a 429's headers asked: ``retry-after-ms``, else ``retry-after`` in seconds."""
    if not isinstance(headers, dict):
        return None
    found = {str(k).lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(found[name]) / scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def interpret_opencode(run: ProcessRun, obs: OpencodeObserver, stderr: str, limits: Any = None) -> AgentResult:
    """The verdict on one opencode attempt: an error event, refused calls, then whether its
    agent's last step was an answer."""
    common: dict[str, Any] = {
        "text": obs.answer,
        "session_id": obs.session_id,
        "tokens": dict(obs.tokens) or None,
        "cost_usd": obs.cost,
        "cost_covers": "attempt",
        "turns": obs.steps or None,
        "exit_code": run.exit_code,
        "permission_denials": list(obs.refused),
    }
    if run.start_error:
        return AgentResult(False, error_class=ErrorClass.START, message=run.describe(limits), **common)
    if run.timed_out:
        kind = ErrorClass.TIMEOUT if run.timed_out == "timeout" else ErrorClass.HANG
        return AgentResult(False, error_class=kind, message=run.describe(limits), **common)
    last = " ".join(_plain(stderr).strip().splitlines()[-1:]).strip()
    if obs.resumed and "Session not found" in stderr:
        # The session to continue is gone: the next attempt starts afresh, with the whole brief.
        message = f"opencode could not continue session {obs.resumed}: {last}"
        return AgentResult(False, error_class=ErrorClass.AGENT_ERROR, message=message, **common)
    if obs.error is not None and not (obs.after_error and obs.reason == "stop"):
        message, error_class, wait, reset = _api_error(obs.error)
        return AgentResult(
            False, error_class=error_class, message=f"opencode: {message}", retry_after=wait, reset_at=reset, **common
        )
    if obs.refused:
        # Whatever the agent then claims, what it was refused was not done: never a success.
        return AgentResult(False, error_class=ErrorClass.DENIED, message=denied(obs.refused, OPENCODE_REMEDY), **common)
    if run.exit_code != 0:
        error_class = classify(last) if last else ErrorClass.EXIT
        message = f"opencode: {last}" if last else f"opencode {run.describe(limits)}"
        return AgentResult(False, error_class=error_class, message=message, reset_at=reset_time(last), **common)
    if obs.reason != "stop":
        said = "its last step asked for tools" if obs.steps else "it took no step"
        message = f"opencode ended before its agent answered ({said})"
        return AgentResult(False, error_class=ErrorClass.EXIT, message=message, **common)
    return AgentResult(True, **common)


def _plain(text: str) -> str:
    """``text`` without the terminal's colour codes opencode writes on stderr."""
    out: list[str] = []
    skip = False
    for char in text:
        if char == "\x1b":
            skip = True
        elif skip and char.isalpha():
            skip = False
        elif not skip:
            out.append(char)
    return "".join(out)
