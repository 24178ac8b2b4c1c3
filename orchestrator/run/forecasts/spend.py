"""What a run is expected to cost before it is spent: each task's cost and tokens as a range
(``p50``, ``p90``) learned from the runs before, and what each figure is based on.

A task's figure is what one run of it cost (every attempt of it in that run, a retry's too: a
failed attempt is paid for), first found among: the runs of it with the brief it has now
(``history``); its runs under another brief (``task``: last night's batch); the other items of its
row (``row``: an item never run costs what its row's items cost); the tasks of its kind on the
model its settings name (``model``: when they name one and tasks of its kind ran on it); the tasks
of its kind on any model (``kind``: its type, else its profile and backend, else its backend, as
``estimates.kind_of`` says); else nothing (``none``: "no history", said as such, and counted as $0
nowhere: the run's figure names how many tasks it does not know). A row whose items are not known
yet (they come from an upstream still to run) is forecast from its earlier runs' items, times as
many items as it had last time.

The run's range adds the tasks': its ``p50`` is the sum of theirs, its ``p90`` that plus the
square root of the sum of each task's squared spread (``p90 - p50``): tasks that cost more than
usual seldom all do at once. A simulated attempt (``--executor fake``) teaches nothing.

Read by ``validate``, ``run --dry-run``, ``run`` (a forecast over ``max_cost`` does not start:
``budget_check``), ``status``, the API and MCP; ``task_started`` records each attempt's forecast and
``report`` sets it beside what was spent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.plan.model import Plan
from orchestrator.state.events import EventRecord
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import money

NO_HISTORY = "no history"
_SAID = {
    "history": "{n} earlier run{s} of it with this brief",
    "task": "{n} earlier run{s} of it (another brief)",
    "row": "{n} run{s} of its row's items",
    "kind": "{n} run{s} of tasks of its kind ({kind})",
    "model": "{n} run{s} of tasks of its kind ({kind}) on its model",
}


@dataclass(frozen=True, slots=True)
class Range:
    """An expected figure: the median (``p50``) and what 9 runs in 10 stay under (``p90``)."""

    p50: float
    p90: float

    @classmethod
    def of(cls, values: list[float]) -> Range:
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
        return cls(_median(ordered), max(p90, _median(ordered)))

    def as_json(self, digits: int = 6) -> dict[str, float]:
        return {"p50": round(self.p50, digits), "p90": round(self.p90, digits)}


@dataclass(frozen=True, slots=True)
class TaskForecast:
    task: str
    cost: Range | None  # dollars; None: nothing it is based on reported a cost
    tokens: Range | None
    basis: str  # "history", "task", "row", "kind" or "none"
    samples: int  # runs of tasks it is based on
    said: str  # what it is based on, in words ("no history")

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "cost_usd": self.cost.as_json() if self.cost else None,
            "tokens": self.tokens.as_json(0) if self.tokens else None,
            "basis": self.basis,
            "samples": self.samples,
            "based_on": self.said,
        }


@dataclass(slots=True)
class RunForecast:
    """The forecast of the tasks a run would run: each one's, and their sum."""

    tasks: dict[str, TaskForecast] = field(default_factory=dict)
    cost: Range | None = None
    tokens: Range | None = None
    unknown: list[str] = field(default_factory=list)  # tasks with no cost figure: no history

    def as_json(self) -> dict[str, Any]:
        return {
            "cost_usd": self.cost.as_json() if self.cost else None,
            "tokens": self.tokens.as_json(0) if self.tokens else None,
            "tasks": len(self.tasks),
            "no_history": list(self.unknown),
            "per_task": [forecast.as_json() for forecast in self.tasks.values()],
        }

    def p50s(self) -> dict[str, float]:
        """Each task's expected cost (its p50), for those with one: what admission holds an attempt
        to, and what the estimates' ``expected_cost`` adds up."""
        return {task: found.cost.p50 for task, found in self.tasks.items() if found.cost is not None}

    def token_p50s(self) -> dict[str, float]:
        """Each task's expected tokens (their p50), for those with a figure: what a backend's
        ``backend_tokens_per_minute`` paces."""
        return {task: found.tokens.p50 for task, found in self.tasks.items() if found.tokens is not None}

    def line(self) -> str:
        """One line: ``forecast: $0.42 (p90 $0.61) for 12 tasks, from history; 3 with no history``."""
        if not self.tasks:
            return "forecast: nothing to run"
        known = len(self.tasks) - len(self.unknown)
        if self.cost is None:
            return f"forecast: no cost history for the {len(self.tasks)} task{_s(len(self.tasks))} to run"
        head = f"forecast: {money(self.cost.p50)} (p90 {money(self.cost.p90)}) for {known} task{_s(known)}"
        if self.unknown:
            head += f"; {len(self.unknown)} more with no history ({_names(self.unknown)})"
        return head


@dataclass(slots=True)
class _Runs:
    """What the runs of one task (a run of it: every attempt of it in one run) cost."""

    cost: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)

    def add(self, cost: float | None, tokens: float | None) -> None:
        if cost is not None:
            self.cost.append(cost)
        if tokens is not None:
            self.tokens.append(tokens)

    def __bool__(self) -> bool:
        return bool(self.cost or self.tokens)

    def extend(self, other: _Runs) -> None:
        self.cost += other.cost
        self.tokens += other.tokens


def _median(ordered: list[float]) -> float:
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def tokens_of(value: object) -> float | None:
    """An attempt's tokens as the events (and a result) tell them: a number, or a mapping of kinds
    to numbers."""
    if isinstance(value, Mapping):
        return float(sum(v for v in value.values() if isinstance(v, (int, float))))
    return float(value) if isinstance(value, (int, float)) else None


def learn(
    all_events: Iterable[EventRecord],
    plan: Plan,
    kinds: Mapping[str, str],
    *,
    briefs: Mapping[str, str] | None = None,
    tasks: Iterable[str] | None = None,
    models: Mapping[str, str | None] | None = None,
) -> RunForecast:
    """The forecast of ``tasks`` (default: every task of ``plan``), from the event log's attempts.
    ``kinds``: each task's kind (``estimates.kinds_of``); ``briefs``: each task's brief key now;
    ``models``: the model each task's settings name (``None``: its CLI's default)."""
    from orchestrator.state.kept.history import ended  # (read as a forecast is made: `status` of no run needs it not)

    runs: dict[tuple[str | None, str], dict[str, Any]] = {}  # (run, task) -> what that run of it spent
    for attempt in ended(all_events):
        if attempt.get("simulated") or attempt["outcome"] in ("running", "lost"):
            continue
        cost, tokens = attempt.get("cost_usd"), tokens_of(attempt.get("tokens"))
        if cost is None and tokens is None:
            continue
        key = (attempt.get("run"), attempt["task"])
        spent = runs.setdefault(key, {"cost": None, "tokens": None, "brief": attempt.get("brief"),
                                      "kind": attempt.get("kind") or kinds.get(attempt["task"]),
                                      "model": attempt.get("model")})  # fmt: skip
        if cost is not None:
            spent["cost"] = (spent["cost"] or 0.0) + float(cost)
        if tokens is not None:
            spent["tokens"] = (spent["tokens"] or 0.0) + tokens
    own: dict[tuple[str, str | None], _Runs] = defaultdict(_Runs)
    by_task: dict[str, _Runs] = defaultdict(_Runs)
    by_row: dict[str, _Runs] = defaultdict(_Runs)
    by_kind: dict[str, _Runs] = defaultdict(_Runs)
    by_model: dict[tuple[str, str], _Runs] = defaultdict(_Runs)  # (kind, model)
    for (_, ran), spent in runs.items():
        own[(ran, spent["brief"])].add(spent["cost"], spent["tokens"])
        by_task[ran].add(spent["cost"], spent["tokens"])
        if "[" in ran:
            by_row[ran.partition("[")[0]].add(spent["cost"], spent["tokens"])
        if spent["kind"]:
            by_kind[spent["kind"]].add(spent["cost"], spent["tokens"])
            if spent["model"]:
                by_model[(spent["kind"], spent["model"])].add(spent["cost"], spent["tokens"])
    briefs, models = briefs or {}, models or {}
    forecast = RunForecast()
    chosen = list(plan.tasks) if tasks is None else [t for t in tasks if t in plan.tasks]  # (in order)
    expanded = {t.row for t in plan.tasks.values() if t.row is not None}  # rows whose instances are known
    for task_id in chosen:
        task = plan.tasks[task_id]
        if task.each is not None and task_id not in expanded:
            found = _row_unknown(task_id, by_row, runs)
        elif task.each is not None:
            continue  # its instances are forecast, each
        else:
            kind, model = kinds.get(task_id, ""), models.get(task_id)
            brief = briefs.get(task_id)
            candidates = (
                ("history", own.get((task_id, brief)) if brief else None),
                ("task", by_task.get(task_id)),
                ("row", by_row.get(task.row) if task.row else None),
                ("model", by_model.get((kind, model)) if model else None),
                ("kind", by_kind.get(kind)),
            )
            found = _first(task_id, kind, candidates)
        forecast.tasks[task_id] = found
    for row, later in plan.later.items():  # (a run's instances outside its plan yet: each as a sibling never run)
        if row in chosen:
            kind, model = kinds.get(row, ""), models.get(row)
            outside = (("row", by_row.get(row)), ("model", by_model.get((kind, model)) if model else None),
                       ("kind", by_kind.get(kind)))  # fmt: skip
            one = _first(row, kind, outside)
            for number in later.left:
                task_id = f"{row}[{number}]"
                forecast.tasks[task_id] = replace(one, task=task_id)
    _total(forecast)
    return forecast


def _first(task_id: str, kind: str, candidates: Iterable[tuple[str, _Runs | None]]) -> TaskForecast:
    """``task_id``'s forecast on the first basis of ``candidates`` with runs to learn from."""
    found = (_forecast(task_id, basis, seen, kind) for basis, seen in candidates if seen)
    return next(found, TaskForecast(task_id, None, None, "none", 0, NO_HISTORY))


def _forecast(task: str, basis: str, seen: _Runs, kind: str) -> TaskForecast:
    samples = max(len(seen.cost), len(seen.tokens))
    said = _SAID[basis].format(n=samples, s=_s(samples), kind=kind)
    cost = Range.of(seen.cost) if seen.cost else None
    tokens = Range.of(seen.tokens) if seen.tokens else None
    return TaskForecast(task, cost, tokens, basis, samples, said)


def _row_unknown(row: str, by_row: Mapping[str, _Runs], runs: Mapping[tuple[str | None, str], Any]) -> TaskForecast:
    """A row whose items are not known yet: as many items as its last run had, each costing what
    its items cost; "no history" when it never ran."""
    seen = by_row.get(row)
    last: dict[str | None, int] = defaultdict(int)
    for run, task in runs:
        if task.startswith(row + "["):
            last[run] += 1
    if not seen or not last:
        return TaskForecast(row, None, None, "none", 0, f"{NO_HISTORY} (its items are not known yet)")
    items = list(last.values())[-1]
    one = _forecast(row, "row", seen, "")

    def scaled(found: Range | None) -> Range | None:
        return Range(found.p50 * items, found.p90 * items) if found else None

    said = f"{items} items as its last run had, each as {one.said}"
    return TaskForecast(row, scaled(one.cost), scaled(one.tokens), "row", one.samples, said)


def _total(forecast: RunForecast) -> None:
    """The run's range from its tasks': medians added, spreads added in quadrature."""
    costs = [f.cost for f in forecast.tasks.values() if f.cost is not None]
    tokens = [f.tokens for f in forecast.tasks.values() if f.tokens is not None]
    forecast.unknown = [t for t, f in forecast.tasks.items() if f.cost is None]
    forecast.cost = _sum(costs)
    forecast.tokens = _sum(tokens)


def _sum(ranges: list[Range]) -> Range | None:
    if not ranges:
        return None
    middle = sum(r.p50 for r in ranges)
    return Range(middle, middle + math.sqrt(sum((r.p90 - r.p50) ** 2 for r in ranges)))


def for_tasks(
    plan: Plan, workspace: Workspace, tasks: Iterable[str] | None = None, briefs: Mapping[str, str] | None = None
) -> RunForecast:
    """The forecast of ``tasks`` of ``plan`` from ``workspace``'s event log (every task: ``None``)."""
    from orchestrator.run.forecasts.estimates import kinds_of
    from orchestrator.state import events

    return learn(events.each(workspace.events_file), plan, kinds_of(plan, workspace), briefs=briefs, tasks=tasks,
                 models=_models(plan, workspace))  # fmt: skip


def _models(plan: Plan, workspace: Workspace) -> dict[str, str | None]:
    """The model each task's settings name (its profile's, its row's, the plan's)."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.plan.config.profiles import Profiles

    profiles, found = Profiles(workspace), dict[str, str | None]()
    for task in plan.tasks.values():
        try:
            found[task.id] = profiles.settings_for(plan, task).model
        except OrchestratorError:
            found[task.id] = None
    return found


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _names(tasks: list[str], shown: int = 4) -> str:
    return ", ".join(tasks[:shown]) + (f" and {len(tasks) - shown} more" if len(tasks) > shown else "")


_SETTLED = ("completed", "bypassed", "cancelled", "rejected")  # what a next run leaves as it is


def workspace_forecast(plan: Plan, workspace: Workspace, views: Iterable[Any]) -> RunForecast | None:
    """What the tasks a next run would run (those not completed, bypassed, cancelled nor
    rejected) are expected to cost: ``status``'s and ``validate``'s forecast; ``None`` when no run
    has been recorded (nothing to learn from, and no time spent finding so)."""
    from orchestrator.state import events

    if not events.size(workspace.events_file):
        return None
    left = [view.id for view in views if str(view.status) not in _SETTLED]
    return for_tasks(plan, workspace, left) if left else None


def forecast_line(forecast: RunForecast | None, limit: float | None) -> str | None:
    """``status``'s line: ``forecast: ... for the tasks left; budget $2.00 (max_cost)``; ``None`` with
    no cost learned."""
    if forecast is None or forecast.cost is None:
        return None
    budget = f"; budget {money(limit)} (max_cost)" if limit is not None else ""
    return forecast.line() + " left" + budget


def what_is_left(plan: Plan, workspace: Workspace, views: list[Any]) -> tuple[dict[str, Any], RunForecast | None]:
    """What ``status`` and the dashboard say of the work left, as ``status --json``'s keys: its
    ``eta`` (``estimates``, its expected cost this forecast's), the ``forecast`` of what a next run
    would run, and the budget it is held to (``max_cost``); and that forecast."""
    from orchestrator.run.forecasts.estimates import workspace_eta

    forecast = workspace_forecast(plan, workspace, views)
    eta = workspace_eta(plan, workspace, views, forecast.p50s() if forecast is not None else None)
    said = {"eta": eta, "forecast": forecast.as_json() if forecast is not None else None,
            "max_cost": plan.settings.max_cost}  # fmt: skip
    return said, forecast
