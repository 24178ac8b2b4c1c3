"""The task DAG: orderings, critical paths, and the ready queue that decides what may start next.

This module decides *what* is ready; it never starts anything. The runner asks ``ReadyQueue`` for
the next task and reports back what finished, like doit's dispatcher.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import networkx as nx


def topological_order(graph: Any, order: Mapping[str, int]) -> list[str]:
    """Dependencies first; ties broken by table order so output is stable."""
    result: list[str] = nx.lexicographical_topological_sort(graph, key=lambda n: order[n])
    return list(result)


def layers(graph: Any, order: Mapping[str, int]) -> list[list[str]]:
    """Tasks grouped by depth (layer 0 has no dependencies), each layer in table order."""
    return [sorted(generation, key=order.__getitem__) for generation in nx.topological_generations(graph)]


def remaining_path(graph: Any, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """For each task, the longest chain of work from it to a sink (itself included)."""
    length: dict[str, float] = {}
    for node in reversed(list(nx.topological_sort(graph))):
        own = weights.get(node, 1.0) if weights else 1.0
        length[node] = own + max((length[s] for s in graph.successors(node)), default=0.0)
    return length


def critical_path(graph: Any, weights: Mapping[str, float]) -> tuple[list[str], float]:
    """The heaviest dependency chain under ``weights`` (e.g. durations) and its total."""
    if graph.number_of_nodes() == 0:
        return [], 0.0
    best: dict[str, tuple[float, str | None]] = {}
    for node in nx.topological_sort(graph):
        own = weights.get(node, 0.0)
        preds = [(best[p][0], p) for p in graph.predecessors(node)]
        top = max(preds, default=(0.0, None), key=lambda item: item[0])
        best[node] = (own + top[0], top[1])
    end = max(best, key=lambda n: best[n][0])
    total = best[end][0]
    path: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = best[cursor][1]
    return list(reversed(path)), total


class ReadyQueue:
    """Hands out tasks whose dependencies are all done, most urgent first.

    Order among ready tasks: priority (P0 first), then the longest remaining path to a sink
    (critical path first), then table order. Tasks outside ``selected`` are treated as already
    settled: ``done`` ones satisfy dependents, the others block them.
    """

    def __init__(
        self,
        graph: Any,
        *,
        priority: Mapping[str, int],
        order: Mapping[str, int],
        selected: Iterable[str],
        done: Iterable[str] = (),
    ) -> None:
        self._graph = graph
        self._selected = set(selected)
        self._done = set(done)
        self._path = remaining_path(graph.subgraph(self._selected)) if self._selected else {}
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

    def pop(self, allowed: Callable[[str], bool] | None = None) -> str | None:
        """The most urgent ready task that ``allowed`` accepts (others stay queued), or ``None``."""
        held: list[tuple[tuple[int, float, int], str]] = []
        found: str | None = None
        while self._heap:
            item = heapq.heappop(self._heap)
            if allowed is None or allowed(item[1]):
                found = item[1]
                self._handed.add(found)
                break
            held.append(item)
        for item in held:
            heapq.heappush(self._heap, item)
        return found

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
        blocked = [n for n in nx.descendants(self._graph, task_id) if n in self._waiting and n not in self.finished]
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
