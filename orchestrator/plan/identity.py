"""Agent ids: which ``Agent-NN`` each task has, for good.

A task's brief, result and logs are named after its agent id (``agent_tasks/agent-03.md``), so an
agent id, once given, stays with its task id whatever happens to the table: rows inserted, moved
or deleted keep theirs, and a new task gets the next number never given before. What was given
is kept in ``state/agents.json`` (``orchestrator.state.plans.identity``); this module only decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

NUMBERED = re.compile(r"agent-(\d+)", re.IGNORECASE)


@dataclass(slots=True)
class Book:
    """Every agent id given so far in a workspace (``task id -> agent id``), the next number to
    give, and how many digits a number gets."""

    agents: dict[str, str] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)  # agent id -> the task that had it before
    next_number: int = 1
    width: int = 0  # 0: not fixed yet (the first assignment fixes it)

    def owners(self) -> dict[str, str]:
        """Lower-case agent id -> the task whose files carry it."""
        owners = {agent.lower(): task_id for agent, task_id in self.retired.items()}
        owners.update((agent.lower(), task_id) for task_id, agent in self.agents.items())
        return owners


@dataclass(frozen=True, slots=True)
class Row:
    """What assignment needs of a table row."""

    id: str
    agent: str  # the Agent cell, or ""
    line: int


@dataclass(slots=True)
class Assignment:
    agents: dict[str, str]  # task id -> agent id, for every row
    changed: bool  # the book must be written: an entry is new or different
    problems: list[tuple[int, str, str]]  # (line, message, hint)
    book: Book  # the book with this assignment in it


def assign(rows: Sequence[Row], book: Book) -> Assignment:
    """The agent id of every row: its Agent cell, else what ``book`` gave it, else the next number
    never given before. An Agent cell may not take an id the book gave another task: that task's
    files carry it (``agent-03-result.md``) and would be taken for this one's."""
    width = book.width or max(2, len(str(len(rows))))
    owners = book.owners()
    agents: dict[str, str] = {}
    problems: list[tuple[int, str, str]] = []
    taken: dict[str, str] = {}  # lower-case agent id -> task id, in this plan
    for row in rows:
        if not row.agent:
            continue
        key = row.agent.lower()
        if key in taken:
            problems.append(
                (
                    row.line,
                    f"{row.id}: agent '{row.agent}' is already assigned to {taken[key]}",
                    "give each task its own agent id, or leave the Agent cell empty to number them",
                )
            )
            continue
        previous = owners.get(key)
        if previous is not None and previous.lower() != row.id.lower():
            problems.append(
                (
                    row.line,
                    f"{row.id}: agent '{row.agent}' was given to {previous}, whose files carry it (state/agents.json)",
                    "choose another agent id, or leave the Agent cell empty to get a new one",
                )
            )
            continue
        taken[key] = row.id
        agents[row.id] = row.agent
    number = max(book.next_number, 1)
    by_lower = {task_id.lower(): agent for task_id, agent in book.agents.items()}
    for row in rows:
        if row.agent:
            continue
        known = book.agents.get(row.id, by_lower.get(row.id.lower()))  # ids are not case-sensitive
        if known is not None and known.lower() not in taken:
            agent = known
        else:
            while True:
                agent = f"Agent-{number:0{width}d}"
                number += 1
                if agent.lower() not in taken and agent.lower() not in owners:
                    break
        taken[agent.lower()] = row.id
        agents[row.id] = agent
    updated = Book(dict(book.agents), dict(book.retired), number, width)
    spelled = {task_id.lower(): task_id for task_id in updated.agents}  # ids are not case-sensitive
    for task_id, agent in agents.items():
        before = spelled.get(task_id.lower(), task_id)
        if before != task_id:  # the same task, its id's case changed: one entry, spelled as now
            updated.agents[task_id] = updated.agents.pop(before)
        old = updated.agents.get(task_id)
        if old is not None and old.lower() != agent.lower():
            updated.retired[old] = task_id
        updated.agents[task_id] = agent
        updated.retired.pop(agent, None)
    changed = updated != book
    return Assignment(agents, changed, problems, updated)


def highest_number(agents: Iterable[str]) -> int:
    """The highest N of the ``Agent-N`` ids among ``agents`` (0 if none)."""
    numbers = [int(m.group(1)) for agent in agents if (m := NUMBERED.fullmatch(agent))]
    return max(numbers, default=0)
