"""The registries hold: nothing outside ``executors/`` names an executor, the layers below learn the
names from ``plan/config/kinds``, and a wrapper is the executor it wraps."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator
from orchestrator import backends
from orchestrator.executors import registry as executors
from orchestrator.executors.capabilities import Capabilities
from orchestrator.executors.fake import FakeExecutor
from orchestrator.executors.local import LocalExecutor
from orchestrator.executors.worktree import WorktreeExecutor
from orchestrator.git.worktrees import Trees
from orchestrator.plan.config import kinds

PACKAGE = Path(orchestrator.__file__).parent


def _literals(node: ast.AST) -> list[str]:
    """The string constants ``node`` is, or holds as a tuple, list or set literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def named_outside(root: Path, names: set[str], home: str) -> list[str]:
    """Where a module of ``root`` outside ``home/`` compares a value with one of ``names``
    (``== "dask"``, ``in ("local", "dask")``) or lists two of them (``choices=["local", "dask"]``,
    ``_choice("local", "dask")``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == home:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                said = [s for operand in (node.left, *node.comparators) for s in _literals(operand)]
                if names & set(said):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
            elif isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Call):
                items = node.args if isinstance(node, ast.Call) else node.elts
                said = [s for item in items for s in _literals(item)]
                if len(names & set(said)) >= 2:
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return sorted(set(found), key=found.index)


def test_nothing_outside_executors_compares_an_executors_name() -> None:
    assert named_outside(PACKAGE, set(executors.names()), "executors") == []


def _about_a_backend(node: ast.AST) -> bool:
    """Whether ``node`` reads a backend: a name or attribute called ``backend`` (``settings.backend``)."""
    return any(
        (isinstance(n, ast.Name) and "backend" in n.id) or (isinstance(n, ast.Attribute) and "backend" in n.attr)
        for n in ast.walk(node)
    )


def backend_named_outside(root: Path, names: set[str]) -> list[str]:
    """Where a module of ``root`` outside ``backends/`` compares a backend with one of ``names``
    (``backend == "shell"``, ``settings.backend in ("shell", "command")``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "backends":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and _about_a_backend(node):
                said = [s for operand in (node.left, *node.comparators) for s in _literals(operand)]
                if names & set(said):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_nothing_outside_backends_compares_a_backends_name() -> None:
    """What a backend is (an agent CLI's, a script's, the stand-in command ``init`` writes) is read
    from the registry and the backend's class, never from its name."""
    assert backend_named_outside(PACKAGE, set(backends.names())) == []


def test_the_backend_name_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x.py").write_text(
        'a = backend == "shell"\nb = s.backend in ("shell", "command")\nc = "shell" in item\n'
    )
    assert backend_named_outside(tmp_path, {"shell", "command"}) == ["run/x.py:1", "run/x.py:2"]


def test_the_name_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x.py").write_text(
        'a = name == "dask"\nb = name in ("local", "fake")\nc = f(choices=["local", "dask"])\nd = "local"\n'
    )
    assert named_outside(tmp_path, {"local", "dask", "fake"}, "executors") == ["run/x.py:1", "run/x.py:2", "run/x.py:3"]


def test_the_plan_layer_knows_the_executors_the_registry_lists() -> None:
    assert kinds.executors() == executors.names()
    assert kinds.executors(in_plan=True) == executors.names(in_plan=True)
    assert "fake" not in kinds.executors(in_plan=True)  # (a plan cannot make its own results up)


def test_every_executor_says_what_it_can_do() -> None:
    can = {name: executors.can(name) for name in executors.names()}
    assert can["fake"].simulated and not can["fake"].runs_here and not can["fake"].recoverable
    assert can["local"].runs_here and can["local"].recoverable and not can["local"].cluster
    assert can["dask"].cluster and can["dask"].recoverable and not can["dask"].runs_here
    assert executors.can(None) == can[executors.DEFAULT]  # (a journal line naming none: a version 0.1 run's)
    assert executors.can("k8s") == Capabilities()  # one this version does not know: nothing is done with it


def test_a_worktree_is_the_executor_it_wraps(tmp_path: Path) -> None:
    for inner in (LocalExecutor(), FakeExecutor()):
        wrapped = WorktreeExecutor(inner, Trees(tmp_path, tmp_path / "worktrees", "integration"), set(), {})
        assert (wrapped.name, wrapped.can, wrapped.cluster) == (inner.name, inner.can, inner.cluster)
        assert executors.settler(inner.name, wrapped) is wrapped


def test_a_dead_runners_attempts_are_settled_by_the_executor_that_started_them() -> None:
    local = LocalExecutor()
    assert executors.settler("local", local) is local
    assert executors.settler(None, local) is local
    assert isinstance(executors.settler("fake", local), FakeExecutor)
    with pytest.raises(KeyError):
        executors.settler("k8s", local)


def test_a_plan_names_its_executor_from_the_registry(tmp_path: Path) -> None:
    """A plan read without the registries imported by hand: the package face has registered them."""
    plan = tmp_path / "master_plan.md"
    plan.write_text("---\nexecutor: fake\n---\n# P\n\n## Task Decomposition\n| Task ID | Description |\n|---|---|\n"
                    "| T-01 | x |\n")  # fmt: skip
    code = (
        "import sys\nfrom orchestrator.plan.parser import read_plan\nfrom orchestrator.errors import PlanError\n"
        "try:\n    read_plan(sys.argv[1])\nexcept PlanError as e:\n    print(e)\n"
    )
    said = subprocess.run([sys.executable, "-c", code, str(plan)], capture_output=True, text=True, check=True).stdout
    assert "bad value for 'executor': 'fake' is not one of local, dask" in said, said


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module's code (not its docstrings), with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_module_outside_backends_names_an_agent_backend() -> None:
    """Each agent backend's knowledge is its module's: the layers above and below read the registry
    (the default backend is named once more, as the ``backend`` setting's default)."""
    from orchestrator.plan.config.settings import Settings

    agents = set(backends.agents()) - {Settings().backend}
    found = [
        f"{path.relative_to(PACKAGE)}:{line}: {text!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] != "backends"
        for line, text in _code_strings(path)
        if any(re.search(rf"\b{name}\b", text) for name in agents)
    ]
    assert found == []


def test_the_opencode_backend_is_its_module_and_one_registration_line() -> None:
    """The proof of the backend registry: the backend added last is one module and one line."""
    found = [
        (str(path.relative_to(PACKAGE)), line.strip())
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "backends" / "opencode.py"
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.search(r"\bopencode\b", line, re.IGNORECASE)
    ]
    assert found == [("backends/__init__.py", '_built_in("opencode", "opencode:OpencodeBackend", agent=True)')]


def test_the_columns_registry_is_what_add_update_and_archive_write() -> None:
    from orchestrator.plan import edit
    from orchestrator.plan.table import columns
    from orchestrator.state.kept import archive

    plan = "# P\n\n## Task Decomposition\n| Task ID | Description |\n|---|---|\n| T-01 | x |\n"
    for column in columns.COLUMNS:
        if column.settable and column.key not in {"id", "description"}:  # added as the registry heads it
            header = edit.update_task(plan, "T-01", {column.key: "v"}).splitlines()[3]
            assert header == f"| Task ID | Description | {column.header} |", header
            assert columns.header_columns([column.header])[0] == [column.key]  # and reads back as that column
    kept = [c.archived for c in columns.COLUMNS if c.archived]
    assert set(kept) <= set(archive.COLUMNS), set(kept) - set(archive.COLUMNS)


def test_add_and_update_take_an_option_for_each_column_the_registry_gives_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column made settable with an ``Option`` in the registry is an option of ``add`` and
    ``update`` with nothing else written for it: their parsers are made of the registry, and
    ``update`` writes the cell the option gives."""
    import dataclasses

    from runner_helpers import cli_in_process

    from orchestrator.plan import edit
    from orchestrator.plan.table import columns

    option = columns.Option(("--estimate",), ("--estimate", "--expect"), "DURATION", "what it is expected to take")
    patched = tuple(
        dataclasses.replace(c, settable=True, option=option) if c.key == "estimate" else c for c in columns.COLUMNS
    )
    monkeypatch.setattr(columns, "COLUMNS", patched)
    monkeypatch.setitem(edit.HEADERS, "estimate", "Estimate")
    (tmp_path / ".orchestrator").mkdir()
    plan = "# P\n\n## Task Decomposition\n| Task ID | Description |\n|---|---|\n| T-01 | x |\n"
    (tmp_path / ".orchestrator" / "master_plan.md").write_text(plan, encoding="utf-8")
    assert "--estimate DURATION" in cli_in_process(tmp_path, "add", "--help").stdout
    assert "--estimate DURATION, --expect DURATION" in cli_in_process(tmp_path, "update", "--help").stdout
    done = cli_in_process(tmp_path, "update", "T-01", "--expect", "5m")
    assert done.code == 0, done.stderr
    assert "| Task ID | Description | Estimate |" in (tmp_path / ".orchestrator" / "master_plan.md").read_text()
    assert "| T-01 | x | 5m |" in (tmp_path / ".orchestrator" / "master_plan.md").read_text()


# A cell each column with a reader cannot read, and the column's header.
BAD_CELLS = {
    "Not before": "tomorrow",
    "Access": "maybe",
    "Isolation": "box",
    "Priority": "P9x",
    "Timeout": "soon",
    "Estimate": "soon",
    "Deadline": "soon",
    "Retries": "many",
    "Hedge": "often",
    "Best of": "many",
    "Each": "glob: ../outside/*",
    "Output": "a:weird",
    "Agent": "bad agent!",
    "Approval": "later",
}


def test_every_cell_a_column_cannot_read_is_one_problem_with_its_hint(tmp_path: Path) -> None:
    """The parser reads a row cell by cell through the registry: a bad cell of each column is its
    own problem on the row's line, ``T-01: ...`` and what to do, in the registry's order."""
    from orchestrator.errors import PlanError
    from orchestrator.plan.parser import parse_plan
    from orchestrator.plan.table import columns

    hinted = [c for c in columns.COLUMNS if c.hint]
    assert {c.header for c in hinted} == set(BAD_CELLS)
    header = "| Task ID | Description | " + " | ".join(c.header for c in hinted) + " |"
    row = "| T-01 | x | " + " | ".join(BAD_CELLS[c.header] for c in hinted) + " |"
    text = f"# P\n\n## Task Decomposition\n{header}\n|{'---|' * (len(hinted) + 2)}\n{row}\n"
    with pytest.raises(PlanError) as caught:
        parse_plan(text, tmp_path / "master_plan.md")
    problems = caught.value.problems
    assert [(p.line, p.hint) for p in problems] == [(6, c.hint) for c in hinted], problems
    assert all(p.message.startswith("T-01: ") for p in problems), problems


# The rows of docs/ARCHITECTURE.md's "Where a change goes" that say what a registry's new entry is.
REGISTRY_ROWS = (
    "a new agent CLI",
    "a new column of the task table",
    "somewhere else to run attempts (an executor)",
    "a new command, or an option",
    "a new kind of event, or a key of one",
)


def _named_places(cell: str) -> list[str]:
    """The modules and names a cell of ARCHITECTURE.md points at: `dir/module.py`, `dir/module`,
    `dir/module.NAME`, `dir/`, each as deep as its subpackage (`run/races/hedge`), and a test
    helper's `module.Name`."""
    return [
        token
        for token in re.findall(r"`([^`\s]+)`", cell)
        if re.fullmatch(
            r"(tests/)?[a-z_]+/(?:[a-z_<>]+/)*[a-z_<>]*(\.py|\.[A-Za-z_]+)?|[a-z_]+\.[A-Z][A-Za-z_]+", token
        )
    ]


def _missing(place: str) -> bool:
    """Whether the module or name ``place`` points at is not there (a pattern never is checked)."""
    import importlib

    if "<" in place:  # (tests/test_agents_<name>.py)
        return False
    if "/" not in place:  # a top module's name (redaction.Stream), else a test helper's (agentsuite.AgentSuite)
        module, _, name = place.partition(".")
        ours = (PACKAGE / f"{module}.py").exists()
        return not hasattr(importlib.import_module(f"orchestrator.{module}" if ours else module), name)
    if (PACKAGE / place).exists() or (PACKAGE.parent / place).exists():  # a file or folder, of ours or the repository's
        return False
    in_tests = place.startswith("tests/")
    root = PACKAGE.parent if in_tests else PACKAGE
    if place.endswith("/"):
        return not (root / place).is_dir()
    if place.endswith(".py"):
        return not (root / place).exists()
    module, _, name = place.partition(".")
    if not (root / f"{module}.py").exists():
        return True
    if not name or in_tests:
        return False
    return not hasattr(importlib.import_module("orchestrator." + module.replace("/", ".")), name)


def test_architecture_says_true_what_a_new_backend_executor_or_column_touches() -> None:
    """Each module and name the three rows point at is there (``backends/__init__.py``,
    ``executors/registry.KINDS``, ``plan/table/columns.COLUMNS``...): the page cannot name a table a
    refactoring took away, as it named ``plan/settings.ACCESS`` and ``run/doctor.AGENT_BACKENDS``."""
    page = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| ")}
    for title in REGISTRY_ROWS:
        places = _named_places(rows[title])
        assert len(places) >= 4, (title, places)
        assert [place for place in places if _missing(place)] == [], title
    section = page.split("## Where a change goes", 1)[1]
    named = [place for line in section.splitlines() if line.startswith("| ") for place in _named_places(line)]
    assert len(named) > 100
    assert sorted({place for place in named if _missing(place)}) == []  # (every row's, not the registries' alone)


def test_the_architecture_check_finds_a_name_that_is_gone() -> None:
    cell = "| x | `plan/settings.ACCESS`, `run/doctor.AGENT_BACKENDS`, `plan/rowcells`, `executors/registry.KINDS` |"
    assert [place for place in _named_places(cell) if _missing(place)] == [
        "plan/settings.ACCESS",
        "run/doctor.AGENT_BACKENDS",
        "plan/rowcells",
    ]
