"""The task graph: a networkx ``DiGraph`` (edges point from a dependency to its dependent), and
the orderings and paths read from it (the ready queue that decides what may start next is
``plan/queue``'s).

networkx is imported where a graph is first built (``build``): it costs about 0.2 s, and
``status`` never needs a graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import networkx as nx

    DiGraph: TypeAlias = nx.DiGraph[str]
else:
    DiGraph = Any  # networkx is imported where a graph is first built


def build(dependencies: Mapping[str, Sequence[str]]) -> DiGraph:
    """The graph of ``dependencies`` (each task, in table order, to what it depends on)."""
    import networkx as nx

    graph: DiGraph = nx.DiGraph()
    graph.add_nodes_from(dependencies)
    graph.add_edges_from((dep, node) for node, deps in dependencies.items() for dep in deps)
    return graph


def table_order(graph: DiGraph) -> dict[str, int]:
    """Each node's position in the graph's own order (the table's)."""
    return {node: index for index, node in enumerate(graph)}


def topological_order(graph: DiGraph, order: Mapping[str, int] | None = None) -> list[str]:
    """Dependencies first; among tasks ready together, table order, so output is stable."""
    import networkx as nx

    position = order if order is not None else table_order(graph)
    return list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))


def dependencies_first(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Every task after what it depends on, without a graph (``status`` has none: building one
    costs 0.2 s at 10,000 tasks). Any such order will do where only that matters; a chain as long
    as the plan is walked without recursion. ``dependencies`` is a validated plan's: no cycles."""
    placed: set[str] = set()
    found: list[str] = []
    for root in dependencies:
        if root in placed:
            continue
        stack = [(root, iter(dependencies[root]))]
        while stack:
            node, deps = stack[-1]
            for dep in deps:
                if dep not in placed and dep in dependencies:
                    stack.append((dep, iter(dependencies[dep])))
                    break
            else:
                stack.pop()
                if node not in placed:
                    placed.add(node)
                    found.append(node)
    return found


def heaviest_up_to(dependencies: Mapping[str, Sequence[str]], weights: Mapping[str, float]) -> dict[str, float]:
    """For each task of ``weights``, the heaviest chain of tasks of ``weights`` that ends with it
    (what it waits for, and itself), without a graph (``status`` has none: ``dependencies_first``).
    The largest of them is the heaviest chain of them all."""
    among = {task: [d for d in dependencies.get(task, ()) if d in weights] for task in weights}
    length: dict[str, float] = {}
    for task in dependencies_first(among):
        length[task] = weights[task] + max((length[d] for d in among[task]), default=0.0)
    return length


def layers(graph: DiGraph, order: Mapping[str, int] | None = None) -> list[list[str]]:
    """Tasks grouped by depth (layer 0 has no dependencies), each layer in table order."""
    import networkx as nx

    position = order if order is not None else table_order(graph)
    return [sorted(generation, key=position.__getitem__) for generation in nx.topological_generations(graph)]


def cycles(graph: DiGraph) -> list[list[str]]:
    """One cycle per strongly connected component that has one, starting at its first-listed task
    and following its first-listed successors: what a person reads as ``a -> b -> a``."""
    import networkx as nx

    position = table_order(graph)
    found: list[list[str]] = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            continue
        start = min(component, key=position.__getitem__)
        sub = graph.subgraph(component)
        first = min(sub.successors(start), key=position.__getitem__)
        path: list[str] = nx.shortest_path(sub, first, start)
        found.append([start, *path[:-1]])
    return sorted(found, key=lambda cycle: position[cycle[0]])


def remaining_path(
    graph: DiGraph, weights: Mapping[str, float] | None = None, within: Iterable[str] | None = None
) -> dict[str, float]:
    """For each task (of ``within``, default all), the heaviest chain of work from it to a sink,
    itself included, counting only tasks of ``within`` (weight 1 each unless ``weights`` says)."""
    import networkx as nx

    members = set(graph) if within is None else set(within)
    length: dict[str, float] = {}
    for node in reversed(list(nx.topological_sort(graph))):
        if node in members:
            own = weights.get(node, 1.0) if weights is not None else 1.0
            length[node] = own + max((length[s] for s in graph.successors(node) if s in members), default=0.0)
    return length


def longest_chain(dependencies: Mapping[str, Sequence[str]], order: Mapping[str, int]) -> list[str]:
    """The dependency chain with the most tasks (``validate`` shows it): among chains as long, the
    one that ends first in table-order topological order, each task's link the first of its
    dependencies as its row lists them, as networkx's ``dag_longest_path`` picks it on the plan's
    graph (a test holds the two equal). Walked on the rows, without a graph: ``validate`` needs no
    other, and importing networkx cost it a third of its time at 1,000 tasks. ``dependencies`` is
    a validated plan's (ids of its rows, no cycles); ``order`` each row's position."""
    once: dict[str, list[str]] = {}  # each task's dependencies, each once, as its row lists them
    dependents: dict[str, list[str]] = {node: [] for node in dependencies}
    for node, deps in dependencies.items():
        once[node] = list(dict.fromkeys(deps)) if len(deps) > 1 else list(deps)
        for dep in once[node]:
            dependents[dep].append(node)
    waiting = {node: len(deps) for node, deps in once.items()}
    ready = [(order[node], node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    best: dict[str, tuple[int, str]] = {}  # each task: (tasks before it on its longest chain, the one before)
    while ready:
        _, node = heapq.heappop(ready)
        length, link = 0, node
        for dep in once[node]:  # the first of the longest
            if best[dep][0] + 1 > length:
                length, link = best[dep][0] + 1, dep
        best[node] = (length, link)
        for child in dependents[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (order[child], child))
    if not best:
        return []
    end, longest = "", -1
    for node, (length, _) in best.items():  # the first to end one, in the order they were placed
        if length > longest:
            end, longest = node, length
    chain = [end]
    while best[chain[-1]][1] != chain[-1]:
        chain.append(best[chain[-1]][1])
    return chain[::-1]


def critical_path(graph: DiGraph, weights: Mapping[str, float]) -> tuple[list[str], float]:
    """The heaviest dependency chain under ``weights`` (durations, say) and its total: networkx's
    ``dag_longest_path`` of the graph with each edge weighing what the task it leads to weighs and
    a source before every task, the same chain, ties broken alike, read off the graph itself (a
    weighted copy of a 10,000-task graph is some 10 MB, made at a run's end beside everything)."""
    if len(graph) == 0:
        return [], 0.0
    index = table_order(graph)  # (a node's predecessors in the copy: in the order of the graph's nodes)
    source = ("source",)  # not a str: cannot be a task id
    best: dict[object, tuple[float, object]] = {source: (0, source)}
    waiting = dict(graph.in_degree())
    ready = [node for node in graph if waiting[node] == 0]
    while ready:  # (the copy's topological generations, networkx's order)
        after: list[str] = []
        for node in ready:
            weight = weights.get(node, 0.0)
            most: tuple[float, object] | None = None
            for before in (*sorted(graph.pred[node], key=index.__getitem__), source):
                length = best[before][0] + weight
                if most is None or length > most[0]:
                    most = (length, before)
            assert most is not None
            best[node] = most if most[0] >= 0 else (0, node)
            for child in graph.succ[node]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    after.append(child)
        ready = after
    last: object = max(best, key=lambda node: best[node][0])
    chain: list[object] = []
    while not chain or chain[-1] != last:
        chain.append(last)
        last = best[last][1]
    path = [node for node in reversed(chain) if isinstance(node, str)]
    return path, sum(weights.get(node, 0.0) for node in path)


def ancestors(graph: DiGraph, nodes: Iterable[str]) -> set[str]:
    """Every task the given ones depend on, directly or not (not themselves)."""
    import networkx as nx

    found: set[str] = set()
    for node in nodes:
        found |= nx.ancestors(graph, node)
    return found


def descendants(graph: DiGraph, node: str) -> set[str]:
    """Every task that depends on ``node``, directly or not (not itself)."""
    import networkx as nx

    return set(nx.descendants(graph, node))
