"""The runner's handling of attempts that end together: a batch of completions fills the freed
slots before the results are written, and must decide and record exactly as handling each
outcome in turn would. Real plans and workspaces, run in-process with executors that end
attempts when the test says."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import frontmatter
import pytest
from runner_helpers import Spec, write_plan

import orchestrator.backends as backends_module
import orchestrator.run.runner as runner_module
from orchestrator import Workspace
from orchestrator.backends.base import AgentResult, Job, Observer
from orchestrator.backends.shell import ShellBackend
from orchestrator.executors.base import Executor, Launch, LocalExecutor
from orchestrator.executors.process import EndCallback, LineCallback, ProcessRun, StartCallback
from orchestrator.output.reporter import Reporter
from orchestrator.run.runner import Runner


class Collect(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def starts(self) -> list[tuple[str, int]]:
        return [(e["task"], e["attempt"]) for e in self.events if e["event"] == "task_started"]


class Together(Executor):
    """Runs no process: the attempts of ``tasks`` end together, once all of them have started;
    every other attempt ends at once. ``code`` gives a task's exit status (default 0)."""

    def __init__(self, tasks: set[str], code: dict[str, int] | None = None) -> None:
        self.tasks = tasks
        self.code = code or {}
        self.waiting = 0
        self.gate: asyncio.Event | None = None

    async def run(
        self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
    ) -> ProcessRun:
        task = launch.env["ORCHESTRATOR_TASK_ID"]
        if task in self.tasks:
            self.gate = self.gate or asyncio.Event()
            self.waiting += 1
            if self.waiting == len(self.tasks):
                asyncio.get_running_loop().call_later(0.05, self.gate.set)
            await self.gate.wait()
        return ProcessRun(self.code.get(task, 0), None, 0.0)


def result_status(ws: Workspace) -> dict[str, tuple[str, object]]:
    found: dict[str, tuple[str, object]] = {}
    for path in sorted((ws.root / "results").glob("*-result.md")):
        meta = frontmatter.load(str(path)).metadata
        found[str(meta["task"])] = (str(meta["status"]), meta.get("reason"))
    return found


def test_a_retry_due_when_a_batch_ends_gets_the_slot_before_a_less_urgent_task(tmp_path: Path) -> None:
    """R fails and waits to retry; A takes the slot. When A ends the loop is busy past R's
    wait, so A's end and R's due retry are seen together: R (P0) must go before X (P3)."""

    class BusyAfterA(LocalExecutor):
        async def run(
            self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
        ) -> ProcessRun:
            run = await super().run(launch, on_line=on_line, on_start=on_start)
            if launch.env["ORCHESTRATOR_TASK_ID"] == "A":
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


def test_a_batch_that_reaches_the_cost_limit_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A and B end together and bring the cost to the limit exactly as adding them one by one
    does (0.01 + 0.01 + 0.06 reaches 0.08; 0.01 + (0.01 + 0.06) would not): Z must not start."""
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
    write_plan(tmp_path, specs, {"max_parallel": 2, "backend": Costly.name, "max_cost": 0.08})
    reporter = Collect()
    summary = Runner(Workspace.find(tmp_path), reporter=reporter, executor=Together({"A", "B"})).run()
    assert [task for task, _ in reporter.starts()] == ["P", "A", "B"]
    assert summary.stopped is not None and summary.stopped.startswith("cost limit reached")
    assert result_status(Workspace.find(tmp_path))["Z"][0] == "skipped"


@pytest.mark.parametrize("b_exit", [0, 3])
def test_outcomes_left_when_a_result_write_raises_are_still_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, b_exit: int
) -> None:
    """A and B end together; writing A's result raises (a full disk, say) and the run stops.
    B's outcome, not handled yet, is still recorded as what it was: completed, or failed."""
    write = Runner._write_result

    def full_disk_for_a(self: Runner, done: Any, attempt: Any, status: str, reason: str | None) -> dict[str, Any]:
        if done.task == "A":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, done, attempt, status, reason)

    monkeypatch.setattr(runner_module.Runner, "_write_result", full_disk_for_a)
    write_plan(tmp_path, [Spec("A", "true"), Spec("B", "true")], {"max_parallel": 2})
    ws = Workspace.find(tmp_path)
    with pytest.raises(BaseException) as raised:
        Runner(ws, reporter=Reporter(), executor=Together({"A", "B"}, {"B": b_exit})).run()
    assert raised.group_contains(OSError) if isinstance(raised.value, BaseExceptionGroup) else raised.type is OSError
    status, reason = result_status(ws)["B"]
    assert (status, reason) == (("completed", None) if b_exit == 0 else ("failed", "exit code 3"))


def test_event_times_never_go_backwards(tmp_path: Path) -> None:
    """The task_started events a batch holds back are stamped when they are reported, after the
    batch's task_completed events: the stream's times are in order."""
    write_plan(tmp_path, [Spec(f"T-{i}", "true") for i in range(1, 7)], {"max_parallel": 1})
    reporter = Collect()
    assert Runner(Workspace.find(tmp_path), reporter=reporter).run().exit_code == 0
    times = [e["time"] for e in reporter.events]
    assert times == sorted(times)


def test_the_event_stream_tells_each_slot_in_order_however_fast_tasks_end(tmp_path: Path) -> None:
    """Slots freed and filled from the callback that sees an exit, batches that end while
    others begin, inputs written ahead of their dependents: whatever the timing, every task's
    start comes before its completion, and the stream never shows more running than the cap."""
    specs = [Spec(f"T{i:02d}", "true", deps=[f"T{i - 2:02d}"] if i >= 2 and i % 3 else []) for i in range(60)]
    for round_ in range(3):
        project = tmp_path / f"run{round_}"
        write_plan(project, specs, {"max_parallel": 2})
        reporter = Collect()
        summary = Runner(Workspace.find(project), reporter=reporter).run()
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


def test_an_attempt_seen_to_end_while_a_batch_is_handled_gets_its_slot_filled_before_results_are_written(
    tmp_path: Path,
) -> None:
    """A ends and its batch begins: C takes A's slot. B is seen to end while the loop lets C take
    its first step, when no callback begins a batch (the loop is not waiting). B's slot is filled
    there and then, joining A's batch, before A's result is written, not a turn of the loop
    after that write. Every result is written all the same, and the starts are as ever."""

    class EndBWhenCStarts(Executor):
        """No process: B ends (``on_end``, as from the loop's callback) right after C starts, C
        when D starts, the others at once."""

        def __init__(self, results: Path) -> None:
            self.results = results
            self.b_on_end: EndCallback | None = None
            self.b_done: asyncio.Future[ProcessRun] | None = None
            self.c_done: asyncio.Future[ProcessRun] | None = None
            self.a_written_when_d_started: bool | None = None

        async def run(
            self, launch: Launch, *, on_line: LineCallback | None = None, on_start: StartCallback | None = None
        ) -> ProcessRun:
            raise AssertionError("the runner calls start")

        def start(
            self,
            launch: Launch,
            *,
            on_line: LineCallback | None = None,
            on_start: StartCallback | None = None,
            on_end: EndCallback | None = None,
        ) -> Coroutine[Any, Any, ProcessRun]:
            task = launch.env["ORCHESTRATOR_TASK_ID"]
            loop = asyncio.get_running_loop()
            if task == "B":
                self.b_on_end, self.b_done = on_end, loop.create_future()
                return self.wait_for(self.b_done)
            if task == "C":
                loop.call_soon(self.end_b)
                self.c_done = loop.create_future()
                return self.wait_for(self.c_done)
            if task == "D":
                written = {frontmatter.load(str(path))["task"] for path in self.results.glob("*-result.md")}
                self.a_written_when_d_started = "A" in written
                assert self.c_done is not None
                self.c_done.set_result(ProcessRun(0, None, 0.0))
            return self.at_once()

        async def wait_for(self, done: asyncio.Future[ProcessRun]) -> ProcessRun:
            return await done

        async def at_once(self) -> ProcessRun:
            return ProcessRun(0, None, 0.0)

        def end_b(self) -> None:
            run = ProcessRun(0, None, 0.0)
            assert self.b_on_end is not None and self.b_done is not None
            self.b_on_end(run)
            self.b_done.set_result(run)

    write_plan(tmp_path, [Spec(name, "true") for name in "ABCD"], {"max_parallel": 2})
    ws = Workspace.find(tmp_path)
    executor = EndBWhenCStarts(ws.results_dir)
    reporter = Collect()
    assert Runner(ws, reporter=reporter, executor=executor).run().exit_code == 0
    assert [task for task, _ in reporter.starts()] == ["A", "B", "C", "D"]
    assert executor.a_written_when_d_started is False
    # C ends while the batch that started it is handled (when D starts): it must not join that
    # batch, whose starts are reported when it ends, or its completion would come first.
    told = [(e["event"], e["task"]) for e in reporter.events if e["event"] in {"task_started", "task_completed"}]
    for task in "ABCD":
        assert told.index(("task_started", task)) < told.index(("task_completed", task)), told
    assert {task: status for task, (status, _) in result_status(ws).items()} == dict.fromkeys("ABCD", "completed")
