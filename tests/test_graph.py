"""The graph algorithms the runner walks agree with networkx on random DAGs, and the runner's
import path does not pull networkx in (its import costs a third of a run's start-up)."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.plan.graph import (
    Dag,
    critical_path,
    descendants,
    layers,
    remaining_path,
    topological_order,
)


@st.composite
def dags(draw: st.DrawFn) -> tuple[Dag, nx.DiGraph, dict[str, int]]:
    count = draw(st.integers(0, 30))
    nodes = [f"T-{i:02d}" for i in range(count)]
    deps: dict[str, list[str]] = {}
    for i, node in enumerate(nodes):
        # edges only to earlier nodes: acyclic by construction; the table order is shuffled below
        deps[node] = sorted(draw(st.sets(st.sampled_from(nodes[:i]), max_size=4))) if i else []
    shuffled = draw(st.permutations(nodes))
    table = {node: deps[node] for node in shuffled}
    graph = nx.DiGraph()
    graph.add_nodes_from(shuffled)
    graph.add_edges_from((d, n) for n, ds in table.items() for d in ds)
    return Dag(table), graph, {node: i for i, node in enumerate(shuffled)}


@settings(max_examples=200, deadline=None)
@given(dags())
def test_the_heaviest_chain_of_unit_tasks_has_one_task_in_each_layer(
    case: tuple[Dag, nx.DiGraph, dict[str, int]],
) -> None:
    """What ``orchestrator validate`` counts its layers by."""
    dag, _, order = case
    path, total = critical_path(dag, dict.fromkeys(order, 1.0))
    assert len(path) == total == len(layers(dag, order))


@settings(max_examples=200, deadline=None)
@given(dags())
def test_orders_and_layers_match_networkx(case: tuple[Dag, nx.DiGraph, dict[str, int]]) -> None:
    dag, graph, order = case
    assert topological_order(dag, order) == list(nx.lexicographical_topological_sort(graph, key=order.__getitem__))
    expected_layers = [sorted(layer, key=order.__getitem__) for layer in nx.topological_generations(graph)]
    assert layers(dag, order) == expected_layers
    # the same functions accept a networkx graph
    assert layers(graph, order) == expected_layers
    for node in dag:
        assert descendants(dag, node) == nx.descendants(graph, node)
    assert sorted(dag.edges()) == sorted(graph.edges)


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_paths_match_networkx(case: tuple[Dag, nx.DiGraph, dict[str, int]], data: st.DataObject) -> None:
    dag, graph, _ = case
    weights = {node: float(data.draw(st.integers(1, 9))) for node in dag}
    _, total = critical_path(dag, weights)
    if len(dag):
        heaviest: dict[str, float] = {}
        for node in nx.topological_sort(graph):
            heaviest[node] = weights[node] + max((heaviest[p] for p in graph.predecessors(node)), default=0.0)
        assert total == max(heaviest.values())
    else:
        assert total == 0.0
    within = {node for node in dag if data.draw(st.booleans())}
    remaining = remaining_path(dag, weights, within)
    sub = graph.subgraph(within)
    for node in within:
        chains = [weights[node]] + [
            sum(weights[n] for n in path)
            for sink in sub
            if sub.out_degree(sink) == 0 and sink != node
            for path in nx.all_simple_paths(sub, node, sink)
        ]
        assert remaining[node] == max(chains)


def test_topological_order_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        topological_order(Dag({"a": ["b"], "b": ["a"]}), {"a": 0, "b": 1})


def test_the_runner_does_not_import_networkx() -> None:
    code = "import sys, orchestrator.cli.main, orchestrator.run.runner; print('networkx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
