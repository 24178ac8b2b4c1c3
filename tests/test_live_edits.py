"""master_plan.md edited while a real run goes on: a row edited, renamed or made a cycle while its
task waits, a priority raised, a brief edited by hand, the plan deleted, renamed or saved halfway,
a save into the file the run's own write just took out, a result file a person writes while its
task runs. (`add`, `cancel` and `retry` from other processes are test_live_queue.py's.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from live_helpers import WAIT_FOR_GO, events_of, has_started, let_go
from runner_helpers import (
    Spec,
    cli_in_process,
    plan_text,
    results,
    start,
    wait_until,
    workspace,
    write_plan,
)

from orchestrator import timing
from orchestrator.output.reporter import describe


def _finished(project: Path, task: str) -> bool:
    return any(e["event"] == "task_completed" and e.get("task") == task for e in events_of(project))


def _written_all_it_had(plan: Path) -> None:
    """Wait until the run has not rewritten ``plan`` for two and a half of its flush periods (it
    writes its status blocks at most once a period, ``timing.flush``, when they would show
    something new)."""
    quiet = 2.5 * timing.current().flush
    last, since = os.stat(plan).st_ino, time.monotonic()
    deadline = since + 60
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the run kept rewriting the plan for a minute"
        time.sleep(0.05)
        if (now := os.stat(plan).st_ino) != last:
            last, since = now, time.monotonic()


def test_a_result_file_a_person_writes_while_its_task_runs_is_kept_when_the_task_ends(tmp_path: Path) -> None:
    """Nothing lost: the runner listed results/ when it started, and wrote each result over what a
    person had put there since, without a word."""
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO)])
    results_dir = workspace(tmp_path) / "results"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        notes = "# My notes on T-01\n\nwritten while it ran\n"
        (results_dir / "agent-01-result.md").write_text(notes, encoding="utf-8")
        (tmp_path / "go").touch()
        assert let_go(runner, tmp_path) == 0
    finally:
        (tmp_path / "go").touch()
        runner.cleanup()
    told = [e["message"] for e in events_of(tmp_path) if e["event"] == "notice"]
    said = ".orchestrator/results/agent-01-result.md could not be read as T-01's result: "
    assert said + "kept as agent-01-result.unreadable.md" in told, told
    assert (results_dir / "agent-01-result.unreadable.md").read_text(encoding="utf-8") == notes
    assert results(tmp_path)["T-01"]["status"] == "completed"


def test_a_row_renamed_while_its_task_waits_is_told_not_run_twice_in_silence(tmp_path: Path) -> None:
    """QA: renaming a waiting task's id mid-run (a person fixing a typo) took the new row into the
    run and kept the old task too: the work ran twice, without a word. The run still runs the old
    one (rows deleted wait for the next run, as documented), and now says so, with how to stop it."""
    write_plan(tmp_path, [Spec("T-01", WAIT_FOR_GO), Spec("T-03", "echo once >> count.txt", deps=["T-01"])])
    plan = workspace(tmp_path) / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        text = plan.read_text(encoding="utf-8").replace("| T-03 |", "| T-02 |").replace("### T-03", "### T-02")
        plan.write_text(text, encoding="utf-8")
        said = (
            "T-03 is no longer in .orchestrator/master_plan.md, and this run, which began with it, still runs it — "
            "`orchestrator cancel T-03` stops it"
        )
        wait_until(lambda: any(e.get("message") == said for e in events_of(tmp_path)), "the notice")
        (tmp_path / "go").touch()
        assert let_go(runner, tmp_path) == 0
    finally:
        (tmp_path / "go").touch()
        runner.cleanup()


def test_a_plan_deleted_or_renamed_mid_run_is_told_once_and_never_made_again(tmp_path: Path) -> None:
    """Nothing said so: the run went on in silence. Now it says so once each way, goes on with the
    tasks it has, and never writes a plan file of its own in the person's place."""
    wait_for_go = "while [ ! -f go ]; do sleep 0.05; done\necho done"
    write_plan(tmp_path, [Spec("T-01", wait_for_go), Spec("T-02", "echo two", deps=["T-01"])])
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    runner = start(tmp_path, name="gone")
    try:
        wait_until(lambda: any(e["event"] == "task_started" for e in runner.events()), "T-01 to start")
        plan.rename(tmp_path / "plan.bak")

        def said(present: bool) -> list[dict[str, Any]]:
            return [e for e in runner.events() if e["event"] == "plan_file" and e["present"] is present]

        wait_until(lambda: bool(said(False)), "the run to tell the plan is gone")
        time.sleep(1.0)  # several looks later, it was said once, and nothing was put in its place
        assert len(said(False)) == 1 and not plan.exists()
        told = said(False)[0]["message"]
        assert told.startswith(".orchestrator/master_plan.md was deleted or renamed: the run goes on")
        (tmp_path / "plan.bak").rename(plan)
        wait_until(lambda: bool(said(True)), "the run to tell the plan is back")
        plan.unlink()
        wait_until(lambda: len(said(False)) == 2, "the run to tell the plan is gone again")
        (tmp_path / "go").touch()
        assert runner.wait() == 0
    finally:
        runner.stop_all()
    finished = runner.events()[-1]
    assert finished["event"] == "run_finished" and finished["counts"]["completed"] == 2
    assert not plan.exists()  # deleted by its person: not made again, partial or whole
    kept = (tmp_path / ".orchestrator" / "state" / "events.jsonl").read_text(encoding="utf-8")
    assert kept.count('"event": "plan_file"') == 3  # in state/events.jsonl too


def test_a_row_edited_while_its_task_waits_is_what_runs(tmp_path: Path) -> None:
    """A person edits the rows of tasks the run has not started yet: T-02's title and script (its
    Task Details), T-03's dependencies (it no longer waits for T-01, so it starts at once), T-01's
    script while T-01 runs (not touched: the edit is for the next run). Each waiting task runs as
    its row now says, its brief rendered again, its result and status under its new title."""
    write_plan(
        tmp_path,
        [
            Spec("T-01", f"{WAIT_FOR_GO}; echo one"),
            Spec("T-02", "echo old > which.txt", deps=["T-01"]),
            Spec("T-03", "echo free > free.txt", deps=["T-01"]),
        ],
    )
    plan = workspace(tmp_path) / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        text = plan.read_text(encoding="utf-8")
        text = text.replace("| T-02 | Task T-02 |", "| T-02 | Renamed while waiting |")
        text = text.replace("echo old > which.txt", "echo new > which.txt")
        text = text.replace(
            "| T-03 | Task T-03 | Run the T-03 script | T-01 |", "| T-03 | Task T-03 | Run the T-03 script | None |"
        )
        text = text.replace(f"{WAIT_FOR_GO}; echo one", f"{WAIT_FOR_GO}; echo edited")
        plan.write_text(text, encoding="utf-8")
        wait_until(lambda: (tmp_path / "free.txt").exists(), "T-03, free of T-01 now, to run")
        assert not (tmp_path / "which.txt").exists()  # T-02 still waits for T-01
        brief = (workspace(tmp_path) / "agent_tasks" / "agent-02.md").read_text(encoding="utf-8")
        assert "echo new > which.txt" in brief and "Renamed while waiting" in brief
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    assert (tmp_path / "which.txt").read_text() == "new\n"
    found = results(tmp_path)
    assert found["T-02"]["name"] == "Renamed while waiting"
    assert "Renamed while waiting" in cli_in_process(tmp_path, "status").stdout
    assert "edited" not in (workspace(tmp_path) / "results" / "agent-01-result.md").read_text()  # ran as it began
    table = cli_in_process(tmp_path, "status").stdout
    lines = {line.split()[0]: line for line in table.splitlines() if line.startswith("T-0")}
    assert "out of date" in lines["T-01"]  # its edit is the next run's
    assert "will run again: upstream T-01 will run again" in lines["T-02"]  # (its own row: as it ran)
    assert "out of date" not in lines["T-03"]
    changes = [e for e in runner.events() if e["event"] == "task_changed"]
    assert [e["task"] for e in changes] == ["T-02", "T-03"]  # never T-01, which was running
    assert changes[0]["name"] == "Renamed while waiting" and changes[0]["was"] == "Task T-02"
    assert set(changes[0]["changed"]) == {"name", "details"} and changes[1]["changed"] == ["dependencies"]
    assert describe(changes[0]) == (
        "✏️ T-02 [Agent-02] takes its row as edited while it waited (name, details): Renamed while waiting"
    )
    assert cli_in_process(tmp_path, "status", "--json").code == 0
    assert json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"][0]["status"] != "running"


def test_a_save_written_into_the_file_the_runs_write_took_out_is_put_back_and_taken_at_once(tmp_path: Path) -> None:
    """An editor that saves in place opened the plan just before the run swapped its status
    blocks in, and writes its save into the file the swap took out. The run puts that save back in
    master_plan.md within about a second, though it has no news of its own to write then, and
    takes the edited row: T-03, freed of T-01 by the save, runs while T-01 still does. (The run
    used to put it back only at its next write, here when T-01 ended.)"""
    write_plan(
        tmp_path,
        [
            Spec("T-01", f"{WAIT_FOR_GO}; echo one"),
            Spec("T-02", "while [ ! -f go2 ]; do sleep 0.05; done"),
            Spec("T-03", "echo free > free.txt", deps=["T-01"]),
        ],
    )
    plan = workspace(tmp_path) / "master_plan.md"
    freed = "| T-03 | Task T-03 | Run the T-03 script | None |"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01") and has_started(tmp_path, "T-02"), "T-01 and T-02 to start")
        _written_all_it_had(plan)  # (so that the next write is the one for T-02's end)
        editor = os.open(plan, os.O_RDWR)
        try:
            opened = os.fstat(editor).st_ino
            (tmp_path / "go2").touch()  # T-02 ends: the run writes its blocks, swapping a new file in
            wait_until(lambda: os.stat(plan).st_ino != opened, "the run's write to swap out the file the editor has")
            time.sleep(0.2)  # (the write has returned: what the editor writes now is late)
            size = os.fstat(editor).st_size
            text = os.pread(editor, size, 0).decode("utf-8")
            edited = text.replace("| T-03 | Task T-03 | Run the T-03 script | T-01 |", freed)
            assert edited != text
            os.ftruncate(editor, 0)
            os.pwrite(editor, edited.encode("utf-8"), 0)
        finally:
            os.close(editor)
        wait_until(lambda: freed in plan.read_text(encoding="utf-8"), "the late save to be back in the plan")
        wait_until(lambda: (tmp_path / "free.txt").exists(), "T-03, freed of T-01 by the save, to run")
        assert not _finished(tmp_path, "T-01")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    text = plan.read_text(encoding="utf-8")
    assert freed in text and text.count("<!-- orchestrator:begin status") == 1
    notices = [str(e.get("message")) for e in runner.events() if e["event"] == "notice"]
    assert not [n for n in notices if "is not taken into this run" in n], notices


def test_a_row_edited_into_a_cycle_is_refused_in_one_line_and_runs_as_it_was(tmp_path: Path) -> None:
    write_plan(
        tmp_path,
        [
            Spec("T-01", f"{WAIT_FOR_GO}; echo one"),
            Spec("T-02", "echo two > two.txt", deps=["T-01"]),
            Spec("T-03", "echo three > three.txt", deps=["T-02"]),
        ],
    )
    plan = workspace(tmp_path) / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        text = plan.read_text(encoding="utf-8")
        row = "| T-02 | Task T-02 | Run the T-02 script | T-01"
        plan.write_text(text.replace(f"{row} |", f"{row}, T-03 |"), encoding="utf-8")
        wait_until(lambda: any(e["event"] == "notice" for e in runner.events()), "the notice")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    told = [e["message"] for e in runner.events() if e["event"] == "notice"]
    assert len(told) == 1 and "cycle" in told[0] and "not taken into this run" in told[0]
    assert not [e for e in runner.events() if e["event"] == "task_changed"]
    assert (tmp_path / "three.txt").read_text() == "three\n"


def test_a_plan_saved_halfway_for_a_moment_is_no_notice_and_its_whole_save_is_taken(tmp_path: Path) -> None:
    """An editor that saves by truncating the file and writing it shows the run a half-saved
    plan (no task table yet) for a moment: the run says nothing of it (it once told "is not
    taken into this run" for each), and takes the whole save, here a row added, when it comes."""
    write_plan(tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one")])
    plan = workspace(tmp_path) / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        for n in range(2, 10):  # (a look every 0.25 s: eight half-saved moments of 0.1 s are seen)
            specs = [Spec("T-01", f"{WAIT_FOR_GO}; echo one")] + (
                [Spec("T-09", "echo nine > nine.txt")] if n == 9 else []
            )
            whole = plan_text(specs).replace("## Task Decomposition", f"<!-- save {n} -->\n## Task Decomposition", 1)
            with plan.open("w", encoding="utf-8") as saving:
                saving.write(whole[: whole.index("## Task Decomposition")])
                saving.flush()
                time.sleep(0.1)
                saving.write(whole[whole.index("## Task Decomposition") :])
            time.sleep(0.1)
        wait_until(lambda: any(e["event"] == "task_added" for e in runner.events()), "T-09 to be taken")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    assert not [e["message"] for e in runner.events() if e["event"] == "notice"]
    assert (tmp_path / "nine.txt").read_text() == "nine\n"


def test_a_brief_edited_by_hand_stays_when_its_waiting_tasks_row_changes(tmp_path: Path) -> None:
    """T-02's brief edited by hand, then its row: the run takes the row (its title), keeps the
    brief as edited (what runs), and says in a notice that the row's change to it does not run."""
    write_plan(
        tmp_path, [Spec("T-01", f"{WAIT_FOR_GO}; echo one"), Spec("T-02", "echo old > which.txt", deps=["T-01"])]
    )
    plan, brief = workspace(tmp_path) / "master_plan.md", workspace(tmp_path) / "agent_tasks" / "agent-02.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        brief.write_text(brief.read_text(encoding="utf-8").replace("echo old", "echo by hand"), encoding="utf-8")
        text = plan.read_text(encoding="utf-8").replace("| T-02 | Task T-02 |", "| T-02 | Renamed |")
        plan.write_text(text.replace("echo old > which.txt", "echo new > which.txt"), encoding="utf-8")
        wait_until(lambda: any(e["event"] == "task_changed" for e in runner.events()), "the run to take the row")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    assert (tmp_path / "which.txt").read_text() == "by hand\n"
    assert "echo by hand > which.txt" in brief.read_text(encoding="utf-8")
    told = [e["message"] for e in runner.events() if e["event"] == "notice"]
    assert len(told) == 1 and told[0].startswith(".orchestrator/agent_tasks/agent-02.md: edited by hand"), told
    assert results(tmp_path)["T-02"]["name"] == "Renamed"


def test_a_priority_raised_while_a_task_waits_puts_it_first(tmp_path: Path) -> None:
    """One slot; T-02 and T-03 wait for T-01, T-02 first by table order, until T-03's row is
    given P0: then T-03 starts first."""
    specs = [Spec("T-01", WAIT_FOR_GO), Spec("T-02", "true", deps=["T-01"]), Spec("T-03", "true", deps=["T-01"])]
    write_plan(tmp_path, specs, {"max_parallel": 1})
    plan = workspace(tmp_path) / "master_plan.md"
    runner = start(tmp_path)
    try:
        wait_until(lambda: has_started(tmp_path, "T-01"), "T-01 to start")
        row = "| T-03 | Task T-03 | Run the T-03 script | T-01 |"
        plan.write_text(plan.read_text(encoding="utf-8").replace(f"{row} P2 |", f"{row} P0 |"), encoding="utf-8")
        wait_until(lambda: any(e["event"] == "task_changed" for e in runner.events()), "the run to take the row")
    finally:
        code = let_go(runner, tmp_path)
    assert code == 0, runner.stderr.read_text()
    (changed,) = [e for e in runner.events() if e["event"] == "task_changed"]
    assert changed["task"] == "T-03" and changed["changed"] == ["priority"]
    started = [e["task"] for e in runner.events() if e["event"] == "task_started"]
    assert started == ["T-01", "T-03", "T-02"]
