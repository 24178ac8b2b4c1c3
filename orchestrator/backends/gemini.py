"""``gemini``: ``gemini -p <ask> -o json --skip-trust``, the brief on stdin (``-p`` is appended to it).

stdout is one JSON object ``{session_id, response, stats, error?}``, printed when gemini is done:
a log holding one with a ``response`` and no ``error`` is a finished task (``recover``). Exit codes:
41 auth, 42 input, 52 config, 53 turn limit, 55 untrusted workspace. ``stats.tools.totalDecisions``
counts the tool calls by what was decided of them (``accept``, ``reject``, ``modify``,
``auto_accept``; ``byName`` per tool): a ``reject`` is a refused call, and the task fails as
``denied``, whatever the agent then says. So is a call of a tool gemini did not give the agent
(headless, it leaves out the tools its approval mode would have to ask for, such as
``write_file`` and ``run_shell_command`` in the default mode): no decision counts it (``byName``
has it as a ``fail``), but gemini says on stderr ``Error executing tool write_file: Tool
"write_file" not found in registry...``. Tokens (``stats.models.*.tokens``: ``prompt``,
``candidates``, ``total``, ``cached``, ``thoughts``, ``tool``) are recorded as ``input``,
``output`` and ``cache_read``, which add up to its ``total``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from orchestrator.backends.base import (
    AgentResult,
    Backend,
    Invocation,
    Job,
    Observer,
    head,
    limits_for,
)
from orchestrator.backends.classify import classify, reset_time
from orchestrator.backends.probe import Cli
from orchestrator.backends.refusals import denied, refusal
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.settings import Settings, suggest
from orchestrator.vocabulary import ErrorClass

ASK = "Carry out the task described above and answer with your result."
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


class GeminiBackend(Backend):
    name = "gemini"

    def cli(self) -> Cli:
        return Cli(
            gemini_bin(),
            install="npm install -g @google/gemini-cli (or set ORCHESTRATOR_GEMINI_BIN)",
            keys=("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"),
            credentials=("~/.gemini/oauth_creds.json",),
            login="run `gemini` once to log in, or set GEMINI_API_KEY",
        )

    def powers(self, settings: Settings) -> str:
        mode = settings.permission_mode or "default"
        return f"approval mode {mode}: {APPROVAL_POWERS.get(mode, '?')}"

    def read_only(self, settings: Settings) -> bool:
        return settings.permission_mode == "plan"

    def check(self, settings: Settings) -> str | None:
        mode = settings.permission_mode
        if mode is not None and mode not in APPROVAL_MODES:
            return (
                f"permission_mode {mode!r} is not one of gemini's approval modes{suggest(mode, APPROVAL_MODES)}: "
                f"{', '.join(APPROVAL_MODES)}"
            )
        if settings.tools is not None:
            return (
                "the gemini backend cannot restrict its tools by name, so tools would not restrict it; "
                "use permission_mode: plan (read-only) or default, and remove tools"
            )
        return None

    def invocation(self, job: Job) -> Invocation:
        settings = job.settings
        argv = [gemini_bin(), "-p", ASK, "-o", "json", "--skip-trust"]
        if settings.model:
            argv += ["-m", settings.model]
        if settings.permission_mode:
            argv += ["--approval-mode", settings.permission_mode]
        return Invocation(tuple(argv), job.prompt, limits=limits_for(settings))

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        text, _ = head(stdout, _STDOUT_CAP)
        return interpret_gemini(run, text, head(stderr, 20_000)[0], limits_for(job.settings))

    def recover(self, settings: Settings, stdout: Path, stderr: Path) -> AgentResult | None:
        """gemini prints its one JSON object when it is done: a log holding a whole one with an
        answer (``response``) and no ``error`` is a finished task. (It fails with an ``error``
        object and its own exit code, so the exit status left unknown changes nothing.)"""
        text, more = head(stdout, _STDOUT_CAP)  # ("" when it cannot be read)
        data = _answer(text)
        if more or data is None or "error" in data or not data.get("response"):
            return None
        result = interpret_gemini(ProcessRun(0, None, 0.0), text, head(stderr, 20_000)[0], limits_for(settings))
        result.exit_code = None
        return result if result.completed else None


_STDOUT_CAP = 10_000_000  # characters of stdout read: its JSON object, whatever came before it


def _answer(stdout: str) -> dict[str, Any] | None:
    """The JSON object gemini printed (after any lines before it, such as "Loaded cached
    credentials."), or None."""
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(stdout[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _tokens(stats: Any) -> dict[str, int] | None:
    """gemini's ``stats.models.*.tokens`` under the record's keys (claude's), so that their sum is
    its ``total``: ``prompt`` holds the ``cached`` tokens (the Gemini API's promptTokenCount
    includes cachedContentTokenCount; gemini's own ``input`` is the one less the other), ``tool``
    is input too (the prompts of tool use), and ``thoughts`` are output beside ``candidates``.
    ``total`` is their sum, so it is not added again."""
    totals = {"input": 0, "output": 0, "cache_read": 0}
    seen = False
    models = stats.get("models") if isinstance(stats, dict) else None
    for model in (models or {}).values() if isinstance(models, dict) else []:
        tokens = model.get("tokens") if isinstance(model, dict) else None
        if not isinstance(tokens, dict):
            continue
        count = {k: v for k, v in tokens.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}
        seen = seen or bool(tokens)
        cached = count.get("cached", 0)
        totals["input"] += max(0, count.get("prompt", 0) - cached) + count.get("tool", 0)
        totals["output"] += count.get("candidates", 0) + count.get("thoughts", 0)
        totals["cache_read"] += cached
    return totals if seen else None


# What lets a refused call run: gemini takes no list of tools, only an approval mode.
GEMINI_REMEDY = "permission_mode: an approval mode that allows it, such as auto_edit"


def _refused(stats: Any) -> list[dict[str, Any]]:
    """The calls gemini refused: ``stats.tools.totalDecisions.reject`` of them, named from
    ``byName`` (each tool's ``decisions.reject``) as far as it tells."""
    tools = stats.get("tools") if isinstance(stats, dict) else None
    decisions = tools.get("totalDecisions") if isinstance(tools, dict) else None
    total = decisions.get("reject") if isinstance(decisions, dict) else None
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        return []
    found: list[dict[str, Any]] = []
    by_name = tools.get("byName") if isinstance(tools, dict) else None
    for name, tool in by_name.items() if isinstance(by_name, dict) else []:
        count = (tool.get("decisions") or {}).get("reject") if isinstance(tool, dict) else None
        if isinstance(count, int) and count > 0:
            found += [refusal(str(name)) for _ in range(count)]
    return (found + [refusal("?") for _ in range(total)])[:total]


# gemini's answer to a call of a tool it did not give the agent, on stderr (its own error, never a
# tool's output: a tool that fails says "Error executing tool read_file: File not found...").
_UNREGISTERED = re.compile(r'^Error executing tool \S+: Tool "([^"]+)" not found in registry', re.M)


def _unregistered(stderr: str) -> list[dict[str, Any]]:
    """The calls of tools the agent was not given, by name (gemini says no more of them)."""
    return [refusal(name) for name in _UNREGISTERED.findall(stderr)]


def interpret_gemini(run: ProcessRun, stdout: str, stderr: str, limits: Any = None) -> AgentResult:
    if run.start_error:
        return AgentResult(False, error_class=ErrorClass.START, message=run.describe(limits))
    if run.timed_out:
        return AgentResult(
            False,
            error_class=ErrorClass.TIMEOUT if run.timed_out == "timeout" else ErrorClass.HANG,
            message=run.describe(limits),
        )
    data = _answer(stdout) or {}
    common: dict[str, Any] = {
        "text": str(data.get("response") or ""),
        "session_id": data.get("session_id"),
        "tokens": _tokens(data.get("stats")),
        "exit_code": run.exit_code,
        "permission_denials": _refused(data.get("stats")) + _unregistered(stderr),
    }
    error = data.get("error")
    if run.exit_code in _EXIT_CLASSES:
        detail = (error or {}).get("message") if isinstance(error, dict) else None
        message = f"gemini: {_EXIT_WORDS[run.exit_code]}" + (f": {detail}" if detail else "")
        return AgentResult(False, error_class=_EXIT_CLASSES[run.exit_code], message=message, **common)
    if isinstance(error, dict) or run.exit_code != 0:
        detail = str(error.get("message")) if isinstance(error, dict) else (stderr.strip().splitlines() or [""])[-1]
        status = error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), int) else None
        message = detail or run.describe(limits)
        return AgentResult(
            False,
            error_class=classify(message, status) if detail else ErrorClass.EXIT,
            message=f"gemini: {message}",
            reset_at=reset_time(message),
            **common,
        )
    if common["permission_denials"]:
        # Whatever the agent then claims, what it was refused was not done: never a success.
        message = denied(common["permission_denials"], GEMINI_REMEDY)
        return AgentResult(False, error_class=ErrorClass.DENIED, message=message, **common)
    return AgentResult(True, **common)
