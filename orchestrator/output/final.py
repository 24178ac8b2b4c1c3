"""final_output.md from whatever results exist: a summary, results in dependency order, problems.

Its last line says what wrote it, with a digest of the text above it: a file that no longer
matches (edited by hand, or written before the line existed) is moved aside, to
``final_output.edited.md``, before a new one is written, never written over.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, overload

from orchestrator import moments
from orchestrator.documents import read_output, read_output_head, sha256
from orchestrator.output.markup import as_code_block, demote_headings, output_form, quoted_in
from orchestrator.output.templates import Renders, Templates
from orchestrator.output.timeline import MERMAID_LIMIT, bars, mermaid
from orchestrator.output.views import NOT_MEASURED, summary_line
from orchestrator.plan.config.params import shown_values
from orchestrator.plan.config.settings import format_duration
from orchestrator.plan.graph import critical_path
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.times import spoken_in
from orchestrator.printable import visible
from orchestrator.state import journal, schedule, store
from orchestrator.state.causes import CauseKind
from orchestrator.state.kept import aside, checkpoints
from orchestrator.state.kept import synthesis as spent
from orchestrator.state.status import TaskView, counts
from orchestrator.state.workspace import Workspace
from orchestrator.version import __version__
from orchestrator.views.replay import collect
from orchestrator.vocabulary import TaskStatus, counted

_T = TypeVar("_T")
TASK_HEADING = 3  # final_output.md's "### T-01 ..." above each output: its headings go below
SYNTHESIS_HEADING = 2  # "## Synthesis"


def _stamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def busy_time(views: list[TaskView]) -> float | None:
    """Seconds during which at least one task ran: the union of their intervals.

    Results may come from several runs (resume); the gaps between runs are not the plan's time.
    """
    spans = sorted(
        (start, end)
        for start, end in ((_stamp(v.started), _stamp(v.finished)) for v in views)
        if start is not None and end is not None and end >= start
    )
    if not spans:
        return None
    total = 0.0
    current_start, current_end = spans[0]
    for start, end in spans[1:]:
        if start > current_end:
            total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    return total + (current_end - current_start).total_seconds()


def as_spent(views: list[TaskView], workspace: Workspace) -> list[TaskView]:
    """``views`` as the run that made each result spent it: each with its ``span``, from its first
    attempt's start to its last's end in that run (a task retried there starts at its first
    attempt: its result file tells of the last attempt only, the journal of the others), its
    ``duration`` still its last attempt's. What final_output.md and ``report`` count the wall
    time, the critical path, the sum of spans and the timeline by (``span_of``)."""
    earlier = {v.id: range(v.attempts - v.run_attempts + 1, v.attempts) for v in views if v.run_attempts > 1}
    spans = journal.attempt_spans(workspace.journal_file, earlier)
    spent: list[TaskView] = []
    for view in views:
        found = [spans[view.id, number] for number in earlier.get(view.id, ()) if (view.id, number) in spans]
        if found and view.duration is not None:
            view = replace(view, started=moments.iso_at(min(start for start, _ in found)))
        start, end = _stamp(view.started), _stamp(view.finished)
        if view.duration is not None and start is not None and end is not None and end >= start:
            view = replace(view, span=round(max((end - start).total_seconds(), view.duration), 3))
        spent.append(view)
    return spent


def span_of(view: TaskView) -> float:
    """The seconds ``view``'s task took in the run that made its result: its ``span`` where
    ``as_spent`` found it, else its ``duration`` (0 for none)."""
    return view.span if view.span is not None else view.duration or 0.0


@dataclass(frozen=True, slots=True)
class Synthesis:
    """What the aggregating agent wrote (``aggregate: agent``), and what it spent where its CLI
    says: final_output.md counts its cost and tokens in the totals, and says how much was its."""

    text: str
    cost_usd: float | None = None
    tokens: int | None = None


def summarize(
    plan: Plan, views: list[TaskView], synthesis: Synthesis | None = None, *, run_seconds: float | None = None
) -> dict[str, Any]:
    """The figures of final_output.md's summary. ``wall``: the run's wall time, the figure its last
    line gives (``aggregate`` the last run's; before any run, the time with a task running); ``busy``:
    the time while any task ran, which the speed-up divides the sum of the tasks' spans by."""
    ran = [v for v in views if v.duration is not None and v.status != TaskStatus.SKIPPED]
    wall = busy_time(ran)
    work = sum(span_of(v) for v in ran)
    path, length = critical_path(plan.graph, {v.id: span_of(v) for v in views})
    found = counts(views)
    cost = [v.cost_usd for v in views if v.cost_usd is not None]
    tokens = [v.tokens for v in views if v.tokens is not None]
    simulated = sum(1 for v in views if v.simulated)
    noise = any(v.simulated for v in ran)  # a made-up duration: the figures made of it are no fact
    speedup = f"{work / wall:.2f}×" if wall and work else "-"
    chain = (" -> ".join(path) + f" ({format_duration(length)})") if ran and path else "-"
    return {
        "total": len(views),
        "counts": found,
        "counts_text": summary_line(views, found).split(": ", 1)[1].split(";")[0],
        "wall_seconds": wall,
        "work_seconds": work,
        "wall": format_duration(wall if run_seconds is None else run_seconds),
        "busy": format_duration(wall),
        "work": format_duration(work) if ran else "-",
        "speedup": NOT_MEASURED if noise else speedup,
        "critical_path": NOT_MEASURED if noise else chain,
        "cost": _cost(cost, synthesis.cost_usd if synthesis else None),
        "tokens": _tokens(tokens, synthesis.tokens if synthesis else None),
        "simulated": counted(simulated, "task") if simulated else "",
        "params": _cell(shown_values(plan.params)) if plan.params else "",
        "schedule": "",  # the workspace's schedule, when it has one (``scheduled``)
    }


def scheduled(workspace: Workspace) -> dict[str, str]:
    """The summary's ``schedule`` row: the workspace's schedule, when it has one (``schedule add``);
    and its ``restored`` row: a checkpoint restored since the last run started (as ``status`` and
    ``report`` tell it: ``aggregate`` after a ``checkpoint restore``)."""
    planned = schedule.shown(workspace, time.time())
    back = checkpoints.restored(workspace)
    return {
        "schedule": schedule.note(planned).removeprefix("📅 ") if planned is not None else "",
        "restored": checkpoints.restored_note(back).removeprefix("⏪ ") if back is not None else "",
    }


def _cost(tasks: list[float], synthesis: float | None) -> str:
    if not tasks and synthesis is None:
        return "none reported"  # (codex and gemini report none; nor does a plain command)
    text = f"${sum(tasks) + (synthesis or 0.0):.4f}"
    return text + (f" (the synthesis ${synthesis:.4f} of it)" if synthesis is not None else "")


def _tokens(tasks: list[int], synthesis: int | None) -> str:
    if not tasks and synthesis is None:
        return ""
    text = f"{sum(tasks) + (synthesis or 0):,}"
    return text + (f" (the synthesis {synthesis:,} of them)" if synthesis is not None else "")


# What final_output.md.j2 is given (``output.trial`` checks an override uses no other name).
GIVEN = ("request", "summary", "completed", "problems", "held", "bypassed", "synthesis", "timeline", "delivered")


def build(
    plan: Plan,
    workspace: Workspace,
    views: list[TaskView] | None = None,
    synthesis: Synthesis | None = None,
    templates: Renders | None = None,
    *,
    run_seconds: float | None = None,
) -> str:
    """The text of final_output.md; ``synthesis``: the aggregating agent's, its spend counted in;
    ``templates``: a run's (``Lenient``), else the workspace's (a broken one is an error);
    ``run_seconds``: the wall time of the run that writes it, as its last line says it."""
    return _rendered(plan, workspace, views, synthesis, templates, "".join, run_seconds=run_seconds)


def _rendered(
    plan: Plan,
    workspace: Workspace,
    views: list[TaskView] | None,
    synthesis: Synthesis | None,
    templates: Renders | None,
    join: Callable[[Iterator[str]], _T],
    *,
    run_seconds: float | None = None,
    delivered: Sequence[str] = (),
) -> _T:
    """final_output.md's template rendered, its pieces handed to ``join`` as they are made (see ``build``)."""
    views = as_spent(collect(plan, workspace) if views is None else views, workspace)
    by_id = {v.id: v for v in views}
    order = plan.topological_order()
    outputs = {
        task_id: _output(workspace, plan.tasks[task_id])
        for task_id in order
        if by_id[task_id].status == TaskStatus.COMPLETED
    }
    holders = _quoted_by(plan, order, outputs)
    problems: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    bypassed: list[dict[str, Any]] = []
    for task_id in order:
        view = by_id[task_id]
        if view.status == TaskStatus.COMPLETED:
            continue  # (its section is made as the template reads it: ``Sections``)
        if view.status == TaskStatus.BYPASSED:  # a false condition: no failure, under a heading of its own
            bypassed.append(_bypassed(view))
        elif view.status in (TaskStatus.AWAITING_APPROVAL, TaskStatus.BLOCKED):  # a person's word is needed
            held.append({"id": task_id, "label": view.status.label, "reason": _cell(view.reason)})
        elif (problem := _problem(view)) is not None:
            problems.append(problem)
    return (templates or Templates.of(workspace)).render_as(
        "final_output.md.j2",
        join,
        request=plan.request,
        summary=summarize(plan, views, synthesis, run_seconds=run_seconds) | scheduled(workspace),
        completed=Sections(plan, by_id, outputs, holders),
        problems=problems,
        held=held,
        bypassed=bypassed,
        synthesis=demote_headings(synthesis.text, SYNTHESIS_HEADING) if synthesis and synthesis.text else "",
        timeline=_timeline(plan, views),
        delivered=list(delivered),
    )


class Sections(Sequence[dict[str, Any]]):
    """The completed tasks' sections, in dependency order, each made when the template reads it:
    a plan of 10,000 tasks never holds every section's text at once (each output fenced is a
    copy of it) while final_output.md is written a piece at a time."""

    def __init__(
        self, plan: Plan, views: Mapping[str, TaskView], outputs: Mapping[str, str | None], holders: Mapping[str, str]
    ) -> None:
        self.plan, self.views, self.outputs, self.holders = plan, views, outputs, holders
        self.ids = list(outputs)  # (in dependency order)

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._section(task_id) for task_id in self.ids[index]]
        return self._section(self.ids[index])

    def _section(self, task_id: str) -> dict[str, Any]:
        task = self.plan.tasks[task_id]
        return _completed(self.plan, task, self.views[task_id], self.outputs[task_id], self.holders.get(task_id))


# Characters of a row run per item's result that final_output.md shows (its counts and first items'
# answers); its result file holds them all (100,000 items: tens of MB), of which only the start is read.
ROW_SHOWN = 20_000


class Cut(str):
    """The start of a row's result, the rest left in its file: never taken for an output a
    dependent quotes in full (``_quoted_by``)."""


def _output(workspace: Workspace, task: Task) -> str | None:
    """What ``task`` printed, as its section shows it: a row's, run per item, only its start."""
    if task.each is None:
        return read_output(workspace.result(task))
    head = read_output_head(workspace.result(task), ROW_SHOWN)
    if head is None:
        return None
    text, whole = head
    return text if whole and len(text) <= ROW_SHOWN else Cut(text)


def _completed(plan: Plan, task: Task, view: TaskView, output: str | None, holder: str | None) -> dict[str, Any]:
    """A completed task's section: its result, or where it is quoted in full, and what it spent."""
    if isinstance(output, Cut):  # a row run per item: its first items' answers (what its form is judged by)
        cut = output.rfind("\n## ", 0, ROW_SHOWN)  # (at an item's heading)
        output = output[: cut if cut > 0 else ROW_SHOWN] + f"\n\n*Every item's answer is in `{view.result_file}`.*\n"
    form = output_form(plan.settings.result_format, view.backend or plan.settings_for(task).backend, output)
    if output is None:
        body = "(result file unreadable)"
    elif not output.strip():
        body = "(no output)"
    elif holder is not None:
        body = f"*Quoted in full in the result of {holder} {plan.tasks[holder].title}, below.*"
    else:
        body = as_code_block(output) if form == "text" else demote_headings(output.rstrip("\n"), TASK_HEADING)
    return {
        "id": task.id,
        "name": task.title,
        "agent": task.agent,
        "type": task.type,
        "duration": format_duration(view.duration),
        "cost": f"${view.cost_usd:.4f}" if view.cost_usd is not None else "",  # (its line's, status')
        "body": body,
        "output": output or "",
        "format": form,
        "quoted_by": holder,
        "simulated": view.simulated,
        "reused": spoken_in(view.reused) if view.reused else None,  # from the cache (``run/resume/reuse``): why
        "raced": view.raced,  # a hedge or best of N: what it did
    }


def _bypassed(view: TaskView) -> dict[str, Any]:
    """A task its false condition bypassed: the condition and what it saw."""
    cause = view.cause
    seen = cause.seen if cause is not None and cause.kind == CauseKind.CONDITION else None
    return {
        "id": view.id,
        "condition": f"`{_cell(cause.condition or '')}`" if cause is not None and seen is not None else "-",
        "reason": _cell(f"false: {seen}" if seen is not None else view.reason),
    }


def _problem(view: TaskView) -> dict[str, Any] | None:
    """A task that did not complete (failed, skipped, cancelled...) or has not run yet; ``None``
    for one running now."""
    if view.status.finished:
        file = f"`{view.result_file}`" if view.result_file else "-"
        return {"id": view.id, "label": view.status.label, "reason": _cell(view.reason), "file": file}
    if view.status in (TaskStatus.PENDING, TaskStatus.WAITING):
        said = view.cause is not None  # (waiting for its Not before, approved at its gate: said so)
        reason = f"not run yet: {view.reason}" if said else "not run yet"
        return {"id": view.id, "label": view.status.label, "reason": _cell(reason), "file": "-"}
    return None


def _timeline(plan: Plan, views: list[TaskView]) -> str:
    """mermaid ``gantt`` of the tasks that ran, their critical path marked; empty when none ran
    or more than ``MERMAID_LIMIT`` did (``orchestrator report`` draws any number)."""
    ran = [v for v in views if v.duration is not None and v.status != TaskStatus.SKIPPED]
    path, _ = critical_path(plan.graph, {v.id: span_of(v) for v in ran})
    found = bars(plan, views, set() if any(v.simulated for v in ran) else set(path))  # (noise: no path)
    return mermaid(found) if found and len(found) <= MERMAID_LIMIT else ""


def _quoted_by(plan: Plan, order: list[str], outputs: dict[str, str | None]) -> dict[str, str]:
    """Completed tasks whose whole output a dependent's output repeats verbatim (a report that
    pastes its inputs), each with the task whose section shows it: the last in such a chain, so
    that final_output.md holds every output once."""
    holders: dict[str, str] = {}
    position = {task_id: index for index, task_id in enumerate(order)}
    for task_id in reversed(order):
        output = outputs.get(task_id)
        if not output or isinstance(output, Cut):
            continue
        dependents = sorted((t for t in plan.graph.successors(task_id) if outputs.get(t)), key=position.__getitem__)
        for dependent in dependents:
            if quoted_in(output, outputs[dependent] or ""):
                holders[task_id] = holders.get(dependent, dependent)
                break
    return holders


def write_final_output(
    plan: Plan,
    workspace: Workspace,
    views: list[TaskView] | None = None,
    synthesis: Synthesis | None = None,
    templates: Renders | None = None,
    *,
    run_seconds: float | None = None,
    delivered: Sequence[str] = (),
) -> Path | None:
    """Write final_output.md (``delivered``: a line for each effect the run's delivery made);
    returns where the one there was moved if it had been edited by hand since it was written (else
    None: it is written over, being the tool's own). Its text is made UTF-8 a piece at a time as it
    is rendered (``visible_utf8``): never held whole as a ``str``, which takes 4 bytes a character
    once one emoji is in it."""
    data = signed_utf8(_rendered(plan, workspace, views, synthesis, templates, visible_utf8, run_seconds=run_seconds,
                                 delivered=delivered))  # fmt: skip
    path = workspace.final_output
    try:
        found: bytes | None = path.read_bytes()
    except FileNotFoundError:
        found = None
    kept = aside.move_aside(path, "edited") if found is not None and found != data and not _own_bytes(found) else None
    del found
    # What the synthesis spent first: report counts it as final_output.md does (none: none).
    spent.record(workspace, spent.Spent(synthesis.cost_usd, synthesis.tokens) if synthesis else None)
    store.write_bytes(path, data)
    return kept


def visible_utf8(pieces: Iterable[str]) -> bytearray:
    """``printable.visible`` of the text ``pieces`` make, as UTF-8: each piece made visible and
    encoded as it comes (a ``\\r`` that ends one is held for the next: ``\\r\\n`` across two is
    one newline, as in the whole text)."""
    out = bytearray()
    held = ""
    for piece in pieces:
        if held:
            piece, held = held + piece, ""
        if piece.endswith("\r"):
            piece, held = piece[:-1], "\r"
        out += visible(piece).encode("utf-8")
    out += visible(held).encode("utf-8")
    return out


_SIGNATURE = re.compile(r"\n<!-- written by orchestrator \S+ \(sha256 ([0-9a-f]{64})\)[^\n]*-->\n\Z")


def signed(text: str) -> str:
    """``text`` with the last line that tells the tool's file from one edited since."""
    return signed_utf8(bytearray(text.encode("utf-8"))).decode("utf-8")


def signed_utf8(data: bytearray) -> bytearray:
    """``signed`` on UTF-8 text, in place: the same bytes as ``signed(text).encode()``."""
    import hashlib

    end = len(data)
    while end and data[end - 1] == 0x0A:  # (the newlines it ends with: one is kept)
        end -= 1
    del data[end:]
    data += b"\n"
    digest = hashlib.sha256(data).hexdigest()
    data += (
        f"\n<!-- written by orchestrator {__version__} (sha256 {digest}): "
        "edited by hand, this file is moved to final_output.edited.md before a new one is written -->\n"
    ).encode()
    return data


def _own_bytes(data: bytes) -> bool:
    """``own`` of a file's bytes, never decoded: a run's final_output.md of 10,000 tasks is some
    11 MB, 43 MB as a ``str`` once an emoji is in it, and a second run read the first's so
    (issue 66). Its last line found in the bytes, the digest taken of the bytes before it."""
    import hashlib

    start = data.rfind(b"\n<!-- written by orchestrator ")
    match = _SIGNATURE_UTF8.match(data, start) if start >= 0 else None
    return match is not None and match.group(1).decode() == hashlib.sha256(memoryview(data)[:start]).hexdigest()


_SIGNATURE_UTF8 = re.compile(_SIGNATURE.pattern.encode())


def edited_final_notice(workspace: Workspace, kept: Path) -> str:
    return (
        f"{workspace.relative(workspace.final_output)} was edited by hand since it was written: "
        f"kept as {workspace.relative(kept)}, and a new one written"
    )


def own(text: str) -> bool:
    """Whether ``text`` is final_output.md as the tool wrote it: its last line's digest matches."""
    match = _SIGNATURE.search(text)
    return match is not None and match.group(1) == sha256(text[: match.start()])
