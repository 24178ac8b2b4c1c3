"""Each feature shows in every view (issue 42): a result reused from the cache in ``graph`` (every
format) and with the attempts ``report`` counts; early cutoff named in the reused "why"; the tasks
never cached and the last checkpoint in ``validate``; a restore and a schedule in ``graph``,
final_output.md and the html report. Real runs of shell plans, the real CLI."""

from __future__ import annotations

import json
import re
import time
from html import escape
from pathlib import Path
from typing import Any

from runner_helpers import Spec, cli, cli_in_process, run, write_plan

REUSED = "(♻️ reused)"


def spec(task: str, output: str, deps: tuple[str, ...] = ()) -> Spec:
    return Spec(task, f'echo "{output}"', deps=deps)


def status_json(project: Path) -> dict[str, Any]:
    done = cli_in_process(project, "status", "--json")
    assert done.code == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def views(project: Path) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in status_json(project)["tasks"]}


def attempts_column(project: Path) -> dict[str, str]:
    """Each task's Attempts cell of ``status``'s table."""
    lines = cli_in_process(project, "status").stdout.splitlines()
    headers = re.split(r"\s{2,}", lines[0])
    at = headers.index("Attempts")
    return {cells[0]: cells[at] for line in lines[2:] if line.startswith("T-") and (cells := re.split(r"\s{2,}", line))}


def reused_twice(project: Path) -> None:
    """T-01 printed v1, then v2, then v1 again: the last run takes v1's result from the cache, and
    T-02's (its input is v1's output again) too."""
    for output in ("v1", "v2", "v1"):
        write_plan(project, [spec("T-01", output), spec("T-02", "two", deps=("T-01",))])
        done = run(project)
        assert done.code == 0, done.stderr


def test_a_reused_result_is_marked_in_every_graph_and_counts_the_attempts_report_counts(tmp_path: Path) -> None:
    """``graph`` said nothing of a reused result (status, report and the dashboard did), and
    ``status`` counted its attempts 1 where ``report`` counted 0: no process started."""
    reused_twice(tmp_path)
    shown = views(tmp_path)
    assert shown["T-01"]["reused"] and shown["T-02"]["reused"]

    text = cli_in_process(tmp_path, "graph")
    assert text.code == 0, text.stderr
    line = next(line for line in text.stdout.splitlines() if "T-01 [" in line)
    assert line.endswith(f"Task T-01 {REUSED}"), line
    for fmt in ("mermaid", "dot"):
        drawn = cli_in_process(tmp_path, "graph", "--format", fmt)
        assert drawn.code == 0 and drawn.stdout.count(REUSED) == 2, drawn.stdout
    nodes = {n["id"]: n for n in json.loads(cli_in_process(tmp_path, "graph", "--json").stdout)["nodes"]}
    assert {t: n["reused"] for t, n in nodes.items()} == {t: v["reused"] for t, v in shown.items()}
    plan = (tmp_path / ".orchestrator" / "master_plan.md").read_text(encoding="utf-8")
    assert plan.count(REUSED) == 2  # its graph block, the mermaid graph's words

    report = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "report", "--json").stdout)["tasks"]}
    assert report["T-01"]["attempts"] == 0
    assert attempts_column(tmp_path) == {"T-01": "0", "T-02": "0"}
    assert {t: v["run_attempts"] for t, v in shown.items()} == {"T-01": 0, "T-02": 0}


def test_early_cutoff_names_the_upstream_that_ran_again_with_the_same_output(tmp_path: Path) -> None:
    """A dependent reused because its upstream ran again and printed the same said only "same
    inputs as the run of TIME", as if nothing upstream had run."""
    plan = [spec("T-01", "same"), spec("T-02", "two", deps=("T-01",))]
    write_plan(tmp_path, plan)
    assert run(tmp_path).code == 0
    first = views(tmp_path)["T-02"]["finished"]
    write_plan(tmp_path, [Spec("T-01", plan[0].script + "\n# edited"), plan[1]])
    done = run(tmp_path)
    assert done.code == 0, done.stderr
    why = f"T-01 ran again with the same output: same inputs as the run of {first}"
    shown = views(tmp_path)
    assert shown["T-02"]["reused"] == why and shown["T-01"]["reused"] is None
    assert [e.get("reused") for e in done.events if e["event"] == "task_completed"] == [None, why]
    # Back to the first brief: T-01 is reused itself, so nothing upstream of T-02 ran again.
    write_plan(tmp_path, plan)
    assert run(tmp_path).code == 0
    again = views(tmp_path)
    assert again["T-01"]["reused"] is not None
    assert again["T-02"]["reused"] == f"same inputs as the run of {first}"


GATED = """\
---
backend: shell
types: {{deploy: {{cache: false}}}}
{more}---
# Views

## Task Decomposition
| Task ID | Command | Dependencies | Approval | Type |
|---------|---------|--------------|----------|------|
| T-01 | echo one | None | - | - |
| T-02 | echo two | T-01 | before | - |
| T-03 | echo three | T-01 | - | deploy |
"""


def test_validate_names_the_tasks_never_cached_and_the_last_checkpoint(tmp_path: Path) -> None:
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(GATED.format(more=""), encoding="utf-8")
    done = cli_in_process(tmp_path, "validate")
    assert done.code == 0, done.stderr
    line = "Never cached (each runs every time): T-02 (approval before), T-03 (cache: false)"
    assert line in done.stdout.splitlines()
    assert "checkpoint" not in done.stdout
    data = json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)
    assert data["uncached"] == [{"task": "T-02", "why": "approval before"}, {"task": "T-03", "why": "cache: false"}]
    assert data["checkpoint"] is None

    saved = json.loads(cli(tmp_path, "checkpoint", "save", "v1", "--json").stdout)
    done = cli_in_process(tmp_path, "validate")
    told = f"Last checkpoint: v1, saved {saved['saved']} (0 results): `orchestrator checkpoint restore v1` goes back"
    assert told in done.stdout.splitlines(), done.stdout
    assert json.loads(cli_in_process(tmp_path, "validate", "--json").stdout)["checkpoint"]["name"] == "v1"

    plan.write_text(GATED.format(more="cache: false\n"), encoding="utf-8")  # the whole plan: said once
    done = cli_in_process(tmp_path, "validate")
    assert "Never cached (each runs every time): every task (cache: false)" in done.stdout.splitlines(), done.stdout


def test_a_restore_and_a_schedule_show_in_graph_final_output_and_the_html_report(tmp_path: Path) -> None:
    """``graph`` said nothing of either, final_output.md had no Restored row and the html report
    no Schedule row (status and the markdown report had both)."""
    write_plan(tmp_path, [spec("T-01", "good")])
    assert run(tmp_path).code == 0
    assert cli(tmp_path, "checkpoint", "save", "v1").code == 0
    assert cli(tmp_path, "checkpoint", "restore", "v1").code == 0
    state = tmp_path / ".orchestrator" / "state"
    fired = time.time() - 3600
    record = {"cron": "0 2 * * *", "added": fired - 60, "fired": fired, "finished": fired + 5, "exit_code": 0}
    (state / "schedule.json").write_text(json.dumps({**record, "skips": 0}), encoding="utf-8")
    env = {"TZ": "UTC"}
    status = json.loads(cli_in_process(tmp_path, "status", "--json", env=env).stdout)
    planned, back = status["notes"][-2:]
    assert planned.startswith("📅 scheduled '0 2 * * *'") and back.startswith("⏪ restored from checkpoint v1")

    graph = cli_in_process(tmp_path, "graph", env=env)
    assert graph.code == 0 and graph.stdout.splitlines()[-2:] == [planned, back], graph.stdout
    data = json.loads(cli_in_process(tmp_path, "graph", "--json", env=env).stdout)
    assert data["schedule"] == status["schedule"] and data["restored"] == status["restored"]

    assert cli(tmp_path, "aggregate", env=env).code == 0
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8").splitlines()
    assert f"| Restored | {back.removeprefix('⏪ ')} |" in final
    assert f"| Schedule | {planned.removeprefix('📅 ')} |" in final

    page = cli_in_process(tmp_path, "report", "--format", "html", env=env)
    assert page.code == 0, page.stderr
    assert f"<tr><th>Schedule</th><td>{escape(planned.removeprefix('📅 '))}</td></tr>" in page.stdout
    assert f"<tr><th>Restored</th><td>{escape(back.removeprefix('⏪ '))}</td></tr>" in page.stdout

    assert run(tmp_path).code == 0  # a run: the restore is no longer told, by graph nor final_output.md
    assert "⏪" not in cli_in_process(tmp_path, "graph").stdout
    assert cli(tmp_path, "aggregate").code == 0  # (the run had nothing to do: it wrote none)
    assert "| Restored |" not in (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8")
