"""The package's shape, held: its public names, its layers (an import only ever goes down), no
import cycles, and modules and classes of a size a reader can hold in mind.

docs/ARCHITECTURE.md draws the same layers; change both together.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import networkx as nx
import pytest

import orchestrator

PACKAGE = Path(orchestrator.__file__).parent

# Lowest first. A module may import its own layer and those below it, never one above.
LAYERS = (
    "base",
    "plan",
    "state",
    "git",
    "executors",
    "backends",
    "machine",
    "views",
    "output",
    "run",
    "commands",
    "serve",
    "cli",
)
# orchestrator/<name>.py at the bottom
BASE = {
    "vocabulary",
    "errors",
    "yamlio",
    "documents",
    "lazy",
    "printable",
    "redaction",
    "timing",
    "version",
    "paths",
    "moments",
}

PUBLIC = {
    "orchestrator": [
        "AgentCallError",
        "BackendUnavailableError",
        "ErrorClass",
        "ExitCode",
        "Executor",
        "FakeExecutor",
        "LocalExecutor",
        "LockedError",
        "OrchestratorError",
        "Plan",
        "PlanError",
        "Problem",
        "RunOptions",
        "RunSummary",
        "Runner",
        "Settings",
        "Task",
        "TaskStatus",
        "UsageError",
        "Workspace",
        "WorkspaceError",
        "__version__",
        "load_plan",
        "parse_plan",
    ],
    "orchestrator.plan": ["PLAN_FILE", "Book", "Plan", "Settings", "Task", "parse_plan", "read_plan"],
    "orchestrator.executors": [
        "FAKE_BANNER",
        "Executor",
        "FakeExecutor",
        "Handle",
        "Launch",
        "Leftover",
        "Limits",
        "LocalExecutor",
        "ProcessRun",
        "Reply",
        "named",
    ],
    "orchestrator.run": ["Decision", "RunOptions", "RunSummary", "Runner", "decide"],
    "orchestrator.backends": ["AgentResult", "Backend", "Invocation", "Job", "Observer", "get", "names", "register"],
    "orchestrator.cli": ["entry", "main"],
}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def layer(module: str) -> str | None:
    """The layer of ``orchestrator.x.y``; None for the package itself (the public face, above all)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return None
    return "base" if parts[1] in BASE else parts[1]


def imports(path: Path, module: str, *, top_level_only: bool = False) -> set[str]:
    """The orchestrator modules ``path`` imports (``from a import b`` counts ``a.b`` when that is
    a module, else ``a``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    known = modules()
    found: set[str] = set()
    nodes = tree.body if top_level_only else _run_nodes(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("orchestrator")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orchestrator"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    found.discard(module)
    return found


def _run_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` that may run: a function's body included (an import there runs when
    it is called), an ``if TYPE_CHECKING:`` block left out (types only, never run)."""
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_exactly_the_all(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_every_module_is_in_a_layer() -> None:
    for name in modules():
        assert layer(name) in (None, *LAYERS), f"{name}: add it to a layer (tests/test_architecture.py)"


def test_imports_only_go_down_the_layers() -> None:
    """run may import state, never the reverse: the data path goes one way."""
    wrong: list[str] = []
    for name, path in modules().items():
        own = layer(name)
        if own is None:
            continue
        for target in imports(path, name):
            other = layer(target)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                wrong.append(f"{name} ({own}) imports {target} ({other})")
    assert wrong == []


def test_no_module_imports_the_package_face() -> None:
    """``orchestrator/__init__.py`` sits above every layer: a module that took a name from it (as
    run/ and output/ once took ``__version__``) pointed an arrow back up (issue 51)."""
    wrong: list[str] = []
    for name, path in modules().items():
        if layer(name) is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "orchestrator":
                wrong += [
                    f"{name}: from orchestrator import {a.name}"
                    for a in node.names
                    if f"orchestrator.{a.name}" not in modules()
                ]
    assert wrong == []


def test_the_version_is_the_distributions() -> None:
    import tomllib

    from orchestrator.version import __version__

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert orchestrator.__version__ == __version__ == config["project"]["version"]


def test_no_import_cycles() -> None:
    """None at the top of the modules, nor through an import inside a function: one there runs
    when the function is called, and a cycle it closes is a cycle all the same."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    for name, path in modules().items():
        graph.add_node(name)
        graph.add_edges_from((name, target) for target in imports(path, name))
    cycles = [" -> ".join([*cycle, cycle[0]]) for cycle in nx.simple_cycles(graph, length_bound=8)]
    assert cycles == []


def test_the_rooms_of_run_import_one_another_in_one_order() -> None:
    """run/'s rooms (each subpackage, and each module on its floor) import one another one way:
    no cycle between them (issue 74: the attempts, the limits, the holds, the recorder and the
    forecasts went round one; a cycle of rooms is a layer nobody can name)."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    for name, path in modules().items():
        own = _run_room(name)
        if own is None:
            continue
        graph.add_node(own)
        graph.add_edges_from((own, other) for t in imports(path, name) if (other := _run_room(t)) not in (None, own))
    assert graph.number_of_nodes() > 20 and graph.number_of_edges() > 40  # (over nothing, it checks nothing)
    assert [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph)] == []


def _run_room(module: str) -> str | None:
    """The room of run/ that ``module`` is in (``races``, ``scheduler``), or ``None`` outside run/."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["orchestrator", "run"] and len(parts) > 2 else None


def test_no_function_is_longer_than_a_screen() -> None:
    """80 lines a function at most: past that, find the steps inside it and name them."""
    long: dict[str, int] = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > 80:
                    long[f"{name}.{node.name}"] = size
    assert long == {}


# The package's classes of the run's moving parts: a function that takes one as its first argument
# is a method moved out of its class to pass the size bound (issue 51 counted 23), not a new seam.
STATEFUL = {"Scheduler", "Recorder", "Trees", "LiveQueue", "Board", "MergeQueue", "Hedger", "Runner", "Launcher"}


def test_no_module_function_takes_a_running_part_as_its_first_argument() -> None:
    found: list[str] = []
    for name, path in modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.args.args:
                first = node.args.args[0].annotation
                if first is not None and ast.unparse(first).strip("'\"") in STATEFUL:
                    found.append(f"{name}.{node.name}")
    assert found == []


def test_modules_and_classes_stay_small() -> None:
    """About 500 lines a module and 250 a class at most: past that, a reader loses the thread."""
    big: list[str] = []
    for name, path in modules().items():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > 500:
            big.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > 250:
                    big.append(f"{name}.{node.name}: {size} lines")
    assert big == []


def test_no_floor_holds_more_than_a_reader_can_scan() -> None:
    """25 modules a package at most: past that, its capabilities get subpackages of their own
    (``run/races/``, ``plan/table/``), as ``run/`` grew to 48 modules on one floor."""
    floors: dict[str, int] = {}
    for path in modules().values():
        if path.name != "__init__.py":
            floor = path.parent.relative_to(PACKAGE.parent).as_posix()
            floors[floor] = floors.get(floor, 0) + 1
    assert {floor: count for floor, count in floors.items() if count > 25} == {}


def test_every_module_says_what_it_is() -> None:
    for name, path in modules().items():
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert docstring, f"{name} has no docstring"


def test_the_architecture_page_names_every_package() -> None:
    page = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for package in LAYERS[1:]:
        assert f"`{package}/`" in page, package


def test_every_package_is_installed_by_a_plain_install() -> None:
    """pyproject.toml lists the packages a non-editable `pip install .` copies: a package left out
    works in the editable install the tests use, and is missing everywhere else."""
    import tomllib

    root = Path(orchestrator.__file__).parent
    config = tomllib.loads((root.parent / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(root.parent).parts)
        for path in root.rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
