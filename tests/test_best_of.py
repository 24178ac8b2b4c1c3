"""Best of N (``run/races/bestof.py``, ``run/races/judges.py``): N attempts of a task at once, a judge chooses
the one whose result becomes the task's, the others are kept beside it, and only the winner's
branch merges.

Real runs of the CLI as a subprocess; shell tasks whose answer depends on ``$ORCHESTRATOR_ATTEMPT``;
with worktrees, a real git repository; the agent judge is the real ``claude`` CLI against the fake
Messages API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAnthropic, Reply, claude_missing, find_claude
from race_helpers import killed_at, write_race_plan
from runner_helpers import cli, results, run, wait_gone
from worktree_helpers import git, repository

# Attempt n answers n lines; attempt 2 is the slowest.
ANSWER = 'n=$ORCHESTRATOR_ATTEMPT; [ "$n" = 2 ] && sleep 1; for i in $(seq "$n"); do echo "line $i of $n"; done'


def write(project: Path, rows: list[tuple[str, str, str]], **settings: Any) -> None:
    """A plan of shell tasks: (id, Best of cell, script); scripts in Task Details."""
    write_race_plan(project, "Best of", rows, **settings)


def candidates(found: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {c["attempt"]: c for c in found["best_of"]["candidates"]}


@pytest.mark.parametrize(("judge", "chosen"), [("longest", 3), ("shortest", 1)])
def test_the_judge_chooses_and_the_others_are_kept_beside_it(tmp_path: Path, judge: str, chosen: int) -> None:
    write(tmp_path, [("T-01", "3", ANSWER)], judge=judge)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert result.kinds("T-01").count("task_started") == 1  # (the task's attempt; the others beside it)
    found = results(tmp_path)["T-01"]
    assert found["attempts"] == chosen and found["best_of"]["judge"] == judge
    assert found["run_attempts"] == 3  # (the three candidates are this run's attempts, whichever is chosen)
    assert f"the {judge} answer" in found["best_of"]["reason"]
    listed = candidates(found)
    assert sorted(listed) == [1, 2, 3] and [n for n, c in listed.items() if c["chosen"]] == [chosen]
    body = (tmp_path / ".orchestrator/results/agent-01-result.md").read_text()
    assert f"line {chosen} of {chosen}" in body
    for number in {1, 2, 3} - {chosen}:
        kept = tmp_path / ".orchestrator" / listed[number]["result"].removeprefix(".orchestrator/")
        assert kept.name == f"agent-01-result.candidate-{number}.md"
        assert f"line {number} of {number}" in kept.read_text() and "not chosen" in kept.read_text()
    status = cli(tmp_path, "status")
    assert f"best of 3, judged {judge}: candidate {chosen} chosen" in status.stdout
    data = json.loads(cli(tmp_path, "status", "--json").stdout)
    assert f"candidate {chosen} chosen" in str(data)
    final = (tmp_path / ".orchestrator" / "final_output.md").read_text()
    assert f"best of 3, judged {judge}: candidate {chosen} chosen" in final
    # Run again: its attempts count on from the first run's (their logs and history are kept apart
    # by them), and people read a candidate by its place in its race (issue 78).
    again = run(tmp_path, "--rerun", "T-01")
    assert again.code == 0, again.stderr
    line = next(e for e in again.events if e["event"] == "task_judged")
    assert sorted(c["attempt"] for c in line["candidates"]) == [4, 5, 6]
    shown = cli(tmp_path, "status").stdout
    assert "best of 3, judged" in shown and "(attempt " in shown and "candidate " in shown, shown


def test_judge_first_keeps_the_first_to_complete_and_stops_the_rest(tmp_path: Path) -> None:
    script = (
        'if [ "$ORCHESTRATOR_ATTEMPT" != 3 ]; then echo $$ > "slow-$ORCHESTRATOR_ATTEMPT.pid"; sleep 60; fi; echo fast'
    )
    write(tmp_path, [("T-01", "3", script)], judge="first")
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    found = results(tmp_path)["T-01"]
    listed = candidates(found)
    assert found["attempts"] == 3 and listed[3]["chosen"]
    assert listed[1]["status"] == "stopped" and listed[2]["status"] == "stopped"
    for pid_file in tmp_path.glob("slow-*.pid"):
        assert wait_gone(int(pid_file.read_text()))  # stopped: its process group killed


def test_a_command_judge_runs_in_each_candidates_worktree_and_only_the_winner_merges(tmp_path: Path) -> None:
    project = repository(tmp_path, {"base.txt": "base\n"})
    # Each attempt writes its own answer to answer.txt; the judge passes only attempt 2's.
    script = 'echo "$ORCHESTRATOR_ATTEMPT" > answer.txt; echo "attempt $ORCHESTRATOR_ATTEMPT"'
    write(project, [("T-01", "3", script)], isolation="worktree", judge="grep -qx 2 answer.txt")
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    found = results(project)["T-01"]
    assert found["attempts"] == 2 and "`grep -qx 2 answer.txt` passed in attempt 2's work" in found["best_of"]["reason"]
    integration = "orchestrator/integration"
    assert git(project, "show", f"{integration}:answer.txt") == "2\n"  # only the winner's work merged
    branches = git(project, "branch", "--format=%(refname:short)", "--list", f"{integration}-T-01*").split()
    assert branches == [f"{integration}-T-01"]
    assert sorted(p.name for p in (project / ".orchestrator" / "worktrees").iterdir() if p.name.startswith("T-01")) == [
        "T-01"
    ]


def test_the_losers_work_is_kept_on_refs_of_its_own_and_never_merged(tmp_path: Path) -> None:
    """The task's own attempt 1 and candidate 3 lose to 2: their committed work was taken with
    them (attempt 1's branch moved off its commit, candidate 3's branch deleted), to git's
    collector. Each is kept on ``refs/orchestrator/lost/T-01/attempt-N``; only 2's merges."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    script = 'echo "$ORCHESTRATOR_ATTEMPT" > answer.txt; echo "attempt $ORCHESTRATOR_ATTEMPT"'
    write(project, [("T-01", "3", script)], isolation="worktree", judge="grep -qx 2 answer.txt")
    result = run(project)
    assert result.code == 0, result.stdout + result.stderr
    assert git(project, "show", "orchestrator/integration:answer.txt") == "2\n"
    for lost in (1, 3):
        assert git(project, "show", f"refs/orchestrator/lost/T-01/attempt-{lost}:answer.txt") == f"{lost}\n"
    assert "refs/orchestrator/lost/T-01/attempt-2" not in git(project, "for-each-ref", "refs/orchestrator/lost/")


def test_no_candidate_passing_the_command_the_lowest_exit_wins(tmp_path: Path) -> None:
    write(tmp_path, [("T-01", "2", 'echo "attempt $ORCHESTRATOR_ATTEMPT"')],
          judge='exit $((4 - ORCHESTRATOR_CANDIDATE))')  # fmt: skip
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    found = results(tmp_path)["T-01"]
    assert found["attempts"] == 2 and "no candidate passed" in found["best_of"]["reason"]


def test_a_bad_best_of_cell_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, [("T-01", "lots", "echo ok")])
    said = cli(tmp_path, "validate")
    assert said.code != 0 and "Traceback" not in said.stderr
    assert "bad Best of cell 'lots'" in said.stderr


CLAUDE = find_claude()


@pytest.mark.claude
@pytest.mark.skipif(CLAUDE is None, reason=claude_missing())
def test_an_agent_judge_picks_with_a_reason_and_its_cost_counts(tmp_path: Path) -> None:
    from test_claude_backend import environment, write_plan

    write_plan(tmp_path, [("T-01", "Name a colour", "None")], extra="read", column="Access",
               settings="max_parallel: 2\nbest_of: 2\njudge: agent\nretries: 0")  # fmt: skip
    replies = [Reply.say("Answer: blue"), Reply.say("Answer: blue"),
               Reply.say('{"choice": 2, "reason": "it names the colour plainly"}')]  # fmt: skip
    with FakeAnthropic(replies) as api:
        env = environment(api, tmp_path)
        done = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(tmp_path / ".orchestrator"), "--json"],
                              env=env, capture_output=True, text=True, timeout=150, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        judged = json.dumps(api.main_requests[-1]["messages"])
    assert "Candidate 1" in judged and "Candidate 2" in judged and "Answer: blue" in judged
    found = results(tmp_path)["T-01"]
    assert found["attempts"] == 2 and found["best_of"]["judge"] == "agent"
    assert found["best_of"]["reason"] == "the judge agent chose it: it names the colour plainly"
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    completed = next(e for e in events if e["event"] == "task_completed")
    assert completed["cost_usd"] > 2 * completed["attempt_cost_usd"]  # both candidates and the judge counted


def test_the_plans_best_of_alone_never_races_a_shell_task(tmp_path: Path) -> None:
    # A script run three times at once may not be safe: only its own row (or type) may ask for it.
    write(tmp_path, [("T-01", "-", 'echo "$ORCHESTRATOR_ATTEMPT" >> ran.txt'), ("T-02", "2", "echo ok")], best_of=3)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert (tmp_path / "ran.txt").read_text() == "1\n"
    found = results(tmp_path)
    assert "best_of" not in found["T-01"] and len(found["T-02"]["best_of"]["candidates"]) == 2
    said = cli(tmp_path, "validate").stdout
    assert "Not raced, though it asks to be: T-01: a shell task is raced only when its own Best of cell" in said
    assert "T-02 (best of 2, judge: first)" in said


def test_an_agent_judge_on_a_shell_task_keeps_the_first_completed_and_says_why(tmp_path: Path) -> None:
    write(tmp_path, [("T-01", "2", ANSWER)], judge="agent")
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    found = results(tmp_path)["T-01"]
    assert found["best_of"]["reason"] == "judge: agent asks an agent; shell is none: the first completed kept"
    assert "(candidates: 1 completed, 2 completed)" in cli(tmp_path, "status").stdout


def test_history_shows_every_candidate_with_its_own_spend(tmp_path: Path) -> None:
    write(tmp_path, [("T-01", "3", ANSWER)], judge="longest")
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    judged = [e for e in result.events if e["event"] == "task_judged"]
    assert len(judged) == 1 and judged[0]["attempt"] == 3 and len(judged[0]["candidates"]) == 3
    attempts = json.loads(cli(tmp_path, "history", "--json").stdout)["attempts"]
    outcomes = {a["attempt"]: a["outcome"] for a in attempts if a["task"] == "T-01"}
    assert outcomes == {1: "not_chosen", 2: "not_chosen", 3: "completed"}, attempts
    assert all(a["log"] == f"logs/agent-01.attempt-{a['attempt']}" for a in attempts)


def test_two_races_under_too_few_slots_wait_for_them_and_each_runs_all_its_candidates(tmp_path: Path) -> None:
    """Issue 65's third race: two ``Best of 3`` tasks under ``max_parallel: 4`` gave the second one
    candidate ("best of 1: attempt 1 chosen", exit 0). A race waits for its slots."""
    slow = 'sleep 0.5; echo "attempt $ORCHESTRATOR_ATTEMPT of $ORCHESTRATOR_TASK_ID"'
    write(tmp_path, [("T-01", "3", slow), ("T-02", "3", slow)], judge="longest", max_parallel=4)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    found = results(tmp_path)
    for task in ("T-01", "T-02"):
        assert sorted(candidates(found[task])) == [1, 2, 3], found[task]["best_of"]
        assert "ran short" not in found[task]["best_of"]["reason"]


def test_a_race_with_no_slot_to_come_says_plainly_it_ran_short(tmp_path: Path) -> None:
    """With ``max_parallel: 1`` nothing frees a slot for a second candidate: the race says it ran short,
    how many ran and why, in its result, status and the run's line; no judge is asked to choose among one."""
    write(tmp_path, [("T-01", "3", "echo one answer")], judge="longest", max_parallel=1)
    result = run(tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    found = results(tmp_path)["T-01"]
    assert list(candidates(found)) == [1]
    reason = found["best_of"]["reason"]
    held = "max_parallel 1 (1 running) left no slot for the others;"
    assert reason.startswith(f"ran short: 1 of 3 candidates, {held}"), reason
    assert "the only one that completed, of 1 candidate" in reason
    assert "ran short: 1 of 3 candidates" in cli(tmp_path, "status").stdout


def test_a_race_killed_before_its_result_races_again_from_where_it_began_and_one_winner_merges(
    tmp_path: Path,
) -> None:
    """Issue 65's second race: killed after the winner (attempt 2) moved onto the task's branch, the
    next run raced on top of it and both winners' work merged. Now the first race's work is kept
    aside, never merged, and the second race starts where the first began."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    script = 'echo "attempt $ORCHESTRATOR_ATTEMPT" >> work.txt'  # (on top of a first race's: two lines)
    write(project, [("T-01", "3", script)], isolation="worktree", judge="grep -qx 'attempt 2' work.txt")
    branch = "orchestrator/integration-T-01"
    killed_at(tmp_path, project, f"refs/heads/{branch}", " reset -q --hard ")  # (its winner adopted)
    assert git(project, "show", f"{branch}:work.txt") == "attempt 2\n", "killed with the winner adopted"
    assert not (project / ".orchestrator" / "results" / "agent-01-result.md").exists()

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "T-01's race from attempt 1 was not recorded when its runner died" in said, said
    assert git(project, "show", "refs/orchestrator/lost/T-01/race-1:work.txt") == "attempt 2\n", "kept aside"
    merged = git(project, "show", "orchestrator/integration:work.txt").splitlines()
    assert len(merged) == 1 and merged != ["attempt 2"], f"one winner's work merged, the second race's: {merged}"
    found = results(project)["T-01"]
    assert merged == [f"attempt {found['attempts']}"]
    third = run(project)  # (the second race's mark, its result recorded: removed, nothing set back or run)
    assert third.code == 0 and "task_started" not in third.kinds("T-01"), third.stdout + third.stderr
    assert git(project, "for-each-ref", "refs/orchestrator/race/") == ""
    assert git(project, "show", "orchestrator/integration:work.txt").splitlines() == merged


def _killed_at_the_merge(tmp_path: Path, project: Path) -> None:
    """``project``'s run (T-01 best of 3, attempt 2 chosen) killed -9 once attempt 2's work is
    merged into the integration branch, before its result is written."""
    script = 'echo "attempt $ORCHESTRATOR_ATTEMPT" >> work.txt'
    write(project, [("T-01", "3", script)], isolation="worktree", judge="grep -qx 'attempt 2' work.txt")
    killed_at(tmp_path, project, "refs/heads/orchestrator/integration", " merge --no-ff ")
    assert git(project, "show", "orchestrator/integration:work.txt") == "attempt 2\n", "killed with the winner merged"
    assert not (project / ".orchestrator" / "results" / "agent-01-result.md").exists()


@pytest.mark.parametrize("after", ["nothing", "the person's commit", "the person's merge"])
def test_a_race_killed_after_its_merge_is_taken_out_of_integration_and_one_winner_stays(
    tmp_path: Path, after: str
) -> None:
    """Issue 65: killed after the winner's merge into the integration branch, before its result,
    the next run raced again on top of it and the branch held the task's work twice. Now the
    unrecorded merge is taken out (the tip set back when nothing came after it and no branch of
    the person's holds it; else a revert commit), kept on a ref, said; one winner's work stays."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    _killed_at_the_merge(tmp_path, project)
    merge = git(project, "rev-parse", "orchestrator/integration").strip()
    if after == "the person's commit":  # (the next run brings it into the integration branch, after the merge)
        (project / "later.txt").write_text("later\n", encoding="utf-8")
        git(project, "add", "later.txt")
        git(project, "commit", "-q", "-m", "later")
    elif after == "the person's merge":  # (``orchestrator merge``: the person's branch holds it now)
        git(project, "merge", "-q", "--ff-only", "orchestrator/integration")

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "T-01's race from attempt 1 was not recorded when its runner died" in said, said
    assert "merged into orchestrator/integration before the runner died and is taken out again" in said, said
    assert git(project, "show", "refs/orchestrator/lost/T-01/race-1:work.txt") == "attempt 2\n", "kept aside"
    merged = git(project, "show", "orchestrator/integration:work.txt").splitlines()
    found = results(project)["T-01"]
    assert found["status"] == "completed"
    assert merged == [f"attempt {found['attempts']}"], f"one winner's work, once: {merged}"
    history = git(project, "rev-list", "orchestrator/integration").split()
    if after == "nothing":
        assert merge not in history, "the merge at the tip taken off it"
        assert git(project, "rev-parse", "refs/orchestrator/lost/T-01/race-1-merge").strip() == merge
    else:
        assert merge in history, "a merge the person's branch holds, or with work after it, is reverted"
    if after == "the person's commit":
        assert git(project, "show", "orchestrator/integration:later.txt") == "later\n"
    if after == "the person's merge":  # (what the person brings in next leaves the work there once too)
        git(project, "merge", "-q", "--no-edit", "orchestrator/integration")
        assert (project / "work.txt").read_text(encoding="utf-8").splitlines() == merged
    shown = json.loads(cli(project, "status", "--json").stdout)
    view = next(task for task in shown["tasks"] if task["id"] == "T-01")
    assert view["status"] == "completed" and view["attempts"] == found["attempts"], view
    third = run(project)
    assert third.code == 0 and "task_started" not in third.kinds("T-01"), third.stdout + third.stderr
    assert git(project, "show", "orchestrator/integration:work.txt").splitlines() == merged


@pytest.mark.parametrize(
    ("moment", "ref", "command"),
    [
        ("the branch set back", "refs/heads/orchestrator/integration-T-01", " reset -q --hard "),
        ("the merge reverted", "refs/heads/orchestrator/integration", " revert "),
    ],
)
def test_a_runner_killed_as_it_takes_a_merge_out_leaves_the_next_to_finish_it(
    tmp_path: Path, moment: str, ref: str, command: str
) -> None:
    """The run that takes an unrecorded race's merge out of the integration branch killed -9 in
    turn: once the merge is out and the task's branch is being set back, or once the merge is
    reverted (the person's branch holds it) and before the branch is set back. The next run
    finishes it: one winner's work, once, a single revert."""
    project = repository(tmp_path, {"base.txt": "base\n"})
    _killed_at_the_merge(tmp_path, project)
    merge = git(project, "rev-parse", "orchestrator/integration").strip()
    if moment == "the merge reverted":
        git(project, "merge", "-q", "--ff-only", "orchestrator/integration")
    killed_at(tmp_path, project, ref, command)

    again = run(project)
    assert again.code == 0, again.stdout + again.stderr
    assert git(project, "show", "refs/orchestrator/lost/T-01/race-1:work.txt") == "attempt 2\n", "kept aside"
    merged = git(project, "show", "orchestrator/integration:work.txt").splitlines()
    found = results(project)["T-01"]
    assert found["status"] == "completed" and merged == [f"attempt {found['attempts']}"], merged
    reverts = git(project, "log", "--format=%H", f"--grep=This reverts commit {merge}", "orchestrator/integration")
    assert len(reverts.split()) == (1 if moment == "the merge reverted" else 0), reverts
    if moment == "the branch set back":
        assert git(project, "rev-parse", "refs/orchestrator/lost/T-01/race-1-merge").strip() == merge
    else:  # (its branch not set back yet: the race found again, its revert too, not made twice)
        said = again.stdout + again.stderr
        assert (
            f"is taken out again (its merge {merge[:12]} reverted by {reverts[:12]} already, by a run killed since)"
            in said
        ), said
