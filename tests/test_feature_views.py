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


CACHED = {"cache": True}  # (a command's answer is reused only where the plan says it is all its work)


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
        write_plan(project, [spec("T-01", output), spec("T-02", "two", deps=("T-01",))], CACHED)
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
    write_plan(tmp_path, plan, CACHED)
    assert run(tmp_path).code == 0
    first = views(tmp_path)["T-02"]["finished"]
    write_plan(tmp_path, [Spec("T-01", plan[0].script + "\n# edited"), plan[1]], CACHED)
    done = run(tmp_path)
    assert done.code == 0, done.stderr
    why = f"T-01 ran again with the same output: same inputs as the run of {first}"
    shown = views(tmp_path)
    assert shown["T-02"]["reused"] == why and shown["T-01"]["reused"] is None
    assert [e.get("reused") for e in done.events if e["event"] == "task_completed"] == [None, why]
    # Back to the first brief: T-01 is reused itself, so nothing upstream of T-02 ran again.
    write_plan(tmp_path, plan, CACHED)
    assert run(tmp_path).code == 0
    again = views(tmp_path)
    assert again["T-01"]["reused"] is not None
    assert again["T-02"]["reused"] == f"same inputs as the run of {first}"


GATED = """\
---
backend: shell
types: {{deploy: {{cache: false}}}}
cache: {cache}
---
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
    plan.write_text(GATED.format(cache="true"), encoding="utf-8")
    done = cli_in_process(tmp_path, "validate")
    assert done.code == 0, done.stderr
    line = "Not reused from the cache (runs again when its inputs change): T-02 (approval before), T-03 (cache: false)"
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

    plan.write_text(GATED.format(cache="false"), encoding="utf-8")  # the whole plan: said once
    done = cli_in_process(tmp_path, "validate")
    line = "Not reused from the cache (runs again when its inputs change): every task (cache: false)"
    assert line in done.stdout.splitlines(), done.stdout


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


# --- every view reads the same states and causes (issue 49) ------------------------------------------

MIXED = """---
backend: shell
retries: 0
notify:
  - command: "cat >> notified.jsonl; echo >> notified.jsonl"
    events: [task_failed, approval_requested, run_finished]
---
## Task Decomposition
| Task ID | Command | Dependencies | Condition | Approval | Output | Blocked |
|---|---|---|---|---|---|---|
| T-01 | echo '{"n": 0}' | None | | | n:int | |
| T-02 | exit 3 | None | | | | |
| T-03 | echo clean | T-01 | T-01.n == 0 | | | |
| T-04 | echo dirty | T-01 | T-01.n > 0 | | | |
| T-05 | echo after-two | T-02 | | | | |
| T-06 | echo deploy | T-03 | | before | | |
| T-07 | echo risky | None | | before | | |
| T-08 | echo held | T-01 | | | | legal |
| T-09 | echo dropped | None | | | | |
| T-10 | echo after-nine | T-09 | | | | |
"""


def test_every_view_reads_the_same_states_and_causes(tmp_path: Path) -> None:
    """One workspace with a task in most states (completed, failed, skipped and bypassed for an
    upstream, bypassed by its condition, at a gate, rejected at one, blocked, cancelled): status,
    its table, list, the dashboard's /api/state, report, final_output.md, the status blocks, check
    and the notifications all say the same state and the same why, each from the one cause."""
    from dashboard_helpers import http_get, served

    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir(parents=True)
    plan.write_text(MIXED, encoding="utf-8")
    assert cli(tmp_path, "cancel", "T-09", "--reason", "not needed").code == 0
    assert cli(tmp_path, "run").code == 1
    assert cli(tmp_path, "reject", "T-07", "--reason", "not today").code == 0
    (tmp_path / "notified.jsonl").unlink()
    assert cli(tmp_path, "run").code == 1  # (T-02 fails again; T-06 asked again; T-07 recorded rejected)

    shown = status_json(tmp_path)
    said = {t["id"]: (t["status"], t["reason"], t["cause"]) for t in shown["tasks"]}
    assert said["T-03"][0] == "completed" and said["T-01"][0] == "completed"
    assert said["T-02"][0] == "failed"
    seen = "T-01 completed, T-01.n = 0"
    assert said["T-04"] == ("bypassed", f"condition false: T-01.n > 0 ({seen})",
                            {"kind": "condition", "condition": "T-01.n > 0", "seen": seen})  # fmt: skip
    assert said["T-05"] == ("skipped", "upstream T-02 failed", {"kind": "upstream", "task": "T-02", "status": "failed"})
    assert said["T-06"][0] == "awaiting_approval" and said["T-06"][2] == {"kind": "held", "gate": "before"}
    assert said["T-07"][0] == "rejected" and said["T-07"][2]["said"] == "not today"
    assert said["T-08"] == ("blocked", "blocked: legal — `orchestrator update T-08 --status pending` releases it",
                            {"kind": "held", "said": "legal"})  # fmt: skip
    assert said["T-09"] == ("cancelled", "not needed", {"kind": "cancelled", "said": "not needed"})
    assert said["T-10"] == ("skipped", "upstream T-09 was cancelled",
                            {"kind": "upstream", "task": "T-09", "status": "cancelled"})  # fmt: skip

    # status's table: each task's state and why, as --json says them.
    table = {
        line.split()[0]: line
        for line in cli_in_process(tmp_path, "status").stdout.splitlines()
        if line.startswith("T-")
    }
    labels = {"completed": "Completed", "failed": "Failed", "skipped": "Skipped", "bypassed": "Bypassed",
              "awaiting_approval": "Awaiting approval", "rejected": "Rejected", "blocked": "Blocked",
              "cancelled": "Cancelled"}  # fmt: skip
    for task_id, (status, reason, _) in said.items():
        assert labels[status] in table[task_id] and (reason is None or reason in table[task_id]), table[task_id]
    # list, the dashboard, report: the same three, field for field.
    listed = {
        t["id"]: (t["status"], t["reason"], t["cause"])
        for t in json.loads(cli_in_process(tmp_path, "list", "--json").stdout)["tasks"]
    }
    assert listed == said
    with served(tmp_path) as server:
        state = http_get(server.port, "/api/state").json()
    assert {t["id"]: (t["status"], t["reason"], t["cause"]) for t in state["tasks"]} == said
    assert state["counts"] == shown["counts"]
    report = json.loads(cli_in_process(tmp_path, "report", "--format", "json").stdout)
    assert {t["id"]: (t["status"], t["reason"], t["cause"]) for t in report["tasks"]} == said
    # final_output.md: the row of each task not completed says why; the plan's status blocks, its state.
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text(encoding="utf-8").replace("\\|", "|")
    blocks = plan.read_text(encoding="utf-8")
    for task_id, (status, reason, cause) in said.items():
        rows = [line for line in blocks.splitlines() if line.startswith(f"| {task_id} | Agent-")]
        assert len(rows) == 1 and labels[status] in rows[0], (task_id, rows)
        if status in ("completed", "failed") or reason is None:
            continue
        rows = [line for line in final.splitlines() if line.startswith((f"| {task_id} ", f"| `{task_id}`"))]
        why = f"false: {cause['seen']}" if cause and cause["kind"] == "condition" else reason
        assert any(why in row for row in rows), (task_id, why, rows)
    # check: the same counts, and the task awaiting a person named.
    checked = json.loads(cli_in_process(tmp_path, "check", "--json").stdout)["workspaces"][0]
    assert checked["counts"] == {state: n for state, n in shown["counts"].items() if n}
    found = {f["kind"]: f["tasks"] for f in checked["findings"]}
    assert found["awaiting_approval"] == ["T-06"] and found["failed"] == ["T-02"]
    # The notifications of the last run: each cause is the one status shows now.
    told = [json.loads(line) for line in (tmp_path / "notified.jsonl").read_text().splitlines() if line.strip()]
    for event in told:
        if event.get("task") in said and "cause" in event:
            assert (event["reason"], event["cause"]) == said[event["task"]][1:], event
    assert {e["event"] for e in told} == {"approval_requested", "task_failed", "run_finished"}
    assert [e["cause"] for e in told if e["event"] == "approval_requested"] == [said["T-06"][2]]
    finished = next(e for e in told if e["event"] == "run_finished")
    assert finished["counts"] == shown["counts"]
