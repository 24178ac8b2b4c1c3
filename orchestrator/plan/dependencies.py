"""A plan's dependencies checked: unknown ids, self-dependencies, cycles; and those on archived
tasks (``orchestrator archive``), which are done for good: no edge, nothing to wait for.

Each problem goes to ``add(line, message, hint)``; the rows' fields are set in place: their
dependency ids spelled as in the ID column (or the archive), those on archived tasks apart
(``archived_upstream``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.plan import graph as graphs
from orchestrator.plan.config.settings import suggest
from orchestrator.plan.model import ArchivedTask

Add = Callable[[int, str, str], None]


def check_dependencies(
    tasks: dict[str, dict[str, Any]], add: Add, archived: Mapping[str, ArchivedTask] | None = None
) -> None:
    """Unknown ids, self-dependencies and cycles; dependency ids end up spelled as in the ID column.
    A task in the table is the one a dependency names, archived or not (an archive interrupted
    before the plan was written leaves both: the table's row is the task until then)."""
    edges: list[tuple[str, str]] = []
    ids = list(tasks)
    lowered = {tid.lower(): tid for tid in tasks}
    gone = {tid.lower(): entry for tid, entry in (archived or {}).items() if tid.lower() not in lowered}
    for task_id, task in tasks.items():
        seen: set[str] = set()
        line = task["line"]
        exact = True  # every dependency spelled as in the ID column
        outside: list[str] = []  # archived, completed: satisfied for good
        for dep in task["dependencies"]:
            if dep in tasks:
                target: str | None = dep
            else:
                target = lowered.get(dep.lower())
                exact = False
            if dep == task_id or target == task_id:
                add(line, f"{task_id} depends on itself", "remove it from its own Dependencies")
                continue
            if target is None and dep.lower() in gone:
                entry = gone[dep.lower()]
                if entry.status != "completed":
                    add(
                        line,
                        f"{task_id} depends on {entry.task.id}, archived {entry.status} (in {entry.file}): it "
                        "will never complete",
                        f"remove {entry.task.id} from its Dependencies, or move its row back from {entry.file}",
                    )
                elif entry.task.id not in outside:
                    outside.append(entry.task.id)
                continue
            if target is None:
                add(
                    line,
                    f"{task_id} depends on unknown task '{dep}'{suggest(dep, [i for i in ids if i != task_id])}",
                    "use an id from the Task ID column, or 'None'",
                )
                continue
            if target in seen:
                continue
            seen.add(target)
            edges.append((target, task_id))
        if outside:
            task["archived_upstream"] = tuple(outside)
            named = [
                lowered.get(d.lower()) or (gone[d.lower()].task.id if d.lower() in gone else d)
                for d in task["dependencies"]
            ]
            task["row_dependencies"] = tuple(dict.fromkeys(d for d in named if d != task_id))
        # Canonical spelling of dependency ids (the table may differ in case), each once; a row
        # that names each dependency once, as spelled in the ID column, has it already.
        if outside or not exact or len(seen) != len(task["dependencies"]):
            task["dependencies"] = tuple(
                dict.fromkeys(
                    d if d in tasks else lowered.get(d.lower(), d)
                    for d in task["dependencies"]
                    if d in tasks or d.lower() not in gone
                )
            )
    # Among the dependencies that name a task (whatever else is wrong: every problem at once).
    if len(ids) and _has_cycle(ids, edges):
        found: dict[str, list[str]] = {task_id: [] for task_id in ids}
        for source, target in edges:
            found[target].append(source)
        for cycle in graphs.cycles(graphs.build(found)):
            path = " -> ".join([*cycle, cycle[0]])
            add(
                tasks[cycle[0]]["line"],
                f"dependency cycle: {path}",
                "remove one of these dependencies so the tasks can run in some order",
            )


def _has_cycle(ids: list[str], edges: list[tuple[str, str]]) -> bool:
    """Whether the graph has a cycle: what is left once every task without dependencies is removed
    (Kahn). networkx finds the cycles to report; this yes-or-no keeps it out of ``status``, whose
    whole budget on a 10,000-task plan is what importing networkx costs."""
    indegree = dict.fromkeys(ids, 0)
    children: dict[str, list[str]] = {node: [] for node in ids}
    for source, target in edges:
        indegree[target] += 1
        children[source].append(target)
    ready = [node for node, count in indegree.items() if count == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return seen < len(ids)
