"""A long-lived queue kept readable: ``orchestrator archive`` moves finished rows out of
master_plan.md into ``archive/<date>.md``, ``list --archived`` shows them, and a new row may
depend on an archived task, whose result reaches it as an upstream result.

Real bash scripts and the real CLI in a real workspace; the crash test kills the real command
with SIGKILL at each step where it puts a file in place.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, start, wait_until, write_plan
from test_scripting import bash

QUEUE_SCRIPT = r"""
set -euo pipefail
orchestrator init --backend shell > /dev/null
printf '\n## Notes\nMy own note, kept.\n' >> .orchestrator/master_plan.md
A=$(orchestrator add "Fetch the data" --tag data --command 'echo fetched-rows')
B=$(orchestrator add "Count them" --after "$A" --command 'echo counted')
orchestrator run > /dev/null
orchestrator archive --completed > archived.txt
echo "archived: $(tr '\n' ' ' < archived.txt)"
echo "left: $(orchestrator list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tasks"]))')"
orchestrator validate > /dev/null
C=$(orchestrator add "Use the data" --after "$A" --command 'cat "$ORCHESTRATOR_INPUTS_DIR"/*')
echo "new: $C"
orchestrator validate > /dev/null  # T-04 is known: archived, completed
orchestrator run > /dev/null
echo "archived list: $(orchestrator list --archived --tag data --json | python3 -c \
  'import json,sys; print(*[t["id"] + "@" + t["archived"] for t in json.load(sys.stdin)["tasks"]])')"
"""


def _plan(project: Path) -> Path:
    return project / ".orchestrator" / "master_plan.md"


def _archive_files(project: Path) -> list[Path]:
    return sorted((project / ".orchestrator" / "archive").glob("*.md"))


def test_a_queue_archives_what_completed_and_a_new_task_builds_on_an_archived_one(tmp_path: Path) -> None:
    done = bash(tmp_path, QUEUE_SCRIPT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "archived: T-01 T-02 T-03 T-04 T-05 "  # the ids alone on stdout, one a line
    assert lines[1] == "left: 0"
    assert lines[2] == "new: T-06"  # never an archived id again
    day = time.strftime("%Y-%m-%d")
    assert lines[3] == f"archived list: T-04@{day}"
    # The new task ran on the archived one's result, as on a completed upstream's.
    result = (tmp_path / ".orchestrator" / "results" / "agent-06-result.md").read_text(encoding="utf-8")
    assert "fetched-rows" in result and "status: completed" in result
    brief = (tmp_path / ".orchestrator" / "agent_tasks" / "agent-06.md").read_text(encoding="utf-8")
    assert ".orchestrator/results/agent-04-result.md" in brief
    # The plan: the archived rows and details gone, the person's lines kept; the result files kept.
    plan = _plan(tmp_path).read_text(encoding="utf-8")
    assert "| T-06 |" in plan and not re.search(r"^\| T-0[1-5] ", plan, re.MULTILINE)
    assert "### T-01" not in plan and "My own note, kept." in plan
    assert (tmp_path / ".orchestrator" / "results" / "agent-04-result.md").exists()
    (archive,) = _archive_files(tmp_path)
    assert archive.name == f"{day}.md"
    text = archive.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| T-04 "))
    assert "| Agent-04 | Fetch the data | completed |" in row and ".orchestrator/results/agent-04-result.md" in row
    assert "### T-01 Survey" in text  # its Task Details, kept whole
    assert "Archived twice" not in text and text.count("\n## T-04 ") == 1
    # status and graph leave archived tasks out; validate knows the id.
    status = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)
    assert [t["id"] for t in status["tasks"]] == ["T-06"]


def test_archive_by_id_refuses_what_has_not_done_its_work(tmp_path: Path) -> None:
    assert bash(tmp_path, "orchestrator init --backend shell > /dev/null").returncode == 0
    assert cli(tmp_path, "add", "breaks", "--id", "X-1", "--retries", "0", "--command", "exit 3").code == 0
    assert cli(tmp_path, "add", "after it", "--id", "X-2", "--after", "X-1", "--command", "true").code == 0
    assert cli(tmp_path, "add", "slow", "--id", "S-1", "--command", "sleep 30").code == 0
    pending = cli(tmp_path, "archive", "S-1")
    assert pending.code == 1 and pending.stdout == "" and pending.stderr.count("\n") == 1
    assert "S-1 has not run: there is nothing to archive" in pending.stderr
    runner = start(tmp_path, "--only", "S-1")
    try:
        wait_until(lambda: "running" in cli_in_process(tmp_path, "list", "--status", "running").stdout, "S-1 to run")
        running = cli(tmp_path, "archive", "S-1")
        assert running.code == 1 and "S-1 is running: archive it once it has finished" in running.stderr
        assert "| S-1 |" in _plan(tmp_path).read_text(encoding="utf-8") and not _archive_files(tmp_path)
    finally:
        runner.stop_all()
    cli(tmp_path, "run", "--only", "T-01,T-02,T-03,X-1", timeout=60)
    failed = cli(tmp_path, "archive", "X-1")
    assert failed.code == 1 and "X-1 is failed: it has not done its work" in failed.stderr
    assert "archive --force X-1" in failed.stderr and not _archive_files(tmp_path)
    # --force: X-2 depends on it, and would wait for good on a task put away failed.
    forced = cli(tmp_path, "archive", "--force", "X-1")
    assert forced.code == 2 and "X-2 depends on X-1, archived failed" in forced.stderr and not _archive_files(tmp_path)
    assert cli(tmp_path, "update", "X-2", "--depends-on", "T-03").code == 0
    forced = cli(tmp_path, "archive", "--force", "x-1")
    assert (forced.code, forced.stdout) == (0, "X-1\n"), forced.stderr
    again = cli(tmp_path, "archive", "X-1")
    assert again.code == 2 and "X-1 is archived already" in again.stderr
    on_failed = cli(tmp_path, "add", "needs X-1", "--after", "X-1", "--command", "true")
    assert on_failed.code == 2 and "archived failed" in on_failed.stderr
    listed = json.loads(cli_in_process(tmp_path, "list", "--archived", "--json", "--status", "failed").stdout)["tasks"]
    assert [(t["id"], t["status"]) for t in listed] == [("X-1", "failed")]


def test_archive_of_a_blocked_task_says_how_to_release_it(tmp_path: Path) -> None:
    """``retry`` answers a blocked task "in the queue already": archive advises the release."""
    write_plan(tmp_path, [Spec("T-01", "true"), Spec("T-02", "true", ["T-01"])], {"backend": "shell"})
    assert cli(tmp_path, "update", "T-02", "--status", "blocked", "--reason", "designs").code == 0
    refused = cli(tmp_path, "archive", "T-02")
    assert refused.code == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "T-02 is blocked" in refused.stderr and "`orchestrator update T-02 --status pending`" in refused.stderr
    assert "retry" not in refused.stderr and not _archive_files(tmp_path)
    assert cli(tmp_path, "update", "T-02", "--status", "pending").code == 0  # what it advised: it runs then
    assert cli(tmp_path, "run").code == 0


def test_dry_run_and_json_write_nothing_and_say_what_would_go(tmp_path: Path) -> None:
    assert (
        bash(tmp_path, "orchestrator init --backend shell > /dev/null && orchestrator run > /dev/null").returncode == 0
    )
    before = _plan(tmp_path).read_bytes()
    dry = cli(tmp_path, "archive", "--completed", "--dry-run", "--json")
    answer = json.loads(dry.stdout)
    assert answer["archived"] == ["T-01", "T-02", "T-03"] and answer["dry_run"] is True
    assert answer["file"] == f".orchestrator/archive/{time.strftime('%Y-%m-%d')}.md"
    assert _plan(tmp_path).read_bytes() == before and not (tmp_path / ".orchestrator" / "archive").exists()
    usage = cli(tmp_path, "archive")
    assert usage.code == 2 and "say what to archive" in usage.stderr
    both = cli(tmp_path, "archive", "--completed", "T-01")
    assert both.code == 2 and "give it or ids (T-01), not both" in both.stderr
    unknown = cli(tmp_path, "archive", "T-09")
    assert unknown.code == 2 and "no task T-09 in the plan" in unknown.stderr


# The real command, killed (SIGKILL) when it is about to put its Nth file in place: the archive
# file (a rename), then the plan (an exchange).
KILLED_ARCHIVE = """
import os, signal, sys
from orchestrator.state import store
from orchestrator.cli.main import main

kill_at, calls = int(sys.argv[1]), [0]

def counted(real):
    def call(*args, **kwargs):
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        calls[0] += 1
        return real(*args, **kwargs)
    return call

os.replace, store.exchange = counted(os.replace), counted(store.exchange)
sys.exit(main(["archive", "--completed"]))
"""


@pytest.mark.parametrize("kill_at", [0, 1, 2])
def test_archive_killed_at_any_step_loses_nothing_and_a_rerun_finishes(kill_at: int, tmp_path: Path) -> None:
    assert (
        bash(tmp_path, "orchestrator init --backend shell > /dev/null && orchestrator run > /dev/null").returncode == 0
    )
    ids = {"T-01", "T-02", "T-03"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_ARCHIVE, str(kill_at)], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert killed.returncode == (-signal.SIGKILL if kill_at < 2 else 0), killed.stderr
    in_plan = {t["id"] for t in json.loads(cli_in_process(tmp_path, "list", "--json").stdout)["tasks"]}
    archived = {t["id"] for t in json.loads(cli_in_process(tmp_path, "list", "--archived", "--json").stdout)["tasks"]}
    assert in_plan | archived == ids  # each task in the plan, the archive or both: none lost
    validated = cli_in_process(tmp_path, "validate")
    assert validated.code == 0 and cli_in_process(tmp_path, "status").code == 0
    both = sorted(in_plan & archived)  # (killed between the archive file and the plan)
    assert both == (["T-01", "T-02", "T-03"] if kill_at == 1 else []), both
    for task_id in both:  # validate says so, and what finishes the job
        assert f"{task_id} is in the task table and archived in" in validated.stderr
        assert f"`orchestrator archive {task_id}` finishes an archive cut short" in validated.stderr
    finished = cli(tmp_path, "archive", "--completed")
    assert finished.code == 0, finished.stderr
    assert set(finished.stdout.split()) == in_plan  # a rerun finishes the job
    assert not re.search(r"^\| T-0\d ", _plan(tmp_path).read_text(encoding="utf-8"), re.MULTILINE)
    (archive,) = _archive_files(tmp_path)
    text = archive.read_text(encoding="utf-8")
    assert all(text.count(f"\n| {task_id} | Agent-") == 1 for task_id in ids)  # each archived once
    assert len(list((tmp_path / ".orchestrator" / "results").glob("agent-0*-result.md"))) == 3


# The real command, with a person saving the plan after `archive` read it and before it writes it.
EDITED_MEANWHILE = """
import sys
from pathlib import Path
from orchestrator.state.kept import archive
from orchestrator.cli.main import main

real = archive.add

def add(workspace, *args, **kwargs):
    plan = Path(".orchestrator/master_plan.md")
    text = plan.read_text(encoding="utf-8").replace("| T-03 | Report |", "| T-03 | Report, edited |")
    plan.write_text(text + "\\n## Notes\\nSaved meanwhile.\\n", encoding="utf-8")
    return real(workspace, *args, **kwargs)

archive.add = add
sys.exit(main(["archive", "T-01", "T-02"]))
"""


def test_a_save_made_while_archive_works_is_kept(tmp_path: Path) -> None:
    assert (
        bash(tmp_path, "orchestrator init --backend shell > /dev/null && orchestrator run > /dev/null").returncode == 0
    )
    done = subprocess.run([sys.executable, "-c", EDITED_MEANWHILE], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "T-01\nT-02\n", done.stderr
    plan = _plan(tmp_path).read_text(encoding="utf-8")
    assert "Saved meanwhile." in plan and "| T-03 | Report, edited |" in plan  # the person's save, whole
    assert "| T-01 | Survey |" not in plan and "| T-02 | Assess |" not in plan  # and the rows archived from it
    listed = json.loads(cli_in_process(tmp_path, "list", "--json").stdout)["tasks"]
    assert [(t["id"], t["name"]) for t in listed] == [("T-03", "Report, edited")]


def test_archiving_an_upstream_task_leaves_its_dependents_up_to_date(tmp_path: Path) -> None:
    """The dependent's brief, inputs and fingerprint are what they were: archiving is no change
    to its work, and the next run does nothing again (a task added after it, neither)."""
    assert (
        bash(tmp_path, "orchestrator init --backend shell > /dev/null && orchestrator run > /dev/null").returncode == 0
    )
    brief = tmp_path / ".orchestrator" / "agent_tasks" / "agent-03.md"
    before = brief.read_text(encoding="utf-8")
    assert cli(tmp_path, "archive", "T-01", "T-02").code == 0
    (task,) = json.loads(cli_in_process(tmp_path, "status", "--json").stdout)["tasks"]
    assert (task["id"], task["status"], task["up_to_date"]) == ("T-03", "completed", True), task
    assert cli(tmp_path, "render").code == 0 and brief.read_text(encoding="utf-8") == before
    assert json.loads(cli(tmp_path, "run", "--json").stdout.splitlines()[0])["to_run"] == 0
    assert cli(tmp_path, "add", "after both", "--after", "T-02,T-03", "--command", "true").code == 0
    assert json.loads(cli(tmp_path, "run", "--json").stdout.splitlines()[0])["to_run"] == 1
    again = json.loads(cli(tmp_path, "run", "--json").stdout.splitlines()[0])
    assert (again["to_run"], again["already_done"]) == (0, 2)


def test_archive_beside_a_run_takes_what_completed_and_the_run_goes_on(tmp_path: Path) -> None:
    from runner_helpers import Spec, write_plan

    go = tmp_path / "go"
    waits = f"until [ -e {go} ]; do sleep 0.05; done; echo two"
    write_plan(tmp_path, [Spec("T-01", "echo one"), Spec("T-02", waits, deps=("T-01",))])
    runner = start(tmp_path)
    try:
        wait_until(lambda: "T-02" in cli_in_process(tmp_path, "list", "--status", "running").stdout, "T-02 to run")
        done = cli(tmp_path, "archive", "--completed")
        assert (done.code, done.stdout) == (0, "T-01\n"), done.stderr  # T-02 runs: not taken
        go.touch()
        assert runner.wait() == 0
    finally:
        go.touch()
        runner.stop_all()
    assert [t["id"] for t in json.loads(cli_in_process(tmp_path, "list", "--archived", "--json").stdout)["tasks"]] == [
        "T-01"
    ]
    (task,) = json.loads(cli_in_process(tmp_path, "list", "--json").stdout)["tasks"]
    assert (task["id"], task["status"], task["up_to_date"]) == ("T-02", "completed", True)
