"""A budget is a pause, not a failure (issue 77): at ``max_cost`` the run starts nothing new, lets
what runs finish, and waits for a higher budget (``orchestrator budget +USD``) as it waits at a
gate; a forecast over the budget does not start; spend paced at ``max_cost_per_hour``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from runner_helpers import Spec, cli, cli_in_process, write_plan
from test_executor_conformance import Collect as Collected

import orchestrator.backends as backends_module
from orchestrator import Workspace
from orchestrator.backends.base import AgentResult, Job, Observer
from orchestrator.backends.shell import ShellBackend
from orchestrator.errors import OverBudget
from orchestrator.executors import ProcessRun
from orchestrator.run.inflight import budgeting
from orchestrator.run.limits.admission import Admission, Slot
from orchestrator.run.limits.pacing import Pacer
from orchestrator.run.prepare import RunOptions
from orchestrator.run.runner import Runner
from orchestrator.state import events
from orchestrator.vocabulary import ExitCode


class Collect(Collected):
    def starts(self) -> list[str]:
        return [e["task"] for e in self.of("task_started")]


def costly(monkeypatch: pytest.MonkeyPatch, costs: Mapping[str, float], name: str = "costly-budget") -> str:
    """A backend whose attempts each report what ``costs`` says of their task (its script runs)."""

    class Costly(ShellBackend):
        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            return AgentResult(run.ok, text="ok", exit_code=run.exit_code, cost_usd=costs[job.task.id])

    Costly.name = name
    monkeypatch.setitem(backends_module._REGISTRY, name, Costly)
    return name


def statuses(workspace: Workspace) -> dict[str, str]:
    found = json.loads(cli_in_process(workspace.project_dir, "status", "--json").stdout)
    return {t["id"]: t["status"] for t in found["tasks"]}


def test_at_its_budget_the_run_lets_what_runs_finish_and_waits_with_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A and B run together; A's cost reaches the budget while B runs: B finishes (completed, not
    cancelled), nothing else starts, C and D wait for a higher budget (blocked, no result, not
    skipped) and the run ends with exit 4. The next run goes on with them."""
    backend = costly(monkeypatch, {"A": 0.6, "B": 0.05, "C": 0.01, "D": 0.01})
    specs = [
        Spec("A", "while [ ! -e b.started ]; do sleep 0.05; done"),
        Spec("B", "touch b.started; sleep 0.5"),
        Spec("C", "true", deps=["B"]),
        Spec("D", "true", priority="P3"),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": backend, "max_cost": 0.5})
    reporter = Collect()
    ws = Workspace.find(tmp_path)
    summary = Runner(ws, reporter=reporter).run()
    assert summary.exit_code == ExitCode.HELD
    assert summary.stopped is None
    assert sorted(reporter.starts()) == ["A", "B"]
    # (once the run is over, they are pending: the next run, with its own budget, starts them)
    assert statuses(ws) == {"A": "completed", "B": "completed", "C": "pending", "D": "pending"}
    (reached,) = reporter.of("budget_reached")
    assert reached["tasks"] == ["C", "D"] and reached["limit"] == 0.5 and reached["spent"] == pytest.approx(0.65)
    assert "the run has spent its budget: $0.6500 of $0.50" in reached["message"]
    assert "orchestrator budget +USD" in reached["message"]
    assert not reporter.of("task_skipped") and not reporter.of("task_cancelled")
    assert not (ws.root / "results" / "agent-03-result.md").exists()  # (C: no result, it runs next time)
    again = Collect()
    summary = Runner(ws, RunOptions(max_cost=10.0), reporter=again).run()  # (a later run, with more)
    assert summary.exit_code == ExitCode.OK
    assert sorted(again.starts()) == ["C", "D"]


def test_at_budget_stop_stops_what_runs_then_waits_and_a_raise_brings_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``at_budget: stop``: A's cost reaches the budget while B runs: B is stopped (cancelled for
    the budget, its group gone, what it spent counted), what depends on it skipped, D held; the run
    waits (``--wait``), and ``budget +1`` brings B and its dependent back: everything completes."""
    costs = {"A": 0.6, "B": 0.05, "C": 0.0, "D": 0.0}
    backend = costly(monkeypatch, costs)
    specs = [Spec("A", "while [ ! -e b.started ]; do sleep 0.05; done"),
             Spec("B", "if [ ! -e again ]; then touch again b.started; sleep 30; fi"),
             Spec("C", "true", deps=["B"]), Spec("D", "true", priority="P3")]  # fmt: skip
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": backend, "max_cost": 0.5, "at_budget": "stop",
                                 "kill_grace": 1})  # fmt: skip
    ws = Workspace.find(tmp_path)
    asked: dict[str, Any] = {}

    def person() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e.event == "run_waiting" for e in events.each(ws.events_file)):
            time.sleep(0.05)
        asked["raised"] = cli(tmp_path, "budget", "+1", "--json")

    helper = threading.Thread(target=person)
    helper.start()
    reporter = Collect()
    began = time.monotonic()
    try:
        summary = Runner(ws, RunOptions(wait=True, wait_timeout=90), reporter=reporter).run()
    finally:
        helper.join(90)
    assert time.monotonic() - began < 60, "the run waited for B to end by itself"
    assert asked["raised"].code == 0, asked["raised"].stderr
    (cancelled,) = reporter.of("task_cancelled")
    assert cancelled["task"] == "B" and cancelled["reason"] == "stopped: the run reached its cost limit of $0.50"
    assert cancelled["attempt_cost_usd"] == 0.05  # (what it spent until stopped, counted)
    assert [e["task"] for e in reporter.of("task_skipped")] == ["C"]
    assert sorted(e["task"] for e in reporter.of("task_requeued")) == ["B", "C"]  # (the raise brought them back)
    assert summary.exit_code == ExitCode.OK and summary.stopped is None
    assert statuses(ws) == {"A": "completed", "B": "completed", "C": "completed", "D": "completed"}


def test_at_budget_stop_without_wait_ends_with_what_it_stopped_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = costly(monkeypatch, {"A": 0.6, "B": 0.05, "C": 0.0})
    specs = [Spec("A", "while [ ! -e b.started ]; do sleep 0.05; done"), Spec("B", "touch b.started; sleep 30"),
             Spec("C", "true", deps=["A"])]  # fmt: skip
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": backend, "max_cost": 0.5, "at_budget": "stop",
                                 "kill_grace": 1})  # fmt: skip
    ws = Workspace.find(tmp_path)
    began = time.monotonic()
    reporter = Collect()
    summary = Runner(ws, reporter=reporter).run()
    assert time.monotonic() - began < 25, "the run waited for B to end by itself"
    assert summary.exit_code == ExitCode.FAILED and summary.stopped is None  # (B cancelled: `retry B` runs it)
    assert statuses(ws) == {"A": "completed", "B": "cancelled", "C": "pending"}  # (C held: the next run's)
    assert [e["tasks"] for e in reporter.of("budget_reached")] == [["C"]]


def test_a_task_whose_expected_cost_does_not_fit_waits_while_cheaper_ones_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs before taught that BIG costs $0.40 and SMALL tasks $0.01: with $0.30 of budget,
    BIG is never started (it would spend past the budget), the small ones run, and the run waits
    for a higher budget saying which task does not fit and what it is expected to cost."""
    costs = {"BIG": 0.40, "S1": 0.01, "S2": 0.01}
    backend = costly(monkeypatch, costs)
    specs = [Spec("BIG", "true", priority="P0"), Spec("S1", "true"), Spec("S2", "true")]
    write_plan(tmp_path, specs, {"max_parallel": 1, "backend": backend})
    ws = Workspace.find(tmp_path)
    assert Runner(ws, reporter=Collect()).run().exit_code == ExitCode.OK  # (history)
    cli_in_process(tmp_path, "reset", "--all")
    reporter = Collect()
    summary = Runner(ws, RunOptions(max_cost=0.30, over_forecast=True), reporter=reporter).run()
    assert sorted(reporter.starts()) == ["S1", "S2"]  # (BIG first by priority, had it fitted)
    assert summary.exit_code == ExitCode.HELD
    (reached,) = reporter.of("budget_reached")
    assert reached["next"] == "BIG" and reached["expected"] == pytest.approx(0.40)
    assert "the cheapest task ready, BIG, is expected to cost $0.40" in reached["message"]
    started = {e["task"]: e for e in reporter.of("task_started")}
    assert started["S1"]["expected_cost"] == pytest.approx(0.01)  # (what report sets beside the cost)


def test_a_forecast_over_the_budget_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With history saying the run costs $0.30, a budget of $0.10 starts nothing: one line with
    the forecast, the budget and how to go on, exit 4, nothing written; --over-forecast starts it."""
    backend = costly(monkeypatch, {"A": 0.10, "B": 0.20})
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true")], {"backend": backend})
    ws = Workspace.find(tmp_path)
    assert Runner(ws, reporter=Collect()).run().exit_code == ExitCode.OK
    cli_in_process(tmp_path, "reset", "--all")
    before = sorted(p.relative_to(ws.root) for p in ws.root.rglob("*") if p.is_file())
    log = ws.events_file.read_bytes()
    with pytest.raises(OverBudget) as refused:
        Runner(ws, RunOptions(max_cost=0.10), reporter=Collect()).run()
    said = str(refused.value)
    assert said.startswith("forecast: $0.30 (p90 $0.30) for 2 tasks, over the budget of $0.10 (max_cost)")
    assert "--over-forecast" in said and refused.value.exit_code == ExitCode.HELD
    assert ws.events_file.read_bytes() == log
    assert sorted(p.relative_to(ws.root) for p in ws.root.rglob("*") if p.is_file()) == before
    dry = cli_in_process(tmp_path, "run", "--dry-run", "--max-cost", "0.1", "--json")
    assert dry.code == ExitCode.HELD
    found = json.loads(dry.stdout)
    assert found["run"] == ["A", "B"] and found["over_budget"] is True
    assert found["forecast"]["cost_usd"] == {"p50": 0.3, "p90": 0.3}
    assert [t["based_on"] for t in found["forecast"]["per_task"]] == ["1 earlier run of it with this brief"] * 2
    assert ws.events_file.read_bytes() == log  # (a dry run writes nothing)
    summary = Runner(ws, RunOptions(max_cost=0.10, over_forecast=True), reporter=Collect()).run()
    assert summary.exit_code == ExitCode.HELD  # (started, and paused at its budget)


def test_budget_raised_while_the_run_waits_lets_it_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run --wait`` at its budget waits; ``orchestrator budget +1``, from another process, raises
    the limit, the held tasks go on and the run ends with exit 0. A limit under what was spent is
    refused, and changes nothing."""
    backend = costly(monkeypatch, {"A": 0.6, "B": 0.1, "C": 0.1})
    write_plan(tmp_path, [Spec("A", "true", priority="P0"), Spec("B", "true", deps=["A"]), Spec("C", "true")],
               {"max_parallel": 1, "backend": backend, "max_cost": 0.5})  # fmt: skip
    ws = Workspace.find(tmp_path)
    asked: dict[str, Any] = {}

    def person() -> None:  # (what a person at another terminal does, once the run says it waits)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(e.event == "run_waiting" for e in events.each(ws.events_file)):
                break
            time.sleep(0.05)
        asked["shown"] = cli(tmp_path, "budget", "--json")
        asked["status"] = cli(tmp_path, "status")
        asked["refused"] = cli(tmp_path, "budget", "0.55")
        asked["raised"] = cli(tmp_path, "budget", "+1", "--json")

    helper = threading.Thread(target=person)
    helper.start()
    reporter = Collect()
    try:
        summary = Runner(ws, RunOptions(wait=True, wait_timeout=90), reporter=reporter).run()
    finally:
        helper.join(90)
    assert "💰 the run going on waits at its budget ($0.6000 of $0.50): B, C wait" in asked["status"].stdout
    shown = json.loads(asked["shown"].stdout)
    assert shown["reached"] is True and shown["limit"] == 0.5 and shown["spent"] == pytest.approx(0.6)
    assert shown["waiting"] == ["B", "C"]
    assert asked["refused"].code == ExitCode.USAGE
    assert "budget: $0.55 is under what the run has spent already ($0.6000)" in asked["refused"].stderr
    assert asked["raised"].code == 0, asked["raised"].stderr
    assert json.loads(asked["raised"].stdout)["limit"] == pytest.approx(1.5)
    assert summary.exit_code == ExitCode.OK
    assert sorted(reporter.starts()) == ["A", "B", "C"]
    assert len(reporter.of("budget_reached")) == 1
    (told,) = reporter.of("budget_raised")
    assert told["was"] == 0.5 and told["limit"] == pytest.approx(1.5) and told["released"] == ["B", "C"]
    assert [e["request_kind"] for e in reporter.of("request_refused")] == ["budget"]


def test_budget_with_no_run_going_on_says_so(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("A", "true")], {"max_cost": 2})
    shown = cli_in_process(tmp_path, "budget")
    assert shown.code == 0 and shown.stdout == "no run is going on; the plan's budget: max_cost $2.00\n"
    asked = cli_in_process(tmp_path, "budget", "+5")
    assert asked.code == ExitCode.USAGE
    assert asked.stderr.startswith("budget: no run is going on — a run's budget is the plan's max_cost")
    bad = cli_in_process(tmp_path, "budget", "lots")
    assert bad.code == ExitCode.USAGE and "give dollars" in bad.stderr
    assert not any(e.event == "budget_requested" for e in events.each(Workspace.find(tmp_path).events_file))


@pytest.mark.parametrize(("word", "limit", "add"), [("+5", None, 5.0), ("12.5", 12.5, None), ("$3", 3.0, None),
                                                    ("+$0.25", None, 0.25)])  # fmt: skip
def test_a_change_of_budget_reads_as_a_person_writes_it(word: str, limit: float | None, add: float | None) -> None:
    assert budgeting.Change.read(word) == budgeting.Change(limit=limit, add=add)


# --- the pace: max_cost_per_hour (pure, fed a clock) -------------------------------------------


def simulate_pace(per_hour: float, cost: float, took: float, slots: int, seconds: float) -> list[tuple[float, float]]:
    """Attempts each costing ``cost`` and taking ``took`` seconds, as many at once as ``slots``
    and the pace let start, for ``seconds``: when each cost was booked, and how much."""
    admission = Admission(max_parallel=slots, pacer=Pacer(per_hour))
    running: dict[str, float] = {}  # task -> when it ends
    booked: list[tuple[float, float]] = []
    number, now, step = 0, 0.0, 0.25
    while now < seconds:
        admission.tick(now)
        for task, ends in sorted(running.items()):
            if ends <= now:
                del running[task]
                admission.ended(task)
                admission.spend(cost)
                booked.append((now, cost))
        slot = Slot(None, "claude", expected_cost=cost)
        while not admission.full() and admission.admits(slot):
            number += 1
            running[f"T{number}"] = now + took
            admission.started(f"T{number}", slot)
        now += step
    return booked


def test_paced_spend_over_any_10_minutes_stays_within_10_percent_of_the_pace() -> None:
    """$6 an hour of $0.05 attempts of 20 s, 8 at once (they could spend $72 an hour): over every
    10 minutes of two hours after the first, the spend is the pace's $1, give or take 10%."""
    booked = simulate_pace(per_hour=6.0, cost=0.05, took=20.0, slots=8, seconds=3 * 3600)
    assert booked, "nothing was spent"
    for start in range(3600, 2 * 3600, 30):
        spent = sum(cost for at, cost in booked if start <= at < start + 600)
        assert spent == pytest.approx(1.0, rel=0.10), f"{spent:.2f} spent from {start} s"


def test_the_pace_lets_one_dear_attempt_start_from_rest() -> None:
    """An attempt dearer than the pace's tolerance is not held for ever: from rest, one starts."""
    pacer = Pacer(per_hour=1.0)
    assert pacer.room(0.0, running=0.0, expected=5.0)
    pacer.spent(10.0, 5.0)  # ($5 at $1 an hour: 5 hours ahead)
    assert not pacer.room(11.0, running=0.0, expected=0.01)
    assert pacer.next_room(11.0, 0.0) == 12.0  # (looked at again each second while ahead)
    assert pacer.room(10.0 + 5 * 3600 - 20, running=0.0)  # (20 s ahead: within 30 s)
    assert not pacer.room(10.0 + 5 * 3600 - 20, running=0.005)  # (and 18 s of a running attempt's: not)


def test_an_attempt_that_would_spend_past_the_budget_is_not_admitted() -> None:
    admission = Admission(max_parallel=4, max_cost=1.0)
    dear, cheap, unknown = (
        Slot(None, "claude", expected_cost=0.7),
        Slot(None, "claude", expected_cost=0.2),
        Slot(None, "claude"),
    )
    assert admission.admits(dear)
    admission.started("A", dear)
    assert not admission.admits(dear) and admission.admits(cheap)  # ($0.70 running: $0.30 left)
    admission.ended("A")
    admission.spend(0.9)
    assert not admission.admits(cheap) and admission.admits(unknown)  # (no forecast: counted as nothing)
    admission.spend(0.1)
    assert not admission.admits(unknown)  # (spent: nothing starts)


def test_report_and_history_set_the_forecast_beside_what_was_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second run is forecast from the first: ``report`` sets each task's forecast beside its cost
    (and the run's), ``history --json`` each attempt's, and ``status`` the forecast of what is left."""
    costs = {"A": 0.10, "B": 0.30}
    backend = costly(monkeypatch, costs)
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true")], {"backend": backend, "max_cost": 5})
    ws = Workspace.find(tmp_path)
    assert Runner(ws, reporter=Collect()).run().exit_code == ExitCode.OK
    cli_in_process(tmp_path, "reset", "--all")
    status = cli_in_process(tmp_path, "status")
    assert "forecast: $0.40 (p90 $0.40) for 2 tasks left; budget $5.00 (max_cost)" in status.stdout
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["eta"]["expected_cost"] == 0.4
    costs["B"] = 0.20  # (B costs less this time: the forecast said a half more)
    assert Runner(ws, reporter=Collect()).run().exit_code == ExitCode.OK
    report = json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)
    assert report["costs"]["run"] == {"forecast": 0.4, "actual": 0.3, "error": pytest.approx(0.3333, abs=1e-4)}
    assert {t["id"]: (t["forecast"], t["actual"]) for t in report["costs"]["tasks"]} == {
        "A": (0.1, 0.1),
        "B": (0.3, 0.2),
    }
    markdown = cli_in_process(tmp_path, "report").stdout
    assert "## Forecast against cost" in markdown and "| B | $0.3000 | $0.2000 | +50% |" in markdown
    attempts = json.loads(cli_in_process(tmp_path, "history", "--json").stdout)["attempts"]
    lines = cli_in_process(tmp_path, "history").stdout.splitlines()
    assert lines[-3].endswith(": forecast $0.4000, spent $0.3000"), lines
    ends = sorted(re.sub(r"in [\d.]+s ", "", line) for line in lines[-2:])  # (durations vary)
    assert ends == [
        "  A attempt 2: completed $0.1000 (forecast $0.1000)",
        "  B attempt 2: completed $0.2000 (forecast $0.3000)",
    ]
    told = sorted((a["task"], a["expected_cost"] or 0.0) for a in attempts)
    assert told == [("A", 0.0), ("A", 0.1), ("B", 0.0), ("B", 0.3)]  # (the first run had no forecast)


def at_its_budget(tmp_path: Path, notify: str = "[]") -> tuple[Path, subprocess.Popen[str]]:
    """A project whose ``run --wait`` of claude (the stand-in, reporting $0.0125 an attempt) reaches
    its $0.02 budget after two of its three tasks, notifying ``notify``'s targets; the run, started."""
    from dashboard_helpers import CLI

    root = tmp_path / "project"
    (root / ".orchestrator").mkdir(parents=True)
    rows = "".join(f"| T-0{n} | Review chapter {n} | None |\n" for n in (1, 2, 3))
    (root / ".orchestrator" / "master_plan.md").write_text(
        f"---\nmax_parallel: 1\nmax_cost: 0.02\npublic_url: https://o.example.test\nnotify: {notify}\n---\n"
        f"## Task Decomposition\n| Task ID | Description | Dependencies |\n|---|---|---|\n{rows}"
    )
    fake = Path(__file__).resolve().parent.parent / "examples" / "bin" / "fake-claude"
    env = {**os.environ, "ORCHESTRATOR_CLAUDE_BIN": str(fake), "FAKE_CLAUDE_COST": "0.0125"}
    runner = subprocess.Popen([*CLI, "run", "--wait", "--wait-timeout", "2m"], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    return root, runner


def finished(runner: subprocess.Popen[str]) -> tuple[str, str]:
    """What the run printed, once it ended (killed if it did not within a minute)."""
    try:
        return runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()


def test_a_budget_notification_carries_a_link_that_raises_the_budget_once(tmp_path: Path) -> None:
    """The run reaches its budget and notifies a command, with a signed link at ``public_url``;
    opening the link changes nothing, its POST raises the budget by as much again and the run goes
    on to exit 0; used again, it is refused (410)."""
    from dashboard_helpers import http_get, served

    notified, sink = tmp_path / "notified.jsonl", tmp_path / "sink.py"
    sink.write_text(
        f"import pathlib, sys\npathlib.Path({str(notified)!r}).open('a').write(sys.stdin.read().strip() + '\\n')\n"
    )
    root, runner = at_its_budget(
        tmp_path, json.dumps([{"command": [sys.executable, str(sink)], "events": ["budget_reached"]}])
    )
    try:
        deadline = time.monotonic() + 60
        while not (notified.exists() and notified.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        told = json.loads(notified.read_text().splitlines()[0])
        assert told["event"] == "budget_reached" and set(told["links"]) == {"raise"}, told
        path = urlsplit(told["links"]["raise"]).path
        with served(root) as server:
            shown = http_get(server.port, path, {"Accept": "application/json"}).json()
            assert shown == {
                "ok": True,
                "said": "Raise: the budget of the run going on by $0.02 ($0.0250 spent of $0.02)",
            }
            acted = http_get(server.port, path, {"Accept": "application/json"}, method="POST", body=b"")
            assert acted.status == 200 and acted.json()["said"].startswith("💰 the run's budget is $0.04 now"), (
                acted.body
            )
            again = http_get(server.port, path, {"Accept": "application/json"}, method="POST", body=b"")
            assert again.status == 410, again.body
    finally:
        out, err = finished(runner)
    assert runner.returncode == 0, out + err
    assert "💰 budget raised to $0.04 by link" in out, out


def test_in_the_browser_the_budget_reached_shows_and_its_button_raises_it(tmp_path: Path) -> None:
    """The dashboard says what the run going on has spent of its budget; once it is reached, its
    button raises the budget by as much again (by the person at this machine, via the dashboard)
    and the run goes on to exit 0."""
    from dashboard_helpers import browser_missing, chromium, served

    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    root, runner = at_its_budget(tmp_path)
    try:
        with served(root) as server, chromium(root / "chromium-profile") as driver:
            driver.get(server.url)
            totals = driver.find_element("id", "totals")
            deadline = time.monotonic() + 60
            while "budget reached" not in totals.text and time.monotonic() < deadline:
                time.sleep(0.1)
            said = " ".join(totals.text.split())
            assert "$0.0250 of $0.0200 budget reached" in said, said
            assert " left (ends about" not in said  # (no end told while the run waits for a person's word)
            driver.find_element("id", "raise-budget").click()
            result = driver.find_element("id", "action-result")
            while "budget is" not in result.text and time.monotonic() < deadline:
                time.sleep(0.1)
            assert result.text == "the run's budget is $0.0400 now", result.text
            out, err = finished(runner)
            assert server.errors() == ""
    finally:
        out, err = finished(runner)
    assert runner.returncode == 0, out + err
    raised = [json.loads(line) for line in (root / ".orchestrator/state/events.jsonl").read_text().splitlines()
              if '"budget_raised"' in line]  # fmt: skip
    assert [(e["via"], e["limit"]) for e in raised] == [("dashboard", 0.04)]


def test_every_door_refuses_a_run_whose_forecast_is_over_its_budget_with_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API and MCP start a run through the same function: over its budget, it is refused
    (``OverBudget``: exit 4, HTTP 402) before anything is launched; ``dry_run`` answers the forecast."""
    from orchestrator.commands.calling import call

    backend = costly(monkeypatch, {"A": 0.10, "B": 0.20})
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true")], {"backend": backend})
    ws = Workspace.find(tmp_path)
    assert Runner(ws, reporter=Collect()).run().exit_code == ExitCode.OK
    cli_in_process(tmp_path, "reset", "--all")
    before = sorted(str(p.relative_to(ws.root)) for p in ws.root.rglob("*") if p.is_file())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OverBudget) as refused:
        call("run", {"max_cost": 0.1}, source="api", fixed=str(tmp_path))
    assert refused.value.http_status == 402 and refused.value.exit_code == ExitCode.HELD
    assert sorted(str(p.relative_to(ws.root)) for p in ws.root.rglob("*") if p.is_file()) == before
    shown = call("run", {"max_cost": 0.1, "dry_run": True}, source="mcp", fixed=str(tmp_path)).data
    assert shown["over_budget"] is True and shown["forecast"]["cost_usd"]["p50"] == pytest.approx(0.3)
