"""An agent's questions to a person (a task with ``ask: true``) and their answers, kept as lines of
``state/approvals.jsonl`` beside the words said at gates (``state/approvals`` passes them over)::

    {"task": "T-03", "decision": "asked", "question": "q-1a2b3c4d5e", "number": 2,
     "said": "Bash(npm install)", "tool": "Bash", "attempt": 1, "time": "...", "until": "...", "inputs": "v2-..."}
    {"task": "T-03", "decision": "allowed", "question": "q-1a2b3c4d5e", "said": "Bash(npm install)",
     "by": "ann", "via": "github", "url": "https://github.com/...", "always": false, "time": "..."}

A question's id, ``q-1a2b3c4d5e``, is unique (a link is bound to it); a person names it by its
task's count, ``Q2`` (``Question.short``: the task's second question), which ``status``, the
notification, a link's page and the comment form show, and ``answer T-03 Q2 allow`` takes.

A question has one answer: the first written; past its ``until`` it is closed, denied whether or
not its asker lived to write so. ``ask`` and ``reply`` look and append under an ``flock`` of
``state/approvals.lock``, so a person's answer and the deny at ``ask_timeout`` never both hold,
and two questions of a task asked at once get two numbers.
An answer given ``always`` stands for the same question of the same task while the task's
inputs are the same (``standing``), as a word at a gate does (``approvals.same_inputs``).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.moments import now_iso
from orchestrator.printable import visible
from orchestrator.state import approvals
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import question_id

ASKED, ALLOWED, DENIED = "asked", "allowed", "denied"
TIMEOUT = "timeout"  # who a deny at ``ask_timeout`` is by
SAID_LIMIT = 300  # characters of a question as a person reads it
LOCK_NAME = "approvals.lock"
_PATH_TOOLS = frozenset({"Read", "Edit", "Write", "MultiEdit", "NotebookEdit"})


_SHORT = re.compile(r"^[Qq]([1-9][0-9]{0,8})$")


@dataclass(frozen=True, slots=True)
class Question:
    """A question an agent asked: which task and attempt, the call (``said``, ``tool``), when no
    answer is a deny (``until``), the task's inputs then, and its ``number`` among the task's."""

    task: str
    question: str
    said: str
    tool: str
    attempt: int
    time: str
    until: str | None = None
    inputs: str | None = None
    number: int = 0

    @property
    def short(self) -> str:
        """The id a person names it by: ``Q2``, its task's second question."""
        return question_id(self.number)

    def named(self, word: str) -> bool:
        """Whether ``word`` names it: its short id (``Q2``, ``q2``) or its own (a link's)."""
        found = _SHORT.match(word.strip())
        return int(found.group(1)) == self.number if found else word.strip() == self.question

    def form(self, word: str = "allow|deny", *, comment: bool = False) -> str:
        """What a person types to answer it: ``orchestrator answer T-03 Q2 allow|deny``; on GitHub
        (``comment``), ``/allow T-03 Q2``."""
        if comment:
            return f"/{word} {self.task} {self.short}"
        return f"orchestrator answer {self.task} {self.short} {word}"

    def told(self) -> str:
        """The line ``status`` and the dashboard tell it in, with the form that answers it."""
        return f"✋ {self.task} asks {self.short}: {self.said} — `{self.form()}`"

    def as_json(self) -> dict[str, Any]:
        """As ``status --json``'s ``asks`` and the dashboard show it."""
        return {"task": self.task, "id": self.short, "question": self.question, "said": self.said, "until": self.until}


@dataclass(frozen=True, slots=True)
class Reply:
    """A question's answer: ``allow`` or ``deny``, by whom and where; ``always``: for its task's same
    question from now on."""

    task: str
    question: str
    said: str
    answer: str
    by: str
    time: str
    via: str | None = None
    url: str | None = None
    always: bool = False
    reason: str | None = None
    inputs: str | None = None

    @property
    def allowed(self) -> bool:
        return self.answer == "allow"

    def as_json(self) -> dict[str, Any]:
        """As a result's frontmatter (``asked``) and ``answer --json`` show it."""
        data = {"question": self.question, "said": self.said, "answer": self.answer, "by": self.by, "at": self.time}
        data.update({key: value for key, value in (("via", self.via), ("url", self.url)) if value})
        return {**data, **({"always": True} if self.always else {}), **({"reason": self.reason} if self.reason else {})}


def said_of(tool: str, given: Mapping[str, Any], project: str | None = None) -> str:
    """A tool call as a person reads it, on one line: ``Bash(npm install)``, ``Edit(src/app.py)``
    (a path in the project relative to it), ``WebFetch(https://...)``; other tools with their input as
    compact JSON. Control characters shown, never sent; at most ``SAID_LIMIT`` characters."""
    if tool == "Bash" and isinstance(given.get("command"), str):
        inner = given["command"]
    elif tool in _PATH_TOOLS and isinstance(given.get("file_path") or given.get("notebook_path"), str):
        inner = str(given.get("file_path") or given.get("notebook_path"))
        if project and inner.startswith(project.rstrip("/") + "/"):
            inner = inner[len(project.rstrip("/")) + 1 :]
    elif tool == "WebFetch" and isinstance(given.get("url"), str):
        inner = given["url"]
    elif tool == "WebSearch" and isinstance(given.get("query"), str):
        inner = given["query"]
    else:
        inner = json.dumps(given, ensure_ascii=False, separators=(",", ":"), default=str)
    text = visible(" ".join(f"{tool[:80]}({inner})".split("\n")))
    return text if len(text) <= SAID_LIMIT else text[: SAID_LIMIT - 2] + "…)"


def _lines(workspace: Workspace) -> Iterator[dict[str, Any]]:
    try:
        text = approvals.path(workspace).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("decision") in (ASKED, ALLOWED, DENIED) and data.get("question"):
            yield data


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _question(data: Mapping[str, Any], number: int) -> Question:
    attempt = data.get("attempt")
    return Question(
        str(data["task"]), str(data["question"]), str(data.get("said") or ""), str(data.get("tool") or ""),
        attempt if isinstance(attempt, int) else 0, str(data.get("time") or ""), _text(data.get("until")),
        _text(data.get("inputs")), number,
    )  # fmt: skip


def _reply(data: Mapping[str, Any]) -> Reply:
    return Reply(
        str(data["task"]), str(data["question"]), str(data.get("said") or ""),
        "allow" if data["decision"] == ALLOWED else "deny", str(data.get("by") or ""), str(data.get("time") or ""),
        _text(data.get("via")), _text(data.get("url")), data.get("always") is True, _text(data.get("reason")),
        _text(data.get("inputs")),
    )  # fmt: skip


def read(workspace: Workspace) -> tuple[dict[str, Question], dict[str, Reply]]:
    """Every question asked (by id, in order), and the first answer of each answered. A question
    written without its number (by a version before) is numbered after its task's last one."""
    asked: dict[str, Question] = {}
    replies: dict[str, Reply] = {}
    last: dict[str, int] = {}
    for data in _lines(workspace):
        try:
            if data["decision"] == ASKED:
                task, given, key = str(data["task"]), data.get("number"), str(data["question"])
                number = given if isinstance(given, int) and given > 0 else last.get(task, 0) + 1
                if key not in asked:
                    asked[key] = _question(data, number)
                    last[task] = max(last.get(task, 0), number)
            else:
                replies.setdefault(str(data["question"]), _reply(data))
        except (KeyError, TypeError):
            continue
    return asked, replies


def of_task(workspace: Workspace, task: str) -> list[tuple[Question, Reply | None]]:
    """``task``'s questions, oldest first, each with its answer (``None``: none written; past its
    ``until``, it is closed all the same: ``closed``)."""
    asked, replies = read(workspace)
    return [(q, replies.get(q.question)) for q in asked.values() if q.task == task]


def closed(question: Question, reply: Reply | None, now: datetime | None = None) -> bool:
    """Whether ``question`` takes no answer any more: answered, or past its ``until``."""
    return reply is not None or (question.until is not None and _at(question.until) <= (now or datetime.now(UTC)))


def pending(workspace: Workspace, task: str | None = None) -> list[Question]:
    """The questions not answered yet (of ``task``), oldest first: past its ``until``, a question
    is denied already, whether or not its asker lived to write so."""
    asked, replies = read(workspace)
    now = datetime.now(UTC)
    return [
        q for q in asked.values()
        if (task is None or q.task == task) and not closed(q, replies.get(q.question), now)
    ]  # fmt: skip


def _at(moment: str) -> datetime:
    try:
        found = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def answer_of(workspace: Workspace, question: str) -> Reply | None:
    return read(workspace)[1].get(question)


def of_attempt(workspace: Workspace, task: str, attempt: int) -> list[dict[str, Any]]:
    """What ``task``'s ``attempt`` asked, each with its answer: for its result's frontmatter."""
    asked, replies = read(workspace)
    found: list[dict[str, Any]] = []
    for question in asked.values():
        if question.task == task and question.attempt == attempt:
            reply = replies.get(question.question)
            shown = reply.as_json() if reply else {"question": question.question, "said": question.said}
            found.append({"id": question.short, **shown})
    return found


def standing(workspace: Workspace, task: str, said: str, inputs: str | None) -> Reply | None:
    """The latest answer given ``always`` to ``task``'s question ``said`` that stands for its
    ``inputs`` now (the same as when it was given; not known either way: it does not stand)."""
    found = None
    for reply in read(workspace)[1].values():
        if reply.always and reply.task == task and reply.said == said:
            found = reply
    if found is None or found.inputs is None or inputs is None:
        return None
    return found if approvals.same_inputs(found.inputs, inputs) else None


def ask(
    workspace: Workspace, task: str, attempt: int, tool: str, said: str, *, until: str, inputs: str | None
) -> Question:
    """Write a new question of ``task``'s ``attempt``, numbered after the task's last one."""
    with _held(workspace):
        number = 1 + max((q.number for q, _ in of_task(workspace, task)), default=0)
        question = Question(task, f"q-{secrets.token_hex(5)}", said, tool, attempt, now_iso(), until, inputs, number)
        data = {
            "task": task, "decision": ASKED, "question": question.question, "number": number, "said": said,
            "tool": tool, "attempt": attempt, "time": question.time, "until": until,
        }  # fmt: skip
        approvals.append_line(workspace, {**data, **({"inputs": inputs} if inputs else {})})
    return question


class Closed(Exception):
    """A person's answer to a question past its ``until``: it is closed (denied), and takes none."""


@contextlib.contextmanager
def _held(workspace: Workspace) -> Iterator[None]:
    from orchestrator.state.lock import turn

    with turn(workspace.state_dir / LOCK_NAME):
        yield


def reply(
    workspace: Workspace,
    question: Question,
    allow: bool,
    *,
    by: str,
    via: str | None = None,
    url: str | None = None,
    always: bool = False,
    reason: str | None = None,
) -> tuple[Reply, bool]:
    """Answer ``question``: ``(its answer, True)``, or ``(the answer it had, False)`` when one was
    written first (nothing written); ``Closed`` for a person's answer past its ``until`` (only
    its deny at the timeout, ``by=TIMEOUT``, is written then)."""
    with _held(workspace):
        before = answer_of(workspace, question.question)
        if before is not None:
            return before, False
        if by != TIMEOUT and closed(question, None):
            raise Closed(question.question)
        made = Reply(question.task, question.question, question.said, "allow" if allow else "deny", by, now_iso(),
                     via, url, always, reason or None, question.inputs)  # fmt: skip
        data: dict[str, Any] = {
            "task": made.task, "decision": ALLOWED if allow else DENIED, "question": made.question,
            "said": made.said, "by": by, "time": made.time, "always": always,
        }  # fmt: skip
        extra = (("via", via), ("url", url), ("reason", made.reason), ("inputs", made.inputs))
        approvals.append_line(workspace, {**data, **{key: value for key, value in extra if value}})
        return made, True
