"""Hedging a straggler (``run/races/hedge.py``): an attempt past its bound gets a second attempt beside
it once a slot is free; the first to complete wins, the other is stopped, both attempts' spend is
counted, and work not safe to do twice is never hedged.

Real runs of the CLI as a subprocess, on shell tasks whose first attempt stalls (a long sleep) and
whose next one does not (``$ORCHESTRATOR_ATTEMPT``); with worktrees, a real git repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from race_helpers import killed_at, write_race_plan
from runner_helpers import cli, results, run, start, wait_gone, wait_until
from worktree_helpers import git, repository

# Attempt 1 stalls (and leaves its pid, to prove it is gone); any later attempt is quick.
STALLS = (
    'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then echo $$ > "$ORCHESTRATOR_TASK_ID.pid"; '
    'echo stalled > stall.txt; sleep 60; fi; echo "done by $ORCHESTRATOR_ATTEMPT" | tee -a out.txt'
)


def write(project: Path, rows: list[tuple[str, str, str]], **settings: Any) -> None:
    """A plan of shell tasks: (id, Hedge cell, script); scripts in Task Details."""
    write_race_plan(project, "Hedge", rows, **settings)


def pid_gone(pid: int) -> bool:
    return wait_gone(pid)  # (no such process, or a zombie: it runs no more)


def test_a_straggler_is_hedged_the_hedge_wins_and_the_first_is_stopped(tmp_path: Path) -> None:
    write(tmp_path, [("T-01", "1s", STALLS)])
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    hedged = [e for e in result.events if e["event"] == "task_hedged"]
    won = [e for e in result.events if e["event"] == "task_hedge_won"]
    assert len(hedged) == 1 and hedged[0]["attempt"] == 2 and hedged[0]["first"] == 1
    assert hedged[0]["after"] >= 1.0 and hedged[0]["why"] == "hedge: 1.0s"
    assert won and won[0]["attempt"] == 2 and won[0]["lost"] == 1 and won[0]["hedge"] is True
    kinds = result.kinds("T-01")
    assert kinds.index("task_hedge_won") < kinds.index("task_completed")  # (the race told, then its end)
    found = results(tmp_path)["T-01"]
    assert found["status"] == "completed" and found["attempts"] == 2
    assert found["hedged"]["winner"] == 2 and found["hedged"]["lost"] == 1 and found["hedged"]["won"] == "hedge"
    assert (tmp_path / "out.txt").read_text() == "done by 2\n"  # the stalled one never finished
    pid = int((tmp_path / "T-01.pid").read_text())
    assert pid_gone(pid)  # its process group was killed, not left sleeping
    history = json.loads(cli(tmp_path, "history", "--json").stdout)
    attempts = [a for a in history["attempts"] if a["task"] == "T-01"] if isinstance(history, dict) else history
    outcomes = sorted(str(a["outcome"]) for a in attempts if a["task"] == "T-01")
    assert outcomes == ["completed", "hedge_lost"], attempts


def test_the_first_attempt_wins_when_it_ends_before_the_hedge(tmp_path: Path) -> None:
    # Attempt 1 is slow past the bound but done soon; the hedge (attempt 2) would take a minute.
    script = 'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 2; else echo $$ > hedge.pid; sleep 60; fi; echo ok'
    write(tmp_path, [("T-01", "0.5s", script)])
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    won = [e for e in result.events if e["event"] == "task_hedge_won"]
    assert won and won[0]["attempt"] == 1 and won[0]["lost"] == 2 and won[0]["hedge"] is False
    found = results(tmp_path)["T-01"]
    assert found["attempts"] == 1 and found["hedged"]["won"] == "first"
    # Two attempts ran (issue 65: status said Attempts 1 of a hedged task): the run's count holds both.
    assert found["run_attempts"] == 2
    shown = json.loads(cli(tmp_path, "status", "--json").stdout)["tasks"][0]
    assert (shown["attempts"], shown["run_attempts"]) == (1, 2)
    assert pid_gone(int((tmp_path / "hedge.pid").read_text()))


def test_a_shell_task_is_not_hedged_unless_its_own_row_says_so(tmp_path: Path) -> None:
    # The plan's hedge alone does not hedge a shell task: running it twice may not be safe.
    script = 'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 2; fi; echo ok'
    write(tmp_path, [("T-01", "-", script), ("T-02", "0.5s", script)], hedge="0.5s")
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert result.tasks("task_hedged") == ["T-02"]
    said = cli(tmp_path, "validate")
    assert said.code == 0, said.stderr
    assert "Raced (a straggler's hedge, or best of N): T-02 (0.50s)" in said.stdout
    assert "Not raced, though it asks to be: T-01: a shell task is raced only when its own Hedge cell" in said.stdout
    data = json.loads(cli(tmp_path, "validate", "--json").stdout)
    assert [h["task"] for h in data["hedged"]] == ["T-02"]
    assert [h["task"] for h in data["not_hedged"]] == ["T-01"]


def test_no_history_means_no_hedge_before_the_timeouts_warning(tmp_path: Path) -> None:
    # 2x of a kind with no history: the bound is 80% of the timeout (4s of 5s), not sooner.
    script = 'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 30; fi; echo ok'
    write(tmp_path, [("T-01", "2x", script)], timeout=5)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    hedged = [e for e in result.events if e["event"] == "task_hedged"]
    assert len(hedged) == 1 and hedged[0]["bound"] == 4.0 and hedged[0]["after"] >= 4.0
    assert "80% of its timeout" in hedged[0]["why"]


def test_a_bad_hedge_cell_is_one_line_naming_the_row(tmp_path: Path) -> None:
    write(tmp_path, [("T-01", "soon", "echo ok")])
    said = cli(tmp_path, "validate")
    assert said.code != 0 and "Traceback" not in said.stderr
    assert "master_plan.md:" in said.stderr and "bad Hedge cell 'soon'" in said.stderr


@pytest.mark.parametrize("stalls", ["first", "hedge"])
def test_in_worktrees_only_the_winners_work_merges_and_the_lane_is_removed(tmp_path: Path, stalls: str) -> None:
    project = repository(tmp_path, {"base.txt": "base\n"})
    slow = "1" if stalls == "first" else "2"
    script = (
        f'echo "attempt $ORCHESTRATOR_ATTEMPT" > "work-$ORCHESTRATOR_ATTEMPT.txt"; '
        f'if [ "$ORCHESTRATOR_ATTEMPT" = {slow} ]; then sleep 60; fi; '
        + ("sleep 2; " if stalls == "hedge" else "")
        + "echo ok"
    )
    write(project, [("T-01", "1s", script)], isolation="worktree")
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    won = [e for e in result.events if e["event"] == "task_hedge_won"]
    winner = 2 if stalls == "first" else 1
    assert won and won[0]["attempt"] == winner
    integration = "orchestrator/integration"
    files = git(project, "ls-tree", "--name-only", integration).split()
    assert f"work-{winner}.txt" in files and f"work-{3 - winner}.txt" not in files  # never a loser's work
    branches = git(project, "branch", "--format=%(refname:short)", "--list", f"{integration}-T-01*").split()
    assert branches == [f"{integration}-T-01"]  # the lane's branch is gone
    assert not (project / ".orchestrator" / "worktrees" / "T-01+2").exists()
    found = results(project)["T-01"]
    assert found["branch"] == f"{integration}-T-01" and found["merge"].startswith("merged into")
    if stalls == "first":  # (issue 65's first race: the loser left its file in the task's own worktree)
        again = run(project, "--rerun", "T-01")
        assert again.code == 0, again.stdout + again.stderr
        files = git(project, "ls-tree", "--name-only", integration).split()
        assert "work-1.txt" not in files, files  # a loser's work never merges, not even at the next attempt
        kept = "refs/orchestrator/lost/T-01/attempt-1"
        assert git(project, "ls-tree", "--name-only", kept).split().count("work-1.txt") == 1  # kept, not lost


def test_a_race_cancelled_from_outside_stops_both_and_gives_its_slots_back(tmp_path: Path) -> None:
    # T-01 and its hedge hold two of three slots, T-00 the third; T-01 is cancelled, then T-00 let
    # go: its three dependents run side by side only if the hedge's slot was given back.
    stalls = 'echo $$ >> "$ORCHESTRATOR_TASK_ID.pids"; sleep 60'
    side = 'echo "$ORCHESTRATOR_TASK_ID start" >> side.log; sleep 1; echo "$ORCHESTRATOR_TASK_ID end" >> side.log'
    rows = [("T-01", "0.5s", stalls), ("T-00", "-", "while [ ! -e go ]; do sleep 0.1; done")]
    rows += [(f"T-0{n}", "-", side) for n in (2, 3, 4)]
    write(tmp_path, rows, max_parallel=3)
    path = tmp_path / ".orchestrator" / "master_plan.md"
    text = path.read_text()
    for n in (2, 3, 4):
        text = text.replace(f"| T-0{n} | Task T-0{n} | Run it | None |", f"| T-0{n} | Task T-0{n} | Run it | T-00 |")
    path.write_text(text)
    runner = start(tmp_path)
    try:
        pids = tmp_path / "T-01.pids"
        wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2, "T-01 and its hedge running")
        assert cli(tmp_path, "cancel", "T-01").code == 0
        wait_until(lambda: results(tmp_path).get("T-01", {}).get("status") == "cancelled", "T-01 cancelled")
        (tmp_path / "go").touch()
        runner.wait()
    finally:
        runner.stop_all()
    for pid in pids.read_text().split():
        assert pid_gone(int(pid))
    lines = (tmp_path / "side.log").read_text().split("\n")
    starts = [lines.index(f"T-0{n} start") for n in (2, 3, 4)]
    ends = [lines.index(f"T-0{n} end") for n in (2, 3, 4)]
    assert max(starts) < min(ends), lines  # all three at once: no slot lost to the stopped race


def test_2x_is_twice_the_p90_of_the_kinds_learned_durations(tmp_path: Path) -> None:
    # A first run teaches the kind (shell) three durations; in the next, T-09's first attempt
    # stalls and is hedged at twice their p90, long before its timeout's 80% (96 s).
    write(tmp_path, [(f"T-0{n}", "-", f"sleep 0.{n}") for n in (1, 2, 3)])
    assert run(tmp_path).code == 0
    stalls = 'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 60; fi; echo ok'
    write(tmp_path, [(f"T-0{n}", "-", f"sleep 0.{n}") for n in (1, 2, 3)] + [("T-09", "2x", stalls)])
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    hedged = [e for e in result.events if e["event"] == "task_hedged"]
    assert len(hedged) == 1 and hedged[0]["task"] == "T-09"
    assert hedged[0]["why"].startswith("2x the p90 of its kind")
    assert 0.2 <= hedged[0]["bound"] <= 2.0  # twice the p90 of 0.1-0.3 s (and what starting a process adds)


def test_a_straggler_with_no_history_and_no_timeout_is_hedged_once_its_siblings_give_a_bound(tmp_path: Path) -> None:
    # No run before, no timeout: T-09 starts with no bound at all. Its six siblings of the same kind
    # (shell) complete in this run, and their p90 gives it one: it is hedged, and its hedge wins.
    rows = [("T-09", "2x", STALLS)] + [(f"T-0{n}", "-", f"sleep 0.{n}") for n in range(1, 7)]
    write(tmp_path, rows, timeout="none", max_parallel=8)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    hedged = [e for e in result.events if e["event"] == "task_hedged"]
    assert len(hedged) == 1 and hedged[0]["task"] == "T-09", hedged
    assert re.fullmatch(r"2x the p90 of its kind in this run \(.+, [3-6] attempts\)", hedged[0]["why"]), hedged[0]
    completed = [i for i, e in enumerate(result.events) if e["event"] == "task_completed"]
    assert len(completed) == 7 and completed[2] < result.events.index(hedged[0])  # a bound from siblings done
    won = [e for e in result.events if e["event"] == "task_hedge_won"]
    assert won and won[0]["hedge"] is True
    assert (tmp_path / "out.txt").read_text() == "done by 2\n"  # the sleeper never finished: the run ended first
    assert pid_gone(int((tmp_path / "T-09.pid").read_text()))


def test_the_runs_before_bound_it_while_this_run_has_fewer_than_three_completions(tmp_path: Path) -> None:
    # The runs before taught the kind three durations; in this one a single sibling completes
    # (fewer than MIN_COHORT): T-09 is hedged at twice the p90 the runs before give.
    write(tmp_path, [(f"T-0{n}", "-", f"sleep 0.{n}") for n in (1, 2, 3)])
    assert run(tmp_path).code == 0
    stalls = 'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 60; fi; echo ok'
    rows = [(f"T-0{n}", "-", f"sleep 0.{n}") for n in (1, 2, 3, 4)] + [("T-09", "2x", stalls)]
    write(tmp_path, rows)  # (T-01..T-03 are done and stay so; T-04 is new)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert sorted(result.tasks("task_completed")) == ["T-04", "T-09"]
    hedged = [e for e in result.events if e["event"] == "task_hedged"]
    assert len(hedged) == 1 and hedged[0]["task"] == "T-09"
    assert re.fullmatch(r"2x the p90 of its kind in the runs before \(.+, 3 attempts\)", hedged[0]["why"])
    assert hedged[0]["bound"] <= 2.0  # (not the timeout's 80%, 96 s)


def test_the_bound_of_each_hedge_setting() -> None:
    from orchestrator.plan.config.hedging import parse_hedge
    from orchestrator.plan.config.settings import Settings
    from orchestrator.run.races.bounds import bound_of, p90

    assert p90([1.0, 2.0]) is None and p90([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]) == 10.0
    two = Settings(hedge=parse_hedge("2x"), timeout=100.0)
    found = bound_of(two, [4.0, 4.0, 4.0])
    assert (
        found is not None
        and found.seconds == 8.0
        and found.why == "2x the p90 of its kind in the runs before (4.0s, 3 attempts)"
    )
    sooner = bound_of(two, [4.0, 4.0, 4.0], [1.0, 2.0, 3.0, 3.0])  # this run's siblings are quicker: theirs
    assert (
        sooner is not None
        and sooner.seconds == 6.0
        and sooner.why == "2x the p90 of its kind in this run (3.0s, 4 attempts)"
    )
    later = bound_of(two, [4.0, 4.0, 4.0], [5.0, 5.0, 5.0])  # slower: the runs before's, the sooner
    assert later is not None and later.seconds == 8.0
    few = bound_of(two, None, [1.0, 1.0])  # fewer than three here and none before: the timeout's share
    assert few is not None and few.seconds == 80.0
    unknown = bound_of(two, None)  # no history: the stuck warning's 80% of the timeout
    assert unknown is not None and unknown.seconds == 80.0
    assert bound_of(Settings(hedge=parse_hedge("2x"), timeout=None), None) is None  # and with no timeout, never (yet)
    fixed = bound_of(Settings(hedge=parse_hedge("10m")), None, [1.0, 1.0, 1.0])
    assert fixed is not None and fixed.seconds == 600.0
    assert bound_of(Settings(), [4.0, 4.0, 4.0]) is None  # off by default
    for bad in ("0.5x", "soon", True):
        with pytest.raises(ValueError):
            parse_hedge(bad)


def test_status_its_json_the_dashboard_and_final_output_say_the_race(tmp_path: Path) -> None:
    from dashboard_helpers import http_get, served

    write(tmp_path, [("T-01", "1s", STALLS)])
    assert run(tmp_path).code == 0
    said = "its hedge (attempt 2) won"
    assert "hedged after" in cli(tmp_path, "status").stdout and said in cli(tmp_path, "status").stdout
    view = json.loads(cli(tmp_path, "status", "--json").stdout)
    raced = next(t for t in view["tasks"] if t["id"] == "T-01")["raced"]
    assert raced.startswith("hedged after") and raced.endswith(said)
    assert said in (tmp_path / ".orchestrator" / "final_output.md").read_text()
    with served(tmp_path) as server:
        state = http_get(server.port, "/api/state").json()
    assert [t["raced"] for t in state["tasks"]] == [raced]  # the page shows it as `status` says it


@pytest.mark.parametrize(
    ("moment", "ref", "command"),
    [
        ("its winner adopted", "refs/heads/orchestrator/integration-T-01", " reset -q --hard "),
        ("its winner merged", "refs/heads/orchestrator/integration", " merge --no-ff "),
    ],
)
def test_a_hedged_race_killed_before_its_result_races_again_from_where_it_began(
    tmp_path: Path, moment: str, ref: str, command: str
) -> None:
    """Killed once the hedge won (its work adopted onto the task's branch, or merged too), before
    the result: the next run went on from the task's branch, the winner's work on it, and the
    integration branch held the task's work twice. A hedge's race is marked as best of N's is:
    set back, its work kept aside (and its merge taken out), it runs again; one attempt's work."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    script = (
        'if [ "$ORCHESTRATOR_ATTEMPT" = 1 ]; then sleep 60; fi; echo "attempt $ORCHESTRATOR_ATTEMPT" >> work.txt; '
        "echo ok"
    )
    write(project, [("T-01", "1s", script)], isolation="worktree")
    killed_at(tmp_path, project, ref, command)
    assert git(project, "show", "orchestrator/integration-T-01:work.txt") == "attempt 2\n", f"killed, {moment}"
    assert not (project / ".orchestrator" / "results" / "agent-01-result.md").exists()

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "T-01's race from attempt 1 was not recorded when its runner died" in said, said
    assert git(project, "show", "refs/orchestrator/lost/T-01/race-1:work.txt") == "attempt 2\n", "kept aside"
    found = results(project)["T-01"]
    merged = git(project, "show", "orchestrator/integration:work.txt").splitlines()
    assert found["status"] == "completed" and merged == [f"attempt {found['attempts']}"], merged
