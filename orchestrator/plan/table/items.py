"""A row run once per item: its ``Each`` cell, and the instances it makes (``T-03[1]``, ``T-03[2]``...).

An ``Each`` cell names the items a row runs over:

    en, fr, de                 a list (``list:`` before it, if need be)
    glob: docs/**/*.md         the project's files that match, sorted
    lines: targets.txt         the lines of a file of the project, blank ones left out
    T-01.files                 a list field of an upstream's answer (its ``Output``): the items are
                               known when T-01 completes (``from: T-01.files``, if need be)

Each item is an instance of the row, addressed ``T-03[N]`` (N from 1, in the items' order): the
row's task with its item, its own attempts, result and logs (its agent id ``Agent-03[N]``). The
row itself completes when its instances have ended (``run/items``). What the items are is read
here from the cell alone; a glob's files, a file's lines and an answer's field are read where the
project and the results are (``run/items.resolve``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("list", "glob", "lines", "from")
HINT = "use a list (en, fr, de), glob: docs/**/*.md, lines: targets.txt, or an upstream's list field (T-01.files)"
MAX_ITEMS = 1_000_000  # items one row may have: a glob or file past it is refused with what to do
ITEM_LIMIT = 64 * 1024  # bytes of one item (a line of a file, a list field's value)
_INSTANCE_RE = re.compile(r"^(?P<row>[A-Za-z0-9._-]+)\[(?P<number>[0-9]{1,9})\]$")
_FIELD_RE = re.compile(r"^(?P<task>[A-Za-z0-9_-][A-Za-z0-9._-]*)\.(?P<field>[A-Za-z_]\w*)$")


@dataclass(frozen=True, slots=True)
class Items:
    """What a row's ``Each`` cell names: ``kind`` one of ``KINDS``; for a list its ``values``,
    for a glob or lines its ``source`` (a path pattern, a file), for an upstream's field
    ``source`` the task's id and ``field`` its field."""

    kind: str
    values: tuple[str, ...] = ()
    source: str = ""
    field: str = ""

    @property
    def cell(self) -> str:
        """The cell that says it, as ``add`` and ``export`` write it."""
        if self.kind == "list":
            listed = ", ".join(self.values)
            plain = ":" not in self.values[0] and (len(self.values) > 1 or _FIELD_RE.fullmatch(listed) is None)
            return listed if plain else "list: " + listed
        if self.kind == "from":
            return f"{self.source}.{self.field}"
        return f"{self.kind}: {self.source}"

    @property
    def upstream(self) -> str | None:
        """The task whose answer holds the items, when an answer does."""
        return self.source if self.kind == "from" else None

    def known_now(self) -> tuple[str, ...] | None:
        """The items, when the cell alone says them (a list); ``None`` otherwise."""
        return self.values if self.kind == "list" else None


def parse_each(cell: str, task_ids: frozenset[str] | None = None) -> Items:
    """An ``Each`` cell read; ``ValueError`` says what is wrong. ``task_ids``: the plan's, by which
    ``T-01.files`` is told from a list of one item with a dot in it (``README.md``); without them,
    a cell that reads as ``ID.field`` is an upstream's field."""
    text = cell.strip()
    if text.startswith("`") and text.endswith("`") and len(text) > 1:
        text = text.strip("`").strip()
    if not text:
        raise ValueError("an Each cell names no items")
    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower()
    if colon and kind in KINDS:
        rest = rest.strip()
        if kind == "list":
            return _listed(rest)
        if kind == "from":
            found = _FIELD_RE.fullmatch(rest)
            if found is None:
                raise ValueError(f"from: {rest!r} names no task's field (write from: T-01.files)")
            return Items("from", source=found.group("task"), field=found.group("field"))
        if not rest:
            raise ValueError(f"{kind}: names no {'pattern' if kind == 'glob' else 'file'}")
        _inside(rest, kind)
        return Items(kind, source=rest)
    found = _FIELD_RE.fullmatch(text)
    if found is not None and "," not in text and (task_ids is None or found.group("task") in task_ids):
        return Items("from", source=found.group("task"), field=found.group("field"))
    return _listed(text)


def _listed(text: str) -> Items:
    values = tuple(value.strip() for value in text.split(","))
    if not text.strip() or any(not value for value in values):
        raise ValueError("an empty item in the Each list (write en, fr, de)")
    return Items("list", values=values)


def _inside(path: str, kind: str) -> None:
    """A glob's pattern or a lines file stays inside the project: relative, and no ``..``."""
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "~")) or ".." in parts:
        raise ValueError(f"{kind}: {path} leads outside the project (give a path inside it, relative to it)")


def instance_id(row: str, number: int) -> str:
    """The id of ``row``'s instance number ``number`` (from 1): ``T-03[2]``."""
    return f"{row}[{number}]"


def split_instance(task_id: str) -> tuple[str, int] | None:
    """``("T-03", 2)`` for ``T-03[2]``; ``None`` for an id that names no instance."""
    found = _INSTANCE_RE.fullmatch(task_id.strip())
    if found is None or int(found.group("number")) < 1:
        return None
    return found.group("row"), int(found.group("number"))


_ID_LIKE = re.compile(r"^[A-Za-z]+[-_]?[0-9]+$")  # T-01, t1, TASK_12: what a task id looks like


def check_each(tasks: dict[str, dict[str, Any]], add: Callable[[int, str, str], None]) -> None:
    """Each row's ``Each`` cell against the rest of the plan: an upstream's field names a task the
    row depends on (``README.md``, naming no task and looking like none, is a list of one item);
    a row run per item has no Approval gate. Problems to ``add(line, message, hint)``; the rows'
    ``each`` set in place."""
    lowered = {task_id.lower(): task_id for task_id in tasks}
    for task_id, row in tasks.items():
        items: Items | None = row.get("each")
        if items is None:
            continue
        line = row["line"]
        if row.get("approval"):
            gate = "put the gate on a task before it or after it (one word for the whole list), or leave it empty"
            add(line, f"{task_id} runs once per item and has an Approval gate", gate)
        if items.kind != "from":
            continue
        upstream = lowered.get(items.source.lower())
        if upstream is None:
            if _ID_LIKE.fullmatch(items.source):
                named = f"{items.source}.{items.field}"
                add(line, f"{task_id}'s Each names {named}, and the plan has no task {items.source}",
                    f"name a task it depends on (T-01.files), or write list: {named} for one item")  # fmt: skip
            else:
                row["each"] = Items("list", values=(items.cell,))
            continue
        if upstream not in {lowered.get(dep.lower()) for dep in row["dependencies"]}:
            add(line, f"{task_id} runs once per item of {upstream}.{items.field} and does not depend on {upstream}",
                f"add {upstream} to its Dependencies")  # fmt: skip
            continue
        declared = dict(tasks[upstream].get("outputs") or ())
        if declared and declared.get(items.field, "list") not in ("list", "array"):
            kind = declared.get(items.field)
            add(line, f"{task_id}'s Each reads {upstream}.{items.field}, which "
                + (f"{upstream}'s Output declares {kind}" if kind else f"{upstream}'s Output does not declare"),
                f"declare it a list in {upstream}'s Output ({items.field}:list)")  # fmt: skip
            continue
        row["each"] = Items("from", source=upstream, field=items.field)
