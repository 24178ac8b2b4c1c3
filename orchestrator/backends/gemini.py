"""``gemini``: ``gemini -p <ask> -o stream-json --skip-trust [-m M] [--approval-mode A] [--resume S]``.

The brief goes on stdin; ``-p``'s words are appended to it. stdout is JSONL, one event a line as the turn goes:
``init`` (``session_id``, ``model``), ``message`` (``role``, ``content``; the answer comes in
``delta`` pieces), ``tool_use`` (``tool_name``, ``tool_id``, ``parameters``), ``tool_result``
(``tool_id``, ``status``, ``output``, ``error: {type, message}``), and a last ``result``
(``status``: success or error, ``error``, ``stats``: ``input_tokens`` with the ``cached`` in
them, ``output_tokens``, per model in ``models``; the router model gemini asks before each
turn is one of them). Every event is output, so a long answer feeds the runner's inactivity
watchdog, and the session is known from the first line: an interrupted attempt is continued
with ``--resume`` (a resumed invocation's stats count its own requests). A log whose ``result``
says success is a finished task (``recover``).

Exit codes: 41 auth, 42 input (an unknown ``--resume`` session too: "Error resuming session" on
stderr), 52 config, 53 turn limit, 55 untrusted workspace; an API error the turn could not get
past ends with a ``result`` whose ``error`` says it (exit 173 as seen with 0.61.0): "Suggested
retry after 2s." after a rate limit (a 429 whose RetryInfo gave the wait; gemini retries one
itself ``general.maxAttempts`` times), "You have exhausted your daily quota" (a quota no wait of
seconds lifts).

A ``tool_result`` that failed ``tool_not_registered`` (headless, gemini leaves out the tools its
approval mode would have to ask for, such as ``write_file`` and ``run_shell_command`` in the
default mode, and those a policy denies) or ``policy_violation`` is a refused call: the task
fails as ``denied``, whatever the agent then says. A tool that ran and failed (``file_not_found``
...) is no refusal. gemini reports no cost; tokens are recorded as ``input`` (less the cached),
``output`` (the answer and the thinking, ``thoughtsTokenCount``, which the stats' ``output_tokens``
leave out and their ``total_tokens`` hold) and ``cache_read``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.backends.base import (
    AgentResult,
    Backend,
    Invocation,
    Job,
    Observer,
    head,
    json_event,
    json_lines,
    limits_for,
    modes_and_tools,
)
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.guard import BUBBLEWRAP, WALLS, Guard, Walls, bubblewrap, fenced, job_walls, refused_write
from orchestrator.backends.probe import Cli
from orchestrator.backends.refusals import denied, refusal
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.kinds import Presets
from orchestrator.plan.config.settings import Settings
from orchestrator.state import store
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ErrorClass

ASK = "Carry out the task described above and answer with your result."
TESTED = ("0.61.0", "0.61.0")  # the gemini versions this backend was tested with (tests/test_agents_gemini.py)
_EXIT_CLASSES = {
    41: ErrorClass.AUTH,
    42: ErrorClass.START,
    52: ErrorClass.START,
    53: ErrorClass.MAX_TURNS,
    55: ErrorClass.START,
}
_EXIT_WORDS = {
    41: "not authenticated (run `gemini` once to log in, or set GEMINI_API_KEY)",
    42: "invalid input",
    52: "configuration error",
    53: "turn limit reached",
    55: "untrusted workspace",
}
# A tool_result's error.type for a call gemini refused (not one that ran and failed): a tool it
# did not offer, one its policy denies (the walls' among them), a path outside its workspace.
REFUSED = frozenset({"tool_not_registered", "policy_violation", "path_not_in_workspace"})


# What each gemini --approval-mode mode lets a headless agent do, in plain words.
APPROVAL_POWERS = {
    "default": "calls that need approval are refused (headless, nobody can approve them): it reads "
    "and searches, edits nothing and runs no command",
    "auto_edit": "file edits run without asking; commands are refused. Risk: it can rewrite any file in its directory",
    "yolo": "every call runs without asking. Risk: it can delete files, run any command and reach the "
    "network with your user's rights; only in a sandbox or a throwaway checkout",
    "plan": "read-only: it reads and plans, edits nothing",
}
APPROVAL_MODES = tuple(APPROVAL_POWERS)  # gemini --approval-mode


def gemini_bin() -> str:
    return os.environ.get("ORCHESTRATOR_GEMINI_BIN", "gemini")


class GeminiObserver(Observer):
    """Reads gemini's stream-json events; keeps what the result record needs."""

    def __init__(self, resumed: str | None = None, walls: tuple[str, ...] = ()) -> None:
        self.resumed = resumed  # the session the attempt was asked to continue
        self.walls = walls  # the walled places' names (``Walls.names``)
        self._session: str | None = None
        self.answer: list[str] = []  # the agent's text since its last tool call
        self.calls: dict[str, tuple[str, dict[str, Any]]] = {}  # tool_id -> its tool and parameters
        self.refused: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None

    @property
    def session_id(self) -> str | None:
        return self._session

    def feed(self, line: bytes) -> None:
        event = json_event(line)
        if event is None:
            return
        kind = event.get("type")
        if kind == "init" and isinstance(event.get("session_id"), str):
            self._session = event["session_id"]
        elif kind == "message" and event.get("role") == "assistant":
            content = event.get("content")
            if isinstance(content, str) and event.get("delta"):
                self.answer.append(content)
            elif isinstance(content, str):
                self.answer = [content]
        elif kind == "tool_use":
            given = event.get("parameters")
            self.calls[str(event.get("tool_id"))] = (
                str(event.get("tool_name")),
                given if isinstance(given, dict) else {},
            )
            self.answer = []
        elif kind == "tool_result":
            error = event.get("error")
            said = f"{event.get('output') or ''} {error.get('message') if isinstance(error, dict) else ''}"
            if (event.get("status") == "error" and isinstance(error, dict) and error.get("type") in REFUSED) or (
                refused_write(said, self.walls)  # (a write the walls' read-only file system stopped)
            ):
                tool, given = self.calls.get(str(event.get("tool_id")), ("?", {}))
                self.refused.append(refusal(tool, **{k: str(v) for k, v in given.items() if isinstance(v, str)}))
        elif kind == "result":
            self.result = event


class GeminiBackend(Backend):
    name = "gemini"
    resumable = True
    access: ClassVar[Presets] = {"read": {"permission_mode": "plan"}, "edit": {"permission_mode": "auto_edit"}}

    def simulated(self, text: str, session: str) -> str:
        return json_lines(
            {"type": "init", "session_id": session},
            {"type": "message", "role": "assistant", "content": text, "delta": True},
            {"type": "result", "status": "success"},
        )

    def cli(self) -> Cli:
        return Cli(
            gemini_bin(),
            install="npm install -g @google/gemini-cli (or set ORCHESTRATOR_GEMINI_BIN)",
            keys=("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"),
            credentials=("~/.gemini/oauth_creds.json",),
            login="run `gemini` once to log in, or set GEMINI_API_KEY",
            tested=TESTED,
        )

    def powers(self, settings: Settings) -> str:
        mode = settings.permission_mode or "default"
        return f"approval mode {mode}: {APPROVAL_POWERS.get(mode, '?')}"

    def guard(self, settings: Settings) -> Guard:
        policy = "its policy (--admin-policy) denies its file tools every path into them"
        if settings.permission_mode != "yolo":
            return Guard(True, f"{policy}; it is given no shell tool")
        if bubblewrap():
            return Guard(True, f"{policy}; its shell tool, which no rule of gemini's holds, runs behind bubblewrap")
        return Guard(False, f"{policy}, but its shell tool (yolo) is held by nothing here", BUBBLEWRAP)

    def read_only(self, settings: Settings) -> bool:
        return settings.permission_mode == "plan"

    def check(self, settings: Settings) -> str | None:
        return modes_and_tools(
            settings,
            APPROVAL_MODES,
            "gemini's approval modes",
            "the gemini backend cannot restrict its tools by name, so tools would not restrict it; "
            "use permission_mode: plan (read-only) or default, and remove tools",
        )

    def invocation(self, job: Job) -> Invocation:
        settings = job.settings
        walls = job_walls(job)
        argv = [gemini_bin(), "-p", ASK, "-o", "stream-json", "--skip-trust"]
        if settings.model:
            argv += ["-m", settings.model]
        if settings.permission_mode:
            argv += ["--approval-mode", settings.permission_mode]
        argv += ["--admin-policy", str(walled_policy(walls, no_push=walls.isolated and not settings.agent_pushes))]
        if job.resume_session:
            argv += ["--resume", job.resume_session]
        if settings.permission_mode == "yolo" and bubblewrap():  # (its shell tool: no rule of gemini's holds it)
            argv = fenced(argv, walls)
        return Invocation(tuple(argv), job.prompt, limits=limits_for(settings))

    def observer(self, job: Job) -> Observer:
        return GeminiObserver(job.resume_session, tuple(job_walls(job).names()))

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        text, _ = head(stdout, _STDOUT_CAP)
        walls = tuple(job_walls(job).names())
        return interpret_gemini(run, text, head(stderr, 20_000)[0], limits_for(job.settings), job.resume_session, walls)

    def recover(self, settings: Settings, stdout: Path, stderr: Path) -> AgentResult | None:
        """gemini's last event says how the turn ended: a log whose ``result`` says success (and
        no call it refused) is a finished task, whatever became of the process."""
        text, more = head(stdout, _STDOUT_CAP)  # ("" when it cannot be read)
        if more:
            return None
        result = interpret_gemini(ProcessRun(0, None, 0.0), text, head(stderr, 20_000)[0], limits_for(settings))
        result.exit_code = None
        return result if result.completed else None


_STDOUT_CAP = 10_000_000  # characters of stdout read


def _tokens(stats: Any) -> dict[str, int] | None:
    """stream-json's ``stats`` under the record's keys (claude's), so that their sum is its
    ``total_tokens``: ``input_tokens`` holds the ``cached`` ones (the Gemini API's
    promptTokenCount includes cachedContentTokenCount), and ``output_tokens`` (its
    candidatesTokenCount) leaves out the model's thinking (thoughtsTokenCount), billed as output
    too, which only ``total_tokens`` (its totalTokenCount) holds: the output is what the total
    holds beyond the input."""
    if not isinstance(stats, dict):
        return None
    count = {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
    if "input_tokens" not in count and "output_tokens" not in count:
        return None
    given = count.get("input_tokens", 0)
    cached = count.get("cached", 0)
    return {
        "input": max(0, given - cached),
        "output": max(count.get("output_tokens", 0), count.get("total_tokens", 0) - given),
        "cache_read": cached,
    }


# What gemini says of an API error it could not get past (the result's error message).
_RETRY_AFTER = re.compile(r"(?:Suggested retry after|Please retry in)\s+(\d+(?:\.\d+)?)\s*(ms|s)\b", re.I)
_QUOTA = re.compile(r"exhausted your (?:daily )?quota|quota (?:exceeded|exhausted)", re.I)


def _api_error(message: str) -> tuple[ErrorClass, float | None, float | None]:
    """The class of an API error gemini reports, the wait it names and when a limit lifts."""
    wait = _RETRY_AFTER.search(message)
    if wait is not None:
        seconds = float(wait.group(1)) / (1000 if wait.group(2).lower() == "ms" else 1)
        return ErrorClass.RATE_LIMIT, seconds, None
    if _QUOTA.search(message):
        return ErrorClass.USAGE_LIMIT, None, reset_time(message)
    return classify(message), None, reset_time(message)


# GEMINI_REMEDY: what lets a refused call run: gemini takes no list of tools, only an approval mode.
GEMINI_REMEDY = "permission_mode: an approval mode that allows it, such as auto_edit"


def interpret_gemini(
    run: ProcessRun,
    stdout: str,
    stderr: str,
    limits: Any = None,
    resumed: str | None = None,
    walls: tuple[str, ...] = (),
) -> AgentResult:
    """The verdict on one gemini attempt, from its stream-json output: the ``result`` event
    decides, then the exit status."""
    obs = GeminiObserver(resumed, walls)
    for line in stdout.splitlines():
        obs.feed(line.encode())
    event = obs.result or {}
    common: dict[str, Any] = {
        "text": "".join(obs.answer),
        "session_id": obs.session_id,
        "tokens": _tokens(event.get("stats")),
        "cost_covers": "attempt",
        "exit_code": run.exit_code,
        "permission_denials": list(obs.refused),
    }
    if run.start_error:
        return AgentResult(False, error_class=ErrorClass.START, message=run.describe(limits), **common)
    if POLICY_ERROR in stderr:  # gemini went on without the walls' policy: whatever it did, no success
        said = next((line for line in stderr.splitlines() if POLICY_ERROR in line), POLICY_ERROR)
        message = f"gemini did not apply the policy that keeps it out of the workspace ({said.strip()})"
        return AgentResult(False, error_class=ErrorClass.START, message=message, **common)
    if run.timed_out:
        kind = ErrorClass.TIMEOUT if run.timed_out == "timeout" else ErrorClass.HANG
        return AgentResult(False, error_class=kind, message=run.describe(limits), **common)
    error = event.get("error") if isinstance(event.get("error"), dict) else None
    detail = str(error.get("message") or "") if error else ""
    last = (stderr.strip().splitlines() or [""])[-1]
    if resumed and "Error resuming session" in stderr:
        # The session to continue is gone: the next attempt starts afresh, with the whole brief.
        message = f"gemini could not continue session {resumed}: {last}"
        return AgentResult(False, error_class=ErrorClass.AGENT_ERROR, message=message, **common)
    if run.exit_code in _EXIT_CLASSES:
        words = _EXIT_WORDS[run.exit_code]
        message = f"gemini: {words}" + (f": {detail or last}" if detail or last else "")
        return AgentResult(False, error_class=_EXIT_CLASSES[run.exit_code], message=message, **common)
    if error is not None or event.get("status") == "error" or run.exit_code != 0 or not event:
        said = detail or last
        if not said:
            return AgentResult(
                False, error_class=ErrorClass.EXIT, message=f"gemini ended without a result ({run.describe(limits)})",
                **common,
            )  # fmt: skip
        error_class, wait, reset = _api_error(said)
        message = "gemini: " + " ".join(said.split())
        return AgentResult(False, error_class=error_class, message=message, retry_after=wait, reset_at=reset, **common)
    if common["permission_denials"]:
        # Whatever the agent then claims, what it was refused was not done: never a success.
        message = denied(common["permission_denials"], GEMINI_REMEDY)
        return AgentResult(False, error_class=ErrorClass.DENIED, message=message, **common)
    return AgentResult(True, **common)


# --- the walls (``backends/guard``) -----------------------------------------------------------------

_WRITERS = ("write_file", "replace")  # gemini's tools that write a file (its shell aside)
# What gemini answers a policy file it will not apply with (it then goes on without it).
POLICY_ERROR = "Policy file error"


def walled_policy(walls: Walls, *, no_push: bool = False) -> Path:
    """A policy file of gemini's (``--admin-policy``: over the user's own and over ``yolo``) that
    denies its file tools a path into the walls (``walled_paths``), and with ``no_push`` (a
    worktree's agent, ``agent_pushes: false``) its shell a ``git push`` or ``gh pr`` (beside the
    attempt's git sending every push nowhere, which a command that does not begin so meets).
    Written once, in the workspace's state (out of every agent's reach), under a name its text gives it."""
    rules = "".join(
        f"[[rule]]\ntoolName = {json.dumps(list(_WRITERS))}\nargsPattern = {json.dumps(pattern)}\n"
        f'decision = "deny"\npriority = 999\ndenyMessage = {json.dumps(f"{WALLS}: out of every agent reach")}\n\n'
        for pattern in walled_paths(walls)
    )
    if no_push:
        rules += (
            f'[[rule]]\ntoolName = "run_shell_command"\ncommandPrefix = {json.dumps(list(NO_DELIVERY))}\n'
            f'decision = "deny"\npriority = 999\ndenyMessage = {json.dumps(DELIVERED)}\n\n'
        )
    text = f"# Written by orchestrator: no agent writes the workspace or the project's claude files.\n\n{rules}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Workspace(walls.workspace).state_dir / "policies" / f"gemini-{digest}.toml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(path, text)
    return path


# What a worktree's agent may not run itself: the run delivers its work (``run/deliver``), once.
NO_DELIVERY = ("git push", "gh pr create", "gh pr merge")
DELIVERED = "no agent pushes or opens a pull request: the orchestrator delivers the work"


def walled_paths(walls: Walls) -> list[str]:
    """The regular expressions of a call whose ``file_path`` leads into the walls, as gemini
    matches them against the call's arguments (each ``"key":value`` between NUL bytes): a path
    with a part named as a walled place (the workspace, ``.claude``, ``.mcp.json``), relative or
    not; in a worktree, whose own path is inside the workspace, one that names the workspace
    past the worktree's place, or relative (its copy). A path out of its workspace gemini refuses
    itself. Written as gemini takes them: no quantified group (it refuses one as a ReDoS)."""
    value = '\\x00"file_path":'
    names = "|".join(_json_regex(name) for name in walls.names()[1:])
    workspace = _json_regex(walls.workspace.name)
    if not walls.isolated:
        return [f'{value}[^\\x00]*[/"](?:{names}|{workspace})[/"]']
    trees = _json_regex(str(walls.trees))
    return [
        f'{value}[^\\x00]*[/"](?:{names})[/"]',
        f'{value}(?!"/)[^\\x00]*[/"]{workspace}[/"]',
        f'{value}"{trees}/[^/"\\x00]*[^\\x00]*/{workspace}[/"]',
    ]


def _json_regex(text: str) -> str:
    """``text`` as a JSON string holds it, escaped for a regular expression (JavaScript's)."""
    held = json.dumps(text)[1:-1]
    return "".join("\\" + char if char in "\\^$.|?*+()[]{}/" else char for char in held)
