"""The ready queue: which of a run's tasks may start next, most urgent first (``plan/listorder.Urgency``
orders them), as the tasks it handed out complete, fail or are given up.

It decides *what* is ready; it never starts anything. The runner asks ``ReadyQueue`` for the
next task and reports back what finished, like doit's dispatcher.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping

from orchestrator.plan.graph import DiGraph, descendants, topological_order

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
            if task_id in self._done:  # (completed in this run, or before it)
                self._forgotten += task_id in self._finished
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
