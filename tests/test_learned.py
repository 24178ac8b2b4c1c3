"""A run that learns (issue 43): the ready queue orders by the longest remaining path of the
estimates learned from the runs before (a ``reset`` forgets results, never that), else by a
plan's Estimate cells; real runs of shell tasks through the CLI in tmp_path.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner_helpers import cli, cli_in_process

PLAN = """---
backend: shell
retries: 0
max_parallel: 1
---
## Task Decomposition
| Task ID | Command | Dependencies |{head}
|---------|---------|--------------|{rule}
{rows}
"""


def write(project: Path, *rows: str, estimate: bool = False) -> Path:
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    head, rule = (" Estimate |", "---|") if estimate else ("", "")
    path.write_text(PLAN.format(rows="\n".join(rows), head=head, rule=rule), encoding="utf-8")
    return path


def started_order(project: Path) -> list[list[str]]:
    """Each run's tasks in the order it started them, oldest run first."""
    runs: list[list[str]] = []
    for line in (project / ".orchestrator" / "state" / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "run_started":
            runs.append([])
        elif event["event"] == "task_started":
            runs[-1].append(event["task"])
    return runs


def test_a_run_after_a_reset_starts_the_task_that_took_longest_first(tmp_path: Path) -> None:
    # One slot: a first run knows nothing, and starts in table order; the next one, after a
    # reset that forgot every result, starts the long task first.
    write(tmp_path, "| T-01 | true | None |", "| T-02 | true | None |", "| T-03 | sleep 0.6 | None |")
    assert cli(tmp_path, "run").code == 0
    assert cli(tmp_path, "reset", "--all").code == 0
    assert cli(tmp_path, "run").code == 0
    first, second = started_order(tmp_path)
    assert first == ["T-01", "T-02", "T-03"]
    assert second[0] == "T-03", second
    # What the second run expected of each task and of its end, against what they took; and the
    # run before it beside it.
    report = json.loads(cli_in_process(tmp_path, "report", "--json").stdout)
    expected = {t["id"]: t for t in report["estimates"]["tasks"]}
    assert set(expected) == {"T-01", "T-02", "T-03"}
    assert 0.6 <= expected["T-03"]["estimate"] < 9 and expected["T-03"]["actual"] >= 0.6, expected
    assert set(report["estimates"]["run_error"]) == {"25%", "50%", "75%"}
    assert all(isinstance(e, float) for e in report["estimates"]["run_error"].values()), report["estimates"]
    compared = report["compared"]
    assert compared["previous_run"]["run"] != compared["this_run"]["run"]
    assert compared["this_run"]["failed"] == 0 and compared["previous_run"]["makespan_seconds"] > 0.3
    assert {c["id"] for c in compared["changes"]} == {"T-01", "T-02", "T-03"}
    watched = cli(tmp_path, "watch").stdout  # (the last run, from its start: it has finished)
    assert re.search(r"^⏱️ 0/3 done: about \S+ left \(ends about \d\d:\d\d\)$", watched, re.M), watched
    text = cli_in_process(tmp_path, "report").stdout
    assert "## Estimates" in text and "## Compared with the previous run" in text and "| T-03 | " in text


def test_with_every_duration_learned_the_run_packs_its_slots_better_than_longest_first(tmp_path: Path) -> None:
    """Two slots, two tasks of 0.6 s and three of 0.4 s: longest first starts both long ones and
    ends at 1.4 s; starting a long one beside a short one ends at 1.2 s. Once every duration is
    learned, the run plays its list out on them and starts the better pair (plan/listorder)."""
    rows = ["| L-1 | sleep 0.6 | None |", "| L-2 | sleep 0.6 | None |"]
    rows += [f"| S-{n} | sleep 0.4 | None |" for n in (1, 2, 3)]
    path = write(tmp_path, *rows)
    path.write_text(path.read_text(encoding="utf-8").replace("max_parallel: 1", "max_parallel: 2"), encoding="utf-8")
    assert cli(tmp_path, "run").code == 0
    assert cli(tmp_path, "reset", "--all").code == 0
    assert cli(tmp_path, "run").code == 0
    first, second = started_order(tmp_path)
    assert first[:2] == ["L-1", "L-2"]  # (nothing known: the table's order)
    assert sorted(task[0] for task in second[:2]) == ["L", "S"], second  # a long one beside a short one


def test_the_list_played_out_keeps_priorities_and_gives_way_when_nothing_is_better() -> None:
    from orchestrator.plan import listorder

    took = {"A": 0.6, "B": 0.6, "C": 0.4, "D": 0.4, "E": 0.4}
    order = ["A", "B", "C", "D", "E"]
    better = listorder.improved(order, took, {}, {}, 2)
    assert better is not None and sorted(better) == order and {better[0][0], better[1][0]} != {"A", "B"}
    assert listorder.improved(order, took, {}, {"A": 1, "B": 1}, 2) is None  # (P1 before P2 whatever it costs)
    assert listorder.improved(order, took, {"B": ["A"], "C": ["B"], "D": ["C"], "E": ["D"]}, {}, 2) is None  # a chain
    # With a dependency (E needs A), what it finds still ends sooner when played out.
    needs = {"E": ["A"]}
    better = listorder.improved(order, took, needs, {}, 2)
    play = listorder.Play(order, took, needs, 2)
    assert better is not None
    assert play.makespan({t: n for n, t in enumerate(better)}) < play.makespan({t: n for n, t in enumerate(order)})


def test_a_new_task_is_estimated_from_the_tasks_of_its_assignee_on_its_backend(tmp_path: Path) -> None:
    # The slow role's T-01 took 0.6 s; T-04, new and of the same role, is expected to take as long
    # (not the 60 s default, nor the quick shell tasks' time) and so starts first.
    def plan(*rows: str) -> None:
        text = PLAN.format(rows="\n".join(rows), head=" Assignee |", rule="---|")
        (tmp_path / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")

    (tmp_path / ".orchestrator").mkdir()
    first = ("| T-01 | sleep 0.6 | None | slowpoke |", "| T-02 | true | None | |")
    plan(*first)
    assert cli(tmp_path, "run").code == 0
    plan(*first, "| T-03 | true | None | |", "| T-04 | sleep 0.1 | None | slowpoke |")
    assert cli(tmp_path, "run").code == 0
    assert started_order(tmp_path)[1] == ["T-04", "T-03"]


def test_with_no_history_the_estimate_cells_order_the_run(tmp_path: Path) -> None:
    write(tmp_path, "| T-01 | true | None | 30s |", "| T-02 | true | None | 1h |", "| T-03 | true | None | - |",
          estimate=True)  # fmt: skip
    assert cli(tmp_path, "run").code == 0
    assert started_order(tmp_path) == [["T-02", "T-03", "T-01"]]  # 1h, the 60 s default, 30 s


def test_a_bad_estimate_cell_is_refused_with_its_line(tmp_path: Path) -> None:
    plan = write(tmp_path, "| T-01 | true | None | soon |", estimate=True)
    refused = cli_in_process(tmp_path, "validate")
    assert refused.code == 2, refused.stderr
    line = plan.read_text().splitlines().index("| T-01 | true | None | soon |") + 1
    assert f"master_plan.md:{line}" in refused.stderr and "bad estimate 'soon'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / ".orchestrator" / "state").exists() or cli(tmp_path, "run").code == 2


# --- deadlines ------------------------------------------------------------------------------------

DEADLINE_PLAN = """---
backend: shell
retries: 0
{front}
---
## Task Decomposition
| Task ID | Command | Dependencies | Estimate | Deadline |
|---------|---------|--------------|----------|----------|
{rows}
"""


def write_deadlines(project: Path, *rows: str, front: str = "") -> Path:
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEADLINE_PLAN.format(rows="\n".join(rows), front=front), encoding="utf-8")
    return path


def test_status_and_check_say_which_deadline_the_estimates_will_miss_before_a_run(tmp_path: Path) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    write_deadlines(
        tmp_path,
        "| T-01 | true | None | 2h | " + soon + " |",  # 2 h of work due in 1 h
        "| T-02 | true | None | 1m | " + soon + " |",  # well in time: nothing said
        front=f"deadline: {soon}",
    )
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    risky = {(d["task"], d["state"]) for d in shown["deadlines"]}
    assert risky == {("T-01", "at_risk"), ("run", "at_risk")}, shown["deadlines"]
    text = cli_in_process(tmp_path, "status").stdout
    assert re.search(r"^⏰ T-01 will miss its deadline \d\d:\d\d \(.+\): expected about \d\d:\d\d$", text, re.M), text
    assert "⏰ the run will miss its deadline" in text and "⏰ T-02" not in text
    checked = cli_in_process(tmp_path, "check", "--json")
    assert checked.code == 1, checked.stdout
    kinds = {(f["kind"], tuple(f["tasks"])) for f in json.loads(checked.stdout)["workspaces"][0]["findings"]}
    assert kinds == {("deadline_at_risk", ("T-01",)), ("deadline_at_risk", ())}, kinds


def test_a_run_tells_of_a_deadline_at_risk_then_missed_and_status_keeps_saying_it(tmp_path: Path) -> None:
    # Due 0.1 s after the run starts, estimated at a minute: at risk from the start; missed as
    # its moment passes, while it runs.
    write_deadlines(tmp_path, "| T-01 | sleep 0.2 | None | 1m | 0.1s |")
    ran = cli(tmp_path, "run")
    assert ran.code == 0, ran.stderr
    assert "⏰ T-01 will miss its deadline" in ran.stdout and "⏰ T-01 missed its deadline" in ran.stdout, ran.stdout
    told = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in told if e["event"].startswith("deadline_")]
    assert kinds == ["deadline_at_risk", "deadline_missed"], kinds
    assert all(e["task"] == "T-01" and e["written"] == "0.1s" for e in told if e["event"].startswith("deadline_"))
    shown = cli_in_process(tmp_path, "status").stdout  # (counted from the last run's start)
    # Seconds away: said to the second (to the minute, it read "missed its deadline 14:05 ...: ended 14:05").
    assert re.search(r"^⏰ T-01 missed its deadline \d\d:\d\d:\d\d \(0\.1s\): ended \d\d:\d\d:\d\d$", shown, re.M), (
        shown
    )
    line = next(line for line in ran.stdout.splitlines() if "will miss its deadline" in line)
    assert re.search(r"will miss its deadline \d\d:\d\d:\d\d \(0\.1s\): expected about \d\d:\d\d:\d\d$", line), line
    assert cli_in_process(tmp_path, "check").code == 1


def test_the_60_s_defaults_alone_put_no_deadline_at_risk(tmp_path: Path) -> None:
    """20 `true` tasks in a chain, nothing learned, due in 3 to 4 minutes: 20 x 60 s of defaults
    said "the run will miss its deadline", `check` exited 1 and a run told deadline_at_risk,
    while no view shows an estimate made of them. Only an estimate learned or given says so."""
    soon = (datetime.now(UTC) + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%MZ")
    rows = [f"| T-{n:02} | true | {f'T-{n - 1:02}' if n > 1 else 'None'} | - | - |" for n in range(1, 20)]
    write_deadlines(tmp_path, *rows, f"| T-20 | true | T-19 | - | {soon} |", front=f"deadline: {soon}\nmax_parallel: 2")
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert shown["eta"] is None and shown["deadlines"] == [], shown["deadlines"]
    text = cli_in_process(tmp_path, "status").stdout
    assert "Estimated:" not in text and "⏰" not in text, text
    checked = cli_in_process(tmp_path, "check", "--json")
    findings = json.loads(checked.stdout)["workspaces"][0]["findings"]
    assert not [f for f in findings if f["kind"].startswith("deadline")], findings
    ran = cli(tmp_path, "run")
    assert ran.code == 0, ran.stdout + ran.stderr
    told = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    assert not [e for e in told if e["event"].startswith("deadline_")], [e for e in told if "deadline" in e["event"]]
    assert cli_in_process(tmp_path, "check").code == 0
    # An Estimate cell is an estimate: 20 minutes of work in T-20's chain, due in 4, puts it and
    # the run at risk.
    other = tmp_path / "other"
    rows[0] = "| T-01 | true | None | 20m | - |"
    write_deadlines(other, *rows, f"| T-20 | true | T-19 | - | {soon} |", front=f"deadline: {soon}\nmax_parallel: 2")
    shown = json.loads(cli_in_process(other, "status", "--json").stdout)
    assert {(d["task"], d["state"]) for d in shown["deadlines"]} == {("T-20", "at_risk"), ("run", "at_risk")}
    assert cli_in_process(other, "check").code == 1


def test_a_deadline_that_passes_during_a_long_task_is_told_as_it_passes(tmp_path: Path) -> None:
    """A missed deadline was told only when a task finished or the run ended: now the run wakes
    as its moment passes."""
    write_deadlines(tmp_path, "| T-01 | sleep 3 | None | - | 1s |")
    ran = cli(tmp_path, "run")
    assert ran.code == 0, ran.stderr
    told = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in told if e["event"] in ("deadline_at_risk", "deadline_missed", "task_completed")]
    assert kinds == ["deadline_missed", "task_completed"], kinds


def test_bad_deadlines_are_refused_with_their_line(tmp_path: Path) -> None:
    plan = write_deadlines(tmp_path, "| T-01 | true | None | - | tomorrow |")
    refused = cli_in_process(tmp_path, "validate")
    line = plan.read_text().splitlines().index("| T-01 | true | None | - | tomorrow |") + 1
    assert refused.code == 2 and f"master_plan.md:{line}" in refused.stderr and "bad deadline" in refused.stderr
    plan = write_deadlines(tmp_path, "| T-01 | true | None | - | 2026-12-01T09:00 |")  # no zone
    refused = cli_in_process(tmp_path, "validate")
    assert refused.code == 2 and "has no time zone" in refused.stderr, refused.stderr
    write_deadlines(tmp_path, "| T-01 | true | None | - | - |", front="deadline: soon")
    refused = cli_in_process(tmp_path, "validate")
    assert refused.code == 2 and "master_plan.md:4" in refused.stderr and "'deadline'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_no_view_gives_an_estimate_until_one_is_learned_or_a_cell_gives_one(tmp_path: Path) -> None:
    """`watch` printed "about 2m00s left" from the 60 s defaults while `status` hid it: now every
    view says nothing of the end until an estimate is learned, or an Estimate cell gives one."""
    write(tmp_path, "| T-01 | sleep 0.3 | None |", "| T-02 | true | T-01 |")
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["eta"] is None
    assert "Estimated:" not in cli_in_process(tmp_path, "status").stdout
    assert cli(tmp_path, "run").code == 0
    assert "⏱️" not in cli(tmp_path, "watch").stdout  # the first run: nothing learned, nothing told
    told = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    assert not [e for e in told if e["event"] == "run_estimate"]
    assert all("estimate" not in e for e in told if e["event"] == "task_started")  # (report: no 60 s guesses)
    assert "## Estimates" not in cli_in_process(tmp_path, "report").stdout
    assert cli(tmp_path, "reset", "--all").code == 0
    eta = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["eta"]
    assert eta is not None and eta["learned"] == 2 and eta["given"] == 0 and 0.3 <= eta["seconds_left"] < 5, eta
    assert re.search(
        r"^Estimated: \S+ left \(ends about \d\d:\d\d\); 2 of 2 ", cli_in_process(tmp_path, "status").stdout, re.M
    )
    assert cli(tmp_path, "run").code == 0
    assert re.search(r"^⏱️ 0/2 done: about \S+ left", cli(tmp_path, "watch").stdout, re.M)
    # An Estimate cell is a person's estimate: shown, and said to be one.
    other = tmp_path / "other"
    write(other, "| T-01 | true | None | 5m |", "| T-02 | true | T-01 | - |", estimate=True)
    eta = json.loads(cli_in_process(other, "status", "--json").stdout)["eta"]
    assert eta is not None and eta["learned"] == 0 and eta["given"] == 1 and eta["seconds_left"] == 360, eta
    text = cli_in_process(other, "status").stdout
    assert (
        "Estimated: 6m00s left" in text
        and "0 of 2 tasks' estimates learned from earlier runs, 1 from the plan's Estimate cells" in text
    ), text


def test_work_that_waits_at_a_gate_is_told_as_work_left_not_as_an_end_time(tmp_path: Path) -> None:
    """A run stopped at a before-gate (exit 4): status said `0.10s left (ends about 14:05)`, an
    end no clock could keep, as if the work ran on. It tells the work left, and whose word it waits on."""
    path = write(tmp_path, "| T-01 | sleep 0.2 | None |", "| T-02 | true | T-01 |", "| T-03 | true | T-02 |")
    assert cli(tmp_path, "run").code == 0 and cli(tmp_path, "reset", "--all").code == 0  # (estimates learned)
    rows = ("| T-01 | sleep 0.2 | None | |", "| T-02 | true | T-01 | before |", "| T-03 | true | T-02 | |")
    text = PLAN.format(rows="\n".join(rows), head=" Approval |", rule="---|")
    path.write_text(text, encoding="utf-8")
    assert cli(tmp_path, "run").code == 4
    eta = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["eta"]
    assert eta is not None and eta["waits_for"] == ["T-02"], eta
    shown = cli_in_process(tmp_path, "status").stdout
    assert re.search(r"^Estimated: \S+ of work left, after a person's word on T-02; ", shown, re.M), shown
    assert "ends about" not in shown
    assert cli(tmp_path, "approve", "T-02").code == 0 and cli(tmp_path, "run").code == 0
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["eta"] is None  # (all done: nothing left)


# --- what attempts spent, and the tiers an estimate comes from ----------------------------------------

FAKE_CLAUDE = """#!/bin/sh
# claude as the runner sees it: a session, then its result with its cost and tokens. T-01's first
# attempt and every attempt of T-02 meet a server error (500): retried, spent all the same.
if [ "$1" = --version ]; then echo "9.9.9 (fake)"; exit 0; fi
cat > /dev/null
s=fake-$ORCHESTRATOR_TASK_ID-$ORCHESTRATOR_ATTEMPT
echo '{"type":"system","subtype":"init","session_id":"'$s'","model":"fake"}'
if [ "$ORCHESTRATOR_TASK_ID" = T-02 ] || [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then
  echo '{"type":"result","subtype":"success","is_error":true,"api_error_status":500,"result":"API Error: 500","'\\
'session_id":"'$s'","total_cost_usd":0.01,"usage":{"input_tokens":100,"output_tokens":10}}'
  exit 1
fi
echo '{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"'$s'",'\\
'"total_cost_usd":0.02,"usage":{"input_tokens":200,"output_tokens":20}}'
"""

CLAUDE_PLAN = """---
backend: claude
retries: 1
backoff_base: 0.05
---
# Plan

## Original Request
> Say

## Task Decomposition
| Task ID | Description | Dependencies |
|---|---|---|
| T-01 | Say T-01 | None |
| T-02 | Say T-02 | None |
"""


def test_what_a_retried_or_failed_attempt_spent_is_in_history_and_the_expected_cost(tmp_path: Path) -> None:
    """task_retrying and task_failed carried no tokens: `history` lost what failed attempts spent."""
    fake = tmp_path / "fake-claude"
    fake.write_text(FAKE_CLAUDE, encoding="utf-8")
    fake.chmod(0o755)
    env = {"ORCHESTRATOR_CLAUDE_BIN": str(fake), "ANTHROPIC_API_KEY": "fake"}
    (tmp_path / ".orchestrator").mkdir()
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(CLAUDE_PLAN, encoding="utf-8")
    ran = cli(tmp_path, "run", env=env)
    assert ran.code == 1, ran.stdout + ran.stderr  # T-02 failed
    attempts = json.loads(cli_in_process(tmp_path, "history", "--json").stdout)["attempts"]
    spent = sorted((a["task"], a["attempt"], a["outcome"], a["tokens"], a["cost_usd"]) for a in attempts)
    assert spent == [
        ("T-01", 1, "retried", 110, 0.01),
        ("T-01", 2, "completed", 220, 0.02),
        ("T-02", 1, "retried", 110, 0.01),
        ("T-02", 2, "failed", 110, 0.01),
    ], spent
    assert {(a["kind"], a["backend"]) for a in attempts} == {("claude", "claude")}
    stats = json.loads(cli_in_process(tmp_path, "history", "--stats", "--json").stdout)
    t01, kind = stats["tasks"]["T-01"], stats["kinds"]["claude"]
    assert (t01["tokens"], t01["cost_usd"], t01["attempts"], t01["failed_attempts"]) == (330, 0.03, 2, 1), t01
    assert t01["p90_seconds"] is not None and t01["p90_seconds"] >= t01["median_seconds"]
    assert (kind["tokens"], kind["cost_usd"], kind["runs"], kind["completed"]) == (550, 0.05, 2, 1), kind
    # What the next run should cost: each task's run, its failed attempts too (the forecast's).
    assert cli(tmp_path, "reset", "--all").code == 0
    eta = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["eta"]
    assert eta is not None and eta["expected_cost"] == 0.05 and eta["learned"] == 2, eta
    assert "expected cost $0.0500" in cli_in_process(tmp_path, "status").stdout


def test_a_next_batch_of_new_ids_is_estimated_from_the_earlier_batch_s_type(tmp_path: Path) -> None:
    """The kind tier learned only from tasks still in the plan: a next batch learned nothing. T-01
    (type test) took 0.6 s and is gone from the plan; T-04, new and of its type, is expected to
    take as long and starts before T-03 (as quick as the gone T-02, of no type)."""

    def plan(*rows: str) -> None:
        text = PLAN.format(rows="\n".join(rows), head=" Type |", rule="---|")
        (tmp_path / ".orchestrator" / "master_plan.md").write_text(text, encoding="utf-8")

    (tmp_path / ".orchestrator").mkdir()
    plan("| T-01 | sleep 0.6 | None | test |", "| T-02 | true | None | |")
    assert cli(tmp_path, "run").code == 0
    plan("| T-03 | true | None | |", "| T-04 | sleep 0.1 | None | test |")
    assert cli(tmp_path, "run").code == 0
    assert started_order(tmp_path)[1] == ["T-04", "T-03"]
    stats = json.loads(cli_in_process(tmp_path, "history", "--stats", "--json").stdout)
    assert stats["tasks"]["T-01"]["kind"] == "test" and stats["tasks"]["T-02"]["kind"] == "shell", stats["tasks"]
    assert (stats["kinds"]["test"]["runs"], stats["kinds"]["shell"]["runs"]) == (2, 2), stats["kinds"]


def test_a_task_s_own_brief_comes_before_its_other_briefs(tmp_path: Path) -> None:
    """T-01 took long under its first command; once changed and run, the estimate of a run of it
    as it is now is what it took under that command alone, not the median of both."""
    write(tmp_path, "| T-01 | sleep 1.5 | None |")
    assert cli(tmp_path, "run").code == 0
    write(tmp_path, "| T-01 | sleep 0.1 | None |")  # another brief: expected from its other one
    assert cli(tmp_path, "run").code == 0
    assert cli(tmp_path, "reset", "--all").code == 0
    assert cli(tmp_path, "run").code == 0
    told = [json.loads(line) for line in (tmp_path / ".orchestrator/state/events.jsonl").read_text().splitlines()]
    expected = [e.get("estimate") for e in told if e["event"] == "task_started"]
    attempts = json.loads(cli_in_process(tmp_path, "history", "--json").stdout)["attempts"]
    took = [a["duration"] for a in attempts]
    assert expected[0] is None and expected[1] == round(took[0], 3), (expected, took)  # (its other brief's)
    assert expected[2] == round(took[1], 3), (expected, took)  # its own brief's, not the median of both


def test_what_a_run_learns_from_a_long_log_it_folds_as_it_reads_never_holding_every_attempt(tmp_path: Path) -> None:
    """The estimates (and a hedge's bound) take each attempt as its end is read
    (``history.ended``): the memory they take does not grow with the log, where every attempt
    held (``attempts_of``, what ``history`` lists) grows with it. Issue 66: 47 MB of a second run
    on a log of 10,000 attempts."""
    import tracemalloc

    from orchestrator.run.forecasts.estimates import learn
    from orchestrator.state import events
    from orchestrator.state.kept.history import attempts_of

    log = tmp_path / "events.jsonl"
    began = datetime(2026, 1, 1, tzinfo=UTC)
    with log.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"event": "run_started", "run": "r", "pid": 0}) + "\n")
        for n in range(40_000):  # (50 tasks, 800 attempts each: what it learns is 50 tasks' worth)
            task, at = f"T-{n % 50:05d}", began + timedelta(seconds=n)
            out.write(json.dumps({"event": "task_started", "run": "r", "task": task, "time": at.isoformat()}) + "\n")
            end = (at + timedelta(seconds=2)).isoformat()
            out.write(json.dumps({"event": "task_completed", "run": "r", "task": task, "time": end}) + "\n")

    def peak(read: object) -> int:
        tracemalloc.start()
        try:
            assert callable(read)
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    learned = peak(lambda: learn(events.each(log), {"T-00000": "shell"}))
    held = peak(lambda: attempts_of(events.each(log)))
    assert learned * 4 < held, (learned, held)
    assert learn(events.each(log), {"T-00000": "shell"})["T-00000"].seconds == 2.0
