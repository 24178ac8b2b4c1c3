"""``orchestrator check``: the exit code in each state a workspace can be in, and its formats.

Real runs of shell plans; a dead runner is a real one killed with SIGKILL while its task runs.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import (
    Background,
    Spec,
    cli,
    cli_in_process,
    kill_leftovers,
    open_attempts,
    read_pids,
    run,
    start,
    wait_until,
    write_plan,
)

from orchestrator.state.health import check
from orchestrator.state.pause import Pause
from orchestrator.state.workspace import Workspace

_SLEEPER = 'mkdir -p pids; echo $$ > "pids/$ORCHESTRATOR_TASK_ID.pid"; echo started; sleep 60'


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    kill_leftovers(tmp_path, read_pids(tmp_path / "pids").values() if (tmp_path / "pids").is_dir() else [])


@pytest.fixture
def background() -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for runner in started:
        runner.cleanup()


def test_all_well_is_0_and_quiet_says_nothing(project: Path) -> None:
    write_plan(project, [Spec("T-01", "echo one"), Spec("T-02", "echo two", deps=["T-01"])])
    assert run(project).code == 0
    result = cli_in_process(project, "check")
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("✅ .orchestrator: all well") and "tasks: 2 completed" in result.stdout
    assert "last run finished" in result.stdout and "(exit 0)" in result.stdout
    quiet = cli_in_process(project, "check", "--quiet")
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")
    data = json.loads(cli_in_process(project, "check", "--json").stdout)
    assert data["ok"] is True and data["exit_code"] == 0
    (health,) = data["workspaces"]
    assert health["findings"] == [] and health["counts"] == {"completed": 2} and health["last_run"]["exit_code"] == 0


def test_a_failure_is_1_in_every_format(project: Path) -> None:
    write_plan(project, [Spec("T-01", "echo 'no <luck> & more' >&2; exit 4"), Spec("T-02", "true")])
    assert run(project).code == 1
    result = cli_in_process(project, "check")
    assert result.code == 1
    assert result.stdout.startswith("⚠️ .orchestrator: 1 thing needs attention")
    assert "❌ 1 task (T-01) failed (T-01: exit code 4" in result.stdout
    quiet = cli_in_process(project, "check", "-q")
    assert quiet.code == 1 and quiet.stdout == result.stdout  # quiet only when all is well
    markdown = cli_in_process(project, "check", "--format", "markdown").stdout
    assert markdown.startswith("## ⚠️ .orchestrator") and "\n- ❌ 1 task (T-01) failed" in markdown
    discord = cli_in_process(project, "check", "--format", "discord").stdout
    assert discord.startswith("**⚠️ .orchestrator") and len(discord) <= 2001
    slack = cli_in_process(project, "check", "--format", "slack").stdout
    assert slack.startswith("*⚠️ .orchestrator") and "\n• ❌ 1 task (T-01) failed" in slack
    data = json.loads(cli_in_process(project, "check", "--json").stdout)
    (finding,) = data["workspaces"][0]["findings"]
    assert finding["kind"] == "failed" and finding["tasks"] == ["T-01"]


def test_a_dead_runner_with_a_task_marked_running_is_1(project: Path, background: list[Background]) -> None:
    write_plan(project, [Spec("T-01", _SLEEPER)])
    runner = start(project)
    background.append(runner)
    wait_until(lambda: bool(open_attempts(project)), "T-01 to start")
    assert cli_in_process(project, "check").code == 0  # running, and within its limits
    runner.kill(signal.SIGKILL)
    result = cli_in_process(project, "check", "--json")
    assert result.code == 1
    (finding,) = json.loads(result.stdout)["workspaces"][0]["findings"]
    assert finding["kind"] == "dead_runner" and finding["tasks"] == ["T-01"]
    assert f"pid {runner.pid}" in finding["message"]


def test_a_runner_killed_while_a_task_waits_to_retry_is_a_dead_runner(
    project: Path, background: list[Background]
) -> None:
    """QA: killed in the backoff before a retry, with no attempt open, the runner left nothing
    check looked at: 'all well', exit 0, while the task's work was left undone by a dead runner."""
    write_plan(project, [Spec("T-01", "exit 1")], {"retries": 1, "backoff_base": 60})
    runner = start(project)
    background.append(runner)
    journal = project / ".orchestrator" / "state" / "attempts.jsonl"
    wait_until(lambda: journal.exists() and '"retry"' in journal.read_text(), "T-01 to wait for its retry")
    runner.kill(signal.SIGKILL)
    result = cli_in_process(project, "check", "--json")
    assert result.code == 1, result.stdout
    (finding,) = json.loads(result.stdout)["workspaces"][0]["findings"]
    assert finding["kind"] == "dead_runner" and finding["tasks"] == ["T-01"]
    assert "left 1 task (T-01) waiting to retry" in finding["message"], finding["message"]


def test_a_task_past_its_timeout_or_silent_past_its_limit_is_found(project: Path, background: list[Background]) -> None:
    # A live runner whose task has run (as check is told) an hour: past its 30 minutes of silence
    # first, then past its timeout. The runner's own watchdog would stop it; check finds a wedged one.
    write_plan(project, [Spec("T-01", _SLEEPER)], {"timeout": "1h", "inactivity_timeout": "30m"})
    runner = start(project)
    background.append(runner)
    wait_until(lambda: bool(open_attempts(project)), "T-01 to start")
    workspace = Workspace.find(project)
    now = time.time()
    assert check(workspace, now).ok
    silent = check(workspace, now + 2400)
    assert [(f.kind, f.tasks) for f in silent.findings] == [("silent", ("T-01",))]
    assert (
        "printed nothing for 40m" in silent.findings[0].message
        and "30m00s inactivity limit" in silent.findings[0].message
    )
    overdue = check(workspace, now + 4000)
    assert [(f.kind, f.tasks) for f in overdue.findings] == [("overdue", ("T-01",))]
    assert overdue.runner_alive and overdue.counts == {"running": 1}


def test_check_judges_a_run_by_the_limits_it_runs_with_not_the_plan_on_disk(
    project: Path, background: list[Background]
) -> None:
    """The plan edited while a run goes on (shorter limits, for the next run) made ``check`` call
    the run's task overdue by limits it does not run with. The run records its limits (and what
    its command line changed) in its ``run_started``; check judges its attempts by those."""
    plan = write_plan(project, [Spec("T-01", _SLEEPER)], {"timeout": "1h", "inactivity_timeout": "30m"})
    runner = start(project, "--max-parallel", "2")
    background.append(runner)
    wait_until(lambda: bool(open_attempts(project)), "T-01 to start")
    text = plan.read_text(encoding="utf-8")
    assert "timeout: 1h" in text and "inactivity_timeout: 30m" in text
    plan.write_text(
        text.replace("timeout: 1h", "timeout: 10m").replace("inactivity_timeout: 30m", "inactivity_timeout: 5m")
    )
    started = next(e for e in runner.events() if e["event"] == "run_started")
    assert started["overrides"] == {"max_parallel": 2}
    assert started["limits"] == {"timeout": 3600.0, "inactivity_timeout": 1800.0, "kill_grace": 1.0, "tasks": {}}
    workspace = Workspace.find(project)
    now = time.time()
    assert check(workspace, now + 900).ok  # 15 minutes: within the run's limits, past the plan's now
    silent = check(workspace, now + 2400)
    assert [(f.kind, f.tasks) for f in silent.findings] == [("silent", ("T-01",))]
    assert "30m00s inactivity limit" in silent.findings[0].message


def test_a_task_added_to_a_run_is_judged_by_the_limits_the_run_took_it_with(
    project: Path, background: list[Background]
) -> None:
    """A task ``add`` gives a run going on, whose profile sets a shorter timeout than the run's:
    the run says its limits in its ``task_added``, and check judges it by them (not by the run's
    own, nor by the profile as edited since)."""
    write_plan(project, [Spec("T-01", _SLEEPER)], {"timeout": "1h", "inactivity_timeout": "1h"})
    profile = project / ".orchestrator" / "agents" / "quick.md"
    profile.parent.mkdir()
    profile.write_text("---\nname: quick\ndescription: Quick\ntimeout: 10m\n---\nBe quick.\n", encoding="utf-8")
    runner = start(project)
    background.append(runner)
    wait_until(lambda: bool(open_attempts(project)), "T-01 to start")
    added = cli(project, "add", "quick one", "--assignee", "quick", "--command", _SLEEPER)
    assert added.code == 0, added.stderr
    wait_until(lambda: len(open_attempts(project)) == 2, "T-02 to start")
    (event,) = [e for e in runner.events() if e["event"] == "task_added"]
    assert event["limits"] == {"timeout": 600.0, "inactivity_timeout": 3600.0, "kill_grace": 1.0}
    profile.write_text(profile.read_text(encoding="utf-8").replace("10m", "2h"), encoding="utf-8")
    late = check(Workspace.find(project), time.time() + 900)
    assert [(f.kind, f.tasks) for f in late.findings] == [("overdue", ("T-02",))], late.findings
    assert "past its 10m00s timeout" in late.findings[0].message


def test_a_run_stopped_by_ctrl_c_leaves_work_that_needs_a_person(project: Path, background: list[Background]) -> None:
    """A nightly run SIGINTed or SIGTERMed half way said "all well" (exit 0): nothing failed, but
    nothing will finish the work unless someone runs it again."""
    write_plan(project, [Spec("T-01", _SLEEPER), Spec("T-02", "true", deps=["T-01"])])
    runner = start(project)
    background.append(runner)
    wait_until(lambda: bool(open_attempts(project)), "T-01 to start")
    runner.kill(signal.SIGINT)
    assert runner.wait() == 130
    result = cli_in_process(project, "check", "--json")
    assert result.code == 1, result.stdout
    (finding,) = json.loads(result.stdout)["workspaces"][0]["findings"]
    assert finding["kind"] == "interrupted" and finding["tasks"] == ["T-01"]
    assert "`orchestrator run` takes up where it stopped" in finding["message"]
    assert "⏹️ 1 task (T-01) left interrupted" in cli_in_process(project, "check").stdout
    write_plan(project, [Spec("T-01", "true"), Spec("T-02", "true", deps=["T-01"])])
    assert run(project).code == 0
    assert cli_in_process(project, "check").code == 0


def test_a_pause_is_1(project: Path) -> None:
    write_plan(project, [Spec("T-01", "true")])
    workspace = Workspace.find(project)
    workspace.state_dir.mkdir(parents=True)
    until, _ = Pause(workspace).start(time.time() + 3600, "claude", "usage limit reached")
    result = cli_in_process(project, "check", "--format", "markdown")
    assert result.code == 1
    assert f"- ⏸️ paused until {until}: usage limit reached" in result.stdout


def test_no_workspace_is_2_and_the_worst_code_of_several_wins(project: Path) -> None:
    missing = cli_in_process(project, "check", "nowhere")
    assert missing.code == 2 and "nowhere: no such workspace" in missing.stdout
    assert missing.stdout.splitlines()[-1].strip(), missing.stdout  # (QA: it ended in a line of two spaces)
    write_plan(project / "good", [Spec("T-01", "true")])
    write_plan(project / "bad", [Spec("T-01", "exit 1")])
    assert run(project / "good").code == 0 and run(project / "bad").code == 1
    both = cli_in_process(project, "check", "good", "bad")
    assert both.code == 1
    good, bad = both.stdout.split("\n\n")
    assert good.startswith("✅ good/.orchestrator") and bad.startswith("⚠️ bad/.orchestrator")
    assert cli_in_process(project, "check", "good", "bad", "nowhere", "--json").code == 2
    assert cli_in_process(project, "check", "--format", "pdf").code == 2


def test_check_counts_what_status_shows(project: Path) -> None:
    """A task skipped for an upstream that `retry` (no run going on) put back in the queue is
    waiting in `status`; `check` counted its result file, "2 skipped"."""
    write_plan(
        project, [Spec("T-01", "true"), Spec("T-02", "true", deps=["T-01"]), Spec("T-03", "true", deps=["T-02"])]
    )
    assert cli(project, "cancel", "T-01").code == 0
    assert run(project).code == 1  # T-02 and T-03 skipped: upstream T-01 was cancelled
    assert cli(project, "retry", "T-01").code == 0
    shown = json.loads(cli_in_process(project, "status", "--json").stdout)["counts"]
    (health,) = json.loads(cli_in_process(project, "check", "--json").stdout)["workspaces"]
    assert health["counts"] == {state: n for state, n in shown.items() if n} == {"pending": 1, "waiting": 2}
    assert "tasks: 1 pending, 2 waiting" in cli_in_process(project, "check").stdout
    # While the plan cannot be read, what the result files say is all there is to count.
    plan = project / ".orchestrator" / "master_plan.md"
    plan.write_text("---\nmax_parallel: [\n---\n", encoding="utf-8")
    (broken,) = json.loads(cli_in_process(project, "check", "--json").stdout)["workspaces"]
    assert broken["counts"] == {"skipped": 2} and broken["out_of_date"] == []


def test_a_task_whose_row_is_edited_while_it_waits_is_judged_by_its_new_limits(
    project: Path, background: list[Background]
) -> None:
    """A Timeout cell given to a waiting task's row while the run goes on: the task runs by it
    (``task_changed`` says its limits), and check judges it by them, not by the run's own."""
    go = "while [ ! -f go ]; do sleep 0.05; done; echo done"
    plan = write_plan(
        project,
        [Spec("T-01", go), Spec("T-02", _SLEEPER, deps=["T-01"])],
        {"timeout": "1h", "inactivity_timeout": "1h"},
    )
    runner = start(project)
    background.append(runner)
    wait_until(lambda: bool(open_attempts(project)), "T-01 to start")
    text = plan.read_text(encoding="utf-8")
    text = text.replace("| Priority |\n|", "| Priority | Timeout |\n|---|").replace(
        "| T-01 | P2 |", "| T-01 | P2 | 10m |"
    )
    text = text.replace("| None | P2 |", "| None | P2 | |")
    plan.write_text(text, encoding="utf-8")
    wait_until(lambda: any(e["event"] == "task_changed" for e in runner.events()), "the run to take T-02's row")
    (event,) = [e for e in runner.events() if e["event"] == "task_changed"]
    assert event["task"] == "T-02" and event["changed"] == ["timeout"]
    assert event["limits"] == {"timeout": 600.0, "inactivity_timeout": 3600.0, "kill_grace": 1.0}
    (project / "go").touch()
    wait_until(lambda: [a["task"] for a in open_attempts(project)] == ["T-02"], "T-02 to start")
    late = check(Workspace.find(project), time.time() + 900)
    assert [(f.kind, f.tasks) for f in late.findings] == [("overdue", ("T-02",))], late.findings
    assert "past its 10m00s timeout" in late.findings[0].message


def test_a_task_at_its_gate_needs_a_person_and_check_says_so(project: Path) -> None:
    """A run stopped at a gate (exit 4), by hand or by a schedule: ``check`` is not "all well"
    but says which task awaits approval and how to decide (exit 1); a scheduled run that stopped
    there is no failed one."""
    path = project / ".orchestrator" / "master_plan.md"
    path.parent.mkdir(parents=True)
    path.write_text(
        "---\nbackend: shell\nretries: 0\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies | Approval |\n|---|---|---|---|\n"
        "| T-01 | echo built | None | |\n| T-02 | echo deployed | T-01 | before |\n",
        encoding="utf-8",
    )
    assert cli(project, "run").code == 4
    said = cli_in_process(project, "check")
    assert said.code == 1, said.stdout
    assert "✋ T-02 awaits approval before it starts — `orchestrator approve T-02`" in said.stdout
    report = json.loads(cli_in_process(project, "check", "--json").stdout)["workspaces"][0]
    assert [(f["kind"], f["tasks"]) for f in report["findings"]] == [("awaiting_approval", ["T-02"])]
    # Fired by a schedule: the same, and no "failed scheduled run".
    ws = Workspace.find(project / ".orchestrator")
    (ws.state_dir / "schedule.json").write_text(json.dumps({"cron": "0 2 * * *", "added": time.time(), "skips": 0}))
    fired = cli(project, "schedule", "fire")
    assert fired.code == 4 and "a person is needed: T-02 awaits approval before it starts" in fired.stdout
    report = json.loads(cli_in_process(project, "check", "--json").stdout)["workspaces"][0]
    assert [f["kind"] for f in report["findings"]] == ["awaiting_approval"], report["findings"]
    assert cli(project, "approve", "T-02").code == 0
    assert cli_in_process(project, "check").code == 0  # (approved: the next run takes it; nobody is waited for)


def test_a_deadline_finding_is_one_bullet_in_every_format(project: Path) -> None:
    """`check --format discord` wrote "- •" before a finding with no mark of its own (a missed
    deadline): the format's bullet and the text format's stand-in, both. Each line has one bullet,
    the finding's mark after it; a finding of a kind with no mark has the bullet alone."""
    from orchestrator.output.digest import render
    from orchestrator.state.health import Finding, Health

    path = project / ".orchestrator" / "master_plan.md"
    write_plan(project, [Spec("T-01", "sleep 0.3")])
    path.write_text(path.read_text().replace("| Task ID |", "| Deadline | Task ID |", 1).replace("|---", "|---|---", 1)
                    .replace("| T-01 |", "| 0.1s | T-01 |", 1))  # fmt: skip
    assert run(project).code == 0
    for fmt, bullet in (("discord", "- "), ("markdown", "- "), ("slack", "• "), ("text", "  ")):
        shown = cli_in_process(project, "check", "--format", fmt)
        assert shown.code == 1, shown.stdout + shown.stderr
        [line] = [line for line in shown.stdout.splitlines() if "missed its deadline" in line]
        assert line.startswith(f"{bullet}⏰ T-01 missed its deadline "), (fmt, line)
        assert "•" not in line.removeprefix("• "), (fmt, line)
    health = Health("w", [Finding("some_new_kind", "a thing to look at")])
    assert render([("w", health, None)], "discord").splitlines()[1] == "- a thing to look at"
    assert render([("w", health, None)], "text").splitlines()[1] == "  • a thing to look at"
