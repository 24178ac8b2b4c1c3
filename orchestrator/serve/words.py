"""A person's word from off the machine, a link's (``serve/links``) or a GitHub comment's
(``serve/comments``): at a task's Approval gate or on the question its agent asks, said by the
commands ``approve``, ``reject`` and ``answer`` themselves (``commands/changing``), as the command
line, the dashboard, the API and MCP say them, and recorded with who said it, where, and where it
can be read.

An approval that lets work go on when no run is going on starts one (``continue_run``): the person
answering is not at the machine to type ``orchestrator run``. It runs as a plain ``run`` would, on
the values the last run was given (``state/params.json``, their marks of untrusted input kept), with
the options of the last run if a webhook, the API or MCP started it; so the gate's word, given on
the task's inputs, stands in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.errors import OrchestratorError, UsageError
from orchestrator.plan.model import Task
from orchestrator.state import events, launches
from orchestrator.state.plans import plan_of
from orchestrator.state.words import questions
from orchestrator.state.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Said:
    """What came of a word: ``ok``, the line to show (``said``), the HTTP status it is answered
    with, and the run it started, if one (its launch, or why none could start)."""

    ok: bool
    said: str
    status: int = 200
    started: dict[str, Any] | str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "said": self.said}
        if not self.ok:
            data["error"] = self.said
        if isinstance(self.started, dict):
            data["started"] = self.started
        elif isinstance(self.started, str):
            data["not_started"] = self.started
        return data


def _task(workspace: Workspace, task_id: str) -> tuple[Any, Task] | Said:
    try:
        plan = plan_of(workspace)
    except OrchestratorError as exc:
        return Said(False, f"the plan does not load: {str(exc).splitlines()[0]} — nothing was written", 409)
    from orchestrator.commands.words import task_in

    try:
        task = task_in(plan, task_id)  # (the one lookup of a typed id: any case, as every door takes it)
    except UsageError:
        return Said(False, f"no task {task_id} in the plan", 404)
    return plan, task


def say(
    workspace: Workspace,
    task_id: str,
    approve: bool,
    *,
    by: str,
    via: str,
    source: str,
    url: str | None = None,
    reason: str = "",
    always: bool = False,
    inputs_seen: str | None = None,
    question: str | None = None,
) -> Said:
    """``approve`` (or reject) ``task_id``'s gate, or allow (deny) its agent's question: the one
    asked now (``question``: that one only), else its gate, with ``inputs_seen`` the inputs a
    link was made on. Said by the commands themselves (``approve``, ``reject``, ``answer``), as
    every door says them, by ``by`` through the door ``via``. ``source``: what a run it starts is
    said to be started by."""
    from orchestrator.commands import changing
    from orchestrator.commands.calling import Call, Voiced
    from orchestrator.commands.options import Arguments

    found = _task(workspace, task_id)
    if isinstance(found, Said):
        return found
    _plan, task = found
    asks = question is not None or (inputs_seen is None and bool(questions.pending(workspace, task.id)))
    if not asks and task.approval is None:
        return Said(False, f"{task.id} has no Approval gate, and its agent asks nothing now", 409)
    # (the values a door has checked already: a signed link's claims, a comment's word as read)
    values: dict[str, Any] = {"task": task.id, "reason": reason or None}
    if asks:
        values.update(answer="allow" if approve else "deny", question=question, always=always)
    call = Call(Arguments(values), via, str(workspace.root), _workspace=workspace,
                voiced=Voiced(by, url, inputs_seen))  # fmt: skip
    command = changing.answer if asks else changing.approve if approve else changing.reject
    try:
        result = command(call)
    except OrchestratorError as exc:
        return Said(False, str(exc).splitlines()[0], 409)
    data = result.payload()
    if not result.ok:
        return Said(False, str(result.said or data.get("said", "")), 409)
    started = None
    if approve and not asks and not data.get("already"):
        started = continue_run(workspace, source, f"{task.id} approved by {by}")
    return Said(True, str(data["said"]), 200, started)


def continue_run(workspace: Workspace, source: str, what: str) -> dict[str, Any] | str | None:
    """Start the run that takes an approval, when none is going on: its launch, why it could not
    start, or ``None`` (one is going on, and takes the word itself)."""
    from orchestrator.run.launch.background import going_on, start

    if going_on(workspace) is not None:
        return None
    try:
        return start(workspace, last_options(workspace), source, what=what, untrusted=False).as_json()
    except OrchestratorError as exc:
        return str(exc).splitlines()[0]


def last_options(workspace: Workspace) -> list[str]:
    """The options of the last run, as far as they are known: its launch's (a webhook's, the API's,
    MCP's; less its ``--param`` values, which ``state/params.json`` keeps with their marks), else
    ``--read-only`` if it ran so."""
    started = events.last_run(workspace.events_file)
    if started is None:
        return []
    for launch in reversed(launches.read(workspace)):
        if launch.get("pid") == started.pid and isinstance(launch.get("options"), list):
            given = [str(option) for option in launch["options"]]
            return [option for option in given if not option.startswith("--param")]
    return ["--read-only"] if started.read_only else []
