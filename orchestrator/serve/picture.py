"""The task graph as an SVG drawn on the server: one column per layer, one box per task, an arrow
from each dependency, routed around the boxes between (``layout``). Nothing for the browser to
fetch; the page colours each box by its task's state through CSS classes (``state-running``...),
so a state change restyles a box without drawing the graph again."""

from __future__ import annotations

from html import escape

from orchestrator.plan.model import Plan
from orchestrator.serve.layout import BOX_H, BOX_W, layout

TITLE_CHARS = 22


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def graph_svg(plan: Plan) -> str:
    """The plan's graph as a standalone ``<svg>`` element; each task's box is a ``<g>`` with
    ``data-task`` set to its id, for the page to colour and to select."""
    drawn = layout(plan)
    width, height = drawn.width, drawn.height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="task graph">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>',
    ]
    for route in drawn.routes:
        parts.append(
            f'<path class="edge" data-from="{escape(route.source)}" data-to="{escape(route.target)}" '
            f'd="{route.path()}" marker-end="url(#arrow)"/>'
        )
    for task_id, (x, y) in drawn.boxes.items():
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
