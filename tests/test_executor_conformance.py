"""The executor registry's conformance suite: every executor it lists runs the same runner-loop tests.

A test says what each task's attempts do (``Attempt``: what it prints, how it ends) and what the
run must come to; each executor of ``executors.registry.KINDS`` is given that its own way
(``PLACES``): a bash script for those that run processes, here or on a Dask cluster's workers,
the replies of the fake for the one that simulates. Then the same ``Runner`` runs the plan, and the
same assertions hold for all: the order of a DAG, a failure skipping its dependents, a retry, a
timeout, each result the output of its last attempt, and a run's results marked simulated exactly
when its executor says it ``can`` only simulate. An executor registered without a line here fails
``test_every_executor_of_the_registry_has_a_place``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
import pytest
from dask_helpers import cluster, have_dask
from runner_helpers import Spec, git, write_plan

from orchestrator import Workspace
from orchestrator.executors import registry
from orchestrator.executors.base import Executor
from orchestrator.executors.capabilities import Setup
from orchestrator.executors.fake import FakeExecutor, Reply
from orchestrator.output.reporter import Reporter
from orchestrator.run.runner import Runner
from orchestrator.state.events.base import EventRecord


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt of a task does: prints ``out`` and exits ``code``, or outlives its timeout."""

    out: str = ""
    code: int = 0
    hangs: bool = False


Script = Mapping[str, Sequence[Attempt]]  # task -> its attempts, in order (the last one repeats)


def _bash(task: str, attempts: Sequence[Attempt]) -> str:
    """A script that does attempt N the N-th time it runs (counted in a file of the project)."""
    cases = []
    for number, attempt in enumerate(attempts, start=1):
        body = "sleep 60" if attempt.hangs else f"echo '{attempt.out}'; exit {attempt.code}"
        cases.append(f"{'*' if number == len(attempts) else number}) {body};;")
    return (
        f'n=$(( $(cat ".count-{task}" 2>/dev/null || echo 0) + 1 )); echo "$n" > ".count-{task}"\n'
        f'case "$n" in\n' + "\n".join(cases) + "\nesac\n"
    )


def _replies(script: Script) -> dict[str, list[Reply]]:
    return {
        task: [
            Reply(timed_out="timeout") if a.hangs else Reply(stdout=a.out + "\n", exit_code=a.code) for a in attempts
        ]
        for task, attempts in script.items()
    }


@dataclass(frozen=True)
class Place:
    """An executor of the registry, as the suite gives it a script."""

    name: str
    make: Callable[[Script, pytest.FixtureRequest], Executor]


def _processes(name: str) -> Callable[[Script, pytest.FixtureRequest], Executor]:
    def make(script: Script, request: pytest.FixtureRequest) -> Executor:
        scheduler = request.getfixturevalue("dask_scheduler") if registry.can(name).cluster else None
        return registry.make(name, Setup(scheduler=scheduler))

    return make


PLACES = {
    "local": Place("local", _processes("local")),
    "dask": Place("dask", _processes("dask")),
    "fake": Place("fake", lambda script, request: FakeExecutor(_replies(script))),
}


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Dask cluster on 127.0.0.1, for the executor that runs attempts on one."""
    if not have_dask():
        pytest.skip("the dask extra is not installed")
    with cluster(tmp_path_factory.mktemp("cluster"), resources="shell=4") as made:
        yield made.address


def _params() -> list[Any]:
    marks = {"dask": [pytest.mark.dask]}
    return [pytest.param(name, marks=marks.get(name, []), id=name) for name in registry.names()]


class Collect(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def event(self, event: EventRecord) -> None:
        self.events.append(event.as_json())

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


@dataclass
class Ran:
    exit_code: int
    events: Collect
    results: dict[str, tuple[dict[str, Any], str]]  # task -> its result's frontmatter and body
    simulated: bool  # what the executor said it can do


def _run(tmp_path: Path, name: str, request: pytest.FixtureRequest, specs: Sequence[Spec], script: Script,
         **settings: object) -> Ran:  # fmt: skip
    place = PLACES[name]
    scripted = [Spec(s.id, _bash(s.id, script[s.id]), deps=s.deps, retries=s.retries) for s in specs]
    write_plan(tmp_path, scripted, {"timeout": 60, **settings})
    executor = place.make(script, request)
    assert executor.name == name  # (the registry's name: what the journal and recovery read)
    events = Collect()
    summary = Runner(Workspace.find(tmp_path), reporter=events, executor=executor).run()
    results = {}
    for path in (tmp_path / ".orchestrator" / "results").glob("*-result.md"):
        post = frontmatter.load(str(path))
        results[str(post.metadata["task"])] = (post.metadata, post.content)
    return Ran(summary.exit_code, events, results, executor.can.simulated)


def test_every_executor_of_the_registry_has_a_place() -> None:
    assert set(PLACES) == set(registry.names())


@pytest.mark.parametrize("name", _params())
def test_a_dag_runs_in_dependency_order_each_result_its_output(
    tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    specs = [Spec("A", ""), Spec("B", "", deps=["A"]), Spec("C", "", deps=["A"]), Spec("D", "", deps=["B", "C"])]
    script = {task: [Attempt(f"I am {task}")] for task in "ABCD"}
    ran = _run(tmp_path, name, request, specs, script)
    assert ran.exit_code == 0, ran.events.events
    done: list[str] = []
    for event in ran.events.events:
        if event["event"] == "task_started":
            spec = next(s for s in specs if s.id == event["task"])
            assert set(spec.deps) <= set(done), (event["task"], done)
        elif event["event"] == "task_completed":
            done.append(event["task"])
    assert sorted(done) == list("ABCD")
    for task in "ABCD":
        meta, body = ran.results[task]
        assert meta["status"] == "completed" and f"I am {task}" in body, (task, meta, body)
        assert bool(meta.get("simulated")) is ran.simulated, meta
    assert ran.events.of("run_started")[0]["simulated"] is ran.simulated


@pytest.mark.parametrize("name", _params())
def test_a_failure_skips_what_depends_on_it_and_the_rest_goes_on(
    tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    specs = [Spec("A", ""), Spec("B", "", deps=["A"]), Spec("C", "")]
    script = {"A": [Attempt("broken", code=3)], "B": [Attempt("never")], "C": [Attempt("fine")]}
    ran = _run(tmp_path, name, request, specs, script)
    assert ran.exit_code == 1
    assert ran.results["A"][0]["status"] == "failed" and ran.results["A"][0]["error_class"] == "exit"
    assert ran.results["A"][0]["exit_code"] == 3
    assert ran.results["B"][0]["status"] == "skipped"
    assert ran.results["C"][0]["status"] == "completed" and "fine" in ran.results["C"][1]
    assert [e["task"] for e in ran.events.of("task_started")].count("B") == 0


@pytest.mark.parametrize("name", _params())
def test_a_failed_attempt_is_retried_and_the_last_one_counts(
    tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    specs = [Spec("A", "", retries=1), Spec("B", "", deps=["A"])]
    script = {"A": [Attempt("first", code=1), Attempt("second")], "B": [Attempt("after A")]}
    ran = _run(tmp_path, name, request, specs, script, backoff_base=0.01)
    assert ran.exit_code == 0, ran.events.events
    meta, body = ran.results["A"]
    assert meta["status"] == "completed" and meta["attempts"] == 2 and "second" in body, (meta, body)
    assert [e["error_class"] for e in ran.events.of("task_retrying")] == ["exit"]
    assert ran.results["B"][0]["status"] == "completed"


@pytest.mark.parametrize("name", _params())
def test_an_attempt_past_its_timeout_fails_as_a_timeout(
    tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    specs = [Spec("A", ""), Spec("B", "")]
    script = {"A": [Attempt(hangs=True)], "B": [Attempt("quick")]}
    ran = _run(tmp_path, name, request, specs, script, timeout=1, kill_grace=1)
    assert ran.exit_code == 1
    assert ran.results["A"][0]["status"] == "failed" and ran.results["A"][0]["error_class"] == "timeout"
    assert ran.results["B"][0]["status"] == "completed"


@pytest.mark.parametrize("name", _params())
def test_wrapped_in_worktrees_it_runs_the_same_and_each_task_commits_its_work(
    tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    """``isolation: worktree`` wraps the executor (``executors/worktree``): the same run, each task
    in a worktree of its own, its work on its branch after; one that only simulates makes none."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("a project\n", encoding="utf-8")
    (tmp_path / ".gitignore").write_text(".orchestrator/\n.count-*\n", encoding="utf-8")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "start")
    specs = [Spec("A", ""), Spec("B", "", deps=["A"])]
    script = {"A": [Attempt("I am A")], "B": [Attempt("I am B")]}
    ran = _run(tmp_path, name, request, specs, script, isolation="worktree")
    assert ran.exit_code == 0, ran.events.events
    for task in "AB":
        meta, body = ran.results[task]
        assert meta["status"] == "completed" and f"I am {task}" in body, (task, meta, body)
        assert bool(meta.get("simulated")) is ran.simulated, meta
    branches = git(tmp_path, "branch", "--list", "--format=%(refname:short)").split()
    if ran.simulated:  # a rehearsal touches no repository
        assert branches == ["main"], branches
    else:  # the tasks' branches and the integration branch, beside main
        assert len(branches) > 1, branches
