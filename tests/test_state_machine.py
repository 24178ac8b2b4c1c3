"""Every move of a task's state a run makes is an arrow of the one state machine (``TRANSITIONS``,
drawn in workflow.md), and real runs walk every arrow a run can take.

Real plans of shell tasks (and a stand-in gemini for a usage limit) run through the CLI in
tmp_path, with a second terminal's ``approve``, ``reject``, ``cancel`` and ``retry``, a plan edited
while its run goes on, SIGINT, and a runner that died before it recorded. Every move is read
from ``ORCHESTRATOR_TRACE_STATES``'s trace (``state/transitions.py``), the moves no event tells
included (a waiting task turning pending); a move off the diagram would have raised
``IllegalTransition`` in the runner and failed its run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from runner_helpers import Background, as_if_the_runner_died_before_recording, cli, start, wait_until

from orchestrator.state.transitions import TRACE
from orchestrator.vocabulary import TRANSITIONS, TaskStatus

S = TaskStatus
COLUMNS = ("Command", "Dependencies", "Priority", "Retries", "Condition", "Approval", "Blocked", "Not before",
           "Backend", "Output")  # fmt: skip
LOOP = "while [ ! -f go ]; do sleep 0.05; done"  # runs until the test writes the file `go`

# The arrows no run moves a task along (the test fails should a run take one: then it is walked,
# and leaves this list). Most are how `status` reads the workspace between runs
# (``views/replay.collect``), never a move of a run:
# - a person's Blocked cell on a finished task (failed, skipped...) that the next run would take
#   up: `status` shows it blocked; a run first takes it up (-> pending or waiting: ``run/prepare``),
#   then holds it (pending -> blocked);
# - a dead runner's attempt: `status` shows it interrupted; the next run takes it up (-> pending),
#   then keeps the result its log proves (pending -> completed: ``run/resume/recovery``).
# Not reached at all: a dead runner's attempt is kept only when it completed (interrupted ->
# failed never happens: it runs again); a rejected result is never approved after all (`approve`
# refuses a rejected task, `retry` asks again: rejected -> completed); a waiting task is judged by
# its condition only once ready (waiting -> pending -> bypassed); a run stopped by SIGINT leaves
# what it had not started as it was, with no result (never interrupted); a completed result
# awaits a person's word only as the run that made it records it (running -> awaiting_approval:
# a later run takes a completed task up first, -> pending).
NOT_A_RUN_S = {
    (S.INTERRUPTED, S.COMPLETED),
    (S.INTERRUPTED, S.FAILED),
    (S.COMPLETED, S.BLOCKED),
    (S.FAILED, S.BLOCKED),
    (S.SKIPPED, S.BLOCKED),
    (S.INTERRUPTED, S.BLOCKED),
    (S.CANCELLED, S.BLOCKED),
    (S.REJECTED, S.BLOCKED),
    (S.BYPASSED, S.BLOCKED),
    (S.REJECTED, S.COMPLETED),
    (S.WAITING, S.BYPASSED),
    (S.WAITING, S.INTERRUPTED),
    (S.PENDING, S.INTERRUPTED),
    (S.COMPLETED, S.AWAITING_APPROVAL),
}


def plan(project: Path, rows: list[Mapping[str, str]], **settings: object) -> Path:
    """``project``'s master_plan.md: shell tasks, one row each (``id`` and the cells of ``COLUMNS``)."""
    front = {"backend": "shell", "retries": 0, "backoff_base": 0.05, "max_parallel": 4, "timeout": 120,
             "inactivity_timeout": "none", "kill_grace": 1, **settings}  # fmt: skip
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in front.items()), "---", "# States", "",
             "## Task Decomposition", "| Task ID | " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * (len(COLUMNS) + 1)]  # fmt: skip
    for row in rows:
        cells = [row.get("cmd", "") if c == "Command" else row.get(c.lower(), "") for c in COLUMNS]
        cells[1] = cells[1] or "None"
        lines.append(f"| {row['id']} | " + " | ".join(cells) + " |")
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ran(project: Path, *args: str) -> int:
    done = cli(project, "run", *args)
    assert "Traceback" not in done.stderr and "IllegalTransition" not in done.stderr, done.stderr
    return done.code


def asked(project: Path, *args: str) -> None:
    done = cli(project, *args)
    assert done.code == 0, (args, done.stdout, done.stderr)


def told(runner: Background, kind: str, task: str) -> Callable[[], bool]:
    return lambda: any(e["event"] == kind and e.get("task") == task for e in runner.events())


def finished(runner: Background) -> int:
    code = runner.wait()
    errors = runner.stderr.read_text(encoding="utf-8")
    assert "Traceback" not in errors and "IllegalTransition" not in errors, errors
    return code


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- the runs ---------------------------------------------------------------------------------------


def outcomes_and_a_rerun(project: Path) -> None:
    """Completed, failed, skipped; a retry that succeeds and one that does not; then a run that
    takes up what failed and what was skipped, and `--rerun`s what completed."""
    plan(project, [
        {"id": "T-01", "cmd": "echo one"},
        {"id": "T-02", "cmd": "exit 1"},
        {"id": "T-03", "cmd": "echo three", "dependencies": "T-02"},
        {"id": "T-04", "cmd": "echo four", "dependencies": "T-01"},
        {"id": "T-05", "cmd": "[ -f second ] && exit 0; touch second; exit 1", "retries": "1"},
        {"id": "T-06", "cmd": "exit 1", "retries": "1"},
        {"id": "T-07", "cmd": "exit 1", "dependencies": "T-01"},
    ])  # fmt: skip
    assert ran(project) == 1
    assert ran(project, "--rerun", "T-01") == 1


def conditions(project: Path) -> None:
    """A fallback that runs, branches bypassed, a condition that cannot be decided; then the
    bypassed tasks named to run again decided again (a bypass otherwise stays: ``run/resume/settled``)."""
    plan(project, [
        {"id": "T-01", "cmd": "exit 3"},
        {"id": "T-02", "cmd": "echo fallback", "dependencies": "T-01", "condition": "T-01 failed"},
        {"id": "T-03", "cmd": "echo main", "dependencies": "T-01", "condition": "T-01 completed"},
        {"id": "T-04", "cmd": "echo '{\"n\": 1}'", "output": "n:int"},
        {"id": "T-05", "cmd": "echo counted", "dependencies": "T-04", "condition": "T-04.n > 'one'"},
        {"id": "T-06", "cmd": "echo otherwise", "dependencies": "T-04", "condition": "T-04 failed"},
    ])  # fmt: skip
    assert ran(project) == 1
    assert ran(project, "--rerun", "T-03,T-06") == 1


def gates_while_the_run_goes_on(project: Path) -> None:
    """Gates before and after, approved and rejected from another terminal; one cancelled at its
    gate, and put back; a rejected one retried, and approved."""
    plan(project, [
        {"id": "T-01", "cmd": LOOP},
        {"id": "T-02", "cmd": "echo deploy", "approval": "before"},
        {"id": "T-03", "cmd": "echo migrate", "approval": "after"},
        {"id": "T-04", "cmd": "echo announce", "dependencies": "T-03"},
        {"id": "T-05", "cmd": "echo report", "approval": "after"},
        {"id": "T-06", "cmd": "echo risky", "approval": "before"},
        {"id": "T-07", "cmd": "echo next", "dependencies": "T-06"},
        {"id": "T-08", "cmd": "echo held", "approval": "before"},
    ], max_parallel=8)  # fmt: skip
    runner = start(project)
    try:
        for task in ("T-02", "T-03", "T-05", "T-06", "T-08"):
            wait_until(told(runner, "approval_requested", task), f"{task} at its gate")
        asked(project, "approve", "T-02")
        asked(project, "reject", "T-03", "--reason", "wrong table")
        asked(project, "approve", "T-05")
        asked(project, "reject", "T-06")
        asked(project, "cancel", "T-08")
        wait_until(told(runner, "task_skipped", "T-07"), "T-07 skipped")
        asked(project, "retry", "T-06")  # rejected -> pending: its gate asks again
        wait_until(lambda: sum(1 for e in runner.events() if e["event"] == "approval_requested"
                               and e["task"] == "T-06") == 2, "T-06 at its gate again")  # fmt: skip
        asked(project, "approve", "T-06")
        asked(project, "retry", "T-08")
        wait_until(lambda: sum(1 for e in runner.events() if e["event"] == "approval_requested"
                               and e["task"] == "T-08") == 2, "T-08 at its gate again")  # fmt: skip
        asked(project, "approve", "T-08")
        wait_until(told(runner, "task_completed", "T-07"), "T-07 completed")
        (project / "go").touch()
        assert finished(runner) == 1  # T-03 rejected, T-04 skipped
    finally:
        runner.stop_all()


def gates_between_runs(project: Path) -> None:
    """Results awaiting a word, decided with no run going on, settled as the next run begins; a
    gate before whose upstream runs again waits for it; one refused before it starts, recorded so
    by the next run."""
    plan(project, [
        {"id": "T-01", "cmd": "echo a", "approval": "after"},
        {"id": "T-03", "cmd": "echo up"},
        {"id": "T-02", "cmd": "echo b", "dependencies": "T-03", "approval": "after"},
        {"id": "T-04", "cmd": "echo c", "dependencies": "T-03", "approval": "before"},
        {"id": "T-05", "cmd": "echo d", "approval": "before"},
    ])  # fmt: skip
    assert ran(project) == 4
    asked(project, "approve", "T-01")
    asked(project, "reject", "T-02")
    asked(project, "reject", "T-05")  # (refused before it starts: the next run records it so, pending -> rejected)
    # T-02 rejected, run again after T-03: both at their gates; T-05 rejected (the plan is not done: 1)
    assert ran(project, "--rerun", "T-03,T-02") == 1


def cancel_and_retry(project: Path) -> None:
    """Cancelled from another terminal while waiting, pending, retrying and running; two put back."""
    plan(project, [
        {"id": "T-01", "cmd": LOOP, "priority": "P1"},
        {"id": "T-02", "cmd": "echo after", "dependencies": "T-01"},
        {"id": "T-03", "cmd": "while true; do sleep 0.05; done", "priority": "P2"},
        {"id": "T-05", "cmd": "exit 1", "retries": "3", "priority": "P1"},
        {"id": "T-04", "cmd": "echo queued", "priority": "P3"},
    ], max_parallel=2, backoff_base=60)  # fmt: skip
    runner = start(project)
    try:
        wait_until(told(runner, "task_retrying", "T-05"), "T-05 retrying")
        wait_until(lambda: told(runner, "task_started", "T-01")() and told(runner, "task_started", "T-03")(),
                   "T-01 and T-03 running")  # fmt: skip
        for task in ("T-02", "T-04", "T-05", "T-03"):
            asked(project, "cancel", task)
        asked(project, "retry", "T-02")  # cancelled -> waiting (T-01 runs still)
        asked(project, "retry", "T-04")  # cancelled -> pending
        wait_until(told(runner, "task_completed", "T-04"), "T-04 completed")
        (project / "go").touch()
        assert finished(runner) == 1  # T-03 and T-05 cancelled
    finally:
        runner.stop_all()


def interrupted_and_resumed(project: Path) -> None:
    """SIGINT while tasks run, one waits for a retry, one for its upstream and one for a slot;
    then the next run takes them all up, one after its upstream run again."""
    plan(project, [
        {"id": "T-01", "cmd": LOOP, "priority": "P1"},
        {"id": "T-02", "cmd": "echo after", "dependencies": "T-01"},
        {"id": "T-03", "cmd": "[ -f go ] && exit 0; exit 1", "retries": "2", "priority": "P1"},
        {"id": "T-06", "cmd": "echo quick", "priority": "P1"},
        {"id": "T-05", "cmd": LOOP, "dependencies": "T-06", "priority": "P2"},
        {"id": "T-04", "cmd": "echo queued", "priority": "P3"},
    ], max_parallel=2, backoff_base=60)  # fmt: skip
    runner = start(project)
    try:
        wait_until(told(runner, "task_retrying", "T-03"), "T-03 retrying")
        wait_until(told(runner, "task_started", "T-05"), "T-05 running")
        os.killpg(runner.pid, signal.SIGINT)
        assert finished(runner) == 130
    finally:
        runner.stop_all()
    (project / "go").touch()
    assert ran(project, "--rerun", "T-06") == 0  # T-05 waits for T-06 again


def a_dead_runners_attempt(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner killed after its agent's attempt ended and before it recorded: the next run keeps
    the attempt's result from its log (gemini's answer), and runs nothing."""
    gemini(project, monkeypatch)
    (project / "limited").touch()  # (no usage limit: it answers at once)
    plan(project, [{"id": "T-01", "cmd": "", "backend": "gemini"}])
    assert ran(project) == 0
    as_if_the_runner_died_before_recording(project / ".orchestrator", "agent-01")
    assert ran(project) == 0
    lines = (project / ".orchestrator" / "state" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["event"] for line in lines].count("task_started") == 1  # (not run again)


def held_and_edited_while_the_run_goes_on(project: Path) -> None:
    """A Blocked cell holds a task from the start; while the run goes on it is emptied (released),
    a waiting task is held and released, a waiting task's dependency is taken out (it is ready
    now), `add` brings a task whose dependencies are done, and a held task is cancelled."""
    path = plan(project, [
        {"id": "T-01", "cmd": "echo held", "blocked": "legal"},
        {"id": "T-02", "cmd": "echo next", "dependencies": "T-01"},
        {"id": "T-03", "cmd": LOOP},
        {"id": "T-04", "cmd": "echo late", "dependencies": "T-03"},
        {"id": "T-05", "cmd": "echo edited", "dependencies": "T-03"},
        {"id": "T-06", "cmd": "echo first"},
        {"id": "T-07", "cmd": "echo never", "blocked": "ops"},
    ])  # fmt: skip
    runner = start(project)
    try:
        wait_until(told(runner, "task_blocked", "T-01"), "T-01 held")
        asked(project, "cancel", "T-07")
        wait_until(told(runner, "task_completed", "T-06"), "T-06 completed")
        asked(project, "add", "Added", "--command", "echo added", "--after", "T-06")
        edit(path, "| T-01 | echo held | None |  |  |  |  | legal |", "| T-01 | echo held | None |  |  |  |  |  |")
        edit(path, "| T-04 | echo late | T-03 |  |  |  |  |  |", "| T-04 | echo late | T-03 |  |  |  |  | later |")
        edit(path, "| T-05 | echo edited | T-03 |", "| T-05 | echo edited | None |")
        wait_until(told(runner, "task_blocked", "T-04"), "T-04 held", 60)
        wait_until(told(runner, "task_completed", "T-02"), "T-01 released, and T-02 after it", 60)
        wait_until(told(runner, "task_completed", "T-05"), "T-05 ready once its dependency was taken out", 60)
        edit(path, "| T-04 | echo late | T-03 |  |  |  |  | later |", "| T-04 | echo late | T-03 |  |  |  |  |  |")
        wait_until(told(runner, "task_released", "T-04"), "T-04 released", 60)
        (project / "go").touch()
        assert finished(runner) == 1  # T-07 cancelled
    finally:
        runner.stop_all()


def not_before_and_the_cache(project: Path) -> None:
    """A task held until its Not before, a moment three to four seconds away; then a brief changed and
    changed back: the result of the first reused from the cache."""
    # (three whole seconds at least: a moment already past when a loaded machine's run starts is no wait)
    soon = (datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = plan(project, [{"id": "T-01", "cmd": "echo v1"}, {"id": "T-02", "cmd": "echo timed", "not before": soon}])
    assert ran(project) == 0
    edit(path, "echo v1", "echo v2")
    assert ran(project) == 0
    edit(path, "echo v2", "echo v1")
    assert ran(project) == 0  # T-01 reused: pending -> completed, no process


_GEMINI = """\
import json, os, sys, time
sys.stdin.read()
if not os.path.exists("limited"):
    open("limited", "w").write("once")
    print(f"You have reached your usage limit reached|{int(time.time()) + 1}", file=sys.stderr)
    sys.exit(1)
for event in ({"type": "init", "session_id": "g-1"}, {"type": "message", "role": "assistant",
              "content": "done after the pause", "delta": True}, {"type": "result", "status": "success", "stats": {}}):
    print(json.dumps(event))
"""


def gemini(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in gemini on ``ORCHESTRATOR_GEMINI_BIN``: a usage limit first (until the file
    ``limited`` exists in the project), then an answer."""
    program = project / "bin" / "gemini"
    program.parent.mkdir(parents=True)
    program.write_text(f"#!{sys.executable}\n{_GEMINI}", encoding="utf-8")
    program.chmod(0o755)
    monkeypatch.setenv("ORCHESTRATOR_GEMINI_BIN", str(program))


def test_a_retry_come_due_that_the_run_stops_before_it_starts_fails_on_its_last_attempt(tmp_path: Path) -> None:
    """T-01's retry comes due while T-02 holds the one slot; T-02 fails and --fail-fast stops the
    run: T-01 waited in the queue, retrying, and what happened to it is its attempt that failed
    (it was recorded skipped, an arrow the state machine has not: the run ended on IllegalTransition)."""
    plan(tmp_path, [
        {"id": "T-01", "cmd": "exit 1", "retries": "1", "priority": "P1"},
        {"id": "T-02", "cmd": "sleep 1; exit 1", "priority": "P2"},
    ], max_parallel=1, backoff_base=0.05, fail_fast=True)  # fmt: skip
    assert ran(tmp_path) == 1
    shown = json.loads(cli(tmp_path, "status", "--json").stdout)
    states = {task["id"]: (task["status"], task["reason"]) for task in shown["tasks"]}
    assert states["T-01"][0] == "failed" and "not attempted again: --fail-fast: T-02 failed" in states["T-01"][1]
    assert states["T-02"][0] == "failed"


def a_usage_limit(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An attempt that meets a usage limit waits for its reset, then runs again."""
    gemini(project, monkeypatch)
    plan(project, [{"id": "T-01", "cmd": "", "backend": "gemini"}])
    assert ran(project) == 0


def fail_fast(project: Path) -> None:
    """A failure stops the run: what waits for a retry fails, what has not started is skipped;
    the next run takes up what was skipped."""
    plan(project, [
        {"id": "T-01", "cmd": "exit 1", "retries": "2", "priority": "P1"},
        {"id": "T-02", "cmd": "sleep 0.5; exit 1", "priority": "P1"},
        {"id": "T-03", "cmd": "sleep 2", "priority": "P2"},
        {"id": "T-04", "cmd": "echo later", "priority": "P3"},
    ], max_parallel=2, backoff_base=60, fail_fast=True)  # fmt: skip
    assert ran(project) == 1
    assert ran(project) == 1


@pytest.mark.slow
def test_every_move_a_run_makes_is_an_arrow_and_the_runs_walk_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "moves.jsonl"
    monkeypatch.setenv(TRACE, str(trace))
    runs: list[Callable[[Path], None]] = [
        outcomes_and_a_rerun,
        conditions,
        gates_while_the_run_goes_on,
        gates_between_runs,
        cancel_and_retry,
        interrupted_and_resumed,
        lambda project: a_dead_runners_attempt(project, monkeypatch),
        held_and_edited_while_the_run_goes_on,
        not_before_and_the_cache,
        lambda project: a_usage_limit(project, monkeypatch),
        fail_fast,
    ]
    for number, scenario in enumerate(runs):
        scenario(tmp_path / f"run-{number}")
    moves = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    walked = {(S(m["from"]), S(m["to"])) for m in moves}
    arrows = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert walked <= arrows, walked - arrows  # (a move off them raised IllegalTransition: the run failed)
    assert not walked & NOT_A_RUN_S, walked & NOT_A_RUN_S  # (those said to be no run's are not)
    missing = arrows - walked - NOT_A_RUN_S
    assert not missing, sorted(f"{a} -> {b}" for a, b in missing)


def test_each_move_the_loop_makes_names_the_stimulus_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moves a run's machine leads to carry the stimulus they answer (``transitions.answering``),
    as Dask's worker state machine keeps a stimulus id on every transition: a task taken from the
    queue, past its gates, and launched on what its start found (``Starting``), an attempt's end,
    a retry due."""
    trace = tmp_path / "moves.jsonl"
    monkeypatch.setenv(TRACE, str(trace))
    project = tmp_path / "run"
    marker = project / "failed-once"
    plan(project, [
        {"id": "T-01", "cmd": f'if [ ! -e "{marker}" ]; then touch "{marker}"; exit 1; fi', "retries": "1"},
        {"id": "T-02", "cmd": "echo two", "dependencies": "T-01"},
    ])  # fmt: skip
    assert ran(project) == 0
    moves = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    of = {(m["task"], m["from"], m["to"]): m.get("stimulus") for m in moves}
    assert of[("T-01", "pending", "running")]["kind"] == "Starting"  # (taken, then what its start found)
    assert of[("T-01", "running", "retrying")]["kind"] == "AttemptEnded"
    assert of[("T-01", "running", "completed")]["kind"] == "AttemptEnded"
    assert of[("T-02", "waiting", "pending")]["kind"] == "AttemptEnded"  # (made ready by T-01's end)
    ended = [m["stimulus"]["id"] for m in moves if m.get("stimulus", {}).get("kind") == "AttemptEnded"]
    assert len(set(ended)) == 3, moves  # (T-01 twice, T-02 once: each end its own stimulus)
    assert of[("T-02", "waiting", "pending")]["id"] == of[("T-01", "running", "completed")]["id"]
