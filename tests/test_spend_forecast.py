"""The forecast of what a run will cost (``run/forecasts/spend``): each task's p50 and p90 per run
of it, what it is based on, a row by its items, and the run's sum."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from orchestrator.plan.parser import parse_plan
from orchestrator.run.forecasts.spend import NO_HISTORY, Range, learn
from orchestrator.state.events.base import EventRecord
from orchestrator.state.events.records import read

PLAN = """---
backend: shell
---
## Task Decomposition
| Task ID | Command | Dependencies | Type |
|---|---|---|---|
| T-01 | true | None | review |
| T-02 | true | None | review |
| T-03 | true | None | |
"""


def ev(event: str, /, **fields: object) -> EventRecord:
    """An event as its line in the log says it (what a version leaves out, read as it reads)."""
    return read({"event": event, "time": "2026-11-27T08:00:00.000Z", **fields})


def runs_of(
    costs: dict[str, Sequence[float]], *, brief: str = "b1", kind: str = "review", model: str | None = None
) -> Iterator[EventRecord]:
    """One run a figure: each task completed at that cost."""
    rounds = max(len(v) for v in costs.values())
    for number in range(rounds):
        run = f"r{number}"
        yield ev("run_started", run=run, to_run=len(costs), already_done=0)
        for task, spent in costs.items():
            if number < len(spent):
                yield ev("task_started", run=run, task=task, attempt=number + 1, brief=brief, kind=kind, model=model)
                yield ev("task_completed", run=run, task=task, cost_usd=spent[number], attempt_cost_usd=spent[number],
                                    tokens=1000, attempt_tokens=1000)  # fmt: skip
        yield ev("run_finished", run=run, exit_code=0)


def test_a_task_with_history_is_forecast_by_its_own_runs_under_its_brief() -> None:
    plan = parse_plan(PLAN)
    found = learn(runs_of({"T-01": [0.10, 0.12, 0.11, 0.30, 0.10]}), plan, {"T-01": "review"}, briefs={"T-01": "b1"})
    one = found.tasks["T-01"]
    assert one.basis == "history" and one.samples == 5 and one.said == "5 earlier runs of it with this brief"
    assert one.cost == Range(0.11, 0.30)  # (p50 the median; p90 by nearest rank)
    assert found.tasks["T-03"].said == NO_HISTORY and found.tasks["T-03"].cost is None
    assert found.unknown == ["T-02", "T-03"]  # (T-02: no kind given, no history)


def test_a_task_under_another_brief_then_its_kind_then_nothing() -> None:
    plan = parse_plan(PLAN)
    kinds = {"T-01": "review", "T-02": "review", "T-03": "shell"}
    found = learn(runs_of({"T-01": [0.2, 0.4]}, brief="old"), plan, kinds, briefs={"T-01": "new", "T-02": "x"})
    assert found.tasks["T-01"].basis == "task" and found.tasks["T-01"].said == "2 earlier runs of it (another brief)"
    assert found.tasks["T-02"].basis == "kind" and found.tasks["T-02"].said == "2 runs of tasks of its kind (review)"
    assert found.tasks["T-02"].cost == Range(pytest.approx(0.3), 0.4)  # type: ignore[arg-type]
    assert found.tasks["T-03"].basis == "none"
    assert found.line() == "forecast: $0.60 (p90 $0.7414) for 2 tasks; 1 more with no history (T-03)"


def test_a_run_of_a_task_costs_every_attempt_of_it_a_failed_one_too() -> None:
    plan = parse_plan(PLAN)
    log: list[EventRecord] = [
        ev("run_started", run="r", to_run=1, already_done=0),
        ev("task_started", run="r", task="T-01", attempt=1, brief="b1", kind="review"),
        ev("task_retrying", run="r", task="T-01", attempt=2, delay=0.0, reason="boom", cost_usd=0.05),
        ev("task_started", run="r", task="T-01", attempt=2, brief="b1", kind="review"),
        ev("task_failed", run="r", task="T-01", reason="boom", cost_usd=0.12, attempt_cost_usd=0.07),
        ev("task_started", run="r", task="T-02", attempt=1, brief="b1", kind="review"),
        ev("task_completed", run="r", task="T-02", cost_usd=9.0, attempt_cost_usd=9.0, simulated=True),
        ev("run_finished", run="r", exit_code=1),
    ]
    found = learn(log, plan, {"T-01": "review", "T-02": "review"}, briefs={"T-01": "b1"}, tasks=["T-01", "T-02"])
    assert found.tasks["T-01"].cost == Range(pytest.approx(0.12), pytest.approx(0.12))  # type: ignore[arg-type]
    assert found.tasks["T-02"].basis == "kind"  # (T-01's failed run taught its kind; a simulated one teaches nothing)
    assert found.tasks["T-02"].cost is not None and found.tasks["T-02"].cost.p50 == pytest.approx(0.12)


def test_the_run_adds_medians_and_spreads_in_quadrature() -> None:
    plan = parse_plan(PLAN)
    briefs, kinds = {"T-01": "b1", "T-02": "b1"}, {"T-01": "review", "T-02": "review"}
    found = learn(runs_of({"T-01": [1.0] * 9 + [4.0], "T-02": [1.0] * 9 + [4.0]}), plan, kinds, briefs=briefs)
    assert found.tasks["T-01"].cost == Range(1.0, 1.0)  # (9 in 10 under 1.0)
    assert found.cost == Range(2.0, 2.0)
    found = learn(runs_of({"T-01": [1.0, 4.0], "T-02": [1.0, 4.0]}), plan, {}, briefs={"T-01": "b1", "T-02": "b1"},
                  tasks=["T-01", "T-02"])  # fmt: skip
    assert found.cost is not None
    assert found.cost.p50 == pytest.approx(5.0) and found.cost.p90 == pytest.approx(5.0 + (2 * 1.5**2) ** 0.5)


def test_the_items_of_a_row_are_forecast_by_the_items_before_and_a_row_not_expanded_by_its_last_count() -> None:
    text = PLAN.replace("| T-03 | true | None | |", "| T-03 | echo {{ item }} | None | |\n").replace(
        "| Task ID | Command | Dependencies | Type |\n|---|---|---|---|",
        "| Task ID | Command | Dependencies | Type | Each |\n|---|---|---|---|---|",
    )
    text = text.replace("| review |\n", "| review | |\n").replace("| None | |\n", "| None | | a, b, c |\n")
    plan = parse_plan(text)
    history = runs_of({"T-03[1]": [0.01], "T-03[2]": [0.03], "T-03[3]": [0.02]}, kind="shell")
    found = learn(history, plan, {}, tasks=["T-03"])
    row = found.tasks["T-03"]
    assert row.basis == "row" and row.said.startswith("3 items as its last run had")
    assert row.cost == Range(pytest.approx(0.06), pytest.approx(0.09))  # type: ignore[arg-type]


def test_a_new_task_is_forecast_by_the_tasks_of_its_kind_on_its_model_first() -> None:
    """Reviews on haiku cost a tenth of reviews on opus: a new review on opus is forecast by those
    on opus; one whose model ran nothing of its kind, by every review."""
    plan = parse_plan(PLAN)
    log = [*runs_of({"T-01": [0.10, 0.10]}), *runs_of({"T-02": [1.0, 1.0]}, model="opus")]
    found = learn(log, plan, {"T-03": "review"}, tasks=["T-03"], models={"T-03": "opus"})
    assert found.tasks["T-03"].basis == "model" and found.tasks["T-03"].cost == Range(1.0, 1.0)
    assert found.tasks["T-03"].said == "2 runs of tasks of its kind (review) on its model"
    found = learn(log, plan, {"T-03": "review"}, tasks=["T-03"], models={"T-03": "sonnet"})
    assert found.tasks["T-03"].basis == "kind" and found.tasks["T-03"].cost is not None
