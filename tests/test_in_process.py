"""``cli_in_process`` answers as ``python -m orchestrator`` does: the same exit code, stdout and
stderr, for every command the tests run in-process, on a workspace with a completed, a failed and
a skipped task, and for the mistakes a user makes (a bad option, no workspace, a task not in the
plan). Each of these commands keeps its run as a real process here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import Spec, cli, cli_in_process, run, write_plan

COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["list"],
    ["list", "--json", "--status", "failed"],
    ["list", "--group-by", "status"],
    ["validate"],
    ["validate", "--json"],
    ["graph"],
    ["graph", "--format", "mermaid"],
    ["graph", "--json"],
    ["logs", "T-02"],
    ["logs", "T-04", "--json"],
    ["history"],
    ["history", "--json"],
    ["history", "--stats"],
    ["check"],
    ["check", "--json"],
    ["check", "--format", "markdown"],
    ["output", "T-04"],
    ["output", "T-02"],  # no completed result: exit 1
    ["report"],
    ["report", "--format", "json"],
    ["export"],
    ["export", "--format", "yaml"],
    ["context", "T-01"],
    ["templates"],
    ["worktrees", "--json"],
    ["completion", "bash"],
    ["checkpoint", "list"],
    ["--json", "status"],
    ["--version"],
    ["status", "--help"],
    ["status", "--bogus"],  # a usage error: the usage and one line, exit 2
    ["status", "--json", "--bogus"],
    ["logs", "T-99"],  # a task the plan has not
    ["output", "T-99", "--json"],
    ["frobnicate"],
    [],
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    made = tmp_path_factory.mktemp("project")
    write_plan(
        made,
        [
            Spec("T-01", "echo one"),
            Spec("T-02", "echo two; echo 'it broke' >&2; exit 3"),
            Spec("T-03", "echo three", deps=("T-02",)),
            Spec("T-04", "printf 'caf\\xc3\\xa9 \\xe2\\x9c\\x85\\r\\nsecond line\\rthird\\n'", deps=("T-01",)),
        ],
    )
    assert run(made).code == 1
    yield made


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args) or "(none)")
def test_a_command_in_process_answers_as_its_process_does(project: Path, args: list[str]) -> None:
    as_process = cli(project, *args)
    in_process = cli_in_process(project, *args)
    assert (in_process.code, in_process.stdout, in_process.stderr) == (
        as_process.code,
        as_process.stdout,
        as_process.stderr,
    )


def test_no_workspace_and_an_environment_given_are_as_for_the_process(tmp_path: Path) -> None:
    for args in (["status"], ["validate", "--json"], ["list"]):
        as_process = cli(tmp_path, *args)
        assert as_process.code == 2, as_process.stderr
        in_process = cli_in_process(tmp_path, *args)
        assert (in_process.code, in_process.stdout, in_process.stderr) == (
            as_process.code,
            as_process.stdout,
            as_process.stderr,
        )
    bad = {"ORCHESTRATOR_TIMING": "drain=soon"}
    as_process, in_process = cli(tmp_path, "status", env=bad), cli_in_process(tmp_path, "status", env=bad)
    assert as_process.code == 2 and as_process.stderr.count("\n") == 1, as_process.stderr
    assert (in_process.code, in_process.stdout, in_process.stderr) == (
        as_process.code,
        as_process.stdout,
        as_process.stderr,
    )
