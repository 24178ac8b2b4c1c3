"""The task graph as an SVG drawn on the server: one column per layer (``plan.graph.layers``),
one box per task, an arrow from each dependency. No layout library and nothing for the browser to
fetch; the page colours each box by its task's state through CSS classes (``state-running``...),
so a state change restyles a box without drawing the graph again."""

from __future__ import annotations

from html import escape

from orchestrator.plan.graph import layers
from orchestrator.plan.model import Plan

BOX_W = 176
BOX_H = 44
GAP_X = 56
GAP_Y = 14
MARGIN = 12
TITLE_CHARS = 22


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def graph_svg(plan: Plan) -> str:
    """The plan's graph as a standalone ``<svg>`` element; each task's box is a ``<g>`` with
    ``data-task`` set to its id, for the page to colour and to select."""
    columns = layers(plan.graph, plan.order)
    place: dict[str, tuple[int, int]] = {}
    for col, ids in enumerate(columns):
        for row, task_id in enumerate(ids):
            place[task_id] = (MARGIN + col * (BOX_W + GAP_X), MARGIN + row * (BOX_H + GAP_Y))
    tallest = max((len(ids) for ids in columns), default=0)
    width = MARGIN * 2 + max(len(columns), 1) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max(tallest, 1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="task graph">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>',
    ]
    for source, target in plan.edges():
        if source not in place or target not in place:
            continue
        (sx, sy), (tx, ty) = place[source], place[target]
        x1, y1, x2, y2 = sx + BOX_W, sy + BOX_H // 2, tx, ty + BOX_H // 2
        bend = max((x2 - x1) // 2, 20)
        parts.append(
            f'<path class="edge" data-from="{escape(source)}" data-to="{escape(target)}" '
            f'd="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}" marker-end="url(#arrow)"/>'
        )
    for task_id, (x, y) in place.items():
        task = plan.tasks[task_id]
        parts.append(
            f'<g class="node state-pending" data-task="{escape(task_id)}" tabindex="0">'
            f"<title>{escape(task_id)} [{escape(task.agent)}] {escape(task.title)}</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="7"/>'
            f'<text x="{x + 10}" y="{y + 18}" class="node-id">{escape(task_id)}</text>'
            f'<text x="{x + 10}" y="{y + 35}" class="node-title">{escape(_short(task.title, TITLE_CHARS))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
