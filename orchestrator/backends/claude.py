"""``claude``: the Claude Code CLI in print mode, streaming JSON events (its command line:
``claude_line``). An agent that may write is given ``--settings`` that keep it out of the
workspace and the project's claude files (``backends/guard``): deny rules for every tool that
writes, and its sandbox for its commands (``claude_permissions.walled``).

The brief goes on stdin, which is closed after it (an open empty pipe makes claude wait). stdout is
NDJSON: ``system/init`` (``session_id``), ``assistant``/``user`` messages, and a final ``result``
with ``is_error``, ``subtype``, ``result``, ``total_cost_usd``, ``usage``, ``num_turns``,
``permission_denials`` and ``api_error_status`` (``total_cost_usd`` of a resumed session: the whole
session's since claude 2.1.277, the invocation's own before; ``system/init`` names the version,
``claude_code_version``). ``is_error`` is the truth: API errors arrive as
``subtype: "success"`` with ``is_error: true``. Every event is output, so every event resets the
runner's inactivity watchdog; ``stream_event`` lines (partial messages) arrive as a message is
generated, so a long answer is not taken for a hang.

``permission_denials`` lists only the calls a permission rule, mode or hook refused. A call of a
tool the agent was not given (``--tools``, ``--disallowedTools``, a settings file's deny) is
answered in a ``user`` event, a ``tool_result`` with ``is_error`` and ``<tool_use_error>Error: No
such tool available: Write...``, and is refused all the same; so is a command claude's sandbox
(its settings' ``sandbox``) stopped, which the event's ``tool_result_meta`` marks, and a command
whose write the walls' read-only file system refused (``guard.refused_write``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.backends.base import (
    AgentResult,
    Backend,
    CannotInvoke,
    Covers,
    Invocation,
    Job,
    Observer,
    fed_from_log,
    head,
    json_event,
    json_lines,
    limits_for,
)
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.claude_line import argv_fault, claude_argv, claude_bin
from orchestrator.backends.claude_permissions import (
    asking_environment,
    asking_limits,
    check_permissions,
    claude_guard,
    claude_powers,
    only_reading,
    walled,
)
from orchestrator.backends.guard import Guard, job_walls, refused_write
from orchestrator.backends.probe import Cli, agent_environment, version_of
from orchestrator.backends.refusals import denied
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.kinds import Presets
from orchestrator.plan.config.profiles import Profile
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Task
from orchestrator.vocabulary import ErrorClass

# claude retries failed API calls 10 times by default (minutes against a dead API, 401 included);
# two quick ones absorb a blip inside the session, then our retry policy takes over.
CLAUDE_ENV = {
    "CLAUDE_CODE_MAX_RETRIES": "2",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}
LOGIN_HINT = "log in with `claude` (then /login) or set ANTHROPIC_API_KEY"
# The claude versions this backend was tested with (tests/test_agents_claude.py runs both), and the
# first whose result counts a resumed session's whole cost in total_cost_usd (2.1.276 and before
# count the invocation's own: found by bisecting the releases against tests/fakeapi.py).
TESTED = ("2.1.197", "2.1.329")
SESSION_COST_SINCE = (2, 1, 277)
CLAUDE_REMEDY = "tools, allowed_tools, permission_mode"  # what lets a refused call run


class ClaudeObserver(Observer):
    """Reads claude's event stream as it arrives; keeps only what the result record needs."""

    def __init__(self, walls: tuple[str, ...] = ()) -> None:
        self.walls = walls  # the walled places' names (``Walls.names``): a refused write names one
        self._session: str | None = None
        self.result: dict[str, Any] | None = None
        self.events = 0
        self.last_text = ""
        self.tools: list[str] = []
        self.limit_reset: float | None = None  # a usage limit's reset time (rate_limit_event)
        self.limit_rejected = False
        self.retry_delay: float | None = None  # seconds claude last waited before re-sending (api_retry)
        self.calls: dict[str, tuple[str, Any]] = {}  # each tool_use's id: its tool and input, in order
        self.refused: list[dict[str, Any]] = []  # calls claude answered with a refusal (``_refused``)
        self.version: str | None = None  # claude's own, as its system/init event says
        self.usage: dict[str, dict[str, int]] = {}  # each message's usage, as its assistant events last said

    @property
    def session_id(self) -> str | None:
        return self._session

    def feed(self, line: bytes) -> None:
        event = json_event(line)
        if event is None:
            return
        self.events += 1
        session = event.get("session_id")
        if isinstance(session, str) and session:
            self._session = session
        kind = event.get("type")
        if kind == "result":
            self.result = event
        elif kind == "system" and event.get("subtype") == "init":
            version = event.get("claude_code_version")
            self.version = str(version) if isinstance(version, str) else self.version
        elif kind == "system" and event.get("subtype") == "api_retry":
            # claude waits what the API asked (retry-after) before each of its own retries: when
            # it gives up, that is the least the next attempt must wait.
            # (only a rate limit's wait: a wait after a 529 or a network error long before does
            # not bind a later attempt)
            delay = event.get("retry_delay_ms")
            limited = event.get("error_status") == 429 or event.get("error") == "rate_limit"
            self.retry_delay = delay / 1000 if limited and isinstance(delay, int | float) and delay >= 0 else None
        elif kind == "rate_limit_event":
            info = event.get("rate_limit_info") or {}
            if isinstance(info, dict) and info.get("status") == "rejected":
                self.limit_rejected = True
                resets = info.get("resetsAt")
                if isinstance(resets, int | float):
                    self.limit_reset = float(resets)
        elif kind == "assistant":
            message = event.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            used = _tokens(message.get("usage")) if isinstance(message, dict) else None
            if used:  # (what an attempt stopped before its result event spent, as far as it was told)
                self.usage[str(message.get("id"))] = used  # type: ignore[union-attr]
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "text" and block.get("text"):
                    self.last_text = str(block["text"])
                elif isinstance(block, dict) and block.get("type") == "tool_use":
                    self.tools.append(str(block.get("name")))
                    self.calls[str(block.get("id"))] = (str(block.get("name")), block.get("input"))
        elif kind == "user":
            self._refused(event)

    def _refused(self, event: dict[str, Any]) -> None:
        """The calls a ``user`` event answers with a refusal: a tool the agent was not given
        (``No such tool available``), a call claude marks rejected (``tool_result_meta``'s
        ``permission_decision``: a permission rule, a mode, a hook), which ``permission_denials``
        lists too (``_refusals`` keeps each call once), or a command its sandbox stopped from
        doing something (``remedy: {kind: sandbox_violation}``, with ``<sandbox_violations>`` in
        its output: the command ran, the sandbox refused it the network or a path)."""
        message = event.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        found: dict[str, str] = {}  # each refused call's tool_use id: its tool, as the refusal names it
        for block in content if isinstance(content, list) else []:
            named = _unavailable(block)
            if named is not None:
                found[str(block.get("tool_use_id"))] = named
            elif self._walled(block):
                found[str(block.get("tool_use_id"))] = "Bash"
        meta = event.get("tool_result_meta")
        for entry in meta if isinstance(meta, list) else []:
            decision = entry.get("permission_decision") if isinstance(entry, dict) else None
            remedy = entry.get("remedy") if isinstance(entry, dict) else None
            if (isinstance(decision, dict) and decision.get("decision") == "reject") or (
                isinstance(remedy, dict) and remedy.get("kind") == "sandbox_violation"
            ):
                found.setdefault(str(entry.get("id")), "?")
        known = {entry["tool_use_id"] for entry in self.refused}
        for call, named in found.items():  # (in the calls' order: ``_refusals`` sorts them)
            if call not in known:
                tool, given = self.calls.get(call, (named, {}))
                entry = {"tool_name": tool, "tool_use_id": call, "tool_input": given if isinstance(given, dict) else {}}
                self.refused.append(entry)

    def _walled(self, block: Any) -> bool:
        """Whether a ``tool_result`` is a command's whose write the walls refused: the sandbox
        gave it a read-only file system there, which claude takes for an ordinary failure."""
        if not (isinstance(block, dict) and block.get("type") == "tool_result"):
            return False
        call = self.calls.get(str(block.get("tool_use_id")))
        return call is not None and call[0] == "Bash" and refused_write(_text(block.get("content")), self.walls)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


# claude's answer to a call of a tool the agent was not given (not in --tools, or in
# --disallowedTools): its own error, never a tool's output (a failing command's begins "Exit code").
_NO_SUCH_TOOL = re.compile(r"\s*<tool_use_error>Error: No such tool available: ([^\s.<]+)")


def _unavailable(block: Any) -> str | None:
    """The tool a ``tool_result`` block says the agent does not have, or ``None`` for any other
    result (an ordinary tool error included: a Read of a missing file, a failing command)."""
    if not (isinstance(block, dict) and block.get("type") == "tool_result" and block.get("is_error")):
        return None
    found = _NO_SUCH_TOOL.match(_text(block.get("content")))
    return found.group(1) if found else None


class ClaudeBackend(Backend):
    name = "claude"
    resumable = True
    asks = True
    access: ClassVar[Presets] = {
        "read": {"tools": ("Read", "Grep", "Glob"), "allowed_tools": ()},
        "edit": {"permission_mode": "acceptEdits"},
    }

    def __init__(self, *, json_schema: str | None = None) -> None:
        self.json_schema = json_schema

    def answering(self, schema: str) -> ClaudeBackend:
        return ClaudeBackend(json_schema=schema)

    def simulated(self, text: str, session: str) -> str:
        return json_lines(
            {"type": "system", "subtype": "init", "session_id": session},
            {"type": "result", "subtype": "success", "is_error": False, "result": text, "session_id": session},
        )

    def invocation(self, job: Job) -> Invocation:
        env = {k: v for k, v in CLAUDE_ENV.items() if k not in job.settings.env}  # the plan's env wins
        env.update(asking_environment(job.settings))
        walls = None  # (an agent that writes nothing needs no walls: its argv stays as it was)
        if not self.read_only(job.settings):
            walls = walled(job.settings, job_walls(job), agent_environment(job.settings.env), job.cwd)
        argv = claude_argv(job.settings, job.profile, job.resume_session, self.json_schema, job.channels, walls)
        fault = argv_fault(argv, {**agent_environment(job.settings.env), **env})
        if fault is not None:  # (found before the run for what the plan says: a profile edited since)
            raise CannotInvoke(f"{fault[0]} — {fault[1]}")
        return Invocation(
            tuple(argv), job.prompt, env=env, limits=asking_limits(job.settings, limits_for(job.settings))
        )

    def check_task(self, task: Task, settings: Settings, profile: Profile | None = None) -> tuple[str, str] | None:
        """claude's command line holds the system prompt and the tool lists: what the system would
        refuse to start is refused before the run (the brief itself goes on stdin: no limit)."""
        argv = claude_argv(settings, profile, None, self.json_schema)
        return argv_fault(argv, {**agent_environment(settings.env), **CLAUDE_ENV})

    def observer(self, job: Job) -> Observer:
        return ClaudeObserver(tuple(job_walls(job).names()))

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        assert isinstance(observer, ClaudeObserver)
        return interpret_claude(run, observer, head(stderr, 20_000)[0], limits_for(job.settings))

    def recover(self, settings: Settings, stdout: Path, stderr: Path) -> AgentResult | None:
        """claude states its outcome in its last event (``result``, ``is_error``, denials): a log
        that ends with a successful one is a finished task, whatever became of the process."""
        observer = ClaudeObserver()
        if not fed_from_log(observer, stdout) or observer.result is None:
            return None
        run = ProcessRun(None, None, 0.0, stdout_bytes=1)  # its exit status is not known: the event decides
        result = interpret_claude(run, observer, head(stderr, 20_000)[0], limits_for(settings))
        return result if result.completed else None

    def cli(self) -> Cli:
        return Cli(
            claude_bin(),
            install="npm install -g @anthropic-ai/claude-code (or set ORCHESTRATOR_CLAUDE_BIN)",
            keys=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"),
            credentials=("${CLAUDE_CONFIG_DIR}/.credentials.json", "~/.claude/.credentials.json"),
            login=LOGIN_HINT,
            keychain=True,
            tested=TESTED,
        )

    def powers(self, settings: Settings) -> str:
        return claude_powers(settings)

    def guard(self, settings: Settings) -> Guard:
        return claude_guard(settings)

    def read_only(self, settings: Settings) -> bool:  # (one that may ask may be allowed an edit)
        return not settings.ask and (only_reading(settings) or settings.permission_mode == "plan")

    def check(self, settings: Settings) -> str | None:
        return check_permissions(settings)

    @staticmethod
    def available() -> bool:
        return shutil.which(claude_bin()) is not None


# Tools that only talk to a person (to leave plan mode, to ask a question): headless claude
# refuses them all the time, and that refusal withholds no work.
_INTERACTION_TOOLS = frozenset({"ExitPlanMode", "EnterPlanMode", "AskUserQuestion"})


def _work(denial: Any) -> bool:
    """Whether a denied call was work the agent meant to do (not a question to a person)."""
    return not (isinstance(denial, dict) and denial.get("tool_name") in _INTERACTION_TOOLS)


def _refusals(event: dict[str, Any], obs: ClaudeObserver) -> list[Any]:
    """Every call claude refused, in the order the agent made them: those its permissions denied
    (``permission_denials``), those of a tool it was not given and those its sandbox stopped
    (``ClaudeObserver._refused``), each once."""
    refused: list[Any] = list(event.get("permission_denials") or [])
    known = {entry.get("tool_use_id") for entry in refused if isinstance(entry, dict)}
    refused += [entry for entry in obs.refused if entry["tool_use_id"] not in known]
    order = {call: index for index, call in enumerate(obs.calls)}
    last = len(order)
    return sorted(refused, key=lambda e: order.get(str(e.get("tool_use_id")), last) if isinstance(e, dict) else last)


def _tokens(usage: Any) -> dict[str, int] | None:
    if not isinstance(usage, dict):
        return None
    keys = {
        "input_tokens": "input",
        "output_tokens": "output",
        "cache_creation_input_tokens": "cache_creation",
        "cache_read_input_tokens": "cache_read",
    }
    found = {name: int(usage[key]) for key, name in keys.items() if isinstance(usage.get(key), int | float)}
    return found or None


def _streamed(usage: dict[str, dict[str, int]]) -> dict[str, int] | None:
    """The tokens an attempt with no ``result`` event (stopped, killed, cut off) was told it spent:
    its messages' usage as its assistant events said it (a message cut off mid-answer: as far as
    it got), added up. Its cost claude never said: not known."""
    found: dict[str, int] = {}
    for used in usage.values():
        for key, count in used.items():
            found[key] = found.get(key, 0) + count
    return found or None


def cost_covers(version: str | None) -> Covers:
    """What a claude's ``total_cost_usd`` counts on a resumed session: before 2.1.277 the
    invocation's own cost ("attempt"), since then the whole session's ("session"; a version not
    told: the pinned claude's way)."""
    number = version_of(version)
    return "attempt" if number is not None and number < SESSION_COST_SINCE else "session"


def interpret_claude(run: ProcessRun, obs: ClaudeObserver, stderr: str, limits: Any = None) -> AgentResult:
    """The verdict on one claude attempt: the final ``result`` event decides, then exit status."""
    event = obs.result or {}
    common: dict[str, Any] = {
        "cost_covers": cost_covers(obs.version),
        "session_id": event.get("session_id") or obs.session_id,
        "cost_usd": event.get("total_cost_usd") if isinstance(event.get("total_cost_usd"), int | float) else None,
        "tokens": _tokens(event.get("usage")) if event else _streamed(obs.usage),
        "turns": event.get("num_turns") if isinstance(event.get("num_turns"), int) else None,
        "exit_code": run.exit_code,
        "permission_denials": _refusals(event, obs),
        "structured": event.get("structured_output"),
    }
    if run.start_error:
        hint = "install it with `npm install -g @anthropic-ai/claude-code` or set ORCHESTRATOR_CLAUDE_BIN"
        return AgentResult(False, error_class=ErrorClass.START, message=f"{run.describe(limits)} — {hint}", **common)
    if run.timed_out:
        kind = ErrorClass.TIMEOUT if run.timed_out == "timeout" else ErrorClass.HANG
        return AgentResult(False, text=obs.last_text, error_class=kind, message=run.describe(limits), **common)
    if not event:
        return _without_result(run, stderr, limits, common)
    subtype = str(event.get("subtype") or "")
    text: str = event["result"] if isinstance(event.get("result"), str) else ""
    if subtype == "success" and not event.get("is_error"):
        return _succeeded(run, text or obs.last_text, limits, common)
    return _stopped(obs, event, subtype, text, common)


def _without_result(run: ProcessRun, stderr: str, limits: Any, common: dict[str, Any]) -> AgentResult:
    """claude ended with no ``result`` event: its last line of stderr says why, when it says."""
    last = (stderr.strip().splitlines() or [""])[-1]
    if last:
        error = classify(last)
        message = f"claude: {last}" + (f" — {LOGIN_HINT}" if error == ErrorClass.AUTH else "")
        return AgentResult(False, error_class=error, message=message, reset_at=reset_time(last), **common)
    message = f"claude ended without a result ({run.describe(limits)})"
    return AgentResult(False, error_class=ErrorClass.EXIT, message=message, **common)


def _succeeded(run: ProcessRun, text: str, limits: Any, common: dict[str, Any]) -> AgentResult:
    """claude said success: a success, unless work it was refused is in it, or it exited non-zero."""
    result = AgentResult(True, text=text, **common)
    refused = [denial for denial in result.permission_denials if _work(denial)]
    if refused:
        # Whatever the agent then claims, what it was refused was not done: never a success.
        message = denied(refused, CLAUDE_REMEDY)
        return AgentResult(False, text=result.text, error_class=ErrorClass.DENIED, message=message, **common)
    if run.exit_code not in (0, None):
        message = f"claude reported success but {run.describe(limits)}"
        return AgentResult(False, text=result.text, error_class=ErrorClass.EXIT, message=message, **common)
    return result


def _stopped(
    obs: ClaudeObserver, event: dict[str, Any], subtype: str, text: str, common: dict[str, Any]
) -> AgentResult:
    """claude's ``result`` says it stopped: its turn limit, its budget, a usage limit, or an error."""
    if subtype == "error_max_turns":
        message = f"claude stopped at the turn limit ({common['turns']} turns)"
        return AgentResult(False, text=obs.last_text, error_class=ErrorClass.MAX_TURNS, message=message, **common)
    if subtype.startswith("error_max_budget"):
        message = "claude stopped at its budget (max_budget_usd)"
        return AgentResult(False, text=obs.last_text, error_class=ErrorClass.MAX_BUDGET, message=message, **common)
    errors = event.get("errors")
    detail = text or ("; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else subtype)
    status = event.get("api_error_status") if isinstance(event.get("api_error_status"), int) else None
    if event.get("api_error") == "usage_limit_reached" or obs.limit_rejected:
        # A subscription limit: claude says when it lifts in a rate_limit_event (exact) and in
        # words ("You've hit your 5-hour limit · resets 7:40am (UTC)").
        reset = obs.limit_reset or reset_time(detail)
        return AgentResult(False, text=obs.last_text, error_class=ErrorClass.USAGE_LIMIT, message=f"claude: {detail}",
                           reset_at=reset, **common)  # fmt: skip
    error = classify(detail or "", status)
    message = f"claude: {detail}" + (f" — {LOGIN_HINT}" if error == ErrorClass.AUTH else "")
    return AgentResult(
        False,
        text=obs.last_text,
        error_class=error,
        message=message,
        reset_at=reset_time(detail),
        retry_after=obs.retry_delay if error == ErrorClass.RATE_LIMIT else None,
        **common,
    )
