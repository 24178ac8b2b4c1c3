"""A task's ``Not before`` cell: it waits for its time while the run goes on with the rest.

Real runs of shell plans: the tasks stamp when they start (``times.log``), and ``status`` and
``graph`` are asked while the run waits.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, plan_text, read_times, stamped, start, wait_until

from orchestrator.plan.table.times import parse_instant


def _timed_plan(project: Path, cell: str, *, other: str = "") -> Path:
    """T-01 at once, T-02 not before ``cell``, T-03 after T-02."""
    text = plan_text(
        [
            Spec("T-01", stamped("echo one")),
            Spec("T-02", stamped("echo two")),
            Spec("T-03", stamped("echo three"), deps=["T-02"]),
        ]
    )
    text = text.replace("| Priority |\n", "| Priority | Not before |\n", 1).replace("|----------|\n", "|---|---|\n", 1)
    text = text.replace("| None | P2 |\n", f"| None | P2 | {other} |\n", 1)  # T-01
    text = text.replace("| None | P2 |\n", f"| None | P2 | {cell} |\n", 1)  # T-02
    text = text.replace("| T-02 | P2 |\n", "| T-02 | P2 | |\n", 1)
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_times_are_read_with_their_zone_and_a_naive_one_is_refused() -> None:
    assert parse_instant("2026-12-01T09:00Z") == dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC).timestamp()
    assert parse_instant("2026-12-01 10:00+01:00") == parse_instant("2026-12-01T09:00:00Z")
    with pytest.raises(ValueError, match="has no time zone"):
        parse_instant("2026-12-01T09:00")
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        parse_instant("tomorrow 9am")


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("2026-12-01T09:00", "T-02: Not before '2026-12-01T09:00' has no time zone"),
        ("next monday", "T-02: Not before 'next monday' is not an ISO 8601 time"),
    ],
)
def test_validate_and_run_refuse_a_bad_time_by_its_line_and_write_nothing(tmp_path: Path, cell: str, said: str) -> None:
    plan = _timed_plan(tmp_path, cell)
    before = plan.read_bytes()
    line = next(n for n, text in enumerate(before.decode().splitlines(), start=1) if text.startswith("| T-02 "))
    for command in ("validate", "run"):
        done = cli(tmp_path, command)
        assert done.code == 2, done.stderr
        first = done.stderr.splitlines()[0]
        assert first.startswith(f".orchestrator/master_plan.md:{line}: {said}"), first
        assert "write an ISO 8601 time with its zone, such as 2026-12-01T09:00Z" in first
    assert plan.read_bytes() == before
    assert not (tmp_path / ".orchestrator" / "results").exists() or not any(
        (tmp_path / ".orchestrator" / "results").iterdir()
    )


def test_a_task_waits_for_its_time_while_the_rest_runs_and_status_and_graph_say_so(tmp_path: Path) -> None:
    moment = time.time() + 4
    cell = dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="seconds")
    moment = parse_instant(cell)  # (to the second, as written)
    _timed_plan(tmp_path, cell)
    runner = start(tmp_path)
    try:
        wait_until(lambda: any(e.get("task") == "T-01" for e in runner.events() if e["event"] == "task_completed"),
                   "T-01 to complete")  # fmt: skip
        status = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
        views = {t["id"]: t for t in status["tasks"]}
        if time.time() < moment - 0.5:  # (a machine slow enough to be past the time: nothing left to see)
            assert views["T-02"]["status"] == "waiting"
            assert views["T-02"]["reason"].startswith("not before ")
            assert views["T-03"]["status"] == "waiting"
            graph = cli_in_process(tmp_path, "graph").stdout
            assert "T-02 [Agent-02] Task T-02 (not before " in graph
        assert runner.wait() == 0
    finally:
        runner.stop_all()
    times = read_times(tmp_path)
    assert times["T-01"][0] < moment
    assert times["T-02"][0] >= moment
    assert times["T-03"][0] >= times["T-02"][1]
    notices = [e["message"] for e in runner.events() if e["event"] == "notice"]
    assert any(m.startswith("T-02 waits: not before ") for m in notices), notices
    finished = runner.events()[-1]
    assert finished["event"] == "run_finished" and finished["counts"]["completed"] == 3


def test_a_time_passed_holds_nothing(tmp_path: Path) -> None:
    _timed_plan(tmp_path, "2020-01-01T00:00Z", other="-")
    done = cli(tmp_path, "run", "--json")
    assert done.code == 0, done.stderr
    assert "waits" not in done.stdout


def test_the_schedule_and_a_task_s_time_show_in_validate_status_report_final_output_and_the_dashboard(
    tmp_path: Path,
) -> None:
    from dashboard_helpers import http_get, served

    _timed_plan(tmp_path, "2100-01-01T09:00Z")
    state = tmp_path / ".orchestrator" / "state"
    state.mkdir(parents=True, exist_ok=True)
    fired = time.time() - 3600
    record = {"cron": "0 2 * * *", "added": fired - 60, "fired": fired, "finished": fired + 5, "exit_code": 0}
    (state / "schedule.json").write_text(json.dumps({**record, "skips": 2}))
    when = "not before 2100-01-01T09:00:00+00:00"
    env = {"TZ": "UTC"}
    validated = cli_in_process(tmp_path, "validate", env=env)
    assert validated.code == 0
    assert f"T-02 waits: {when} (its Not before)" in validated.stderr
    assert "📅 scheduled '0 2 * * *': next at " in validated.stderr and "(exit 0); 2 skipped" in validated.stderr
    status = cli_in_process(tmp_path, "status", env=env).stdout
    assert f"Task T-02 — {when}" in status and "📅 scheduled '0 2 * * *'" in status
    assert cli(tmp_path, "aggregate", env=env).code == 0
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text()
    assert "| Schedule | scheduled '0 2 * * *': next at " in final
    assert f"| T-02 | ⏸️ Waiting | not run yet: {when} | - |" in final
    report = cli_in_process(tmp_path, "report", env=env).stdout
    assert "| Schedule | scheduled '0 2 * * *'" in report and f"| T-02 | waiting ({when}) |" in report
    figures = json.loads(cli_in_process(tmp_path, "report", "--json", env=env).stdout)
    assert figures["schedule"]["cron"] == "0 2 * * *" and figures["tasks"][1]["not_before"].startswith("2100-01-01")
    with served(tmp_path, env=env) as server:
        shown = http_get(server.port, "/api/state").json()
    assert shown["schedule"]["cron"] == "0 2 * * *" and shown["schedule"]["skips"] == 2
    assert any(note.startswith("📅 scheduled '0 2 * * *'") for note in shown["notes"])
    assert {t["id"]: t["reason"] for t in shown["tasks"]}["T-02"] == when
