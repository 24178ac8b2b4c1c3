"""The task DAG: orderings, critical paths, and the ready queue that decides what may start next.

This module decides *what* is ready; it never starts anything. The runner asks ``ReadyQueue`` for
the next task and reports back what finished, like doit's dispatcher.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol


class Graph(Protocol):
    """What the algorithms here need of a graph: ``Dag`` below, or a networkx ``DiGraph``."""

    def __iter__(self) -> Iterator[str]: ...

    def predecessors(self, node: str) -> Iterable[str]: ...

    def successors(self, node: str) -> Iterable[str]: ...


class Dag:
    """The task graph as adjacency lists: what the runner walks.

    ``Plan.graph`` is the same graph as a networkx ``DiGraph`` for analysis and export; the runner
    and every command on its path use this one instead, because importing networkx costs a third
    of the runner's start-up (about 0.13 s) and these algorithms need none of it.
    """

    __slots__ = ("_preds", "_succs")

    def __init__(self, dependencies: Mapping[str, Sequence[str]]) -> None:
        """``dependencies``: each node (in table order) to the nodes it depends on."""
        self._preds = {node: tuple(deps) for node, deps in dependencies.items()}
        self._succs: dict[str, list[str]] = {node: [] for node in self._preds}
        for node, deps in self._preds.items():
            for dep in deps:
                self._succs[dep].append(node)

    def __iter__(self) -> Iterator[str]:
        return iter(self._preds)

    def __len__(self) -> int:
        return len(self._preds)

    def predecessors(self, node: str) -> tuple[str, ...]:
        return self._preds[node]

    def successors(self, node: str) -> list[str]:
        return self._succs[node]

    def edges(self) -> list[tuple[str, str]]:
        """(dependency, dependent) pairs."""
        return [(dep, node) for node, deps in self._preds.items() for dep in deps]


def topological_order(graph: Graph, order: Mapping[str, int]) -> list[str]:
    """Dependencies first; among tasks ready together, table order, so output is stable."""
    pending = {node: sum(1 for _ in graph.predecessors(node)) for node in graph}
    ready = [(order[node], node) for node, count in pending.items() if count == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        result.append(node)
        for child in graph.successors(node):
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(ready, (order[child], child))
    if len(result) < len(pending):
        raise ValueError("the graph has a cycle")
    return result


def layers(graph: Graph, order: Mapping[str, int]) -> list[list[str]]:
    """Tasks grouped by depth (layer 0 has no dependencies), each layer in table order."""
    depth: dict[str, int] = {}
    for node in topological_order(graph, order):
        depth[node] = max((depth[p] + 1 for p in graph.predecessors(node)), default=0)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in sorted(depth, key=order.__getitem__):
        grouped[depth[node]].append(node)
    return grouped


def descendants(graph: Graph, node: str) -> set[str]:
    """Every node reachable from ``node`` (not ``node`` itself)."""
    seen: set[str] = set()
    stack = [node]
    while stack:
        for child in graph.successors(stack.pop()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def _any_order(graph: Graph) -> dict[str, int]:
    return {node: index for index, node in enumerate(graph)}


def remaining_path(
    graph: Graph, weights: Mapping[str, float] | None = None, within: Iterable[str] | None = None
) -> dict[str, float]:
    """For each task (of ``within``, default all), the longest chain of work from it to a sink
    (itself included), counting only tasks of ``within``."""
    members = set(graph) if within is None else set(within)
    length: dict[str, float] = {}
    for node in reversed(topological_order(graph, _any_order(graph))):
        if node not in members:
            continue
        own = weights.get(node, 1.0) if weights else 1.0
        length[node] = own + max((length[s] for s in graph.successors(node) if s in members), default=0.0)
    return length


def critical_path(graph: Graph, weights: Mapping[str, float]) -> tuple[list[str], float]:
    """The heaviest dependency chain under ``weights`` (e.g. durations) and its total."""
    best: dict[str, tuple[float, str | None]] = {}
    for node in topological_order(graph, _any_order(graph)):
        own = weights.get(node, 0.0)
        preds = [(best[p][0], p) for p in graph.predecessors(node)]
        top = max(preds, default=(0.0, None), key=lambda item: item[0])
        best[node] = (own + top[0], top[1])
    if not best:
        return [], 0.0
    end = max(best, key=lambda n: best[n][0])
    total = best[end][0]
    path: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = best[cursor][1]
    return list(reversed(path)), total


_PREFER_AMONG = 16  # tasks ReadyQueue.pop looks at past the most urgent one for one it prefers


class ReadyQueue:
    """Hands out tasks whose dependencies are all done, most urgent first.

    Order among ready tasks: priority (P0 first), then the longest remaining path to a sink
    (critical path first), then table order. Tasks outside ``selected`` are treated as already
    settled: ``done`` ones satisfy dependents, the others block them.
    """

    def __init__(
        self,
        graph: Graph,
        *,
        priority: Mapping[str, int],
        order: Mapping[str, int],
        selected: Iterable[str],
        done: Iterable[str] = (),
    ) -> None:
        self._graph = graph
        self._selected = set(selected)
        self._done = set(done)
        self._path = remaining_path(graph, within=self._selected) if self._selected else {}
        self._key = {n: (priority.get(n, 2), -self._path.get(n, 1.0), order[n]) for n in self._selected}
        self._waiting: dict[str, int] = {}
        self._heap: list[tuple[tuple[int, float, int], str]] = []
        self.finished: set[str] = set()
        self._handed: set[str] = set()
        for node in self._selected:
            pending = sum(1 for p in graph.predecessors(node) if p not in self._done)
            self._waiting[node] = pending
            if pending == 0:
                heapq.heappush(self._heap, (self._key[node], node))

    def __len__(self) -> int:
        """Tasks ready now."""
        return len(self._heap)

    def pop(
        self, allowed: Callable[[str], bool] | None = None, prefer: Callable[[str], bool] | None = None
    ) -> str | None:
        """The most urgent ready task that ``allowed`` accepts (others stay queued), or ``None``.
        ``prefer``: among tasks as urgent as that one but for their table order (same priority,
        same critical path), the first it accepts goes first; only the next few are looked at."""
        held: list[tuple[tuple[int, float, int], str]] = []
        found: tuple[tuple[int, float, int], str] | None = None
        heap = self._heap
        looked = 0
        while heap:
            item = heapq.heappop(heap)
            if found is not None:  # looking for a preferred one as urgent as ``found``
                looked += 1
                if item[0][:2] != found[0][:2] or looked > _PREFER_AMONG:
                    held.append(item)
                    break
                if (allowed is None or allowed(item[1])) and prefer is not None and prefer(item[1]):
                    held.append(found)
                    found = item
                    break
                held.append(item)
            elif allowed is None or allowed(item[1]):
                found = item
                if prefer is None or prefer(item[1]):
                    break
            else:
                held.append(item)
        for item in held:
            heapq.heappush(heap, item)
        if found is None:
            return None
        self._handed.add(found[1])
        return found[1]

    def peek(self, count: int) -> list[str]:
        """The ``count`` most urgent ready tasks, most urgent first, left in the queue. Meant for
        a small ``count``: the ``count`` smallest items of a heap are among its first
        ``2 ** count - 1``."""
        if count <= 0:
            return []
        return [item[1] for item in sorted(self._heap[: (1 << count) - 1])[:count]]

    def push_back(self, task_id: str) -> None:
        """Return a popped task to the queue (e.g. it was not started after all)."""
        self._handed.discard(task_id)
        heapq.heappush(self._heap, (self._key[task_id], task_id))

    def complete(self, task_id: str) -> list[str]:
        """Mark done; returns the dependents that became ready."""
        self.finished.add(task_id)
        self._done.add(task_id)
        ready: list[str] = []
        for child in self._graph.successors(task_id):
            if child in self._waiting:
                self._waiting[child] -= 1
                if self._waiting[child] == 0 and child not in self.finished:
                    heapq.heappush(self._heap, (self._key[child], child))
                    ready.append(child)
        return ready

    def fail(self, task_id: str) -> list[str]:
        """Mark failed for good; returns every selected task downstream, now never to run."""
        self.finished.add(task_id)
        blocked = [n for n in descendants(self._graph, task_id) if n in self._waiting and n not in self.finished]
        doomed = set(blocked)
        self.finished.update(doomed)
        if doomed:
            self._heap = [item for item in self._heap if item[1] not in doomed]
            heapq.heapify(self._heap)
        return blocked

    def drain(self) -> list[str]:
        """Every selected task not yet handed out or finished (e.g. after ``--fail-fast``)."""
        rest = [n for n in self._waiting if n not in self.finished and n not in self._handed]
        self._heap = []
        self.finished.update(rest)
        return rest
