"""The run loop, in-process, with the fake executor (no process runs) or a wrapped local one:
attempts that end together, a retry that falls due with them, the cost limit, an error while a
result is written, and the order of the event stream."""

from __future__ import annotations

import errno
import json
import re
import time
from pathlib import Path
from typing import Any

import anyio
import frontmatter
import pytest
from runner_helpers import Spec, cli, cli_in_process, kill_leftovers, pid_gone, read_pids, write_plan

import orchestrator.backends as backends_module
from orchestrator import Workspace
from orchestrator.backends.base import AgentResult, Job, Observer
from orchestrator.backends.shell import ShellBackend
from orchestrator.executors import FAKE_BANNER, FakeExecutor, Launch, ProcessRun, Reply
from orchestrator.executors import registry as executor_registry
from orchestrator.executors.base import LineCallback, StartCallback
from orchestrator.executors.local import LocalExecutor
from orchestrator.output.reporter import Reporter
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.blocks import Shown
from orchestrator.run.runner import Runner
from orchestrator.state.events.base import EventRecord
from orchestrator.state.status import TaskView
from orchestrator.state.taskstate import TaskState
from orchestrator.vocabulary import ErrorClass, TaskStatus


class Collect(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, event: EventRecord) -> None:
        self.events.append(event.as_json())

    def starts(self) -> list[tuple[str, int]]:
        return [(e["task"], e["attempt"]) for e in self.events if e["event"] == "task_started"]


class Together(FakeExecutor):
    """The attempts of ``tasks`` end together, once all of them have started; every other attempt
    ends at once. ``code`` gives a task's exit status (default 0)."""

    def __init__(self, tasks: set[str], code: dict[str, int] | None = None) -> None:
        super().__init__(lambda launch: Reply(stdout="ok\n", exit_code=(code or {}).get(launch.task, 0)))
        self.tasks = tasks
        self.waiting = 0
        self.gate: anyio.Event | None = None

    async def run(
        self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
    ) -> ProcessRun:
        if launch.task in self.tasks:
            self.gate = self.gate or anyio.Event()
            self.waiting += 1
            if self.waiting == len(self.tasks):
                self.gate.set()
            await self.gate.wait()
        return await super().run(launch, on_start=on_start, on_line=on_line)


def result_status(ws: Workspace) -> dict[str, tuple[str, object]]:
    found: dict[str, tuple[str, object]] = {}
    for path in sorted((ws.root / "results").glob("*-result.md")):
        meta = frontmatter.load(str(path)).metadata
        found[str(meta["task"])] = (str(meta["status"]), meta.get("reason"))
    return found


def test_a_retry_due_while_the_loop_is_busy_gets_the_slot_before_a_less_urgent_task(tmp_path: Path) -> None:
    """R fails and waits to retry; A takes the slot. When A ends the loop's thread has been busy
    past R's wait, so A's end and R's due retry are seen together: R (P0) goes before X (P3)."""

    class BusyAfterA(LocalExecutor):
        async def run(
            self, launch: Launch, *, on_start: StartCallback | None = None, on_line: LineCallback | None = None
        ) -> ProcessRun:
            run = await super().run(launch, on_start=on_start, on_line=on_line)
            if launch.task == "A":
                time.sleep(0.3)  # the loop's thread is busy: R's backoff (at most 0.1 s) runs out
            return run

    once = "if [ ! -e once-R ]; then touch once-R; exit 1; fi"
    specs = [
        Spec("R", once, priority="P0", retries=1),
        Spec("A", "true", priority="P1"),
        Spec("X", "true", priority="P3"),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 1, "backoff_base": 0.1, "backoff_cap": 0.1})
    reporter = Collect()
    summary = Runner(Workspace.find(tmp_path), reporter=reporter, executor=BusyAfterA()).run()
    assert summary.exit_code == 0
    assert reporter.starts() == [("R", 1), ("A", 1), ("R", 2), ("X", 1)]


def test_a_resumed_session_counts_only_what_its_new_attempt_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claude's total_cost_usd is the whole session's: after a usage-limit pause the task resumes
    its session, and the new attempt reports $0.03 of which $0.01 was counted already."""
    resumed: list[str | None] = []

    class Session(ShellBackend):
        name = "session-cost-test"
        resumable = True

        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            resumed.append(job.resume_session)
            if job.attempt == 1:
                return AgentResult(False, error_class=ErrorClass.USAGE_LIMIT, message="limit reached",
                                   reset_at=time.time() + 0.3, session_id="s-1", cost_usd=0.01)  # fmt: skip
            return AgentResult(True, text="done", exit_code=0, session_id="s-1", cost_usd=0.03)

    monkeypatch.setitem(backends_module._REGISTRY, Session.name, Session)
    write_plan(tmp_path, [Spec("A", "true")], {"backend": Session.name})
    ws = Workspace.find(tmp_path)
    summary = Runner(ws, reporter=Collect()).run()
    assert resumed == [None, "s-1"]
    assert summary.cost_usd == pytest.approx(0.03)  # what was really spent, not 0.04
    # The task's cost is what its attempts spent, added up: its result says the run's figure.
    assert frontmatter.load(str(ws.root / "results" / "agent-01-result.md")).metadata["cost_usd"] == 0.03


def test_the_cost_limit_message_gives_the_limit_unrounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Costly(ShellBackend):
        name = "costly-limit-test"

        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            return AgentResult(True, text="ok", exit_code=0, cost_usd=0.0222)

    monkeypatch.setitem(backends_module._REGISTRY, Costly.name, Costly)
    settings = {"max_parallel": 1, "backend": Costly.name, "max_cost": 0.015, "at_budget": "stop"}
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true")], settings)
    reporter = Collect()
    summary = Runner(Workspace.find(tmp_path), reporter=reporter).run()
    (reached,) = [e for e in reporter.events if e["event"] == "budget_reached"]
    assert reached["message"].startswith("the run has spent its budget: $0.0222 of $0.015:")  # not "of $0.01"
    assert summary.exit_code == 4  # (B waits for a higher budget)


def test_attempts_that_end_together_reach_the_cost_limit_as_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A and B end together and bring the cost to the limit exactly as adding them one by one
    does (0.01 + 0.01 + 0.06 reaches 0.08): Z must not start, and is skipped with the reason."""
    costs = {"P": 0.01, "A": 0.01, "B": 0.06, "Z": 0.0}

    class Costly(ShellBackend):
        name = "costly-test"

        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            return AgentResult(True, text="ok", exit_code=0, cost_usd=costs[job.task.id])

    monkeypatch.setitem(backends_module._REGISTRY, Costly.name, Costly)
    specs = [
        Spec("P", "true", priority="P0"),
        Spec("A", "true", deps=["P"]),
        Spec("B", "true", deps=["P"]),
        Spec("Z", "true", deps=["A"], priority="P3"),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": Costly.name, "max_cost": 0.08, "at_budget": "stop"})
    reporter = Collect()
    summary = Runner(Workspace.find(tmp_path), reporter=reporter, executor=Together({"A", "B"})).run()
    assert [task for task, _ in reporter.starts()] == ["P", "A", "B"]
    (reached,) = [e for e in reporter.events if e["event"] == "budget_reached"]
    assert reached["tasks"] == ["Z"] and reached["spent"] == pytest.approx(0.08) and reached["limit"] == 0.08
    assert summary.cost_usd == pytest.approx(0.08) and summary.exit_code == 4
    assert "Z" not in result_status(Workspace.find(tmp_path))  # (held for a higher budget: no result)


def test_the_cost_limit_stops_the_attempts_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A's cost reaches the limit while B (a shell and its child, in their own group) runs: B is
    stopped as a cancel stops it, its whole group gone; what it had spent by then is counted."""
    costs = {"A": 0.6, "B": 0.05}

    class Costly(ShellBackend):
        name = "costly-stop-test"

        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            return AgentResult(run.ok, text="ok", exit_code=run.exit_code, cost_usd=costs[job.task.id])

    monkeypatch.setitem(backends_module._REGISTRY, Costly.name, Costly)
    specs = [
        Spec("A", "while [ ! -e child.pid ]; do sleep 0.05; done"),
        Spec("B", "echo $$ > long.pid; sleep 30 & echo $! > child.tmp; mv child.tmp child.pid; wait"),
        Spec("C", "true", deps=["B"]),
        Spec("D", "true", priority="P3"),
    ]
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": Costly.name, "max_cost": 0.5, "kill_grace": 1,
                                 "at_budget": "stop"})  # fmt: skip
    reporter = Collect()
    ws = Workspace.find(tmp_path)
    began = time.monotonic()
    try:
        summary = Runner(ws, reporter=reporter).run()
        took = time.monotonic() - began
        pids = [int((tmp_path / name).read_text()) for name in ("long.pid", "child.pid")]
        assert all(pid_gone(pid) for pid in pids), "B's group outlived the run that stopped it"
    finally:
        kill_leftovers(tmp_path, read_pids(tmp_path).values())
    assert took < 20, "the run waited for B to end by itself"
    assert summary.exit_code == 1  # (B cancelled for the budget; the run waited for a higher one, then ended)
    assert summary.stopped is None
    assert summary.cost_usd == pytest.approx(0.65)  # B's part counted
    why = "stopped: the run reached its cost limit of $0.50"
    found = result_status(ws)
    assert found == {
        "A": ("completed", None),
        "B": ("cancelled", why),
        "C": ("skipped", "upstream B was cancelled"),
    }  # (D held for a higher budget: no result, the next run's)
    assert frontmatter.load(str(ws.root / "results" / "agent-02-result.md")).metadata["cost_usd"] == 0.05
    cancelled = [e for e in reporter.events if e["event"] == "task_cancelled"]
    assert [(e["task"], e["reason"], e["attempt_cost_usd"]) for e in cancelled] == [("B", why, 0.05)]
    report = json.loads(
        cli_in_process(tmp_path, "report", "--format", "json").stdout
    )  # (the task's partial cost, the run's)
    assert [(t["status"], t["cost_usd"]) for t in report["tasks"] if t["id"] == "B"] == [("cancelled", 0.05)]
    assert report["cost_usd"] == pytest.approx(0.65)
    finished = reporter.events[-1]
    assert finished["event"] == "run_finished" and finished["cancelled"] == ["B"] and finished["exit_code"] == 1


@pytest.mark.parametrize("b_exit", [0, 3])
def test_an_outcome_left_when_a_result_write_raises_is_still_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, b_exit: int
) -> None:
    """A and B end together; writing A's result raises (a full disk, say) and the run stops
    with that error, as itself. B's outcome, not handled yet, is still recorded as what it was."""
    write = Recorder._write_attempt

    def full_disk_for_a(self: Recorder, outcome: Any, status: Any, reason: str | None, stderr: str = "") -> Any:
        if outcome.attempt.task.id == "A":
            raise OSError(errno.ENOSPC, "No space left on device", "results/agent-01-result.md")
        return write(self, outcome, status, reason, stderr)

    monkeypatch.setattr(Recorder, "_write_attempt", full_disk_for_a)
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true")], {"max_parallel": 2})
    ws = Workspace.find(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        Runner(ws, reporter=Reporter(), executor=Together({"A", "B"}, {"B": b_exit})).run()
    status, reason = result_status(ws)["B"]
    assert (status, reason) == (("completed", None) if b_exit == 0 else ("failed", "exit code 3"))


def test_event_times_never_go_backwards(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec(f"T-{i}", "true") for i in range(1, 7)], {"max_parallel": 1})
    reporter = Collect()
    assert Runner(Workspace.find(tmp_path), reporter=reporter).run().exit_code == 0
    times = [e["time"] for e in reporter.events]
    assert times == sorted(times)


@pytest.mark.parametrize("executor", [LocalExecutor, FakeExecutor])
def test_the_event_stream_tells_each_slot_in_order_however_fast_tasks_end(tmp_path: Path, executor: type) -> None:
    """Every task's start comes before its completion, and the stream never shows more running
    than the cap, whatever the timing."""
    specs = [Spec(f"T{i:02d}", "true", deps=[f"T{i - 2:02d}"] if i >= 2 and i % 3 else []) for i in range(60)]
    for round_ in range(3):
        project = tmp_path / f"run{round_}"
        write_plan(project, specs, {"max_parallel": 2})
        reporter = Collect()
        summary = Runner(Workspace.find(project), reporter=reporter, executor=executor()).run()
        assert summary.exit_code == 0
        running: set[str] = set()
        for event in reporter.events:
            if event["event"] == "task_started":
                running.add(event["task"])
                assert len(running) <= 2, f"round {round_}: {sorted(running)} running at once"
            elif event["event"] == "task_completed":
                assert event["task"] in running, f"round {round_}: {event['task']} completed before it started"
                running.remove(event["task"])
        assert not running


def test_the_fake_executor_says_so_in_every_file_it_leads_to(tmp_path: Path) -> None:
    """No process runs; each log starts with the banner, each result says it is simulated in its
    frontmatter and body, and final_output.md says how many results are made up."""
    write_plan(tmp_path, [Spec("A", "touch ran-A"), Spec("B", "touch ran-B", deps=["A"])])
    ws = Workspace.find(tmp_path)
    executor = FakeExecutor({"B": Reply(stdout="pretend\n", stderr="noise\n")})
    summary = Runner(ws, reporter=Reporter(), executor=executor).run()
    assert summary.exit_code == 0
    assert not (tmp_path / "ran-A").exists() and not (tmp_path / "ran-B").exists()
    assert [(launch.task, launch.upstream) for launch in executor.launches] == [("A", ()), ("B", ("A",))]
    for log in (ws.root / "logs").glob("*.out"):
        assert log.read_text().startswith(FAKE_BANNER)
    for path in (ws.root / "results").glob("*-result.md"):
        post = frontmatter.load(str(path))
        assert post.metadata["simulated"] is True
        assert "Simulated: made by the fake executor" in post.content
    final = (ws.root / "final_output.md").read_text()
    assert "⚠️ Simulated | 2 tasks" in final
    assert re.search(r"\(Agent-02, (0s|<0\.01s|\d\.\d+s), simulated\)", final), final  # however long the loop took


def test_the_fake_executor_of_the_command_line_keeps_no_launches(tmp_path: Path) -> None:
    """`run --executor fake` (the executor ``registry.make`` makes) keeps no list of its launches,
    which no one reads: each holds its attempt's whole environment (25 MB for 10,000 tasks)."""
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true", deps=["A"])])
    executor = executor_registry.make("fake")
    summary = Runner(Workspace.find(tmp_path), reporter=Reporter(), executor=executor).run()
    assert summary.exit_code == 0
    assert isinstance(executor, FakeExecutor) and executor.launches == []
    assert FakeExecutor().record  # (one a program makes keeps them, for it to look at)


def test_the_fake_executor_replays_failures_and_retries(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("A", "true", retries=2), Spec("B", "true", deps=["A"])], {"backoff_base": 0.01})
    executor = FakeExecutor({"A": [Reply(exit_code=1), Reply(timed_out="timeout"), Reply(stdout="third time\n")]})
    reporter = Collect()
    summary = Runner(Workspace.find(tmp_path), reporter=reporter, executor=executor).run()
    assert summary.exit_code == 0
    assert reporter.starts() == [("A", 1), ("A", 2), ("A", 3), ("B", 1)]
    retries = [e["error_class"] for e in reporter.events if e["event"] == "task_retrying"]
    assert retries == ["exit", "timeout"]


def test_a_bug_in_handling_one_attempt_fails_that_task_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that raises while reading an attempt (a bug of ours) fails that task, with what
    went wrong; the others run, final_output.md is written, and the exit code is 1."""

    class Fragile(ShellBackend):
        name = "fragile-test"

        def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
            if job.task.id == "B":
                raise KeyError("no such field")
            return super().interpret(job, run, stdout, stderr, observer)

    monkeypatch.setitem(backends_module._REGISTRY, Fragile.name, Fragile)
    write_plan(tmp_path, [Spec("A", "echo a"), Spec("B", "echo b"), Spec("C", "echo c", deps=["B"])],
               {"backend": Fragile.name, "retries": 2})  # fmt: skip
    ws = Workspace.find(tmp_path)
    reporter = Collect()
    summary = Runner(ws, reporter=reporter, executor=FakeExecutor()).run()
    assert summary.exit_code == 1
    status = result_status(ws)
    assert status["A"][0] == "completed" and status["C"] == ("skipped", "upstream B failed")
    assert status["B"][0] == "failed" and "KeyError" in str(status["B"][1])
    assert reporter.starts().count(("B", 1)) == 1 and ("B", 2) not in reporter.starts()  # not retried
    assert (ws.root / "final_output.md").exists()


def test_odd_agent_events_are_read_leniently() -> None:
    from orchestrator.backends.claude import ClaudeObserver
    from orchestrator.backends.codex import CodexObserver

    claude = ClaudeObserver()
    for line in (b'{"type":"assistant","message":"x"}', b'{"type":"assistant","message":{"content":"x"}}'):
        claude.feed(line)
    codex = CodexObserver()
    for line in (b'{"type":"item.completed","item":"x"}', b'{"type":"turn.completed","usage":[1]}',
                 b'{"type":"turn.failed","error":"boom"}'):  # fmt: skip
        codex.feed(line)
    assert codex.errors == ["boom"] and codex.turns == 1


def test_a_result_template_that_fails_on_a_result_falls_back_to_the_packaged_one(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("A", "echo a")])
    ws = Workspace.find(tmp_path)
    ws.templates_dir.mkdir()
    (ws.templates_dir / "result.md.j2").write_text("{{ 1 // (output | length - 1) }}\n", encoding="utf-8")
    reporter = Collect()
    assert Runner(ws, reporter=reporter).run().exit_code == 0
    assert result_status(ws)["A"][0] == "completed"
    assert frontmatter.load(str(ws.root / "results" / "agent-01-result.md")).content.strip() == "a"
    notices = [e["message"] for e in reporter.events if e["event"] == "notice"]
    assert len(notices) == 1 and "templates/result.md.j2" in notices[0]


def test_status_block_and_final_output_templates_that_fail_mid_run_fall_back_and_the_run_ends(tmp_path: Path) -> None:
    """QA: templates that pass the check before the start but fail on what a run gives them (a
    row's missing attribute, the first of no problems) stopped the run: the task running was
    interrupted, no run_finished, no final_output.md, and "nothing was written". The run goes on
    with the packaged templates, and says so once each."""
    from runner_helpers import run

    write_plan(tmp_path, [Spec("T-01", "echo done")])
    templates = Workspace.find(tmp_path).templates_dir
    templates.mkdir()
    (templates / "assignment.md.j2").write_text("{% for r in rows %}{{ r.nosuch.x }}{% endfor %}\n", encoding="utf-8")
    (templates / "final_output.md.j2").write_text("# {{ (problems | first).id }}\n", encoding="utf-8")
    done = run(tmp_path)
    assert done.code == 0, done.stderr
    assert done.finished()["counts"]["completed"] == 1
    notices = [e["message"] for e in done.events if e["event"] == "notice"]
    for name in ("assignment.md.j2", "final_output.md.j2"):
        said = [n for n in notices if f"templates/{name}:1: template error" in n]
        assert len(said) == 1 and said[0].endswith(f"{name} is rendered from the packaged template"), notices
    workspace = Workspace.find(tmp_path).root
    assert "done" in (workspace / "final_output.md").read_text(encoding="utf-8")
    assert (
        "| T-01 |" in (workspace / "master_plan.md").read_text(encoding="utf-8").split("orchestrator:begin status")[1]
    )


def test_made_up_results_are_not_done_for_a_real_run(tmp_path: Path) -> None:
    """A fake run rehearses; the real run that follows does the work (a second fake run keeps
    the made-up results)."""

    write_plan(tmp_path, [Spec("A", "echo real-a"), Spec("B", "echo real-b", deps=["A"])])
    assert cli(tmp_path, "run", "--executor", "fake").code == 0
    again = cli(tmp_path, "run", "--executor", "fake", "--json")
    assert again.events[0]["to_run"] == 0 and again.events[0]["already_done"] == 2
    status = cli_in_process(tmp_path, "status").stdout
    assert status.count("(simulated)") == 2
    real = cli(tmp_path, "run", "--json")
    assert real.code == 0 and real.events[0]["to_run"] == 2
    ws = Workspace.find(tmp_path)
    assert frontmatter.load(str(ws.root / "results" / "agent-02-result.md")).content.strip() == "real-b"
    assert "(simulated)" not in cli_in_process(tmp_path, "status").stdout


def test_the_synthesis_of_a_fake_run_is_made_up_too(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("A", "echo a")], {"backend": "command", "command": ["/nonexistent/agent"]})
    ws = Workspace.find(tmp_path)
    executor = FakeExecutor()
    from orchestrator.run.prepare import RunOptions

    summary = Runner(ws, RunOptions(aggregate="agent"), Reporter(), executor).run()
    assert summary.exit_code == 0
    assert [launch.task for launch in executor.launches] == ["A", "aggregate"]
    final = (ws.root / "final_output.md").read_text()
    assert "## Synthesis\n[fake executor: no process ran" in final and "[simulated] aggregate" in final


def test_the_status_blocks_are_rewritten_only_when_what_they_show_changed() -> None:
    """A run of agents spends most seconds with nothing new to show: those seconds render and
    write nothing. A failed write is tried again at the next flush."""
    views = [TaskView("T-01", "Agent-01", "One", TaskState(TaskStatus.RUNNING), [], "normal")]
    shown = Shown()
    assert shown.changed(views)
    assert not shown.changed(views)
    views[0].move(TaskStatus.COMPLETED)
    assert shown.changed(views) and not shown.changed(views)
    # added mid-run
    views.append(TaskView("T-02", "Agent-02", "Two", TaskState(TaskStatus.PENDING), ["T-01"], "normal"))
    assert shown.changed(views)
    shown.forget()
    assert shown.changed(views)
