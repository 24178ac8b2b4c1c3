"""The task graph: a networkx ``DiGraph`` (edges point from a dependency to its dependent), the
orderings and paths read from it, and the ready queue that decides what may start next.

This module decides *what* is ready; it never starts anything. The runner asks ``ReadyQueue`` for
the next task and reports back what finished, like doit's dispatcher.

networkx is imported where a graph is first built (``build``): it costs about 0.2 s, and
``status`` never needs a graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
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


_Key = tuple[int, float, int]


class ReadyQueue:
    """Hands out tasks whose dependencies are all done, most urgent first.

    Order among ready tasks: priority (P0 first), then the longest remaining path to a sink
    (critical path first), then table order. A task on that path weighs what ``took`` says it
    takes: in a run, every task's estimate (``run/forecasts/estimates``: learned from the runs before, or
    its Estimate cell; a task with neither weighs ``DEFAULT_SECONDS``, 60 s). A task ``took``
    leaves out weighs the median of the others (with none: 1, and the path counts tasks): a
    long task starts early, where no one waits on it alone at the end. Tasks outside
    ``selected`` are treated as already settled: ``done`` ones satisfy dependents, the others
    block them.
    """

    def __init__(
        self,
        graph: DiGraph,
        *,
        priority: Mapping[str, int],
        order: Mapping[str, int],
        selected: Iterable[str],
        done: Iterable[str] = (),
        took: Mapping[str, float] | None = None,
        slots: int | None = None,
    ) -> None:
        from orchestrator.plan.listorder import Urgency

        self._graph = graph
        self._selected = set(selected)
        self._done = set(done)
        urgency = Urgency(graph, priority, order, self._selected, self._done, took, slots)
        self._typical = urgency.typical  # what a task ``took`` leaves out weighs
        self._key: dict[str, _Key] = urgency.keys
        self._waiting: dict[str, int] = {}  # selected task -> dependencies not done yet
        self._heap: list[tuple[_Key, str]] = []
        self._finished: set[str] = set()  # completed, failed, or never to run
        self._forgotten = 0  # completed, and forgotten since (``forget``)
        self._doomed_by: dict[str, str] = {}  # never to run because of this task (``fail``)
        self._handed: set[str] = set()  # popped and not pushed back
        self.deciding: set[str] = set()  # tasks with a Condition: they run (or not) whatever their upstream did
        for node in self._selected:
            pending = sum(1 for p in graph.predecessors(node) if p not in self._done)
            self._waiting[node] = pending
            if pending == 0:
                heapq.heappush(self._heap, (self._key[node], node))

    def __len__(self) -> int:
        """Tasks ready now."""
        return len(self._heap)

    def ready(self) -> list[str]:
        """The tasks ready now, in no particular order."""
        return [node for _, node in self._heap]

    def pop(self, allowed: Callable[[str], bool] | None = None) -> str | None:
        """The most urgent ready task that ``allowed`` accepts (the others stay queued), or ``None``."""
        held: list[tuple[_Key, str]] = []
        found: str | None = None
        while self._heap:
            item = heapq.heappop(self._heap)
            if allowed is None or allowed(item[1]):
                found = item[1]
                break
            held.append(item)
        for item in held:
            heapq.heappush(self._heap, item)
        if found is not None:
            self._handed.add(found)
        return found

    def queued(self) -> list[str]:
        """The ready tasks not handed out yet, in no particular order."""
        return [task_id for _, task_id in self._heap]

    def push_back(self, task_id: str) -> None:
        """Return a popped task to the queue (its retry is due, or it was not started after all)."""
        self._handed.discard(task_id)
        heapq.heappush(self._heap, (self._key[task_id], task_id))

    def complete(self, task_id: str) -> list[str]:
        """Mark done; returns the dependents that became ready."""
        self._finished.add(task_id)
        self._done.add(task_id)
        ready: list[str] = []
        for child in self._graph.successors(task_id):
            if child in self._waiting:
                self._waiting[child] -= 1
                if self._waiting[child] == 0 and child not in self._finished:
                    heapq.heappush(self._heap, (self._key[child], child))
                    ready.append(child)
        return ready

    def fail(self, task_id: str) -> list[str]:
        """Mark failed for good; returns every selected task downstream, now never to run, in
        table order."""
        self._finished.add(task_id)
        if self.deciding:
            doomed = self._doomed_deciding(task_id)
        else:
            doomed = {n for n in descendants(self._graph, task_id) if n in self._waiting and n not in self._finished}
        self._finished |= doomed
        self._doomed_by.update(dict.fromkeys(doomed, task_id))
        self._unready(doomed)
        return sorted(doomed, key=lambda node: self._key[node][2])

    def _doomed_deciding(self, task_id: str) -> set[str]:
        """What ``task_id``'s failure dooms when some tasks decide for themselves (``deciding``:
        a Condition): such a task is not doomed; the dependency counts as settled for it, and it
        is ready once all of its are, to decide on their outcomes; nor is what lies beyond it."""
        doomed: set[str] = set()
        stack = [task_id]
        while stack:
            for child in self._graph.successors(stack.pop()):
                if child not in self._waiting or child in self._finished or child in doomed:
                    continue
                if child in self.deciding:
                    self._waiting[child] -= 1
                    if self._waiting[child] == 0:
                        heapq.heappush(self._heap, (self._key[child], child))
                else:
                    doomed.add(child)
                    stack.append(child)
        return doomed

    def add(self, node: str, *, priority: int, order: int) -> str | None:
        """A task added to the plan while it runs (``orchestrator add``, a merge's resolution
        task), its edges in the graph already: it waits for its dependencies like any other, and
        each dependent not finished now waits for it too. Returns the dependency that will never
        complete (failed, given up on, not in this run), if one does: the task is finished then."""
        self._selected.add(node)
        self._key[node] = (priority, -self._typical, order)
        blocker = self._settle(node)
        self._waited_for(node)
        return blocker

    def _waited_for(self, node: str, *, besides: Collection[str] = ()) -> None:
        """Each dependent of ``node`` (``besides`` those) not finished waits for it (again: a row's,
        a Condition's, which counted its failure as settled, when it is put back)."""
        for child in self._graph.successors(node):
            if child in self._waiting and child not in self._finished and child not in besides:
                self._waiting[child] += 1
                self._unready({child})  # (ready a moment ago: not any more)

    def _settle(self, task_id: str) -> str | None:
        """Count what ``task_id`` waits for and queue it if nothing; or the dependency that dooms it."""
        pending = 0
        for dep in self._graph.predecessors(task_id):
            if dep in self._done:
                continue
            if dep in self._finished or dep not in self._waiting:  # failed, given up, or not in this run
                self._finished.add(task_id)
                self._doomed_by[task_id] = dep
                self._waiting[task_id] = 1
                return dep
            pending += 1
        self._waiting[task_id] = pending
        if pending == 0:
            heapq.heappush(self._heap, (self._key[task_id], task_id))
        return None

    def requeue(self, task_id: str, *, priority: int) -> str | None:
        """A task not handed out yet whose dependencies (its edges in the graph already) or
        priority changed: counted again from its dependencies as they are now, as ``add`` counts a
        new one. Returns the dependency that will never complete, if one does: finished then."""
        self._unready({task_id})
        _, path, order = self._key[task_id]
        self._key[task_id] = (priority, path, order)
        return self._settle(task_id)

    def cancel(self, task_id: str) -> list[str]:
        """Never start ``task_id`` (ready or waiting); returns what ``fail`` returns."""
        self._unready({task_id})
        return self.fail(task_id)

    def _unready(self, task_ids: Collection[str]) -> None:
        """``task_ids`` out of the ready heap, where they are."""
        if task_ids and any(item[1] in task_ids for item in self._heap):
            self._heap = [item for item in self._heap if item[1] not in task_ids]
            heapq.heapify(self._heap)

    def revive(self, task_id: str, priority: int, order: int) -> tuple[list[str], dict[str, str]]:
        """Put a failed, skipped or cancelled task back, with every task downstream that was given
        up with it: returns those queued again (waiting or ready), in dependency order, and those
        that stay given up, each with the dependency that still dooms it."""
        if task_id not in self._key:
            self._key[task_id] = (priority, -1.0, order)
            self._selected.add(task_id)
        # Only what was given up because of it (or of what it took down): a task that failed or
        # was cancelled itself stays so.
        family = [task_id] + [node for node in descendants(self._graph, task_id) if node in self._doomed_by]
        for node in family:
            self._finished.discard(node)
            self._handed.discard(node)
            self._doomed_by.pop(node, None)
        for node in family:
            self._waited_for(node, besides=family)
        back: list[str] = []
        doomed: dict[str, str] = {}
        for node in topological_order(self._graph.subgraph(family), {n: self._key[n][2] for n in family}):
            blocker = self._settle(node)
            if blocker is None:
                back.append(node)
            else:
                doomed[node] = blocker
        return back, doomed

    @property
    def done(self) -> set[str]:
        """The tasks that completed (in this run or before it): dependents may start."""
        return self._done

    @property
    def finished_count(self) -> int:
        """How many tasks completed, failed or were given up on in this queue."""
        return len(self._finished) + self._forgotten

    def finished(self, task_id: str) -> bool:
        """Whether ``task_id`` completed, failed or was given up on in this queue."""
        return task_id in self._finished

    def forget(self, task_ids: Collection[str]) -> None:
        """``task_ids``, completed, out of the queue's memory (a row's items that left the run's
        plan, ``run/rows``): counted finished still, their dependents' counts as they are."""
        for task_id in task_ids:
            if task_id in self._done and task_id in self._finished:
                self._forgotten += 1
                for place in (self._selected, self._done, self._finished, self._handed):
                    place.discard(task_id)
                self._key.pop(task_id, None)
                self._waiting.pop(task_id, None)

    def drain(self) -> list[str]:
        """Every selected task not yet handed out or finished (after ``--fail-fast``, say), in
        table order; the queue is empty afterwards."""
        rest = [n for n in self._waiting if n not in self._finished and n not in self._handed]
        self._heap = []
        self._finished.update(rest)
        return sorted(rest, key=lambda node: self._key[node][2])
