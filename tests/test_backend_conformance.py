"""The backend registry's conformance suite: every backend it lists, the same tests.

Each test is parametrized over the registry (``orchestrator.backends.names()``, or ``agents()``
for what only an agent CLI's backend owes), never over a list of names written here: a backend
registered tomorrow runs them all, and one that does not hold what the rest hold fails.

  * its own made-up answer (``Backend.simulated``, what the fake executor writes for it) reads
    back through its own ``interpret`` as a finished attempt with that text and session;
  * ``run --executor fake`` rehearses a plan of it: every task completed, simulated, no cost;
    a task that declares Output fields gets them made up, so a Condition downstream is decided;
  * what it owns of its vendor: an agent's backend names its CLI (program, install hint, tested
    versions) and gives the Access cell's ``read`` and ``edit`` presets, ``read`` being what its
    own ``read_only`` calls unable to change anything; a backend that starts no agent CLI gives
    neither (an Access cell there is refused);
  * every agent backend runs the outcome suite against its real CLI and a fake of its vendor's
    API (``tests/agentsuite.py``, one ``tests/test_agents_<name>.py`` each: those are slow, and
    run side by side); this file checks each one is there.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import frontmatter
import pytest
from agentclis import VENDORS
from agentsuite import AgentSuite
from runner_helpers import Spec, cli, write_plan

from orchestrator import backends
from orchestrator.backends.base import Job, Observer
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Task
from orchestrator.plan.table.access import access_settings

TESTS = Path(__file__).parent

# The settings a plan of each backend needs beyond its name (the command backend runs the plan's
# own command): what a person writing such a plan writes.
NEEDS: dict[str, dict[str, object]] = {"command": {"command": ["cat"]}}


def _interpreted(tmp_path: Path, name: str, printed: str) -> tuple[object, ...]:
    backend = backends.get(name)
    settings = Settings(backend=name, **NEEDS.get(name, {}))  # type: ignore[arg-type]
    job = Job(Task(id="T-01", name="x", description="y", agent="Agent-01"), settings, "y", "y", tmp_path, tmp_path, 1)
    stdout, stderr = tmp_path / "out", tmp_path / "err"
    stdout.write_text(printed, encoding="utf-8")
    stderr.write_text("", encoding="utf-8")
    observer = backend.observer(job)
    for line in printed.encode().splitlines(keepends=True):
        observer.feed(line)
    ended = ProcessRun(exit_code=0, signal=None, duration=0.1, stdout_bytes=len(printed.encode()))
    result = backend.interpret(job, ended, stdout, stderr, observer)
    return result.completed, result.text.strip(), result.session_id, observer


@pytest.mark.parametrize("name", backends.names())
def test_its_made_up_answer_reads_back_as_its_own(tmp_path: Path, name: str) -> None:
    text = "[simulated] T-01 attempt 1: no agent ran; this text is made up."
    printed = backends.get(name).simulated(text, "fake-T-01-1")
    completed, said, session, observer = _interpreted(tmp_path, name, printed)
    assert completed and said == text, (name, printed)
    if name in backends.agents():  # an agent's session, as its CLI says it: what a resume would continue
        assert session == "fake-T-01-1", (name, session)
    else:
        assert isinstance(observer, Observer)


@pytest.mark.parametrize("name", backends.names())
def test_a_fake_run_of_a_plan_of_it_completes_costs_nothing_and_makes_up_outputs(tmp_path: Path, name: str) -> None:
    """``run --executor fake`` rehearses any plan: each task's answer in its backend's own format,
    so its backend reads a finished attempt; no cost or tokens, since none were spent; the Output
    fields a task declares made up, so that the Condition of the task after it is decided."""
    settings = {"backend": name, **NEEDS.get(name, {})}
    write_plan(tmp_path, [Spec("A", "echo a"), Spec("B", "echo b", deps=["A"])], settings)
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    text = plan.read_text(encoding="utf-8")
    text = text.replace("| Priority |\n|", "| Priority | Output | Condition |\n|---|---|", 1)
    text = text.replace("| Run the A script | None | P2 |", "| Run the A script | None | P2 | count:int | - |")
    text = text.replace("| Run the B script | A | P2 |", "| Run the B script | A | P2 | - | A.count == 0 |")
    plan.write_text(text, encoding="utf-8")
    result = cli(tmp_path, "run", "--executor", "fake", "--json")
    assert result.code == 0, result.stdout + result.stderr
    found = sorted((tmp_path / ".orchestrator" / "results").glob("*-result.md"))
    assert len(found) == 2
    for path in found:
        post = frontmatter.load(str(path))
        assert post.metadata["status"] == "completed" and post.metadata["simulated"] is True, post.metadata
        assert "cost_usd" not in post.metadata and "tokens" not in post.metadata
        assert "no agent ran" in post.content
    assert result.events[-1]["cost_usd"] is None
    assert [e["task"] for e in result.events if e["event"] == "task_completed"] == ["A", "B"]  # (B's condition held)


@pytest.mark.parametrize("name", backends.names())
def test_what_it_owns_of_its_vendor(name: str) -> None:
    backend = backends.get(name)
    cli_ = backend.cli()
    if name not in backends.agents():
        assert cli_ is None and not backend.access, name  # (an Access cell on it is refused: test_doctor)
        return
    assert cli_ is not None and cli_.program and cli_.install and cli_.tested, (name, cli_)
    assert set(backend.access) == {"read", "edit"}, backend.access
    read = Settings(backend=name, **access_settings(name, "read"))
    assert backend.read_only(read), name
    assert not backend.read_only(Settings(backend=name, **access_settings(name, "edit"))), name
    assert not backend.read_only(Settings(backend=name)), name


def test_the_help_and_the_refusals_list_the_registry(tmp_path: Path) -> None:
    """What `run --backend`'s help and an unknown backend's refusal name is the registry, whole."""
    helped = cli(tmp_path, "run", "--help").stdout
    assert backends.listing() in " ".join(helped.split()), helped
    write_plan(tmp_path, [Spec("A", "echo a")], {"backend": "nosuch"})
    refused = cli(tmp_path, "validate")
    assert refused.code == 2 and f"use one of: {', '.join(backends.names())}" in refused.stderr, refused.stderr


@pytest.mark.parametrize("name", backends.agents())
def test_every_agent_backend_runs_the_agent_suite(name: str) -> None:
    """Its real CLI against a fake of its vendor's API, in its own file (``tests/agentsuite.py``)."""
    assert name in VENDORS, f"tests/agentclis.py has no Vendor for {name}"
    module = importlib.import_module(f"test_agents_{name}")
    suites = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, AgentSuite) and getattr(value, "vendor", None) is VENDORS[name]
    ]
    assert suites, f"tests/test_agents_{name}.py runs no AgentSuite on {name}"
