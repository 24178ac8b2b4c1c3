"""The order of a run's ready queue (``Urgency``: priority, then the longest remaining path first),
and a better one for a small plan, when every task's duration is known.

The runner is a list scheduler: whenever a slot frees, it starts the most urgent ready task. The
longest remaining path first (``ReadyQueue``'s own order) is a good list, not the best: on twelve
independent tasks over four slots it can end 7% after the bound where the best packing ends 1%
after it (W6, bench/RESULTS.md). Told every task's expected duration (learned from the runs
before), ``improved`` plays the run out on them, as the runner would start its tasks, and swaps
two tasks' places in the list while that ends the run sooner: a local search with a bound on its
work (``BUDGET`` plays and ``SECONDS``), on plans of at most ``LARGEST`` tasks. A person's
priority always comes first: only tasks of the same priority change places.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.plan.graph import DiGraph

LARGEST = 100  # tasks: past this, the longest path first stays (the search would cost more than it saves)
BUDGET = 4000  # plays of the run at most
SECONDS = 0.1  # of searching at most


def improved(
    order: Sequence[str],
    durations: Mapping[str, float],
    needs: Mapping[str, Sequence[str]],
    priority: Mapping[str, int],
    slots: int,
) -> list[str] | None:
    """``order`` (the tasks, most urgent first) rearranged so the run played on ``durations``
    ends sooner, or ``None`` when no swap helps (or the plan is past ``LARGEST``). ``needs``: each
    task's dependencies among ``order`` (the others are done or never run: left out)."""
    if len(order) < 2 or len(order) > LARGEST or slots < 1:
        return None
    play = Play(order, durations, needs, slots)
    rank = {task: place for place, task in enumerate(order)}
    best = play.makespan(rank)
    found = False
    plays, deadline = 0, time.perf_counter() + SECONDS
    better = True
    while better:
        better = False
        for a, b in itertools.combinations(order, 2):
            if priority.get(a, 2) != priority.get(b, 2):
                continue
            if plays >= BUDGET or time.perf_counter() > deadline:
                return sorted(order, key=rank.__getitem__) if found else None
            rank[a], rank[b] = rank[b], rank[a]
            plays += 1
            ends = play.makespan(rank)
            if ends < best - 1e-9:
                best, better, found = ends, True, True
            else:
                rank[a], rank[b] = rank[b], rank[a]
    return sorted(order, key=rank.__getitem__) if found else None


class Play:
    """The run played out on the durations: ``slots`` at once, each freed slot given to the ready
    task of the lowest rank, as the runner's queue gives it."""

    def __init__(
        self, tasks: Sequence[str], durations: Mapping[str, float], needs: Mapping[str, Sequence[str]], slots: int
    ) -> None:
        self.durations = {task: max(0.0, durations.get(task, 0.0)) for task in tasks}
        self.needs = {task: sum(1 for need in needs.get(task, ()) if need in self.durations) for task in tasks}
        self.after: dict[str, list[str]] = {task: [] for task in tasks}
        for task in tasks:
            for need in needs.get(task, ()):
                if need in self.after:
                    self.after[need].append(task)
        self.slots = slots

    def makespan(self, rank: Mapping[str, int]) -> float:
        waiting = dict(self.needs)
        ready = [(rank[task], task) for task, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        running: list[tuple[float, str]] = []
        now = end = 0.0
        while ready or running:
            while ready and len(running) < self.slots:
                task = heapq.heappop(ready)[1]
                heapq.heappush(running, (now + self.durations[task], task))
            now, task = heapq.heappop(running)
            end = max(end, now)
            for later in self.after[task]:
                waiting[later] -= 1
                if waiting[later] == 0:
                    heapq.heappush(ready, (rank[later], later))
        return end


class Urgency:
    """Where each of ``selected`` stands in the ready queue (``plan/graph.ReadyQueue``): its
    ``keys``, priority (P0 first), then the longest remaining path to a sink, each task on it
    weighing what ``took`` says it takes (one ``took`` leaves out: ``typical``, the median of the
    others; with none, 1, and the path counts tasks), then table order; when every task's
    duration is known and ``slots`` given, that list ``improved`` by playing the run out."""

    def __init__(
        self,
        graph: DiGraph,
        priority: Mapping[str, int],
        order: Mapping[str, int],
        selected: Collection[str],
        done: Collection[str],
        took: Mapping[str, float] | None,
        slots: int | None,
    ) -> None:
        import statistics

        from orchestrator.plan.graph import remaining_path

        self.graph = graph
        known = [seconds for node, seconds in (took or {}).items() if node in selected and seconds > 0]
        self.typical = statistics.median(known) if known else 1.0
        weights = {node: (took or {}).get(node) or self.typical for node in selected}
        path = remaining_path(graph, weights, within=selected) if selected else {}
        self.keys: dict[str, tuple[int, float, int]] = {
            n: (priority.get(n, 2), -path.get(n, self.typical), order[n]) for n in selected
        }
        if slots is not None and took is not None and all(took.get(n, 0) > 0 for n in selected):
            self._play_out(selected, done, priority, weights, slots)  # every duration known: a better list, if one is

    def _play_out(
        self,
        selected: Collection[str],
        done: Collection[str],
        priority: Mapping[str, int],
        weights: Mapping[str, float],
        slots: int,
    ) -> None:
        """The list ``improved`` finds on the tasks that can run (their dependencies selected or
        done) replaces the longest path first among tasks of the same priority."""
        from orchestrator.plan.graph import topological_order

        if len(selected) > LARGEST:
            return
        graph, keys = self.graph, self.keys
        runnable: dict[str, None] = {}  # (in dependency order)
        for node in topological_order(graph):
            needs = list(graph.predecessors(node))
            if node in selected and all(n in done or n in runnable for n in needs):
                runnable[node] = None
        listed = sorted(runnable, key=keys.__getitem__)
        needs_of = {n: [p for p in graph.predecessors(n) if p not in done] for n in listed}
        better = improved(listed, weights, needs_of, priority, slots)
        for place, node in enumerate(better or ()):
            first, _, last = keys[node]
            keys[node] = (first, float(place), last)
