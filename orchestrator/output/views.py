"""Text views of a plan for people: the status table, the DAG as layers, mermaid and dot."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from orchestrator.output.tasktable import OUT_OF_DATE as OUT_OF_DATE
from orchestrator.output.tasktable import REUSED as REUSED
from orchestrator.output.tasktable import SIMULATED as SIMULATED
from orchestrator.output.tasktable import label, summary_text
from orchestrator.output.tasktable import simulated_mark as simulated_mark
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import reads
from orchestrator.state.causes import CauseKind
from orchestrator.state.status import TaskView
from orchestrator.vocabulary import TaskStatus, counted

_MERMAID_CLASS = {
    "completed": "fill:#d4edda,stroke:#28a745",
    "failed": "fill:#f8d7da,stroke:#dc3545",
    "running": "fill:#cce5ff,stroke:#007bff",
    "retrying": "fill:#cce5ff,stroke:#007bff",
    "skipped": "fill:#e2e3e5,stroke:#6c757d",
    "interrupted": "fill:#fff3cd,stroke:#fd7e14",
    "cancelled": "fill:#e2e3e5,stroke:#343a40,stroke-dasharray:2 2",  # stopped by `orchestrator cancel`
    "blocked": "fill:#ffe5d0,stroke:#b35c00,stroke-width:2px",  # held back by a person (a Blocked cell)
    "awaiting_approval": "fill:#fff3cd,stroke:#c98a00,stroke-width:2px",  # at its Approval gate
    "rejected": "fill:#f8d7da,stroke:#a33,stroke-dasharray:2 2",  # refused at its gate by a person
    "bypassed": "fill:#f1f3f5,stroke:#7a8a99,stroke-dasharray:4 4",  # its Condition was false: not run
    "outofdate": "fill:#fff3cd,stroke:#28a745,stroke-dasharray:4 2",  # completed, but run will redo it
}


# What a speed-up, a critical path or a parallel efficiency says when a task they count was
# simulated: the fake executor's durations are sub-millisecond noise, no figure to take as fact.
NOT_MEASURED = "- (not measured: simulated, no process ran)"


def kind_mark(task: Task) -> str:
    """What a graph says after a task's name of its task type: `` (review)``, or nothing."""
    return f" ({task.type})" if task.type else ""


def gate_mark(task: Task) -> str:
    """What a graph says after a task's name of its Approval gate: `` (✋ approval before)``, or nothing."""
    return f" (✋ approval {task.approval})" if task.approval else ""


def condition_edges(plan: Plan) -> dict[tuple[str, str], str]:
    """Each edge a task's Condition reads (upstream, task), with the label a graph gives it:
    ``if T-01.failing == 0`` (a condition naming two upstream tasks labels both edges)."""
    found: dict[tuple[str, str], str] = {}
    for task in plan.tasks.values():
        for upstream in reads(task, plan.tasks):
            found[upstream, task.id] = f"if {task.condition}"
    return found


def status_label(view: TaskView) -> str:
    """The status as a person reads it: ``✅ Completed · out of date`` for a completed task that
    ``run`` would run again (``TaskView.out_of_date``)."""
    return label(view.status, view.out_of_date)


def mermaid_text(text: str, special: str) -> str:
    """``text`` on one line for a mermaid diagram, each character of ``special`` written as the
    entity code mermaid reads (``#58;`` for ``:``). Mermaid takes ``#`` with a word and ``;``
    anywhere in a diagram for an entity code (``#2;`` shows as the control character 2), so such a
    ``#`` is always coded; a flowchart's quoted label needs ``"`` coded too, and a gantt's task name
    every ``:`` (where a bar's data starts), ``#`` (a comment) and ``;`` (the end of a statement)."""
    flat = text.replace("\r", " ").replace("\n", " ")
    return re.sub(f"[{re.escape(special)}]|#(?=\\w+;)", lambda found: f"#{ord(found.group())};", flat)


_LABEL_SPECIAL = '"'  # what a flowchart's quoted label cannot hold as itself
_EDGE_SPECIAL = '"|'  # and an edge's label, between its two bars
MERMAID_MAX_TASKS = 300  # mermaid renders nothing useful (or nothing at all) beyond a few hundred nodes


def mermaid(plan: Plan, views: Sequence[TaskView] | None = None, *, limit: int | None = None) -> str:
    """``graph TD`` with one node per task (``n0``... keep any id safe) and status colours.

    Past ``limit`` tasks the graph is one note node pointing at ``orchestrator graph``.
    """
    if limit is not None and len(plan.tasks) > limit:
        return (
            "graph TD\n"
            f'    note["{len(plan.tasks):,} tasks: too many for a mermaid graph. '
            'Run: orchestrator graph --format dot"]'
        )
    node = {task_id: f"n{index}" for index, task_id in enumerate(plan.tasks)}
    lines = ["graph TD"]
    states = {v.id: v.status for v in views} if views else {}
    stale = {v.id for v in views if v.out_of_date} if views else set()
    marks = _marks(views)
    classes = {t: "outofdate" if t in stale else str(s) for t, s in states.items()}
    for task_id, task in plan.tasks.items():
        state = states.get(task_id)
        text = f"{state.icon if state else ''} {task_id}: {task.title}".strip() + kind_mark(task) + gate_mark(task)
        lines.append(f'    {node[task_id]}["{mermaid_text(text + marks.get(task_id, ""), _LABEL_SPECIAL)}"]')
    labels = condition_edges(plan)
    for source, target in plan.edges():
        label = labels.get((source, target))
        arrow = f'-->|"{mermaid_text(label, _EDGE_SPECIAL)}"|' if label else "-->"
        lines.append(f"    {node[source]} {arrow} {node[target]}")
    used = sorted({c for c in classes.values() if c in _MERMAID_CLASS})
    for name in used:
        lines.append(f"    classDef {name} {_MERMAID_CLASS[name]}")
        members = ",".join(node[t] for t, c in classes.items() if c == name)
        lines.append(f"    class {members} {name}")
    return "\n".join(lines)


def dot(plan: Plan, views: Sequence[TaskView] | None = None) -> str:
    """The plan's graph for graphviz; a task whose result is made up (``views``) says so in its label."""
    marks = {v.id: simulated_mark(v.simulated) + reused_mark(v) + timed_mark(v) for v in views or ()}
    classes = {v.id: "outofdate" if v.out_of_date else str(v.status) for v in views or ()}
    lines = ["digraph plan {", "    rankdir=LR;", "    node [shape=box];"]
    for task_id, task in plan.tasks.items():
        label = f"{task_id}: {task.title}{kind_mark(task)}{gate_mark(task)}{marks.get(task_id, '')}"
        lines.append(
            f"    {json.dumps(task_id, ensure_ascii=False)} [label={json.dumps(label, ensure_ascii=False)}"
            f"{_dot_colours(classes.get(task_id))}];"
        )
    labels = condition_edges(plan)
    for source, target in plan.edges():
        edge = labels.get((source, target))
        more = f" [label={json.dumps(edge, ensure_ascii=False)}, style=dashed]" if edge else ""
        lines.append(f"    {json.dumps(source)} -> {json.dumps(target)}{more};")
    lines.append("}")
    return "\n".join(lines)


def _dot_colours(name: str | None) -> str:
    """A state's colours (the mermaid graph's: ``_MERMAID_CLASS``) as graphviz node attributes."""
    if name not in _MERMAID_CLASS:
        return ""
    style = dict(part.split(":", 1) for part in _MERMAID_CLASS[name].split(","))
    dashed = ",dashed" if "stroke-dasharray" in style else ""
    return f', style="filled{dashed}", fillcolor="{style["fill"]}", color="{style["stroke"]}"'


def layers_text(plan: Plan, views: Sequence[TaskView] | None = None) -> str:
    """The DAG for a terminal: one block per layer, each task with what it waits for."""
    from orchestrator.plan.graph import layers

    states = {v.id: v.status for v in views} if views else {}
    marks = _marks(views)
    out: list[str] = []
    for depth, layer in enumerate(layers(plan.graph, plan.order), start=1):
        can = "in parallel" if len(layer) > 1 else ""
        out.append(f"Layer {depth} ({counted(len(layer), 'task')}{', ' + can if can else ''})")
        for task_id in layer:
            task = plan.tasks[task_id]
            state = states.get(task_id)
            icon = state.icon if state else ""
            after = f"  ← {', '.join(task.dependencies)}" if task.dependencies else ""
            if after and reads(task, plan.tasks):
                after += f" (runs if {task.condition})"
            late = gate_mark(task) + marks.get(task_id, "")
            out.append(
                f"  {icon + ' ' if icon else ''}{task_id} [{task.agent}] {task.title}{kind_mark(task)}{late}{after}"
            )
    return "\n".join(out)


def _marks(views: Sequence[TaskView] | None) -> dict[str, str]:
    """What a graph says after a task's name: `` (simulated)``, `` (♻️ reused)``, `` (out of date)``,
    `` (not before 2026-12-01T09:00:00+00:00)`` for one waiting for its time, or nothing."""
    return {
        v.id: simulated_mark(v.simulated)
        + reused_mark(v)
        + (f" ({OUT_OF_DATE})" if v.out_of_date else "")
        + timed_mark(v)
        for v in views or ()
    }


def reused_mark(view: TaskView) -> str:
    """`` (♻️ reused)`` after a task whose result came from the cache (``run/resume/reuse``): no process
    started; ``status`` says why."""
    return f" ({REUSED} reused)" if view.reused else ""


def timed_mark(view: TaskView) -> str:
    """`` (not before TIME)`` after a task waiting for its Not before (its reason says the time)."""
    timed = view.cause is not None and view.cause.kind == CauseKind.NOT_BEFORE
    return f" ({view.reason})" if view.status == TaskStatus.WAITING and timed else ""


def summary_line(views: Sequence[TaskView], found: dict[str, int]) -> str:
    return summary_text(
        len(views),
        found,
        stale=sum(1 for v in views if v.out_of_date),
        reused=sum(1 for v in views if v.reused),
        made_up=sum(1 for v in views if v.simulated),
        costs=[v.cost_usd for v in views if v.cost_usd is not None],
        tokens=[v.tokens for v in views if v.tokens is not None],
    )
