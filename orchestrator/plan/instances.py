"""A row's instances, one per item (its ``Each`` cell, ``plan/table/items``): each the row's task
with its item, its id ``T-03[N]`` and agent id ``Agent-03[N]``, and ``{{ item }}`` filled in.

``{{ item }}`` is data, never code, as a parameter's value is (``plan/config/filling``):

- in a script (a Command cell, a bash block of Task Details) it is a reference to
  ``$ORCHESTRATOR_ITEM``, quoted for its place (``plan/config/shellspots``), which the instance's
  attempts have in their environment (with ``$ORCHESTRATOR_ITEM_NUMBER``); a place where bash
  reads a value as code is refused at its line, with the fix. The scripts are the same for every
  instance: worked out once per row;
- in prose (a title, a description, Task Details outside its scripts) it is the item itself when
  the person who runs the plan gave the items (a list, a glob of the project, a file's lines); an
  item from an upstream's answer never enters the text an agent is instructed by:
  ``[untrusted input: item]`` stands there, and the brief quotes it apart, as data.

``join`` puts a row's instances into a plan (the run's: ``run/items``): each waits for what its row
waits for, and the row for each of them. A run over many items puts in only those it starts first
(and those an earlier run left a trace of); the others wait outside it, in its ``Later``, until
its slots free (``run/rows``).
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.errors import PlanError, Problem
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.items import instance_id

ITEM_VARIABLE = "ORCHESTRATOR_ITEM"
NUMBER_VARIABLE = "ORCHESTRATOR_ITEM_NUMBER"
ITEM_RE = re.compile(r"\{\{-?\s*item\s*-?\}\}")
_ANY_ITEM_RE = re.compile(r"\{\{-?\s*item\b[^{}]*\}\}")  # (``{{ item | upper }}`` too: refused, with the fix)
UNTRUSTED = "[untrusted input: item]"


class Instances:
    """Makes ``row``'s instances; ``where``: the plan's file, for a refused place. Its items are
    trusted when the person who runs the plan gave them (a list, a glob, a file), not an
    upstream's answer."""

    def __init__(self, row: Task, *, where: str) -> None:
        self.row, self.where = row, where
        self.trusted = row.each is None or row.each.upstream is None
        self.problems: list[Problem] = _filtered(row, where)
        self.command = self._script(row.command, row.line)
        self.details = self._split(row.details, row.details_line or row.line)

    def make(self, number: int, item: str) -> Task:
        """Instance ``number`` (from 1), of ``item``."""
        row = self.row
        shown = item if self.trusted else UNTRUSTED
        environment = (*row.environment, (ITEM_VARIABLE, item), (NUMBER_VARIABLE, str(number)))
        return dataclasses.replace(
            row,
            id=instance_id(row.id, number),
            agent=f"{row.agent}[{number}]" if row.agent else "",
            name=_prose(row.name, shown) if not row.name or ITEM_RE.search(row.name) else f"{row.name} · {shown}",
            description=_prose(row.description, shown),
            details=self.details(shown) if row.details else row.details,
            command=self.command,
            each=None,
            row=row.id,
            number=number,
            item=item,
            environment=environment,
        )

    def all(self, items: Sequence[str]) -> list[Task]:
        """Every instance, in the items' order; a ``PlanError`` where a script may hold no item."""
        if self.problems:
            raise PlanError(self.problems)
        return [self.make(number, item) for number, item in enumerate(items, start=1)]

    def _script(self, text: str | None, line: int) -> str | None:
        """``text``, a bash script, with a reference to ``$ORCHESTRATOR_ITEM`` for each ``{{ item }}``;
        each place an item may not stand is a problem (``plan/config/allowlist``)."""
        from orchestrator.plan.config.filling import mentions

        if not text or ("{{" not in text and not mentions(text)):
            return text
        from orchestrator.plan.config.allowlist import judge
        from orchestrator.plan.config.shellspots import reference, written

        spans = [(m.start(), m.end()) for m in ITEM_RE.finditer(text)]
        made = written(text, spans, lambda spot: reference(ITEM_VARIABLE, spot.place))
        found = [(spot.start, "{{ item }}", spot.refused or "", spot.fix) for spot in made.refused]
        for refusal in judge(made.script, tuple((start, end) for start, end, _ in made.marks)):
            if refusal.mark is not None:
                found.append((made.marks[refusal.mark][2].start, "{{ item }}", refusal.why, refusal.fix))
            else:  # (a variable the script names itself: its line in the script as written)
                start = refusal.start - sum(e - s - (spot.end - spot.start) for s, e, spot in made.marks
                                            if e <= refusal.start)  # fmt: skip
                found.append((start, made.script[refusal.start : refusal.end], refusal.why, refusal.fix))
        for start, source, why, fix in found:
            at = line + text.count("\n", 0, start)
            fix = fix.replace("{{ params.x }}", "{{ item }}").replace("ORCHESTRATOR_PARAM_X", ITEM_VARIABLE)
            self.problems.append(Problem(self.where, at, f"{source} {why}", fix))
        return made.script

    def _split(self, text: str | None, line: int) -> Callable[[str], str]:
        """Task Details: its bash blocks as scripts (once), the rest as prose (per item)."""
        if not text or "{{" not in text:
            return lambda shown: text or ""
        from orchestrator.plan.config.filling import script_blocks

        parts: list[tuple[bool, str]] = []  # (a script, its text)
        last = 0
        for start, end in script_blocks(text):
            parts.append((False, text[last:start]))
            parts.append((True, self._script(text[start:end], line + text.count("\n", 0, start)) or ""))
            last = end
        parts.append((False, text[last:]))
        return lambda shown: "".join(part if script else _prose(part, shown) for script, part in parts)


@dataclass(slots=True)
class Later:
    """A row's instances that a run has not put in its plan yet: who makes them, every item of the
    row in order, the numbers still outside (lowest first), and how many of them the run keeps in
    its plan not ended (``window``). A run over 100,000 items begins with the few it starts first,
    not with 100,000 tasks: the rest join as those end (``run/rows``)."""

    maker: Instances
    items: list[str]
    left: deque[int]
    window: int

    def ids(self) -> list[str]:
        """Every instance's id, in the items' order: those in the plan and those still outside."""
        row = self.maker.row.id
        return [instance_id(row, number) for number in range(1, len(self.items) + 1)]

    def take(self, count: int) -> list[Task]:
        """The next ``count`` instances still outside (fewer when fewer are), made."""
        made: list[Task] = []
        while self.left and len(made) < count:
            number = self.left.popleft()
            made.append(self.maker.make(number, self.items[number - 1]))
        return made

    def take_number(self, number: int) -> Task | None:
        """Instance ``number``, made, if it is still outside (a person's cancel or retry names it)."""
        if number not in self.left:
            return None
        self.left.remove(number)
        return self.maker.make(number, self.items[number - 1])


def _filtered(row: Task, where: str) -> list[Problem]:
    """The places ``row`` writes ``{{ item }}`` with a filter or an expression: refused, with the fix."""
    fix = "write {{ item }} alone, and change it in the script ($ORCHESTRATOR_ITEM) or in what the item is"
    problems: list[Problem] = []
    places = ((row.name, row.line), (row.description, row.line), (row.command, row.line),
              (row.details, row.details_line or row.line))  # fmt: skip
    for text, line in places:
        for found in _ANY_ITEM_RE.finditer(text or ""):
            if not ITEM_RE.fullmatch(found.group(0)):
                at = line + (text or "").count("\n", 0, found.start())
                problems.append(Problem(where, at, f"{found.group(0)}: an item takes no filter or expression", fix))
    return problems


def _prose(text: str, shown: str) -> str:
    return ITEM_RE.sub(lambda _: shown, text) if "{{" in text else text


def join(plan: Plan, row: Task, instances: Sequence[Task]) -> None:
    """``instances`` of ``row`` in ``plan``: its tasks (after every row, in order), its graph (each
    waits for what the row waits for, the row for each). The row's own cells stay as they are."""
    base = len(plan.order)
    graph = plan.graph
    for offset, instance in enumerate(instances):
        plan.tasks[instance.id] = instance
        plan.order[instance.id] = base + offset
        graph.add_node(instance.id)
        graph.add_edges_from((dep, instance.id) for dep in row.dependencies)
        graph.add_edge(instance.id, row.id)


def rows_only(plan: Plan) -> Plan:
    """``plan`` as its person wrote it: a run's instances left out (what its status blocks and
    final_output.md show: a row stands for its items, its result holds their answers)."""
    if not any(task.row is not None for task in plan.tasks.values()):
        return plan
    return dataclasses.replace(plan, tasks={t: task for t, task in plan.tasks.items() if task.row is None})


def addressed(row: Task, number: int) -> Task:
    """``row``'s instance ``number`` as a command names it (``output T-03[2]``): its id and agent id,
    which its result and logs are named after; its item is the run's to know."""
    return dataclasses.replace(
        row, id=instance_id(row.id, number), agent=f"{row.agent}[{number}]" if row.agent else "", each=None,
        row=row.id, number=number,
    )  # fmt: skip
