"""The living queue: `add`, `cancel` and `retry` from other processes while a real run goes on,
`watch` and `history` from another terminal, `logs --follow`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from live_helpers import WAIT_FOR_GO, events_of, has_started, let_go
from runner_helpers import (
    CLI,
    HANG_GUARD,
    Spec,
    cli,
    cli_in_process,
    parse_events,
    pid_gone,
    results,
    run,
    start,
    timing_text,
    wait_until,
    workspace,
    write_plan,
)

from orchestrator import timing
from orchestrator.output.reporter import describe
from orchestrator.plan.parser import read_plan
from orchestrator.state.events.chain import lock_file
from orchestrator.state.lock import turn


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """A plan whose T-01 waits for a file named go, and T-02 after it."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    return tmp_path


def test_a_task_added_mid_run_runs_in_that_run(live: Path) -> None:
    runner = start(live)
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")
        added = cli(live, "add", "--json", "counted after one", "--after", "T-01", "--command", "echo four > four.txt")
        assert added.code == 0, added.stderr
        answer = json.loads(added.stdout)
        assert answer["id"] == "T-03" and answer["taken"] is True
        # A task after a task that completed (none here yet) and one with no dependency start at once.
        free = cli(live, "add", "--json", "free", "--command", "echo free > free.txt")
        assert json.loads(free.stdout)["taken"] is True
        wait_until(lambda: (live / "free.txt").exists(), "the added task with no dependency to run")
        assert not (live / "four.txt").exists()  # it waits for T-01, which is still running
    finally:
        code = let_go(runner, live)
    assert code == 0, runner.stderr.read_text()
    assert (live / "four.txt").read_text() == "four\n"
    kinds = [e["event"] for e in runner.events() if e.get("task") == "T-03"]
    assert kinds == ["task_added", "task_started", "task_completed"]
    assert {t: r["status"] for t, r in results(live).items()} == {
        "T-01": "completed", "T-02": "completed", "T-03": "completed", "T-04": "completed"
    }  # fmt: skip


def test_a_task_added_after_a_failed_one_is_skipped_with_the_reason(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "exit 3"), Spec("T-02", f"{WAIT_FOR_GO}; echo two")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: "T-01" in results(tmp_path), "T-01 to fail")
        added = cli(tmp_path, "add", "--json", "after the failure", "--after", "T-01", "--command", "echo no")
        assert added.code == 0, added.stderr
    finally:
        code = let_go(runner, tmp_path)
    assert code == 1
    assert results(tmp_path)["T-03"]["status"] == "skipped"
    assert results(tmp_path)["T-03"]["reason"] == "upstream T-01 failed"


def test_cancel_mid_task_stops_its_processes_and_skips_its_dependents(tmp_path: Path) -> None:
    write_plan(
        tmp_path,
        [
            # child.pid appears whole (a rename): the test reads it as soon as it is there
            Spec("T-01", "echo $$ > long.pid; sleep 300 & echo $! > child.tmp; mv child.tmp child.pid; wait"),
            Spec("T-02", "echo two", deps=["T-01"]),
            Spec("T-03", "echo three"),
        ],
    )
    runner = start(tmp_path)
    try:
        wait_until(lambda: (tmp_path / "child.pid").exists(), "T-01 to start its child")
        pids = [int((tmp_path / name).read_text()) for name in ("long.pid", "child.pid")]
        cancelled = cli(tmp_path, "cancel", "T-01", "--reason", "not needed after all")
        assert cancelled.code == 0, cancelled.stderr
        assert "cancelled" in cancelled.stdout
        assert all(pid_gone(pid) for pid in pids), "a cancelled task's processes are gone when cancel returns"
        code = runner.wait()
    finally:
        runner.cleanup()
    assert code == 1  # not everything completed
    found = results(tmp_path)
    assert found["T-01"]["status"] == "cancelled" and found["T-01"]["reason"] == "not needed after all"
    assert found["T-02"]["status"] == "skipped" and found["T-02"]["reason"] == "upstream T-01 was cancelled"
    assert found["T-03"]["status"] == "completed"
    # A cancelled task stays so: the next run starts nothing of it, until it is retried.
    again = cli(tmp_path, "run", "--json")
    assert [e["task"] for e in parse_events(again.stdout) if e["event"] == "task_started"] == []
    assert results(tmp_path)["T-01"]["status"] == "cancelled"
    back = cli(tmp_path, "retry", "T-01")
    assert back.code == 0 and "back in the queue" in back.stdout, back.stderr
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(
        (tmp_path / ".orchestrator" / "master_plan.md").read_text().replace("sleep 300", "sleep 0")
    )
    assert cli(tmp_path, "run").code == 0
    assert results(tmp_path)["T-02"]["status"] == "completed"


@pytest.mark.slow
def test_a_request_the_run_does_not_answer_is_exit_1_not_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that cannot answer (here: stopped with SIGSTOP) is not the user's mistake: exit 1,
    saying how long it waited (its answer wait, here 2 s of the tool's 10, and the kill grace) and
    that the run may still do it."""
    monkeypatch.setenv(timing.VARIABLE, timing_text(answer_wait=2))
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO)], {"kill_grace": 0.5})
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        os.kill(runner.process.pid, signal.SIGSTOP)
        try:
            asked = cli(tmp_path, "cancel", "T-01")
        finally:
            os.kill(runner.process.pid, signal.SIGCONT)
        assert asked.code == 1, asked.stderr
        assert "Traceback" not in asked.stderr
        if "nothing was asked" in asked.stderr:  # (stopped as it wrote its events: the next test's case)
            assert cli(tmp_path, "cancel", "T-01").code == 0
        else:
            assert "did not answer the cancel of T-01 within 2.5 s; it may still do it" in asked.stderr
        code = runner.wait()  # it does, once it can
    finally:
        runner.cleanup()
    assert code == 1 and results(tmp_path)["T-01"]["status"] == "cancelled"


def test_a_run_stopped_as_it_writes_its_events_is_asked_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped (SIGSTOP, Ctrl-Z) as it appends to its event log holds the log's lock: a
    cancel, a retry or a change of the budget waits for it as long as it waits for an answer, then
    exits 1 saying nothing was asked, and the log has no line of it. Asked again once the lock is
    free, the run answers."""
    monkeypatch.setenv(timing.VARIABLE, timing_text(answer_wait=1))
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO)], {"max_cost": 5})
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        log = workspace(tmp_path) / "state" / "events.jsonl"
        with turn(lock_file(log)):  # (as the stopped run would hold it)
            before = log.read_bytes()
            asked = {
                words: cli(tmp_path, *words) for words in [("cancel", "T-01"), ("retry", "T-01"), ("budget", "+1")]
            }
            assert log.read_bytes() == before
        for words, said in asked.items():
            assert said.code == 1 and said.stderr.count("\n") == 1, (words, said.stderr)
            assert "into its event log within" in said.stderr and "nothing was asked" in said.stderr, said.stderr
        assert "the cancel of T-01" in asked[("cancel", "T-01")].stderr
        assert "the budget's change" in asked[("budget", "+1")].stderr
        assert cli(tmp_path, "cancel", "T-01").code == 0
        code = runner.wait()
    finally:
        runner.cleanup()
    assert code == 1 and results(tmp_path)["T-01"]["status"] == "cancelled"


def test_a_word_for_a_run_stopped_as_it_writes_its_events_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``approve`` and ``reject`` write the word and ask the run going on to take it under one hold
    of the event log's lock: held by a run stopped inside it, neither is written (never a word the
    run is not told of), exit 1 in one line. Said again once the lock is free, the run takes it."""
    monkeypatch.setenv(timing.VARIABLE, timing_text(answer_wait=1))
    plan = write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO), Spec("T-02", "echo two", deps=["T-01"])])
    text = (
        plan.read_text()
        .replace("| Priority |\n", "| Priority | Approval |\n", 1)
        .replace("|----------|\n", "|----------|---|\n", 1)
    )
    plan.write_text(
        text.replace("| None | P2 |", "| None | P2 | - |").replace("| T-01 | P2 |", "| T-01 | P2 | before |")
    )
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        state = workspace(tmp_path) / "state"
        with turn(lock_file(state / "events.jsonl")):  # (as the stopped run would hold it)
            kept = [state / "events.jsonl", state / "approvals.jsonl"]  # (the run writes its journal still)
            before = [path.read_bytes() if path.exists() else None for path in kept]
            asked = [cli(tmp_path, word, "T-02") for word in ("approve", "reject")]
            assert [path.read_bytes() if path.exists() else None for path in kept] == before
        for said, word in zip(asked, ("approval", "rejection"), strict=True):
            assert said.code == 1 and said.stderr.count("\n") == 1, said.stderr
            assert f"did not let the {word} of T-02 into its event log within" in said.stderr, said.stderr
        assert cli(tmp_path, "approve", "T-02").code == 0
        code = let_go(runner, tmp_path)
    finally:
        runner.cleanup()
    assert code == 0 and results(tmp_path)["T-02"]["status"] == "completed"


def test_cancel_before_start_and_refusals(live: Path) -> None:
    runner = start(live)
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")
        assert cli(live, "cancel", "T-02").code == 0  # waiting for T-01: it never starts
        refused = cli(live, "cancel", "T-02")
        assert refused.code == 1 and "cancelled already" in refused.stderr
        unknown = cli(live, "cancel", "T-99")
        assert unknown.code == 2 and unknown.stderr.count("\n") == 1 and "T-99" in unknown.stderr
    finally:
        code = let_go(runner, live)
    assert code == 1
    assert results(live)["T-02"]["status"] == "cancelled"
    assert not has_started(live, "T-02")


def test_retry_puts_a_failed_task_back_in_the_run_going_on(tmp_path: Path) -> None:
    write_plan(
        tmp_path,
        [
            Spec("T-01", "test -f fixed"),
            Spec("T-02", "echo after", deps=["T-01"]),
            Spec("T-03", f"{WAIT_FOR_GO}; echo keeps the run going"),
        ],
    )
    runner = start(tmp_path)
    try:
        wait_until(lambda: results(tmp_path).get("T-02", {}).get("status") == "skipped", "T-01 to fail")
        (tmp_path / "fixed").touch()
        retried = cli(tmp_path, "retry", "--json", "T-01")
        assert retried.code == 0 and json.loads(retried.stdout)["ok"] is True, retried.stderr
        wait_until(lambda: results(tmp_path).get("T-02", {}).get("status") == "completed", "T-01 and T-02 to run again")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0
    assert results(tmp_path)["T-01"]["attempts"] == 2  # its numbers go on: no log is overwritten


def test_watch_joined_late_sees_every_event_and_exits_with_the_run_code(live: Path) -> None:
    runner = start(live)
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")
        watcher = subprocess.Popen(
            [*CLI, "watch", "--json", "--output"], cwd=live, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(0.5)
        cli(live, "add", "fails", "--command", "echo bad; exit 4")
        out, err = b"", b""
        (live / "go").touch()
        out, err = watcher.communicate(timeout=HANG_GUARD)
        code = runner.wait()
    finally:
        runner.cleanup()
    assert code == 1 and watcher.returncode == 1, err.decode()
    seen = parse_events(out.decode())
    printed = runner.events()  # what the run printed with --json
    logged = [e for e in seen if e["event"] != "output"]  # (the log's lines as they are: their links too)
    assert all(isinstance(e.pop("prev"), str) for e in logged)
    assert logged == [{**e, "run": seen[0]["run"]} for e in printed]
    assert {"event": "output", "task": "T-03", "stream": "out", "line": "bad"} in seen


def test_watch_says_when_the_runner_died(live: Path) -> None:
    runner = start(live)
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")
        time.sleep(0.3)  # its events are flushed
        runner.kill()
        watched = cli(live, "watch")
    finally:
        runner.cleanup()
        (live / "go").touch()
    assert watched.code == 1
    assert "died before the run finished" in watched.stdout


def test_ten_concurrent_adds_keep_ten_rows_with_distinct_ids(live: Path) -> None:
    plan_file = workspace(live) / "master_plan.md"
    runner = start(live)
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")

        def add(number: int) -> str:
            done = cli(live, "add", "--json", f"added {number}", "--command", f"echo {number} > added-{number}.txt")
            assert done.code == 0, done.stderr
            return str(json.loads(done.stdout)["id"])

        with ThreadPoolExecutor(10) as pool:
            ids = list(pool.map(add, range(10)))
    finally:
        code = let_go(runner, live)
    assert code == 0, runner.stderr.read_text()
    assert len(set(ids)) == 10
    plan = read_plan(plan_file)
    assert len(plan.tasks) == 12 and set(ids) <= set(plan.tasks)
    assert sorted(p.name for p in live.glob("added-*.txt")) == sorted(f"added-{n}.txt" for n in range(10))


def test_add_with_bad_input_writes_nothing(live: Path) -> None:
    plan_file = workspace(live) / "master_plan.md"
    before = plan_file.read_bytes()
    for args in (
        ("add", "x", "--after", "T-99"),
        ("add", "   "),
        ("add", "x", "--id", "t-01"),
        ("add", "x", "--id", "bad id"),
        ("add", "x", "--backend", "nope"),
        ("add", "x", "--details-file", "missing.md"),
    ):
        done = cli(live, *args)
        assert done.code == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) <= 2 and "Traceback" not in done.stderr, done.stderr
        if "--after" in args:  # of the option given, not of a row and a line the plan does not have
            assert done.stderr.strip() == "--after: no task T-99 in the plan"
    assert plan_file.read_bytes() == before


def test_add_names_the_option_at_fault_not_a_line_of_the_plan_it_did_not_write(live: Path) -> None:
    """On a shell plan, ``add`` without ``--command`` blamed master_plan.md:13, the line its row
    would have had: a file that was not written. Each problem of the new row is said of the
    options that made it. (``add`` now writes such a row held until it has a command; ``spawn``,
    which runs it at once, still refuses it.)"""
    plan_file = workspace(live) / "master_plan.md"
    before = plan_file.read_bytes()
    missing = cli(live, "spawn", "Count the files")
    assert missing.code == 2 and missing.stderr.startswith("--command is missing: T-03 would run on the shell"), (
        missing.stderr
    )
    assert "--command 'CMD'" in missing.stderr and "--details-file" in missing.stderr
    unused = cli(live, "add", "Count the files", "--backend", "claude", "--command", "ls")
    assert unused.code == 2 and unused.stderr.startswith("--command: T-03 would run on 'claude'"), unused.stderr
    done = cli(live, "add", "Count the files", "--backend", "nope")  # (an assignee with no profile is a label)
    assert done.code == 2 and "nope" in done.stderr, done.stderr
    assert "master_plan.md" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    as_json = cli(live, "spawn", "--json", "Count the files")
    assert as_json.code == 2
    said = json.loads(as_json.stdout)
    assert said["error"] == "UsageError" and said["message"].startswith("--command is missing"), said
    assert "master_plan.md" not in missing.stderr + as_json.stdout
    assert plan_file.read_bytes() == before
    (live / "count.md").write_text("```bash\nls | wc -l\n```\n")  # a script in the details is a command too
    assert cli(live, "add", "Count the files", "--details-file", "count.md").code == 0


def test_add_details_and_columns_the_table_lacked(live: Path) -> None:
    (live / "brief.md").write_text("Write the changelog.\n\n```bash\necho log\n```\n")
    done = cli(live, "add", "Changelog", "--name", "Log", "--priority", "high", "--details-file", "brief.md")
    assert done.code == 0, done.stderr
    plan = read_plan(workspace(live) / "master_plan.md")
    task = plan.tasks["T-03"]
    assert (task.title, task.priority, task.details) == ("Log", 1, "Write the changelog.\n\n```bash\necho log\n```")


def test_add_refuses_details_whose_heading_would_end_them_and_names_the_file(live: Path) -> None:
    """A '### ' heading in the details file started another task's details in the plan: the
    error named master_plan.md's line, a file the user had not written."""
    plan_file = workspace(live) / "master_plan.md"
    before = plan_file.read_bytes()
    (live / "brief.md").write_text("Write it.\n\n```md\n### In code: fine\n```\n\n### Steps\n1. go\n")
    done = cli(live, "add", "Changelog", "--details-file", "brief.md")
    assert done.code == 2
    assert done.stderr.strip() == (
        "brief.md:7: a '### ' heading would end the task's details in master_plan.md — make it '#### ' or deeper"
    )
    (live / "brief.md").write_text("```bash\necho first\n```\nSome prose line\n---\nmore\n")  # a setext heading
    setext = cli(live, "add", "Changelog", "--details-file", "brief.md")
    assert setext.code == 2 and setext.stderr.startswith("brief.md:4: this line, underlined with '---', is a heading")
    assert plan_file.read_bytes() == before
    header = next(line for line in plan_file.read_text().splitlines() if line.startswith("| Task ID"))
    names = [cell.strip() for cell in header.strip("|").split("|")][1:]  # a row as the table's: dependencies None
    cells = " | ".join("None" if name == "Dependencies" else "x" for name in names)
    (live / "brief.md").write_text(f"\nRun these:\n\n| T-09 | {cells} |\n```bash\ntrue\n```\n")
    rows = cli(
        live, "add", "Changelog", "--details-file", "brief.md"
    )  # the plan is not written: its line names nothing
    assert rows.code == 2 and rows.stderr.startswith("brief.md:4: this row is under '## Task Details'"), rows.stderr
    assert plan_file.read_bytes() == before
    (live / "brief.md").write_text("Write it.\n\n#### Steps\n```bash\necho go\n```\n")
    assert cli(live, "add", "Changelog", "--details-file", "brief.md").code == 0


def test_history_keeps_every_attempt_of_every_run(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "test -f fixed")])  # prints nothing: no log file numbers it
    assert cli(tmp_path, "run").code == 1
    (tmp_path / "fixed").touch()
    assert cli(tmp_path, "run").code == 0
    shown = cli_in_process(tmp_path, "history", "--json", "T-01")
    assert shown.code == 0, shown.stderr
    attempts = json.loads(shown.stdout)["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "failed"), (2, "completed")]
    assert attempts[0]["run"] != attempts[1]["run"]
    text = cli_in_process(tmp_path, "history").stdout
    assert text.count("run 20") == 2 and "T-01 attempt 2: completed" in text
    journal = (workspace(tmp_path) / "state" / "attempts.jsonl").read_text()
    assert journal.count('"event": "run"') == 2  # the first run's lines are kept


def test_logs_follow_prints_output_as_it_comes_until_the_attempt_ends(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f"echo first; {WAIT_FOR_GO}; echo second")])
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        follower = subprocess.Popen(
            [*CLI, "logs", "--follow", "T-01"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"first\n"
        (tmp_path / "go").touch()
        rest, err = follower.communicate(timeout=HANG_GUARD)
        assert follower.returncode == 0, err
        assert rest == b"second\n"
        assert runner.wait() == 0
    finally:
        runner.cleanup()


def test_logs_follow_of_an_attempt_that_never_was_is_a_usage_error(tmp_path: Path) -> None:
    """It printed nothing and exited 0, as if attempt 99 had run and said nothing."""
    write_plan(tmp_path, [Spec("T-01", "echo one")])
    assert cli(tmp_path, "logs", "--follow", "--attempt", "1", "T-01").code == 2  # not run yet
    assert cli(tmp_path, "run").code == 0
    followed = cli(tmp_path, "logs", "--follow", "--attempt", "1", "T-01")
    assert (followed.code, followed.stdout) == (0, "one\n")
    missing = cli(tmp_path, "logs", "--follow", "--attempt", "99", "T-01")
    assert missing.code == 2 and missing.stderr.startswith("T-01 has no attempt 99; its attempts: 1")


def test_channel_commands_find_the_workspace_from_inside_a_task(tmp_path: Path) -> None:
    """A task's processes get ORCHESTRATOR_WORKSPACE: `add` from inside one needs no directory."""
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    add = " ".join([*CLI, "add", "'from inside'", "--command", "'echo inner > inner.txt'"])
    write_plan(tmp_path, [Spec("T-01", f"cd elsewhere && {add}")])
    env = {**os.environ}
    done = subprocess.run([*CLI, "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "inner.txt").read_text() == "inner\n"


def test_retry_brings_back_what_a_failure_took_down_but_never_a_cancelled_task(tmp_path: Path) -> None:
    """T-03 was cancelled in an earlier run and T-02 is cancelled in this one: a retry of the
    failed T-01 brings back neither (and the runner does not trip over T-03, which this run
    never selected)."""
    write_plan(
        tmp_path,
        [
            Spec("T-01", "test -f fixed"),
            Spec("T-02", "echo two", deps=["T-01"]),
            Spec("T-03", "echo three", deps=["T-01"]),
            Spec("T-04", "echo four", deps=["T-01"]),
            Spec("T-05", f"{WAIT_FOR_GO}; echo keeps the run going"),
        ],
    )
    assert cli(tmp_path, "cancel", "T-03").code == 0  # no run going on
    (tmp_path / "hold").touch()
    runner = start(tmp_path)
    try:
        wait_until(lambda: results(tmp_path).get("T-04", {}).get("status") == "skipped", "T-01 to fail")
        assert cli(tmp_path, "cancel", "T-02").code == 1  # skipped already: nothing to stop
        (tmp_path / "fixed").touch()
        assert cli(tmp_path, "retry", "T-01").code == 0
        wait_until(
            lambda: results(tmp_path).get("T-04", {}).get("status") == "completed", "T-04 to run after the retry"
        )
        assert cli(tmp_path, "retry", "T-03").code == 0  # itself: back in the queue
        wait_until(lambda: results(tmp_path).get("T-03", {}).get("status") == "completed", "T-03 to run")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    assert "Traceback" not in runner.stderr.read_text()


def test_a_retry_of_a_cancelled_task_outlives_an_interrupted_run(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one"), Spec("T-02", "echo two")], {"max_parallel": 1})
    assert cli(tmp_path, "cancel", "T-02").code == 0
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        assert cli(tmp_path, "retry", "T-02").code == 0
        runner.kill(signal.SIGINT)
        assert runner.wait() == 130
    finally:
        runner.cleanup()
    (tmp_path / "go").touch()
    again = cli(tmp_path, "run", "--json")
    assert again.code == 0, again.stderr
    assert results(tmp_path)["T-02"]["status"] == "completed"


def test_only_request_events_are_requests(live: Path) -> None:
    runner = start(live)
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")
        from orchestrator.state import events

        log = workspace(live) / "state" / "events.jsonl"
        run = events.live_run(log)
        assert run is not None
        fake = {"event": "discovered", "run": run["run"], "task": "T-02", "text": "cancel_requested retry_requested"}
        events.append(log, [fake])
        time.sleep(1.0)
    finally:
        code = let_go(runner, live)
    assert code == 0
    assert results(live)["T-02"]["status"] == "completed"


def test_retry_with_no_run_refuses_a_task_whose_upstream_is_cancelled(live: Path) -> None:
    assert cli(live, "cancel", "T-01").code == 0
    assert cli(live, "run").code == 1
    refused = cli(live, "retry", "T-02")
    assert refused.code == 1 and "retry T-01 first" in refused.stderr
    assert cli(live, "retry", "T-01").code == 0
    (live / "go").touch()
    assert cli(live, "run").code == 0


def test_a_run_that_leaves_a_task_cancelled_exits_1_though_it_started_none_of_it(tmp_path: Path) -> None:
    """cli-integration.md: 1 when a task failed, was skipped or cancelled. A task cancelled before
    the run (no dependents to skip) used to leave 0, as if the plan were done; with --only, what
    was asked is what counts."""
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", "echo two")])
    assert cli(tmp_path, "cancel", "T-02").code == 0
    held = cli(tmp_path, "run", "--json")
    assert held.code == 1, held.stderr
    assert held.finished()["counts"]["cancelled"] == 1
    assert cli(tmp_path, "run", "--only", "T-01").code == 0
    assert cli(tmp_path, "retry", "T-02").code == 0
    assert cli(tmp_path, "run").code == 0


def test_a_cancel_in_a_run_that_keeps_a_hand_edited_result_aside_says_so(tmp_path: Path) -> None:
    """QA: the run's cancel of a task outside it (`run --only T-01`) whose result file a hand
    edit had left unreadable kept that file aside without a word; `cancel` with no run going on
    says it."""
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO), Spec("T-02", "echo two")])
    results_dir = workspace(tmp_path) / "results"
    results_dir.mkdir()
    notes = "---\ntask: [broken\n---\nhand notes\n"
    (results_dir / "agent-02-result.md").write_text(notes, encoding="utf-8")
    runner = start(tmp_path, "--only", "T-01")
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        assert cli(tmp_path, "cancel", "T-02").code == 0
        assert let_go(runner, tmp_path) == 0
    finally:
        (tmp_path / "go").touch()  # (T-01 ends by itself even if the runner was killed)
        runner.cleanup()
    told = [e["message"] for e in events_of(tmp_path) if e["event"] == "notice"]
    said = ".orchestrator/results/agent-02-result.md could not be read as T-02's result: "
    assert said + "kept as agent-02-result.unreadable.md" in told, told
    assert (results_dir / "agent-02-result.unreadable.md").read_text(encoding="utf-8") == notes
    assert results(tmp_path)["T-02"]["status"] == "cancelled"


# --- the runner's start-up: it holds the lock, and has not said run_started yet -------------------

# A real `orchestrator run`, held where it has taken the workspace lock and not yet said
# run_started: it says so with a file named held, and goes on once the test opens the named pipe
# release for writing.
_HELD_RUN = """
import sys
from pathlib import Path
from typing import Any

import orchestrator.run.runner as runner
from orchestrator.cli.main import main

prepare = runner.prepare

def held(*args, **kwargs):
    Path("held").touch()
    with open("release") as fifo:
        fifo.read()
    return prepare(*args, **kwargs)

runner.prepare = held
sys.exit(main(sys.argv[1:]))
"""

# A real `orchestrator cancel` or `retry` that says, in a file named refused, each time it finds the
# workspace lock taken: the test lets the run go on only once the request has met the held lock.
_WATCHED_REQUEST = """
import sys
from pathlib import Path
from typing import Any

from orchestrator.cli.main import main
from orchestrator.errors import LockedError
from orchestrator.state.lock import WorkspaceLock

acquire = WorkspaceLock.acquire

def watched(self):
    try:
        acquire(self)
    except LockedError:
        with open("refused", "a") as told:
            told.write("locked\\n")
        raise

WorkspaceLock.acquire = watched
sys.exit(main(sys.argv[1:]))
"""


def _in_the_start_up_window(project: Path, *request: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``request`` (cancel or retry) made while a real runner holds the lock before its
    run_started, the run let go on once the request found the lock taken; the request's outcome
    and the run's exit code (once a file named go is there: what keeps the run going ends)."""
    import sys

    os.mkfifo(project / "release")
    with (project / "runner.out").open("wb") as shown, (project / "runner.err").open("wb") as errors:
        runner = subprocess.Popen(
            [sys.executable, "-c", _HELD_RUN, "run", "--json"],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=shown,
            stderr=errors,
            start_new_session=True,
        )
    try:
        wait_until(lambda: (project / "held").exists() or runner.poll() is not None, "the runner to take the lock")
        assert runner.poll() is None, (project / "runner.err").read_text()
        asking = subprocess.Popen(
            [sys.executable, "-c", _WATCHED_REQUEST, *request],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with asking:
            wait_until(
                lambda: (project / "refused").exists() or asking.poll() is not None, "the request to meet the lock"
            )
            with open(project / "release", "w"):
                pass  # the run goes on
            out, err = asking.communicate(timeout=HANG_GUARD)
        asked = subprocess.CompletedProcess(asking.args, asking.returncode, out, err)
        (project / "go").touch()
        return asked, runner.wait(timeout=HANG_GUARD)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=HANG_GUARD)


def test_a_cancel_made_while_the_run_starts_reaches_it(tmp_path: Path) -> None:
    """QA: exit 3 ("wait for it to finish, or stop it") though a run was going on, in 3 of 5 tries."""
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO), Spec("T-02", "echo two", deps=["T-01"])])
    asked, code = _in_the_start_up_window(tmp_path, "cancel", "T-01", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["ok"] is True and answer["run"] is not None and answer["event"] == "task_cancelled"
    assert code == 1  # it left T-01 cancelled
    found = results(tmp_path)
    assert found["T-01"]["status"] == "cancelled"
    assert found["T-02"]["status"] == "skipped" and found["T-02"]["reason"] == "upstream T-01 was cancelled"


def test_a_retry_made_while_the_run_starts_reaches_it(tmp_path: Path) -> None:
    specs = [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"]), Spec("T-03", WAIT_FOR_GO)]
    write_plan(tmp_path, specs)
    assert cli(tmp_path, "cancel", "T-01").code == 0  # no run going on
    asked, code = _in_the_start_up_window(tmp_path, "retry", "T-01", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["ok"] is True and answer["run"] is not None and answer["event"] == "task_requeued"
    assert code == 0
    assert {r["status"] for r in results(tmp_path).values()} == {"completed"}


def test_an_add_made_while_the_run_starts_is_told_as_the_run_takes_it(tmp_path: Path) -> None:
    """QA: `add` said `"taken": false` (it runs in the next run) while a run held the lock before
    its run_started; that run then ran the task. It waits for the run, as cancel and retry do."""
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO)])
    asked, code = _in_the_start_up_window(tmp_path, "add", "the late one", "--command", "echo late", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["taken"] is True and answer["run"] is not None and answer["id"] == "T-02"
    assert code == 0
    assert {task: r["status"] for task, r in results(tmp_path).items()} == {"T-01": "completed", "T-02": "completed"}


# --- what status says of a task skipped for an upstream task that is no longer given up -----------


def _states(project: Path) -> dict[str, tuple[str, str | None]]:
    shown = cli_in_process(project, "status", "--json")
    assert shown.code == 0, shown.stderr
    return {t["id"]: (t["status"], t["reason"]) for t in json.loads(shown.stdout)["tasks"]}


def test_a_retry_with_no_run_going_on_takes_the_skip_of_what_depends_on_it_away(tmp_path: Path) -> None:
    """QA: after `retry T-01` with no run going on, T-02 was still shown `Skipped — upstream T-01
    was cancelled` (status, graph, the plan's status blocks) though the next run runs it."""
    specs = [
        Spec("T-01", "echo one"),
        Spec("T-02", "echo two", deps=["T-01"]),
        Spec("T-03", "echo three", deps=["T-02"]),
        Spec("T-04", "echo four"),
    ]
    plan = write_plan(tmp_path, specs)
    assert cli(tmp_path, "cancel", "T-01").code == 0
    assert cli(tmp_path, "run").code == 1
    skipped = ("skipped", "upstream T-01 was cancelled")
    assert _states(tmp_path) == {
        "T-01": ("cancelled", "cancelled by `orchestrator cancel`"),
        "T-02": skipped,
        "T-03": skipped,
        "T-04": ("completed", None),
    }
    assert cli(tmp_path, "retry", "T-01").code == 0
    assert _states(tmp_path) == {
        "T-01": ("pending", None),
        "T-02": ("waiting", None),
        "T-03": ("waiting", None),
        "T-04": ("completed", None),
    }
    graph = cli_in_process(tmp_path, "graph").stdout
    assert "⏸️ T-02 [Agent-02] Task T-02  ← T-01" in graph and "⏭️" not in graph, graph
    assert "⏭️" not in plan.read_text() and "| T-03 | Agent-03 | ⏸️ Waiting |" in plan.read_text()
    again = cli(tmp_path, "run", "--json")  # and that is what the next run does
    assert again.code == 0, again.stderr
    assert again.tasks("task_started") == ["T-01", "T-02", "T-03"]


def test_a_skip_stays_while_what_caused_it_does(tmp_path: Path) -> None:
    """A failed upstream task, and a run stopped by fail_fast, keep their skip (and its reason);
    once the failed one completes (`run --only`), what it held is pending."""
    specs = [
        Spec("T-01", "test -f fixed"),
        Spec("T-02", "echo two", deps=["T-01"]),
        Spec("T-03", "echo three", deps=["T-02"]),
    ]
    write_plan(tmp_path, specs)
    assert cli(tmp_path, "run").code == 1
    held = ("skipped", "upstream T-01 failed")
    failed = ("failed", "exit code 1 at line 1 of the script: `test -f fixed` failed, and bash -e stops there")
    assert _states(tmp_path) == {"T-01": failed, "T-02": held, "T-03": held}
    (tmp_path / "fixed").touch()
    assert cli(tmp_path, "run", "--only", "T-01").code == 0
    assert _states(tmp_path) == {"T-01": ("completed", None), "T-02": ("pending", None), "T-03": ("waiting", None)}
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    write_plan(stopped, [Spec("T-01", "exit 1"), Spec("T-02", "echo two")], {"fail_fast": True, "max_parallel": 1})
    assert cli(stopped, "run").code == 1
    status, reason = _states(stopped)["T-02"]
    assert status == "skipped" and reason is not None and reason.startswith("not started"), reason


def test_a_skip_says_the_cause_that_holds_now(tmp_path: Path) -> None:
    """QA: T-02 skipped because T-01 was cancelled kept `upstream T-01 was cancelled` after T-01
    was put back (`retry`) and failed in a `run --only T-01`: it says so now, as a run that
    skipped it for that failure would have, down the chain too."""
    specs = [
        Spec("T-01", "test -f fixed"),
        Spec("T-02", "echo two", deps=["T-01"]),
        Spec("T-03", "true", deps=["T-02"]),
    ]
    write_plan(tmp_path, specs)
    assert cli(tmp_path, "cancel", "T-01").code == 0
    assert cli(tmp_path, "run").code == 1
    assert cli(tmp_path, "retry", "T-01").code == 0
    only = run(tmp_path, "--only", "T-01")
    assert only.code == 1
    held = ("skipped", "upstream T-01 failed")
    failed = ("failed", "exit code 1 at line 1 of the script: `test -f fixed` failed, and bash -e stops there")
    assert _states(tmp_path) == {"T-01": failed, "T-02": held, "T-03": held}
    # The run that did not run them counts them, and writes them into the plan's blocks, the same way.
    shown = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["counts"]
    assert only.finished()["counts"] == shown and shown["skipped"] == 2
    plan = (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8")
    assert "| T-02 | Agent-02 | ⏭️ Skipped |" in plan and "| T-03 | Agent-03 | ⏭️ Skipped |" in plan

    (tmp_path / "fixed").touch()  # T-01 completes in another `run --only`: what it held waits to run
    again = run(tmp_path, "--only", "T-01")
    assert again.code == 0
    assert _states(tmp_path) == {"T-01": ("completed", None), "T-02": ("pending", None), "T-03": ("waiting", None)}
    assert again.finished()["counts"] == json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["counts"]


@pytest.mark.parametrize(
    ("details", "line"),
    [
        pytest.param("\nRun:\n\n| T-09 | x | None | true |\n", 4, id="leading-blank-line"),
        pytest.param("\r\n\r\nRun:\r\n\r\n| T-09 | x | None | true |", 5, id="crlf-no-final-newline"),
        pytest.param("Intro\n```\n### T-02 step\n```\n\n| T-09 | x | None | true |\n", 6, id="the-heading-in-code"),
    ],
)
def test_a_problem_in_added_details_is_named_at_the_details_files_line(tmp_path: Path, details: str, line: int) -> None:
    """Lines counted as the parser counts them (a form feed or U+2028 in the plan is no line
    break), and the new task's heading found where its details follow it."""
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(
        "---\nbackend: shell\n---\n# P\n\n## Original Request\n> a\u2028b\x0cc\n\n## Task Decomposition\n"
        "| Task ID | Description | Dependencies | Command |\n|---|---|---|---|\n| T-01 | one | None | true |\n",
        encoding="utf-8",
    )
    (tmp_path / "d.md").write_bytes(details.encode())
    done = cli(tmp_path, "add", "Two", "--command", "true", "--details-file", "d.md")
    assert done.code == 2 and done.stderr.startswith(f"d.md:{line}: this row is under '## Task Details'"), done.stderr


def test_a_task_cancelled_mid_run_has_its_duration_and_a_colour_of_its_own(tmp_path: Path) -> None:
    """A task cancelled while it ran had no duration anywhere (status, report, final_output.md)
    and no colour in the graphs; now it has the time from its start to the cancel, and the
    mermaid and dot graphs colour it as cancelled. One cancelled before it started has none."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one"), Spec("T-02", "echo two", deps=["T-01"]),
                          Spec("T-03", "echo three", deps=["T-02"])])  # fmt: skip
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        assert cli(tmp_path, "cancel", "T-03").code == 0  # not started: no duration
        time.sleep(1.0)
        assert cli(tmp_path, "cancel", "T-01").code == 0
        code = runner.wait()
    finally:
        runner.cleanup()
    assert code == 1
    cancelled = {e["task"]: e for e in runner.events() if e["event"] == "task_cancelled"}
    assert cancelled["T-01"]["duration"] >= 1.0 and cancelled["T-03"]["duration"] is None
    line = describe({**cancelled["T-01"], "duration": 1.5})
    assert line is not None and line.startswith("⏹️ T-01 [Agent-01] cancelled after 1.5s: "), line
    tasks = {t["id"]: t for t in json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]}
    assert tasks["T-01"]["status"] == "cancelled" and tasks["T-01"]["duration"] >= 1.0
    assert tasks["T-01"]["started"] is not None and tasks["T-03"]["duration"] is None
    row = next(line for line in cli_in_process(tmp_path, "status").stdout.splitlines() if line.startswith("T-01"))
    assert re.search(r"Cancelled +[0-9.]+s ", row), row  # (a duration, not "-")
    report = json.loads(cli_in_process(tmp_path, "report", "--json").stdout)
    assert next(t for t in report["tasks"] if t["id"] == "T-01")["duration"] >= 1.0
    final = (workspace(tmp_path) / "final_output.md").read_text(encoding="utf-8")
    assert "T-01 " in final.split("## Timeline")[1].split("```")[1], final  # on the timeline, as it ran
    mermaid = cli_in_process(tmp_path, "graph", "--format", "mermaid").stdout
    assert "classDef cancelled " in mermaid and "class n0,n2 cancelled" in mermaid, mermaid
    assert "classDef cancelled " in (workspace(tmp_path) / "master_plan.md").read_text(encoding="utf-8")
    logs = cli_in_process(tmp_path, "logs", "T-02")  # skipped: it says so and why, not "not run yet"
    assert (
        logs.code == 2
        and "T-02 has no logs: it was skipped without starting (upstream T-01 was cancelled)" in logs.stderr
    )
    dot = cli_in_process(tmp_path, "graph", "--format", "dot").stdout
    assert '"T-01" [label="T-01: ' in dot and 'style="filled,dashed", fillcolor="#e2e3e5"' in dot, dot


@pytest.mark.slow
def test_cancel_waits_for_the_kill_grace_the_run_gives_not_the_plans_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cancel`` waited its answer wait (10 s; here 4) beyond the plan's kill_grace as the plan on
    disk said it: edited to 0 while the run gives the task 5 s (its SIGTERM ignored), the cancel
    gave up at 4 s, saying the run did not answer, though the run was doing it. It waits for the
    run's own now."""
    monkeypatch.setenv(timing.VARIABLE, timing_text(answer_wait=4))
    plan = write_plan(tmp_path, [Spec("T-01", f"trap '' TERM; {WAIT_FOR_GO}")], {"kill_grace": 5})
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        text = plan.read_text(encoding="utf-8")
        assert "kill_grace: 5" in text
        # Saved whole (an in-place save that the run's block write meets in its moment of
        # truncation is a plan without its table until the run's next write puts the save back:
        # a cancel reading it then was refused on a loaded CI machine)
        edited = plan.with_name("master_plan.md.edit")
        edited.write_text(text.replace("kill_grace: 5", "kill_grace: 0"), encoding="utf-8")
        os.replace(edited, plan)
        began = time.monotonic()
        cancelled = cli(tmp_path, "cancel", "T-01")
        assert cancelled.code == 0, cancelled.stderr
        assert time.monotonic() - began >= 4.5  # (the run needed its whole grace: SIGTERM was ignored)
        assert runner.wait() == 1
    finally:
        runner.cleanup()
    assert results(tmp_path)["T-01"]["status"] == "cancelled"


def test_every_task_added_as_a_run_ends_has_its_task_added(live: Path) -> None:
    """Adds racing a run's end, real processes all: a row written in the run's last moments (after
    it last looked at the plan, before its ``run_finished``) got no ``task_added`` from anyone (9 of
    160 under load). Each has exactly one now: the run's that took it, the run's own as it ended
    for a row it did not take, or the ``add``'s once that run was over."""
    total, before_the_end = 48, 12
    runner = start(live)
    ids: list[str] = []
    try:
        wait_until(lambda: has_started(live, "T-01"), "T-01 to start")

        def add(number: int) -> str:
            if number == before_the_end:
                (live / "go").touch()  # (the run ends among the adds that follow)
            done = cli(live, "add", "--json", f"added {number}", "--command", "true")
            assert done.code == 0, done.stderr
            return str(json.loads(done.stdout)["id"])

        with ThreadPoolExecutor(6) as pool:
            ids = list(pool.map(add, range(total)))
    finally:
        code = let_go(runner, live)
    assert code == 0, runner.stderr.read_text()
    added = [e for e in events_of(live) if e["event"] == "task_added"]
    assert sorted(str(e["task"]) for e in added) == sorted(ids), [(e["task"], e["run"]) for e in added]
    run_name = next(e["run"] for e in events_of(live) if e["event"] == "run_started")
    taken = {str(e["task"]) for e in added if e["run"] == run_name}
    assert taken and taken != set(ids), "some taken by the run, some left for the next"
    assert set(read_plan(workspace(live) / "master_plan.md").tasks) >= set(ids)
    assert cli(live, "verify").code == 0
