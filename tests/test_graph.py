"""The plan's graph is a networkx DiGraph; what is read from it is checked here against brute force
on random DAGs, and ``status`` is kept from importing networkx (a fifth of a second)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_helpers import HANG_GUARD, cli

from orchestrator.plan.graph import (
    build,
    critical_path,
    cycles,
    descendants,
    heaviest_up_to,
    layers,
    longest_chain,
    remaining_path,
    table_order,
    topological_order,
)
from orchestrator.plan.queue import ReadyQueue

Case = tuple["nx.DiGraph[str]", dict[str, list[str]], dict[str, int]]


@st.composite
def dags(draw: st.DrawFn) -> Case:
    count = draw(st.integers(0, 30))
    nodes = [f"T-{i:02d}" for i in range(count)]
    deps: dict[str, list[str]] = {}
    for i, node in enumerate(nodes):
        # edges only to earlier nodes: acyclic by construction; the table order is shuffled below
        deps[node] = draw(st.lists(st.sampled_from(nodes[:i]), max_size=4, unique=True)) if i else []  # a row's order
    shuffled = draw(st.permutations(nodes))
    table = {node: deps[node] for node in shuffled}
    return build(table), table, {node: i for i, node in enumerate(shuffled)}


@settings(max_examples=200, deadline=None)
@given(dags())
def test_the_graph_is_the_table(case: Case) -> None:
    graph, table, order = case
    assert list(graph) == list(table)  # table order
    assert table_order(graph) == order
    assert sorted(graph.edges) == sorted((d, n) for n, ds in table.items() for d in ds)


@settings(max_examples=200, deadline=None)
@given(dags())
def test_topological_order_is_dependencies_first_then_table_order(case: Case) -> None:
    graph, table, order = case
    result = topological_order(graph, order)
    assert sorted(result) == sorted(table)
    placed: set[str] = set()
    for node in result:
        ready = [n for n in table if n not in placed and all(d in placed for d in table[n])]
        assert node == min(ready, key=order.__getitem__)  # the first ready task in table order
        placed.add(node)


@settings(max_examples=200, deadline=None)
@given(dags())
def test_layers_are_depths(case: Case) -> None:
    graph, table, order = case
    depth: dict[str, int] = {}
    for node in topological_order(graph, order):
        depth[node] = max((depth[d] + 1 for d in table[node]), default=0)
    found = layers(graph, order)
    assert [sorted(layer) for layer in found] == [
        sorted(n for n in table if depth[n] == level) for level in range(len(found))
    ]
    assert all(layer == sorted(layer, key=order.__getitem__) for layer in found)
    # the heaviest chain of unit tasks has one task in each layer: what `validate` counts them by
    path, total = critical_path(graph, dict.fromkeys(table, 1.0))
    assert len(path) == total == len(found)
    chain = longest_chain(table, order)  # validate's: the same length, a real chain, read on the rows
    assert len(chain) == len(found)
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(chain))
    # the chain networkx picks on the plan's graph, task for task (validate's output did not change)
    assert chain == nx.dag_longest_path(graph, topo_order=topological_order(graph, order))


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_paths_are_the_heaviest_chains(case: Case, data: st.DataObject) -> None:
    graph, table, _ = case
    weights = {node: float(data.draw(st.integers(1, 9))) for node in table}
    path, total = critical_path(graph, weights)
    heaviest: dict[str, float] = {}
    for node in topological_order(graph):
        heaviest[node] = weights[node] + max((heaviest[d] for d in table[node]), default=0.0)
    assert total == max(heaviest.values(), default=0.0)
    assert sum(weights[n] for n in path) == total
    assert all(path[i] in table[path[i + 1]] for i in range(len(path) - 1))  # a chain of dependencies
    within = {node for node in table if data.draw(st.booleans())}
    remaining = remaining_path(graph, weights, within)
    for node in within:
        best = weights[node]
        stack = [(node, weights[node])]
        while stack:
            at, length = stack.pop()
            best = max(best, length)
            stack += [(child, length + weights[child]) for child in table if at in table[child] and child in within]
        assert remaining[node] == best
    # status's, with no graph: the heaviest chain of ``within`` that ends with each task
    up_to = heaviest_up_to(table, {node: weights[node] for node in within})
    assert up_to == remaining_path(graph.reverse(copy=True), weights, within)


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_the_critical_path_is_networkxs_on_a_weighted_copy_ties_and_all(case: Case, data: st.DataObject) -> None:
    """``critical_path`` reads the graph itself; the chain is the one networkx's ``dag_longest_path``
    found on the weighted copy it used to make (each edge weighing the task it leads to, a source
    before every task), task for task, where several chains weigh the same too: final_output.md
    and ``report`` name the same tasks. Weights from a few values (ties), some missing (0), some
    negative, and sums float addition rounds alike."""
    graph, table, _ = case
    values = data.draw(st.sampled_from([[0.0], [0.0, 1.0], [0.1, 0.2, 0.3], [1e17, 1.0, 0.0], [-1.0, 0.0, 2.5]]))
    weights = {node: data.draw(st.sampled_from(values)) for node in table if data.draw(st.booleans())}
    expected: tuple[list[str], float] = ([], 0.0)
    if len(graph):
        source = ("source",)
        weighted: nx.DiGraph[object] = nx.DiGraph()
        weighted.add_weighted_edges_from((a, b, weights.get(b, 0.0)) for a, b in graph.edges)
        weighted.add_weighted_edges_from((source, node, weights.get(node, 0.0)) for node in graph)
        chain = [node for node in nx.dag_longest_path(weighted) if isinstance(node, str)]
        expected = chain, sum(weights.get(node, 0.0) for node in chain)
    assert critical_path(graph, weights) == expected


def test_the_critical_path_makes_no_copy_of_the_graph() -> None:
    """At a run's end final_output.md asks for the critical path twice, beside all the run holds:
    the weighted copy networkx's ``dag_longest_path`` was given took 2.5 times what the graph
    itself takes (15 MB at 10,000 tasks). Its peak (tracemalloc) stays under half the graph's
    (0.3 times here)."""
    import random
    import tracemalloc

    rng = random.Random(7)
    table = {
        f"T-{n:05d}": [f"T-{m:05d}" for m in rng.sample(range(n - n % 100 - 100, n - n % 100), 3)] if n >= 100 else []
        for n in range(2000)
    }
    weights = {node: rng.random() for node in table}
    tracemalloc.start()
    try:
        graph = build(table)
        made = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        path, _ = critical_path(graph, weights)
        peak = tracemalloc.get_traced_memory()[1] - made
    finally:
        tracemalloc.stop()
    assert len(path) == 20  # (a task in each layer of 100)
    assert peak < made / 2, f"{peak:,} bytes beside a graph of {made:,}"


@settings(max_examples=100, deadline=None)
@given(dags())
def test_descendants_are_everything_downstream(case: Case) -> None:
    graph, table, _ = case
    for node in table:
        found: set[str] = set()
        frontier = [node]
        while frontier:
            at = frontier.pop()
            for child in (n for n in table if at in table[n]):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        assert descendants(graph, node) == found


def test_topological_order_refuses_a_cycle() -> None:
    with pytest.raises(nx.NetworkXUnfeasible):
        topological_order(build({"a": ["b"], "b": ["a"]}))


def test_cycles_start_at_the_first_listed_task_and_follow_table_order() -> None:
    graph = build({"D": [], "A": ["C"], "B": ["A"], "C": ["B"], "E": ["F"], "F": ["E"]})
    assert cycles(graph) == [["A", "B", "C"], ["E", "F"]]


def test_ready_queue_hands_out_by_priority_then_critical_path_then_table_order() -> None:
    graph = build({"a": [], "b": [], "c": [], "d": ["c"]})
    queue = ReadyQueue(graph, priority={"b": 1}, order=table_order(graph), selected=list(graph))
    assert [queue.pop(), queue.pop(), queue.pop()] == ["b", "c", "a"]  # P1 first; c leads to d
    assert queue.pop() is None
    assert queue.complete("c") == ["d"]
    assert queue.pop() == "d"


def test_ready_queue_weighs_each_task_by_what_it_took_when_it_last_ran() -> None:
    """Known durations make the critical path one of time, not of task count: a long task
    starts first, so that nobody waits on it alone at the end; a task ``took`` leaves out weighs
    the median of the known ones. (A run leaves none out: a task with no history and no Estimate
    cell weighs ``run/forecasts/estimates.DEFAULT_SECONDS``, 60 s.)"""
    graph = build({"short": [], "long": [], "fresh": [], "after-short": ["short"]})
    took = {"short": 1.0, "long": 30.0, "after-short": 2.0}
    queue = ReadyQueue(graph, priority={}, order=table_order(graph), selected=list(graph), took=took)
    # long: 30; short: 1 + 2 = 3; fresh (not in took): the median, 2
    assert [queue.pop(), queue.pop(), queue.pop(), queue.pop()] == ["long", "short", "fresh", None]
    untimed = ReadyQueue(graph, priority={}, order=table_order(graph), selected=list(graph))
    assert [untimed.pop(), untimed.pop(), untimed.pop()] == ["short", "long", "fresh"]  # by chain length


@pytest.mark.parametrize("module", ["orchestrator.cli.plans", "orchestrator.state.status"])
def test_status_does_not_import_networkx(module: str) -> None:
    code = f"import sys, {module}; print('networkx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_status_with_estimates_and_deadlines_builds_no_graph(tmp_path: Path) -> None:
    """`status` of a plan whose event log has taught it estimates, with deadlines, shows when it
    should end without networkx (its import and a graph: 0.4 s at 3,000 tasks)."""
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    plan = tmp_path / ".orchestrator" / "master_plan.md"
    plan.parent.mkdir()
    plan.write_text(
        f"---\nbackend: shell\ndeadline: {soon}\n---\n## Task Decomposition\n"
        "| Task ID | Command | Dependencies | Deadline |\n|---|---|---|---|\n"
        f"| T-01 | true | None | - |\n| T-02 | true | T-01 | {soon} |\n",
        encoding="utf-8",
    )
    assert cli(tmp_path, "run").code == 0 and cli(tmp_path, "reset", "--all").code == 0
    code = "import sys; from orchestrator.cli.main import main; main(['status']); print('networkx' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=HANG_GUARD
    )
    lines = out.stdout.splitlines()
    assert any(line.startswith("Estimated: ") for line in lines) and lines[-1] == "False", out.stdout


def _queue(deps: dict[str, list[str]], selected: list[str] | None = None) -> ReadyQueue:
    graph = build(deps)
    chosen = list(graph) if selected is None else selected
    return ReadyQueue(graph, priority={}, order=table_order(graph), selected=chosen)


def _drain_ready(queue: ReadyQueue) -> list[str]:
    found: list[str] = []
    while (task := queue.pop()) is not None:
        found.append(task)
    return found


def test_revive_brings_back_what_a_failure_took_down_and_nothing_given_up_for_another_reason() -> None:
    queue = _queue({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "e"], "e": [], "f": ["g"], "g": []})
    assert _drain_ready(queue) == ["a", "e", "g"]
    assert queue.cancel("c") == []  # cancelled while it waited for a
    assert queue.fail("g") == ["f"]
    assert queue.fail("a") == ["b", "d"]
    back, doomed = queue.revive("a", priority=2, order=0)
    assert back == ["a", "b", "d"] and doomed == {}  # c stays cancelled, f stays given up for g
    assert queue.finished("c") and queue.finished("f")
    assert _drain_ready(queue) == ["a"]
    assert queue.complete("a") == ["b"]


def test_a_task_that_decides_for_itself_waits_again_for_a_dependency_put_back() -> None:
    """A row over its items (or a Condition) counts an item's failure as settled; the item put
    back, the row waits for it again, and is ready only once it ends (it settled early: issue 75)."""
    queue = _queue({"i1": [], "i2": [], "row": ["i1", "i2"]})
    queue.deciding = {"row"}
    assert _drain_ready(queue) == ["i1", "i2"]
    assert queue.fail("i1") == []
    assert queue.revive("i1", priority=2, order=0) == (["i1"], {})
    assert queue.complete("i2") == [] and _drain_ready(queue) == ["i1"]  # (not the row: i1 runs again)
    assert queue.complete("i1") == ["row"]


def test_revive_of_a_task_whose_upstream_still_failed_leaves_it_given_up() -> None:
    queue = _queue({"a": [], "b": ["a"]})
    assert _drain_ready(queue) == ["a"]
    assert queue.fail("a") == ["b"]
    assert queue.revive("b", priority=2, order=1) == ([], {"b": "a"})
    assert queue.finished("b") and len(queue) == 0


def test_a_task_added_late_starts_waits_or_is_given_up_by_its_dependencies() -> None:
    graph = build({"a": [], "b": [], "c": []})
    queue = ReadyQueue(graph, priority={}, order=table_order(graph), selected=list(graph))
    assert _drain_ready(queue) == ["a", "b", "c"]
    queue.complete("a")
    queue.fail("b")
    # The run adds each new row to the plan's graph, which the queue reads, then queues it.
    for node, after in (("x", ["a"]), ("y", ["b"]), ("z", ["c"])):
        graph.add_node(node)
        graph.add_edges_from((dep, node) for dep in after)
    assert queue.add("x", priority=2, order=3) is None and _drain_ready(queue) == ["x"]  # after a completed one
    assert queue.add("y", priority=2, order=4) == "b" and queue.finished("y")  # after a failed one
    assert queue.add("z", priority=2, order=5) is None and len(queue) == 0  # after a running one: waits
    assert queue.complete("c") == ["z"]
