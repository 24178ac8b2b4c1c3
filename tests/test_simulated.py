"""A rehearsal (``run --executor fake``) is never shown as real work: every read-out marks its
made-up results ``(simulated)``, as ``status`` does, and a real run that follows clears the mark."""

from __future__ import annotations

import json
from pathlib import Path

from runner_helpers import Spec, cli, cli_in_process, run, workspace, write_plan


def _rehearsed(project: Path) -> None:
    write_plan(project, [Spec("T-01", "echo real > real.txt"), Spec("T-02", "cat real.txt", deps=["T-01"])])
    result = cli(project, "run", "--executor", "fake")
    assert result.code == 0, result.stderr
    assert not (project / "real.txt").exists()


def test_a_fake_run_says_so_in_its_lines_and_its_events(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo real > real.txt"), Spec("T-02", "cat real.txt", deps=["T-01"])])
    shown = cli(tmp_path, "run", "--executor", "fake")
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "(simulated: the fake executor runs nothing, every result is made up)" in lines[0]
    assert [line for line in lines if line.startswith("✅")] == [
        line for line in lines if line.startswith("✅") and " completed (simulated) in " in line
    ]
    assert len([line for line in lines if line.startswith("✅")]) == 2
    assert ": 2 completed (2 simulated)" in lines[-1]

    again = cli(tmp_path, "run", "--executor", "fake", "--rerun", "T-01", "--json")
    assert again.events[0]["simulated"] is True
    assert [e["simulated"] for e in again.events if e["event"] == "task_completed"] == [True, True]
    assert again.finished()["simulated"] == 2

    real = run(tmp_path)  # does the work: nothing is simulated any more
    assert real.code == 0 and (tmp_path / "real.txt").exists()
    assert real.events[0]["simulated"] is False
    assert [e["simulated"] for e in real.events if e["event"] == "task_completed"] == [False, False]
    assert real.finished()["simulated"] == 0
    assert "simulated" not in cli(tmp_path, "run", "--rerun", "T-01").stdout


def test_history_marks_the_attempts_that_were_simulated(tmp_path: Path) -> None:
    _rehearsed(tmp_path)
    assert run(tmp_path).code == 0
    lines = [line.strip() for line in cli_in_process(tmp_path, "history").stdout.splitlines() if "attempt" in line]
    assert [line.split(" in ")[0] for line in lines] == [
        "T-01 attempt 1: completed (simulated)",
        "T-02 attempt 1: completed (simulated)",
        "T-01 attempt 2: completed",
        "T-02 attempt 2: completed",
    ]
    attempts = json.loads(cli_in_process(tmp_path, "history", "--json").stdout)["attempts"]
    assert [a["simulated"] for a in attempts] == [True, True, False, False]


def test_graph_and_the_plans_graph_block_mark_simulated_tasks(tmp_path: Path) -> None:
    _rehearsed(tmp_path)
    assert "✅ T-01 [Agent-01] Task T-01 (simulated)" in cli_in_process(tmp_path, "graph").stdout
    assert 'n0["✅ T-01: Task T-01 (simulated)"]' in cli_in_process(tmp_path, "graph", "--format", "mermaid").stdout
    assert (
        '"T-02" [label="T-02: Task T-02 (simulated)", style="filled"'
        in cli_in_process(tmp_path, "graph", "--format", "dot").stdout
    )
    nodes = json.loads(cli_in_process(tmp_path, "graph", "--json").stdout)["nodes"]
    assert [n["simulated"] for n in nodes] == [True, True]
    block = (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8").split("graph TD")[1]
    assert 'n1["✅ T-02: Task T-02 (simulated)"]' in block

    assert run(tmp_path).code == 0
    assert (
        "simulated"
        not in cli_in_process(tmp_path, "graph").stdout + cli_in_process(tmp_path, "graph", "--format", "dot").stdout
    )
    assert "simulated" not in (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8")


def test_check_does_not_call_made_up_results_all_well(tmp_path: Path) -> None:
    _rehearsed(tmp_path)
    text = cli_in_process(tmp_path, "check")
    assert text.code == 1
    assert "all well" not in text.stdout
    assert "🎭 2 tasks (T-01, T-02) simulated: the fake executor ran nothing" in text.stdout
    assert cli_in_process(tmp_path, "check", "--quiet").stdout.strip()  # said even to cron
    report = json.loads(cli_in_process(tmp_path, "check", "--json").stdout)
    assert report["ok"] is False and report["exit_code"] == 1
    (found,) = report["workspaces"][0]["findings"]
    assert found["kind"] == "simulated" and found["tasks"] == ["T-01", "T-02"]
    assert report["workspaces"][0]["last_run"]["simulated"] == 2

    assert run(tmp_path).code == 0  # the real run does the work: all well now
    well = cli_in_process(tmp_path, "check")
    assert well.code == 0 and "all well" in well.stdout, well.stdout


def test_report_counts_and_marks_simulated_results(tmp_path: Path) -> None:
    _rehearsed(tmp_path)
    markdown = cli_in_process(tmp_path, "report").stdout
    assert "| Tasks | 2: 2 completed (2 simulated: the fake executor ran nothing" in markdown
    assert "| T-01 ⭐ | completed (simulated) |" in markdown or "| T-01 | completed (simulated) |" in markdown
    assert "T-02 Task T-02 (simulated) :" in markdown  # the mermaid timeline
    figures = json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)
    assert figures["simulated"] == 2 and [t["simulated"] for t in figures["tasks"]] == [True, True]
    page = cli_in_process(tmp_path, "report", "--format", "html").stdout
    assert "<th>Simulated</th>" in page and "<td>completed (simulated)</td>" in page
    svg = (workspace(tmp_path) / "report.svg").read_text(encoding="utf-8")
    assert svg.count("(simulated)") == 4  # each bar's label and its tooltip

    assert run(tmp_path).code == 0
    assert "simulated" not in cli_in_process(tmp_path, "report").stdout
    assert "simulated" not in (workspace(tmp_path) / "report.svg").read_text(encoding="utf-8")
    assert json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)["simulated"] == 0


def test_a_simulated_run_gives_no_speed_up_nor_critical_path_as_facts(tmp_path: Path) -> None:
    """The fake executor's durations are sub-millisecond noise: final_output.md and ``report``
    gave a speed-up, a critical path and an efficiency made of them as measured. Now they say
    they were not measured; ``status`` and the plan's status block say how many are simulated."""
    _rehearsed(tmp_path)
    summary = (workspace(tmp_path) / "final_output.md").read_text(encoding="utf-8").split("## Timeline")[0]
    assert "| Speed-up vs sequential | - (not measured: simulated, no process ran) |" in summary, summary
    assert "| Critical path (longest in time) | - (not measured: simulated, no process ran) |" in summary
    assert "×" not in summary and "T-01 -> T-02" not in summary
    assert ":done, crit," not in (workspace(tmp_path) / "final_output.md").read_text(encoding="utf-8")

    shown = cli_in_process(tmp_path, "report")
    rows = (
        "Speed-up",
        "Parallel efficiency",
        "Critical path (longest in time)",
        "Time with a task running ÷ critical path",
    )
    for row in rows:
        assert f"| {row} | - (not measured: simulated, no process ran) |" in shown.stdout, shown.stdout
    assert "⭐ |" not in shown.stdout
    figures = json.loads(cli_in_process(tmp_path, "report", "--json").stdout)
    assert figures["measured"] is False and figures["speedup"] is None and figures["parallel_efficiency"] is None
    assert figures["critical_path"] == {"tasks": [], "seconds": None} and figures["critical_ratio"] is None

    assert cli_in_process(tmp_path, "status").stdout.splitlines()[-1] == "2 tasks: 2 completed (2 simulated)"
    block = (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8")
    assert "**Totals**: 2 tasks: 2 completed (2 simulated)" in block

    real = run(tmp_path)  # the work done: the figures are measured again
    assert real.code == 0
    figures = json.loads(cli_in_process(tmp_path, "report", "--json").stdout)
    assert figures["measured"] is True and figures["critical_path"]["tasks"] == ["T-01", "T-02"]
    assert "simulated" not in cli_in_process(tmp_path, "status").stdout.splitlines()[-1]


REHEARSED = """---
retries: 0
---
## Task Decomposition
| Task ID | Description | Command | Backend | Dependencies | Condition | Output |
|---------|-------------|---------|---------|--------------|-----------|--------|
| T-01 | Check | echo real > real.txt | shell | None | | failing:int, name, ok:bool, tags:list, info:object, r:number |
| T-02 | Review the code | | claude | None | | severity, count:int |
| T-03 | Review the tests | | codex | None | | verdict:bool |
| T-04 | Review the docs | | gemini | None | | pages:list |
| T-05 | Build | echo build > build.txt | shell | T-01, T-02 | T-01.failing == 0 and T-02.count == 0 | |
| T-06 | Triage | echo triage > triage.txt | shell | T-01 | T-01.failing > 0 | |
| T-07 | Report | echo report | shell | T-03, T-04, T-05 | not T-03.verdict and T-04.pages == [] | |
"""


def test_a_rehearsal_makes_up_the_declared_output_fields_on_every_backend(tmp_path: Path) -> None:
    """``run --executor fake`` failed every task with an Output column: its made-up answer held no
    JSON object. It now ends with one, each declared field a value of its type, on each backend's
    own reply format, still marked simulated; the conditions downstream decide on them."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(REHEARSED, encoding="utf-8")
    done = cli(tmp_path, "run", "--executor", "fake", "--json")
    assert done.code == 0, done.stdout + done.stderr
    status = {e["task"]: e["event"] for e in done.events if e.get("task")}
    assert status == {
        "T-01": "task_completed",
        "T-02": "task_completed",
        "T-03": "task_completed",
        "T-04": "task_completed",
        "T-05": "task_completed",
        "T-06": "task_bypassed",
        "T-07": "task_completed",
    }, status
    assert all(e["simulated"] for e in done.events if e["event"] == "task_completed")
    made_up = json.loads(cli_in_process(tmp_path, "output", "T-01").stdout.strip().splitlines()[-1])
    assert made_up == {
        "simulated": True, "failing": 0, "name": "[simulated]", "ok": False, "tags": [], "info": {}, "r": 0
    }  # fmt: skip
    for task, fields in (("T-02", {"severity": "[simulated]", "count": 0}), ("T-03", {"verdict": False})):
        answer = cli_in_process(tmp_path, "output", task).stdout
        assert "[simulated]" in answer and json.loads(answer.strip().splitlines()[-1]) == {"simulated": True, **fields}
    result = (tmp_path / ".orchestrator" / "results" / "agent-04-result.md").read_text(encoding="utf-8")
    assert "simulated: true" in result and '"pages": []' in result
    assert not (tmp_path / "real.txt").exists() and not (tmp_path / "build.txt").exists()
