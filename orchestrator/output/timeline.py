"""A run's timeline: each task's bar from its first attempt's start to its end, as a
self-contained SVG Gantt chart (``report``) and as mermaid ``gantt`` source (final_output.md).

The bars come from the result files (``started``, which ``final.as_spent`` makes the first
attempt's start, ``finished``: the end of the attempt that ended the task), grouped by
dependency layer; tasks on the critical path are marked (``crit`` in mermaid, outlined in the SVG).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from orchestrator.output.views import mermaid_text, simulated_mark
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.graph import layers
from orchestrator.plan.model import Plan
from orchestrator.state.status import TaskView

COLOURS = {
    "completed": "#2da44e",
    "failed": "#cf222e",
    "skipped": "#8c959f",
    "interrupted": "#bf8700",
    "running": "#0969da",
}
_ROW = 22
_LABEL = 220
_WIDTH = 900
# final_output.md shows the timeline of a run of at most this many tasks (``report`` of any).
MERMAID_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Bar:
    task: str
    name: str
    status: str
    start: float  # seconds since the epoch
    end: float
    layer: int
    critical: bool = False
    simulated: bool = False  # made up by the fake executor: no process ran


def stamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def bars(plan: Plan, views: list[TaskView], critical: set[str]) -> list[Bar]:
    """A bar for each task whose result says when it started and ended."""
    depth = {task: index for index, layer in enumerate(layers(plan.graph)) for task in layer}
    found: list[Bar] = []
    for view in views:
        start, end = stamp(view.started), stamp(view.finished)
        if start is None or end is None or end < start:
            continue
        layer, on_path = depth.get(view.id, 0), view.id in critical
        found.append(Bar(view.id, view.name, str(view.status), start, end, layer, on_path, view.simulated))
    return found


def svg(bars: Sequence[Bar], title: str = "Timeline") -> str:
    """The Gantt chart: one row per task in order of start, a time axis in seconds from the first start."""
    rows = sorted(bars, key=lambda b: (b.start, b.task))
    height = 40 + _ROW * max(len(rows), 1) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if not rows:
        parts.append('<text x="8" y="50">No task has run yet.</text></svg>')
        return "\n".join(parts)
    origin = min(b.start for b in rows)
    span = max(max(b.end for b in rows) - origin, 1e-3)
    scale = (_WIDTH - _LABEL - 20) / span
    axis_y = 40 + _ROW * len(rows)
    for tick in _ticks(span):
        x = _LABEL + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="32" x2="{x:.1f}" y2="{axis_y}" stroke="#d0d7de" stroke-width="1"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#57606a">{_tick_label(tick)}</text>'
        )
    for index, bar in enumerate(rows):
        y = 36 + index * _ROW
        x = _LABEL + (bar.start - origin) * scale
        width = max((bar.end - bar.start) * scale, 1.0)
        colour = COLOURS.get(bar.status, "#6e7781")
        outline = ' stroke="#000000" stroke-width="1.5"' if bar.critical else ""
        outline += ' fill-opacity="0.35" stroke-dasharray="4 2"' if bar.simulated else ""  # made up: a ghost
        made_up = simulated_mark(bar.simulated)
        label = escape(f"{bar.task} {bar.name}"[: 34 - len(made_up)] + made_up)
        tip = escape(f"{bar.task} {bar.name}: {bar.status}{made_up}, {format_duration(bar.end - bar.start)}")
        parts.append(f'<text x="8" y="{y + 13}">{label}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{_ROW - 6}" rx="3" fill="{colour}"{outline}>'
            f"<title>{tip}</title></rect>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _ticks(span: float) -> list[float]:
    """About six round steps across ``span`` seconds."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200):
        if span / step <= 8:
            break
    count = int(span / step)
    return [round(i * step, 3) for i in range(count + 1)]


def _tick_label(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    return format_duration(seconds)


_NAME_SPECIAL = ":;#"  # what a gantt's task name cannot hold as itself (views.mermaid_text)


def mermaid(bars: Iterable[Bar]) -> str:
    """mermaid ``gantt`` source: a section per dependency layer, times as epoch milliseconds
    (``dateFormat x``), ``done``/``crit`` as the task's state says."""
    rows = sorted(bars, key=lambda b: (b.layer, b.start, b.task))
    lines = ["gantt", "    dateFormat x", "    axisFormat %H:%M:%S"]
    layer: int | None = None
    for number, bar in enumerate(rows):
        if bar.layer != layer:
            layer = bar.layer
            lines.append(f"    section Layer {layer + 1}")
        tags = [{"completed": "done", "running": "active"}.get(bar.status, "")]
        if bar.status != "completed" and bar.status != "running":
            tags = ["crit"] if bar.status == "failed" else []
        elif bar.critical:
            tags.append("crit")
        name = mermaid_text(f"{bar.task} {bar.name}{simulated_mark(bar.simulated)}", _NAME_SPECIAL).strip()
        start, end = round(bar.start * 1000), max(round(bar.end * 1000), round(bar.start * 1000) + 1)
        meta = ", ".join([*(t for t in tags if t), f"t{number}", str(start), str(end)])
        lines.append(f"    {name} :{meta}")
    return "\n".join(lines)
