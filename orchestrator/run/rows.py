"""A run's rows with an ``Each`` cell (``run/items`` finds their items and makes their instances):
what each instance's end does to the others, and the row settled once they have all ended.

- **An upstream's list, in this run**: the row's turn comes when that upstream completes
  (``Rows.settle`` finds no instances yet): its instances join the run, and the row waits for them.
- **Many items**: a row keeps at most its window of instances in the run not ended (``plan/
  instances.Later``); as they end, the next join (``ended``), so that the run starts its first
  within moments of its start, whatever the row's size. The row's turn comes once none is left
  outside (``settle`` joins the next if one is).
- ``on_item_failure: fail`` (the default): the first instance that ends without completing stops
  those of its row not started yet (skipped). ``continue``: the others go on.
- **The row settles** once every instance has ended: completed, its result listing every item's
  answer in order and ending with the JSON ``{"items": [...], "failed": [...]}`` (what a
  dependent's Condition reads as ``T-03.items``), when no item failed, or, with ``continue``, when at
  least ``min_success`` of them completed; else failed, naming the failed items.
- ``state/items/`` (``state/items``) holds each row's counts and instances for the views: written
  as its instances start and end (at most once a second each row, the rest by the run's flush),
  and as it settles and the run ends.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from orchestrator import documents
from orchestrator.errors import PlanError, shown
from orchestrator.moments import iso_at
from orchestrator.plan.instances import Instances, Later
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import output_fields
from orchestrator.plan.table.items import split_instance
from orchestrator.run.board import Board
from orchestrator.run.items import answer_on_disk, may_wait, resolve, window_of
from orchestrator.run.itemtable import ItemTable
from orchestrator.run.recorder import Recorder
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.worktrees.merges import MergeQueue
from orchestrator.state import items as kept
from orchestrator.state.causes import Cause, CauseKind
from orchestrator.state.events.tasks import ItemsKnown
from orchestrator.state.results import ResultRecord, read_record
from orchestrator.state.status import TaskView
from orchestrator.state.workspace import Workspace, result_file_of
from orchestrator.vocabulary import TaskStatus

# Seconds between two writes of a row's list of instances while they run: at 100,000 items the list
# is some 3 MB and takes a tenth of a second to make; its counts are written each second.
LISTED_EVERY = 10.0


def row_record(
    row: Task, status: TaskStatus, reason: str | None, backend: str, fingerprint: str | None
) -> ResultRecord:
    now = iso_at(time.time())
    return ResultRecord(task=row.id, agent=row.agent, name=row.title, status=status, attempts=0, run_attempts=0,
                        reason=reason, started=now, finished=now, duration=0.0, backend=backend,
                        fingerprint=fingerprint)  # fmt: skip


def body_of(
    entries: list[tuple[str, str]], outputs: Callable[[int], str | None], failed: list[str], declared: bool
) -> Iterator[str]:
    """A settled row's result, a piece at a time (``state/results.write_result`` spools them to
    disk): every item's answer in order (``entries``: each instance's id and item; ``outputs``: its
    answer by its number, read as it is reached, never all held at once), then the JSON a
    dependent reads, ``{"items": [...], "failed": [...]}`` as ``json.dumps`` writes it, its items
    spooled to a temp file meanwhile."""
    done = len(entries) - len(failed)
    yield f"📦 {done:,} of {len(entries):,} items done" + (f", {len(failed):,} not" if failed else "") + "\n"
    undone = set(failed)  # (a list of thousands, asked of each of 100,000 items)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as answers:
        for index, (task_id, item) in enumerate(entries):
            output = (outputs(index + 1) or "").strip()
            status = "" if task_id not in undone else " (did not complete)"
            yield f"\n## {task_id} · {item}{status}\n\n{output or '(no output)'}\n"
            answers.write(
                (", " if index else "") + json.dumps(output_fields(output) if declared else output, ensure_ascii=False)
            )
        answers.seek(0)
        yield '\n```json\n{"items": ['
        while chunk := answers.read(1 << 20):
            yield chunk
    yield "], " + json.dumps({"failed": failed}, ensure_ascii=False)[1:] + "\n```\n"


def _item_result(workspace: Workspace, slug: str, number: int) -> Path:
    """Where the result of instance ``number`` of the row whose files are named ``slug`` is."""
    return workspace.results_dir / result_file_of(f"{slug}[{number}]", instance=True)


def verdict(total: int, failed: list[str], policy: str, min_success: float, unstarted: int = 0) -> str | None:
    """Why a row whose ``failed`` items of ``total`` did not complete fails (``unstarted`` of them
    not started, for another's failure), or ``None``: it completes."""
    if not failed:
        return None
    if policy == "fail":
        ended = failed[: len(failed) - unstarted] or failed  # (``failed``: those that ran first)
        rest = f"; {unstarted:,} not started" if unstarted else ""
        return f"{_named(ended)} did not complete (on_item_failure: fail){rest}"
    share = (total - len(failed)) / total if total else 1.0
    if share < min_success:
        return f"{share:.1%} of its items completed, fewer than min_success: {min_success:.0%}"
    return None


def items_note(total: int, failed: list[str]) -> str | None:
    if not failed:
        return None
    return f"{len(failed):,} of {total:,} items did not complete: {_named(failed)}"


def _named(ids: list[str]) -> str:
    """The first five of ``ids``, and how many more."""
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5:,} more" if len(ids) > 5 else "")


def stopped_by(instance: str) -> Cause:
    """Why an instance not started yet does not start: ``instance`` of its row failed."""
    return Cause.of(CauseKind.STOPPED, f"not started: {instance} did not complete (on_item_failure: fail)")


class Rows:
    """This run's rows with an ``Each`` cell: each row's instances, what one ending without
    completing does to the others (``ended``), and the row settled at its turn (``settle``). It
    acts on the loop's task, through the board (``attach``)."""

    def __init__(self, prepared: Prepared, workspace: Workspace, recorder: Recorder, merges: MergeQueue | None) -> None:
        self.prepared, self.workspace, self.recorder, self.merges = prepared, workspace, recorder, merges
        plan = self.plan = prepared.plan
        self.instances: dict[str, list[str]] = {}  # row -> its instances' ids, in order (once known)
        for task in plan.tasks.values():
            if task.row is not None:
                self.instances.setdefault(task.row, []).append(task.id)
        for task in plan.tasks.values():
            if task.each is not None and task.id not in self.instances and task.each.known_now() is not None:
                self.instances[task.id] = []  # (a list of no items: known, and none)
        self.open: dict[str, set[str]] = {}  # a row with instances outside the plan -> those in it not ended
        self.table = ItemTable()  # (those that completed and left it)
        self.leaving: list[str] = []  # completed since the last flush: they leave the plan at the next
        self.leave_now: list[str] = []  # completed before the last flush: they leave at this one
        for row, later in plan.later.items():
            self.instances[row] = later.ids()
            self.open[row] = {t for t in prepared.selection.run if t in plan.tasks and plan.tasks[t].row == row}
            self._keeps(row, len(later.items))
            if self.table.kept(row):  # (those an earlier run completed leave the plan at the first flush)
                done = TaskStatus.COMPLETED
                self.leave_now += [t for t in self.instances[row] if (v := prepared.views.get(t)) and v.status == done]
        for row, ids in self.instances.items():  # (what the run has of each row from its start)
            cell = plan.tasks[row].each
            recorder.emit(ItemsKnown(task=row, items=len(ids), each=cell.cell if cell is not None else ""))
        self.stopped: set[str] = set()  # rows whose first failed instance stopped the others not started
        self.shown = RowsShown(workspace, plan, recorder.views, self.instances, self.table)  # (``state/items``)
        self.board: Board | None = None
        self.shown.write_all()  # (what a view shows from the run's start: the instances done before it, the rest to do)

    def attach(self, board: Board) -> None:
        self.board = board
        board.ended = self.ended

    # --- on the loop ------------------------------------------------------------------------------

    def ended(self, task_id: str, completed: bool) -> None:
        """``task_id`` ended: if it is an instance, its row's counts, and the next of its row join
        the run; if it did not complete and its row stops at its first such (``on_item_failure:
        fail``), the row's instances not started yet never start."""
        task = self.plan.tasks.get(task_id)
        if task is None or task.row is None or self.board is None:
            return
        row = task.row
        self.shown.touched(row)
        if row in self.open:
            self.open[row].discard(task_id)
        if completed and self.table.kept(row):
            self.leaving.append(task_id)
        if completed or self.prepared.settings[row].on_item_failure != "fail" or row in self.stopped:
            return self._more(row)
        self.stopped.add(row)
        later = self.plan.later.get(row)
        if later is not None and later.left:  # (those outside the plan too: each is told it does not start)
            self._add(self.plan.tasks[row], later.take(len(later.left)))
        waiting = (TaskStatus.PENDING, TaskStatus.WAITING)
        for other in self.instances.get(row, ()):
            view = self.recorder.views.get(other)  # (none: it completed, and left the plan)
            if view is not None and view.status in waiting and self.board.untouched(other):
                self.board.stop_unstarted(other, stopped_by(task_id))

    def settle(self, row: Task, fingerprint: Callable[[str], str]) -> None:
        """``row``'s turn: given up if what it depends on did not complete; its instances made and
        joined if its items were not known, or the next if some are still outside the run (it
        waits for them); else settled by its instances."""
        board, views = self.board, self.recorder.views
        assert board is not None
        blocker = next((dep for dep in row.dependencies if views[dep].status != TaskStatus.COMPLETED), None)
        if blocker is not None:
            status = views[blocker].status
            given = TaskStatus.BYPASSED if status == TaskStatus.BYPASSED else TaskStatus.SKIPPED
            return board.give_up(row.id, given, Cause.upstream(blocker, status))
        if row.id not in self.instances:
            try:
                found = resolve(row, self.workspace, answer_on_disk(self.workspace, self.plan), shown(self.plan.path))
                maker = Instances(row, where=shown(self.plan.path))
                if found is not None and maker.problems:
                    raise PlanError(maker.problems)
            except PlanError as exc:
                return board.give_up(row.id, TaskStatus.FAILED, Cause.of(CauseKind.FAILED, exc.problems[0].message))
            if found is None:
                said = f"its items are not known: {row.each.source if row.each else 'its upstream'} gave no answer"
                return board.give_up(row.id, TaskStatus.FAILED, Cause.of(CauseKind.FAILED, said))
            window = window_of(self.plan.settings) if may_wait(row) else max(len(found), 1)
            known = Later(maker, found, deque(range(1, len(found) + 1)), window)
            self.instances[row.id], self.open[row.id] = known.ids(), set()
            if found:
                self.plan.later[row.id] = known
                self._keeps(row.id, len(found))
                return self._join(row, known)
        later = self.plan.later.get(row.id)
        if later is not None and later.left:  # (its instances in the run all ended, and more wait: the next join)
            self._add(row, later.take(later.window))
            return self.recorder.views[row.id].move(TaskStatus.WAITING)
        self._settled(row, fingerprint)

    def _join(self, row: Task, later: Later) -> None:
        """``row``'s items known in this run: the first of its instances join it, the row waiting for each."""
        self._add(row, later.take(later.window))
        self.recorder.views[row.id].move(TaskStatus.WAITING)
        each = row.each.cell if row.each else ""
        self.recorder.emit(ItemsKnown(task=row.id, items=len(later.items), each=each, joined=True))
        self.shown.touched(row.id, force=True)

    def _more(self, row: str) -> None:
        """The next of ``row``'s instances outside the run join it, once half its window has ended."""
        later, open_now = self.plan.later.get(row), self.open.get(row)
        if later is None or not later.left or open_now is None or len(open_now) > later.window // 2:
            return
        self._add(self.plan.tasks[row], later.take(later.window - len(open_now)))
        view = self.recorder.views[row]
        if view.status == TaskStatus.PENDING:  # (its last instance in the run ended a moment ago)
            view.move(TaskStatus.WAITING)

    def summoned(self, task_id: str) -> Task | None:
        """``task_id``, an instance outside the run that a person's cancel or retry names: joined
        now if it waits to; back as completed, not to run, if it completed and left the plan (so
        that it is answered as any completed task is); ``None``: no such instance."""
        split = split_instance(task_id)
        later = self.plan.later.get(split[0]) if split is not None else None
        if later is None or split is None:
            return None
        row, number = split
        made = later.take_number(number)
        if made is not None:
            self._add(self.plan.tasks[row], [made])
        elif self.table.completed(row, number):
            made = self.plan.tasks[task_id] = later.maker.make(number, later.items[number - 1])
            self.recorder.views[task_id] = TaskView.of(made, TaskStatus.COMPLETED)
        return made

    def _add(self, row: Task, made: list[Task]) -> None:
        """``made``, ``row``'s instances, join the run: each ready once what the row waits for is
        done, the row waiting for each."""
        prepared, board = self.prepared, self.board
        assert board is not None
        settings = prepared.settings[row.id]
        for task in made:
            prepared.join(task, settings, prepared.profiles)
            self.plan.graph.add_edge(task.id, row.id)
            if self.merges is not None:
                self.merges.take(task, settings)
        for task in made:
            board.join(task, prepared.views[task.id])
        self.open.setdefault(row.id, set()).update(task.id for task in made)

    def _keeps(self, row: str, items: int) -> None:
        """``row``'s instances leave the plan as they complete, into the table: unless each waits
        for its merge (a worktree of its own), which the merge queue holds it for."""
        if self.prepared.settings[row].isolation != "worktree":
            self.table.keeps(row, items)

    def _leave(self) -> None:
        """The instances that completed before the last flush leave the run's plan (all that is
        done with them is done: recorded, told, their dependents' counts moved), into the table."""
        gone, views = [], self.recorder.views
        for task_id in self.leave_now:
            task, view = self.plan.tasks.get(task_id), views.get(task_id)
            if task is None or view is None or view.status != TaskStatus.COMPLETED or task.row is None:
                continue  # (left already, or revived since)
            record = self.recorder.forget(task_id) or self.prepared.records.get(task_id)  # (this run's, or before it)
            if record is not None:
                self.table.leave(task.row, task.number, record)
                gone.append(task_id)
        self.leave_now, self.leaving = self.leaving, []
        if gone:
            assert self.board is not None
            self.board.forget(gone)
            self.prepared.leave(set(gone))

    def _completed(self, row: str, number: int, task_id: str) -> bool:
        if self.table.completed(row, number):
            return True
        view = self.recorder.views.get(task_id)
        return view is not None and view.status == TaskStatus.COMPLETED

    def _settled(self, row: Task, fingerprint: Callable[[str], str]) -> None:
        board, recorder, ws, views = self.board, self.recorder, self.workspace, self.recorder.views
        assert board is not None
        ids = self.instances[row.id]
        failed = [task_id for number, task_id in enumerate(ids, 1) if not self._completed(row.id, number, task_id)]
        unstarted = [
            t for t in failed if (v := views.get(t)) and v.cause is not None and v.cause.kind == CauseKind.STOPPED
        ]
        held_back = set(unstarted)
        failed = [t for t in failed if t not in held_back] + unstarted  # (those that ran first)
        settings = self.prepared.settings[row.id]
        reason = verdict(len(ids), failed, settings.on_item_failure, settings.min_success, len(unstarted))
        if reason is not None:
            board.give_up(row.id, TaskStatus.FAILED, Cause.of(CauseKind.FAILED, reason))
        else:
            later = self.plan.later.get(row.id)
            items = later.items if later is not None else [self.plan.tasks[t].item or "" for t in ids]
            path = functools.partial(_item_result, ws, row.slug)
            body = body_of(list(zip(ids, items, strict=True)), lambda n: documents.read_output(path(n)), failed,
                           bool(row.outputs))  # fmt: skip
            brief = documents.read_body(ws.brief(row))
            record = row_record(row, TaskStatus.COMPLETED, items_note(len(ids), failed), settings.backend,
                                fingerprint(brief) if brief is not None else None)  # fmt: skip
            rest = (recorder.records.get(t) or read_record(path(n), t) for n, t in enumerate(ids, 1) if t in views)
            spend = self.table.spent(row.id, (record for record in rest if record is not None))
            record = dataclasses.replace(record, inputs=recorder.inputs_of(row), **spend.fields())
            recorder.write(row, record, body)
            recorder.told_completed(row, record)
            board.completed(row.id)
        self.shown.touched(row.id, force=True)

    def flush(self) -> None:
        """The run's flush, once a second: the instances completed before the last one leave the
        plan, and the rows whose instances moved since their last write are written."""
        self._leave()
        self.shown.flush()


class RowsShown:
    """What the views read of a run's rows over items (``state/items``): each row's counts and the
    list of its instances with their states, the table's (``run/itemtable``) and those outside
    the plan included, written as they move (``touched``) and as the run begins and ends."""

    def __init__(
        self, workspace: Workspace, plan: Plan, views: Mapping[str, TaskView], instances: dict[str, list[str]],
        table: ItemTable,
    ) -> None:  # fmt: skip
        self.workspace, self.plan, self.views, self.instances, self.table = workspace, plan, views, instances, table
        self.written: dict[str, float] = {}  # row -> when its ``state/items`` were last written
        self.dirty: set[str] = set()  # rows whose instances moved since (``flush``)
        self.listed: dict[str, float] = {}  # row -> when the list of its instances was last written

    def touched(self, row: str, *, force: bool = False) -> None:
        """``row``'s instances moved: its counts written, at most once a second, and the list of its
        instances at most once in ``LISTED_EVERY`` seconds (the run's flush writes what waits);
        ``force``: both now (the row joined, settled, the run ends)."""
        now = time.monotonic()
        if not force and now - self.written.get(row, -LISTED_EVERY) < 1.0:
            self.dirty.add(row)  # (written by the next ``flush``)
            return
        self.dirty.discard(row)
        self.written[row] = now
        plan = self.plan
        ids = self.instances.get(row)
        task = plan.tasks[row]
        source = task.each.cell if task.each else ""
        if ids is None:
            kept.write(self.workspace, kept.RowSummary(row, 0, {}, False, source, round(time.time(), 3)), [])
            return
        listed = force or now - self.listed.get(row, -LISTED_EVERY) >= LISTED_EVERY
        if not listed:  # (the counts alone: one pass over the states, not a list of 100,000 written)
            kept.write(self.workspace, kept.summarize(row, self._states(row, ids), source=source), None)
            self.dirty.add(row)  # (its list, stale: written by a flush once it is due)
            return
        self.listed[row] = now
        later = plan.later.get(row)
        if later is not None:  # (ids: the instances' in number order, those outside the plan too)
            entries = list(zip(range(1, len(ids) + 1), later.items, self._states(row, ids), strict=True))
        else:
            entries = [(plan.tasks[t].number, plan.tasks[t].item or "", state) for t, state in
                       zip(ids, self._states(row, ids), strict=True)]  # fmt: skip
        kept.write(self.workspace, kept.summarize(row, (state for _, _, state in entries), source=source), entries)

    def _states(self, row: str, ids: list[str]) -> Iterator[str]:
        """Each of ``ids``' state: its view's; one outside the plan waits as those in it not started do."""
        views = self.views
        if row not in self.plan.later:
            yield from (str(views[t].status) for t in ids)
            return
        done = all(views[dep].status == TaskStatus.COMPLETED for dep in self.plan.tasks[row].dependencies)
        idle, completed = str(TaskStatus.PENDING if done else TaskStatus.WAITING), str(TaskStatus.COMPLETED)
        table = self.table
        for number, task_id in enumerate(ids, 1):
            view = views.get(task_id)
            if view is not None:
                yield str(view.status)
            else:
                yield completed if table.completed(row, number) else idle

    def flush(self) -> None:
        """The rows whose instances moved since their last write, written (the run's flush)."""
        for row in list(self.dirty):
            self.touched(row)

    def write_all(self) -> None:
        """Every row's ``state/items``, as the run begins and ends."""
        for row in [task.id for task in self.plan.tasks.values() if task.each is not None]:
            self.touched(row, force=True)
