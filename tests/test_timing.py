"""The tool's waits are one record (``orchestrator/timing.py``): its defaults are the table in
cli-integration.md, ``$ORCHESTRATOR_TIMING`` changes them for a command and what it starts, a bad
value is one line and exit 2 with nothing written, and the wait an attempt makes is the one given.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from pathlib import Path

import anyio
import pytest
from runner_helpers import Spec, cli, kill_leftovers, read_pids, write_plan

from orchestrator import timing
from orchestrator.errors import UsageError
from orchestrator.executors import Launch, Limits, LocalExecutor, registry
from orchestrator.executors.capabilities import Cluster, Setup

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_of_waits_names_every_wait_in_order_with_its_default() -> None:
    text = (ROOT / "cli-integration.md").read_text(encoding="utf-8")
    section = text.split("### The tool's waits", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([0-9.]+) \|", section, flags=re.M)
    assert [name for name, _ in rows] == list(timing.NAMES)
    assert {name: float(value) for name, value in rows} == dataclasses.asdict(timing.Timing())
    assert "`ORCHESTRATOR_TIMING`" in text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]


def test_the_variable_changes_the_waits_it_names_and_no_other() -> None:
    changed = timing.Timing().replaced(" answer_wait = 2 ,drain=0.25,, ")
    assert (changed.answer_wait, changed.drain) == (2.0, 0.25)
    assert dataclasses.replace(changed, answer_wait=10.0, drain=2.0) == timing.Timing()
    assert timing.Timing().replaced("") == timing.Timing()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("drian=1", "ORCHESTRATOR_TIMING: no wait named 'drian' — did you mean drain?"),
        ("xyzzy=1", "ORCHESTRATOR_TIMING: no wait named 'xyzzy' — name one of: flush, tick, deadline_recheck,"),
        ("drain", "ORCHESTRATOR_TIMING: 'drain' gives no value — write drain=SECONDS, e.g. drain=0.5"),
        (
            "drain=soon",
            "ORCHESTRATOR_TIMING: drain is 'soon', not a number of seconds above 0 — write it as 0.5, 2 or 30",
        ),
        ("drain=0", "ORCHESTRATOR_TIMING: drain is '0', not a number of seconds above 0"),
        ("drain=-1", "ORCHESTRATOR_TIMING: drain is '-1', not a number"),
        ("drain=nan", "ORCHESTRATOR_TIMING: drain is 'nan', not a number"),
        ("drain=inf", "ORCHESTRATOR_TIMING: drain is 'inf', not a number"),
    ],
)
def test_a_bad_wait_is_one_line_naming_it(text: str, said: str) -> None:
    with pytest.raises(UsageError) as raised:
        timing.Timing().replaced(text)
    assert str(raised.value).startswith(said) and "\n" not in str(raised.value)


def test_a_command_given_a_bad_wait_says_so_in_one_line_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    write_plan(tmp_path, [Spec("T-01", "echo one > ran")])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for args in (["run"], ["status"], ["run", "--json"]):
        done = cli(tmp_path, *args, env={timing.VARIABLE: "answer_wait=2,drain=later"})
        assert done.code == 2, done.stdout + done.stderr
        assert (
            done.stderr
            == "ORCHESTRATOR_TIMING: drain is 'later', not a number of seconds above 0 — write it as 0.5, 2 or 30\n"
        )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert cli(tmp_path, "run", env={timing.VARIABLE: ""}).code == 0  # (empty: the tool's own waits)
    assert (tmp_path / "ran").read_text() == "one\n"


def _late_writer(directory: Path, drain: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """What an attempt's log holds of a process that left its group, holds its stdout and writes
    2 s after the attempt's leader exited, with the ``drain`` the environment gives. (Its
    environment bare: nothing ties it to the attempt, should it be handed to this process, a
    subreaper once a test here ran a runner in-process.)"""
    monkeypatch.setenv(timing.VARIABLE, drain)
    # (the leader waits until the writer has left its group: on a loaded machine the writer, not yet
    # past its setsid, was stopped with the group when the leader exited, and its line never came)
    script = (
        "setsid env -i bash -c 'echo $$ > left; sleep 2; echo late' & echo $! > setsid.pid; "
        "while [ ! -s left ]; do sleep 0.01; done; echo early"
    )
    launch = Launch(
        "T-01", 1, ("bash", "-c", script), directory, dict(os.environ), None, directory / "out", directory / "err",
        Limits(timeout=60, grace=1),
    )  # fmt: skip
    try:
        assert anyio.run(LocalExecutor().run, launch).ok
    finally:
        kill_leftovers(directory, read_pids(directory).values())
    return (directory / "out").read_text()


def test_the_drain_given_is_how_long_an_attempt_reads_what_left_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "short").mkdir()
    (tmp_path / "long").mkdir()
    assert _late_writer(tmp_path / "short", "drain=0.1", monkeypatch) == "early\n"
    # (the drain ends when the late writer closes the pipe, 2 s on: a long one costs nothing, and a
    # loaded machine, where starting that writer once took past a 5 s drain, still sees its line)
    assert _late_writer(tmp_path / "long", "drain=30", monkeypatch) == "early\nlate\n"


def _made(scheduler: str) -> Cluster:
    """The cluster of ``run --executor dask --scheduler SCHEDULER``, as the registry makes its executor."""
    cluster = registry.make("dask", Setup(scheduler=scheduler)).cluster
    assert cluster is not None
    return cluster


def test_the_dask_timeout_variable_still_sets_the_schedulers_wait_over_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(timing.VARIABLE, "dask_timeout=3")
    monkeypatch.delenv("ORCHESTRATOR_DASK_TIMEOUT", raising=False)
    assert _made("tcp://127.0.0.1:9").timeout == 3.0
    monkeypatch.setenv("ORCHESTRATOR_DASK_TIMEOUT", "7")
    assert _made("tcp://127.0.0.1:9").timeout == 7.0
    monkeypatch.setenv(timing.VARIABLE, "")
    monkeypatch.delenv("ORCHESTRATOR_DASK_TIMEOUT")
    assert _made("tcp://127.0.0.1:9").timeout == 10.0


def _fixed_waits(tree: ast.AST) -> list[int]:
    """Lines of ``tree`` that wait a number written there: ``sleep(0.5)``, ``monotonic() + 2``."""

    def number(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and node.value > 0

    def clock(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("monotonic", "time", "current_time")
        )

    found = []
    for node in ast.walk(tree):
        called = getattr(node.func, "attr", getattr(node.func, "id", None)) if isinstance(node, ast.Call) else None
        if isinstance(node, ast.Call) and called == "sleep" and node.args and number(node.args[0]):
            found.append(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            found += (
                [node.lineno]
                if (clock(node.left) and number(node.right)) or (clock(node.right) and number(node.left))
                else []
            )
    return found


def test_no_module_waits_a_number_of_its_own() -> None:
    """Every wait is the record's: a ``sleep`` of a written number, or a deadline a written number
    of seconds away, anywhere in the package is one the suite could not shorten nor a user change."""
    assert _fixed_waits(ast.parse("time.sleep(0.5)\nanyio.sleep(0)\nend = time.monotonic() + 2\n")) == [1, 3]
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "orchestrator").rglob("*.py"))
        if (lines := _fixed_waits(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert found == {}, found
