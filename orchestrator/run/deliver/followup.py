"""A failed check on the branch a run delivered, closing the loop (``deliver``'s ``on_failed_check``):
a GitHub ``check_run`` delivery (``completed``, its conclusion ``failure``, ``timed_out`` or
``action_required``) or ``status`` delivery (``failure``, ``error``) to ``serve``'s
``/hooks/github``, about that branch, starts a run of the task the plan names again (``--rerun``),
with the check's name and log as its parameters ``check`` and ``check_log``: untrusted input, as
everything from outside (data in its script and brief, the run's alone), the log bounded.

``failed_check`` reads the delivery (pure); ``problem`` is what ``validate`` says of the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import Problem, shown
from orchestrator.plan.config.values import setting_line
from orchestrator.plan.model import Plan

EVENTS = ("check_run", "status")
PARAMS = ("check", "check_log")
LOG_LIMIT = 900  # characters of a check's log a run is given (a parameter holds at most 1,000)
_FAILED = {"check_run": ("failure", "timed_out", "action_required"), "status": ("failure", "error")}


@dataclass(frozen=True, slots=True)
class Failure:
    """A check that failed: its ``name``, the branches it was on, its log (title, summary, text)."""

    name: str
    branches: tuple[str, ...]
    log: str

    def arguments(self, task: str) -> dict[str, Any]:
        """The run it starts (``run``'s options, as the API takes them)."""
        return {"rerun": task, "param": [f"check={self.name}", f"check_log={self.log}"]}


def _dig(data: object, *path: str) -> object:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def failed_check(event: str, payload: Mapping[str, Any]) -> Failure | None:
    """The failure a ``check_run`` or ``status`` delivery tells, or ``None`` (not a failure)."""
    if event == "check_run":
        run = payload.get("check_run")
        if payload.get("action") != "completed" or _dig(run, "conclusion") not in _FAILED[event]:
            return None
        pulls = _dig(run, "pull_requests")
        branches = [_dig(run, "check_suite", "head_branch")]
        branches += [_dig(pull, "head", "ref") for pull in (pulls if isinstance(pulls, list) else [])]
        output = [_text(_dig(run, "output", key)) for key in ("title", "summary", "text")]
        name, log = _text(_dig(run, "name")), "\n".join(part for part in output if part)
    elif event == "status":
        if payload.get("state") not in _FAILED[event]:
            return None
        listed = payload.get("branches")
        branches = [_dig(branch, "name") for branch in (listed if isinstance(listed, list) else [])]
        name = _text(payload.get("context"))
        log = "\n".join(part for part in (_text(payload.get("description")), _text(payload.get("target_url"))) if part)
    else:
        return None
    kept = tuple(b for b in branches if isinstance(b, str) and b)
    return Failure(name[:100] or event, kept, log.replace("\x00", "")[:LOG_LIMIT])


def branch_of(plan: Plan) -> str:
    """The branch the plan's delivery pushes (the remote's name of it)."""
    deliver = plan.settings.deliver
    return (deliver.branch if deliver is not None else None) or plan.settings.integration_branch


def problem(plan: Plan) -> Problem | None:
    """What ``validate`` says of ``on_failed_check``: a task of the plan, and parameters for the log."""
    deliver = plan.settings.deliver
    task = deliver.on_failed_check if deliver is not None else None
    if task is None:
        return None
    line, file = setting_line(plan.text, "deliver"), shown(plan.path)
    if task not in plan.tasks:
        return Problem(file, line, f"deliver.on_failed_check: no task {task} in the plan", "name one of its tasks")
    missing = [name for name in PARAMS if name not in plan.settings.params]
    if missing:
        declare = ", ".join(f"{name}: {{default: ''}}" for name in missing)
        return Problem(file, line, f"deliver.on_failed_check gives {task} the parameters check and check_log",
                       f"declare them: params: {{{declare}}}")  # fmt: skip
    return None
