"""What each command imports: the commands an agent calls in a loop (``status``, ``list``, ``add``,
``update``, ``validate``) and ``--version`` and ``--help`` load no library they do not use.

Each command runs in a fresh interpreter, as the console script runs it, and reports the modules
loaded when it is done: networkx (the graph, 50-70 ms to import), jinja2 (templates and
conditions, 25-40 ms), anyio and asyncio (running), rich (the live view), markdown-it (reading a
plan's Markdown) and the typed event records, each only where the command needs it (issue 52).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.version import __version__

HEAVY = (
    "networkx",
    "jinja2",
    "anyio",
    "asyncio",
    "rich",
    "markdown_it",
    "statistics",
    "starlette",
    "uvicorn",
    "mcp",
    "dask",
    "distributed",
    "orchestrator.plan.parser",  # (every other module of the plan's reading comes with it)
    "orchestrator.state.events.tasks",  # the typed records: built when one is written
    "orchestrator.state.events.runs",
)

# What each command may import of HEAVY; everything else in HEAVY is a defect.
READS_THE_PLAN = {"markdown_it", "orchestrator.plan.parser"}
ALLOWED: dict[str, set[str]] = {
    "--version": set(),
    "--help": set(),
    "status": READS_THE_PLAN,
    "status --json": READS_THE_PLAN,
    "list": READS_THE_PLAN,
    "list --json": READS_THE_PLAN,
    "validate": READS_THE_PLAN,
    "add": READS_THE_PLAN | {"orchestrator.state.events.tasks"},  # (it tells the log: task_added)
    "update": READS_THE_PLAN,
    "render": READS_THE_PLAN | {"jinja2"},  # (the briefs are jinja templates)
    "graph": READS_THE_PLAN | {"networkx"},  # (the plan's graph: its layers)
}

PLAN = """---
backend: shell
---
# Three tasks

## Task Decomposition
| Task ID | Description | Dependencies | Command |
|---|---|---|---|
| T-01 | One | None | true |
| T-02 | Two | T-01 | true |
| T-03 | Three | T-01, T-02 | true |
"""

SCRIPT = """
import contextlib, io, json, sys
from orchestrator.cli.main import main
said = io.StringIO()
try:
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = main(sys.argv[1:])
except SystemExit as exc:  # (argparse's --help)
    code = exc.code
print(json.dumps({"code": code, "said": said.getvalue()[-2000:], "modules": sorted(sys.modules)}))
"""


def loaded(project: Path, words: list[str]) -> tuple[set[str], dict[str, Any]]:
    """The modules of HEAVY a fresh interpreter holds once ``orchestrator WORDS`` is done."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *words], cwd=project, capture_output=True, text=True, timeout=120, check=True
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return {name for name in HEAVY if name in report["modules"]}, report


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imports")
    (root / ".orchestrator").mkdir()
    (root / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    return root


@pytest.mark.parametrize("command", list(ALLOWED))
def test_a_command_imports_only_what_it_needs(project: Path, command: str) -> None:
    words = command.split()
    if words[0] == "add":
        words += ["four", "--after", "T-03", "--command", "true"]
    elif words[0] == "update":
        words += ["T-02", "--priority", "high"]
    found, report = loaded(project, words)
    assert report["code"] == 0, report["said"]
    assert found - ALLOWED[command] == set(), f"orchestrator {command} imported {sorted(found - ALLOWED[command])}"


def test_a_plan_read_once_status_and_list_print_it_importing_none_of_what_read_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Once ``status`` kept what it derived (``state/snapshot.shown``, issue 66), ``status`` and
    ``list`` print from it: nothing of HEAVY (no parser, no markdown-it, no jinja), and none of
    the plan layer's classes or the readers of the state files."""
    root = tmp_path_factory.mktemp("read-once")
    (root / ".orchestrator" / "state").mkdir(parents=True)
    (root / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    time.sleep(0.05)  # (a plan saved in the same tick of the filesystem's clock is not settled)
    found, report = loaded(root, ["status"])
    assert report["code"] == 0 and found <= READS_THE_PLAN, report["said"]
    for words in (["status"], ["status", "--json"], ["list"], ["list", "--json"], ["list", "--status", "pending"]):
        found, report = loaded(root, words)
        assert report["code"] == 0, report["said"]
        assert found == set(), (words, found)
        readers = {"orchestrator.plan.model", "orchestrator.state.status", "orchestrator.run.resume.freshness"}
        assert readers & set(report["modules"]) == set(), words


def test_the_version_and_the_help_import_no_plan_and_no_command(project: Path) -> None:
    """``--version`` and ``--help`` print from the CLI's own words (``version.py``, ``COMMANDS``):
    no module of the plan's or the state's, and no command's module."""
    for words in (["--version"], ["--help"]):
        _, report = loaded(project, words)
        ours = {m for m in report["modules"] if m.startswith("orchestrator.")}
        assert ours <= {
            "orchestrator.backends",  # (the registries, which the package's face imports: names, no module)
            "orchestrator.executors",
            "orchestrator.executors.capabilities",
            "orchestrator.executors.registry",
            "orchestrator.plan",
            "orchestrator.plan.config",
            "orchestrator.plan.config.kinds",
            "orchestrator.cli",
            "orchestrator.cli.commands",  # (the commands' table: the parser's words, no command's module)
            "orchestrator.cli.main",
            "orchestrator.errors",
            "orchestrator.lazy",
            "orchestrator.version",
            "orchestrator.vocabulary",
        }, (words, sorted(ours))
        if words == ["--version"]:
            assert report["said"] == f"orchestrator {__version__}\n"


def test_a_run_on_this_machine_loads_nothing_of_a_clusters_nor_the_panel_of_a_terminal(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``run`` pays its start-up in every run (and in every test that runs one): a run with the
    local executor and its output not on a terminal loads no module of the Dask executor's (the
    cluster's check imports them when it has a cluster to check) and not the live panel."""
    root = tmp_path_factory.mktemp("run-imports")
    (root / ".orchestrator").mkdir()
    (root / ".orchestrator" / "master_plan.md").write_text(PLAN, encoding="utf-8")
    _, report = loaded(root, ["run"])
    assert report["code"] == 0, report["said"]
    executors = ("dask", "daskscheduler", "daskworker", "remote", "luggage")
    cluster = {*(f"orchestrator.executors.{name}" for name in executors), "dask", "distributed"}
    assert cluster & set(report["modules"]) == set()
    assert "orchestrator.output.panel" not in report["modules"]
