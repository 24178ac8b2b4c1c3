"""An agent's question to a person, and its answer (a task with ``ask: true``).

``ask`` is what ``orchestrator mcp --permission-tool`` does when claude asks it (its
``--permission-prompt-tool``): the question is written to ``state/approvals.jsonl``
(``state/questions``), the run going on is asked to tell it (``permission_requested``: it shows
``✋ T-03 asks: Bash(npm install)`` and notifies it, with its links), and the answer is waited
for there; none within ``ask_timeout`` is a deny, written as one (by ``timeout``). An answer given
``always`` before, to the same question of the task on the same inputs, answers at once.

``answer`` is every person's way to answer: ``orchestrator answer``, the dashboard, a GitHub
comment, a link. A word is bound to its question (``chosen``): the one it names (``Q2``, or a
link's own id), else the one the task asks now, when that cannot be mistaken: a bare ``answer
T-03 allow`` is refused when the task asks several, or when the question before the one it asks
now closed with nobody's word (a word typed for a question that timed out must not answer the
next). A question that closed (answered, or past its ``until``) takes no word: a late one is
refused in one line naming what the task asks now. The answer is written first (the asking agent
reads it there), then the run going on is asked to tell it (``answer_requested``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from orchestrator import timing
from orchestrator.errors import OrchestratorError
from orchestrator.machine.asked import asking_now
from orchestrator.moments import iso_at
from orchestrator.plan.config.values import format_duration
from orchestrator.plan.model import Plan, Task
from orchestrator.run.inflight.requests import Answer
from orchestrator.state import events
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.runs import AnswerRequested, PermissionRequested
from orchestrator.state.plans import plan_of
from orchestrator.state.words import questions
from orchestrator.state.workspace import Workspace


def _tell(workspace: Workspace, make: type[PermissionRequested | AnswerRequested], task: str, question: str) -> None:
    """Ask the run going on, if any, to tell of ``question`` (asked, or answered)."""
    live = events.live_run(workspace.events_file)
    if live is not None:
        told: EventRecord = make(run=live.run, task=task, request=question, reason=None)
        events.append(workspace.events_file, [told])


def _inputs(workspace: Workspace, task_id: str) -> str | None:
    """``task_id``'s inputs digest now, for an answer given ``always`` (``None``: not known)."""
    from orchestrator.run.resume.basis import inputs_now
    from orchestrator.state.status import read_records

    try:
        plan = plan_of(workspace)
        task = plan.tasks[task_id]
        return inputs_now(plan, workspace, read_records(plan, workspace))(task)
    except (OrchestratorError, OSError, KeyError):
        return None


def ask(
    workspace: Workspace, task: str, attempt: int, tool: str, given: dict[str, Any], timeout: float
) -> questions.Reply:
    """Ask a person whether ``task``'s agent (its ``attempt``) may call ``tool`` with ``given``; the
    answer, which is a deny when none came within ``timeout`` seconds."""
    said = questions.said_of(tool, given, str(workspace.project_dir))
    inputs = _inputs(workspace, task)
    standing = questions.standing(workspace, task, said, inputs)
    question = questions.ask(workspace, task, attempt, tool, said, until=iso_at(time.time() + timeout), inputs=inputs)
    if standing is not None:
        got, _ = questions.reply(
            workspace, question, standing.allowed, by=standing.by, via=standing.via, url=standing.url,
            reason=f"answered so for good at {standing.time}",
        )  # fmt: skip
        _tell(workspace, PermissionRequested, task, question.question)
        _tell(workspace, AnswerRequested, task, question.question)
        return got
    _tell(workspace, PermissionRequested, task, question.question)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(min(timing.current().ask_poll, max(0.0, deadline - time.monotonic())))
        found = questions.answer_of(workspace, question.question)
        if found is not None:
            return found
    got, fresh = questions.reply(
        workspace, question, False, by=questions.TIMEOUT, reason=f"no answer within {format_duration(timeout)}"
    )
    if fresh:
        _tell(workspace, AnswerRequested, task, question.question)
    return got


def agent_message(reply: questions.Reply, given: dict[str, Any]) -> dict[str, Any]:
    """The answer as claude's permission prompt tool gives it: allow, or deny with a message. The
    message says who denied, never their words: a reason from a comment or a link is data a
    person reads, not text for the agent."""
    if reply.allowed:
        return {"behavior": "allow", "updatedInput": given}
    if reply.by == questions.TIMEOUT:
        return {"behavior": "deny", "message": f"No person answered in time ({reply.reason}): denied."}
    via = f" ({reply.via})" if reply.via else ""
    return {"behavior": "deny", "message": f"A person denied this call: {reply.by or 'someone'}{via}."}


def answer(
    workspace: Workspace,
    plan: Plan,
    task: Task,
    allow: bool,
    *,
    by: str,
    via: str | None = None,
    url: str | None = None,
    always: bool = False,
    reason: str = "",
    question: str | None = None,
) -> Answer:
    """Answer ``task``'s question: the one ``question`` names (``Q2``, or a link's own id), else the
    one it asks now (``chosen``). ``Answer.ok`` false, nothing written, when there is none such, it
    closed, or another word answered it first: one line that names what the task asks now."""
    word, comment = "allow" if allow else "deny", via == "github"  # (on GitHub, what to comment)
    picked = chosen(workspace, task.id, question, word, comment=comment)
    if isinstance(picked, str):
        return _refused(workspace, task.id, question, word, picked)
    try:
        got, fresh = questions.reply(
            workspace, picked, allow, by=by, via=via, url=url, always=always, reason=reason or None
        )  # fmt: skip
    except questions.Closed:  # (its time ran out meanwhile)
        later = chosen(workspace, task.id, picked.question, word, comment=comment)
        return _refused(workspace, task.id, picked.question, word, str(later))
    if not fresh:
        now = _asking_now(workspace, task.id, word, comment=comment)
        said = f"{task.id}'s {picked.short} was answered first: {got.answer} by {got.by}{now}"
        return Answer(False, task.id, None, None, said, f"{word} {task.id} {picked.short}: {said}")
    _tell(workspace, AnswerRequested, task.id, got.question)
    mark = "👍 allowed" if allow else "👎 denied"
    then = "the agent goes on" + (f"; the same question of {task.id} is answered so from now on" if always else "")
    return Answer(True, task.id, None, None, reason or None, f"{mark} {task.id}'s {picked.short}, {got.said}: {then}")


def _refused(workspace: Workspace, task: str, named: str | None, word: str, said: str) -> Answer:
    """A word refused: its line says what was asked (``allow T-03 Q1``), and why."""
    found = next((q for q, _ in questions.of_task(workspace, task) if named and q.named(named)), None)
    what = f" {found.short}" if found is not None else f" {named}" if named else ""
    return Answer(False, task, None, None, said, f"{word} {task}{what}: {said}")


def chosen(
    workspace: Workspace, task: str, named: str | None, word: str = "allow|deny", *, comment: bool = False
) -> questions.Question | str:
    """The question a word for ``task`` answers, or why none, in one line that names what the task
    asks now, and what to type (``comment``: on GitHub): as the machine's ``answer-asked`` rule
    says it, over the task's questions and their answers now."""
    from orchestrator.machine.core import Machine
    from orchestrator.machine.stimuli import AnswerAsked
    from orchestrator.run.telling import Between, Desk

    found = questions.of_task(workspace, task)
    desk = Desk(Machine(), Between())
    told = AnswerAsked(id=desk.stamp(), task=task, named=named, word=word, comment=comment, asked=tuple(found),
                       now=datetime.now(UTC))  # fmt: skip
    verdict = desk.tell(told)
    if verdict.refused is not None:
        return verdict.refused
    return next(q for q, _ in found if q.question == verdict.chosen)


def _asking_now(workspace: Workspace, task: str, word: str = "allow|deny", *, comment: bool = False) -> str:
    """What a refusal adds: `` — it asks Q2 now: Bash(...): `orchestrator answer T-03 Q2 allow` ``."""
    return asking_now(questions.pending(workspace, task), task, word, comment=comment)
