"""The merge queue of a run with ``isolation: worktree``: each completed task's branch merged into
the integration branch, one at a time, before anything that depends on it starts.

    attempt ends ──▶ Trees.finish (its work committed) ──▶ MergeQueue.land (one at a time):
        no conflict markers left? ──▶ marked (``git/marks``) ──▶ merge --no-ff into the integration worktree
            ├─ merged ──▶ verify (if set) ──▶ ok: the task completes
            │                              └─ fails: the merge is undone, the task fails with its output
            └─ conflict (aborted: nothing merged)
                 ├─ on_conflict: fail    ──▶ the task fails, the conflict listed, with what to do:
                 │                            resolved by hand on its branch, the next run merges it
                 │                            without running it again (``run/worktrees/handmerge``, ``kept``)
                 └─ on_conflict: resolve ──▶ the task completes; a resolution task is written into
                                              master_plan.md (its brief: both sides, the hunks) and
                                              its dependents wait for it (``adopt``)

``land`` runs on the attempt's own task, so a long ``verify`` holds up no other attempt; one
lock makes the merges one at a time, in the order tasks complete, which is dependency order (a
task starts only once all it depends on is merged). ``adopt`` runs on the loop's task: it is the
only place a run's plan grows, and what the lead's living queue (``orchestrator add``) will share.

The mark (where the integration branch stood) stays until the task's result is written
(``recorded``): a runner killed before leaves a merge no result records, which the next run
takes back out (``isolate``: ``MergeMarks.unrecorded``) before the task runs again.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Awaitable, Callable

import anyio

from orchestrator import backends
from orchestrator.backends.base import AgentResult, tail
from orchestrator.documents import read_body
from orchestrator.executors.base import Executor, Launch, Limits
from orchestrator.executors.worktree import WorktreeExecutor
from orchestrator.git.lanes import Lanes
from orchestrator.git.marks import MergeMarks, merge_message
from orchestrator.git.merging import Conflict
from orchestrator.git.repo import rev
from orchestrator.git.work import Work
from orchestrator.git.worktrees import Trees
from orchestrator.machine.core import Machine
from orchestrator.machine.stimuli import MergeConflicted
from orchestrator.output.briefs import render_briefs
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.model import Task
from orchestrator.plan.queue import ReadyQueue
from orchestrator.plan.table.cells import id_problem
from orchestrator.run.attempts import Attempt, Outcome
from orchestrator.run.resume.prepared import Prepared
from orchestrator.run.telling import Desk
from orchestrator.run.worktrees.handmerge import KEPT, HandMerge, failed_on_conflict
from orchestrator.state.journal import attempt_environment
from orchestrator.state.planrows import NewTask, add_task
from orchestrator.state.plans import plan_of
from orchestrator.state.results import ResultRecord
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ErrorClass, TaskStatus

VERIFY_TAIL = 3000  # characters of a failed verify's output a task's failure shows
# A result of these records its attempt's merge; of any other, the merges of the attempts before it
_DID_WORK = (TaskStatus.COMPLETED, TaskStatus.AWAITING_APPROVAL)


def isolate(
    workspace: Workspace,
    prepared: Prepared,
    executor: Executor,
    tell: Callable[[str], None] = print,
    desk: Desk | None = None,
) -> tuple[Executor, MergeQueue | None]:
    """The executor a run's attempts go to, and its merge queue: ``executor`` itself and none when
    no task runs in a worktree (or no process runs: a simulating executor, the fake). The lanes a
    dead runner's races left are taken up (``Lanes.left``), and the task branches its races moved
    with no result to say so set back (``Lanes.unrecorded``), and the merges a dead runner made with
    no result to record them taken back out of the integration branch (``MergeMarks.unrecorded``):
    each told to ``tell``."""
    isolated = {t for t, s in prepared.settings.items() if s.isolation == "worktree"}
    if not isolated or executor.can.simulated:
        return executor, None
    plan = prepared.plan
    trees = Trees.of(workspace.project_dir, workspace.root, plan.settings.integration_branch)
    trees.prepare()
    lanes, records = Lanes(trees), prepared.records
    attempts = {t: r.attempts for t, r in records.items()}
    merged = {t: r.attempts if r.status in _DID_WORK else r.attempts - 1 for t, r in records.items()}
    racing = lanes.racing(attempts)
    for said in [*lanes.left(), *lanes.unrecorded(attempts), *MergeMarks(trees).unrecorded(merged, racing)]:
        tell(said)
    titles = {task.id: task.title for task in plan.tasks.values()}
    wrapped = WorktreeExecutor(executor, trees, isolated, titles)
    return wrapped, MergeQueue(workspace, prepared, trees, wrapped, desk if desk is not None else Desk(Machine()))


class MergeQueue:
    def __init__(
        self, workspace: Workspace, prepared: Prepared, trees: Trees, executor: WorktreeExecutor, desk: Desk
    ) -> None:
        self.workspace = workspace
        self.desk = desk  # the run's machine: its ``merge`` rule says what a conflict leads to
        self.prepared = prepared
        self.trees = trees
        self.marks = MergeMarks(trees)  # each merge marked before it is made, until a result records it
        self.marked: dict[str, int] = {}  # (the marks this run made and has not cleared: task, attempt)
        self.hand = HandMerge(trees)  # (a conflict a person resolves; its integration worktree is the queue's)
        self.integration = self.hand.integration
        self.executor = executor
        self._lock = anyio.Lock()
        self.start = rev(trees.integration_path, "HEAD")  # the integration branch as the run found it
        self.writing: set[str] = set()  # resolution tasks written into the plan, not adopted yet:
        # ``run/inflight/live``, which reads the plan file too, leaves them to ``adopt``

    def merged_branch(self) -> str | None:
        """The integration branch when this run merged work into it (its tip moved), else ``None``:
        a run that merged nothing has put no work there to bring into the person's branch."""
        moved = rev(self.trees.integration_path, "HEAD") != self.start
        return self.trees.integration if moved else None

    # --- on the attempt's task --------------------------------------------------------------------

    async def land(self, outcome: Outcome) -> Outcome:
        """``outcome`` once its task's branch is merged (or why it was not): a completed attempt
        in a worktree only; any other outcome is as it was."""
        work = outcome.run.work
        if work is None or not outcome.result.completed:
            return outcome
        async with self._lock:
            landed = await self._land(outcome, work)
        note = work.ignored_note(self.workspace.relative(self.trees.path(outcome.attempt.task.id)))
        if note is None or not landed.result.completed:
            return landed
        return _noted(landed, note, merged="; ".join(m for m in (landed.merged, note) if m))

    async def landed(
        self, attempt: Attempt, record: ResultRecord | None, run: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        """``attempt``'s outcome once its branch is merged (``land``): the attempt run (``run``),
        or, for a task ``on_conflict: fail`` failed whose conflict a person has resolved on its
        branch since (``record``: its result), the attempt that failed on it, not run again
        (``run/worktrees/handmerge``)."""
        kept = None
        if self._kept_apart(attempt.task.id, record):
            assert record is not None
            kept = await anyio.to_thread.run_sync(self.hand.kept, self.workspace, attempt, record)
        return await self.land(kept or await run())

    def unresolved(self, task: Task, record: ResultRecord | None, of_brief: Callable[[str], str]) -> str | None:
        """Why ``task``, which ``on_conflict: fail`` failed and is what it was then, stays failed,
        not run: its conflict not resolved yet (the machine's ``conflict`` rule reads it, and it
        is told again, with what to do). ``None``: it runs, or merges (``landed``)."""
        if record is None or not self._kept_apart(task.id, record):
            return None
        brief = read_body(self.workspace.brief(task))
        if brief is None or record.commit is None or of_brief(brief) != record.fingerprint:
            return None
        found = self.hand.standing(task.id, record.commit)
        return None if found is None or found.merges else found.why

    def _kept_apart(self, task_id: str, record: ResultRecord | None) -> bool:
        """Whether ``task_id`` is one ``on_conflict: fail`` failed, not asked to run again (``run --rerun``)."""
        isolated = task_id in self.executor.isolated
        return isolated and task_id not in self.prepared.afresh and failed_on_conflict(record)

    async def _land(self, outcome: Outcome, work: Work) -> Outcome:
        task, settings = outcome.attempt.task, outcome.attempt.settings
        trees, integration = self.trees, self.trees.integration
        if work.problem is not None:
            parted = work.unresolved or work.strayed  # what the task left and its branch parted: no retry mends it
            return _failed(outcome, ErrorClass.CONFLICT if parted else ErrorClass.INTERNAL, work.problem)
        where = trees.path(task.id)
        left = await anyio.to_thread.run_sync(self.integration.conflict_markers, work.branch)
        if left:
            message = f"conflict markers are left in {', '.join(left)}: resolve them in {where}, then run again"
            return _failed(outcome, ErrorClass.CONFLICT, message)
        await anyio.to_thread.run_sync(self.marks.mark, task.id, outcome.attempt.number)
        self.marked[task.id] = outcome.attempt.number
        merged = await anyio.to_thread.run_sync(self.integration.merge, work.branch, merge_message(task.id))
        if isinstance(merged, Conflict):
            clash = f"its branch {work.branch} conflicts with {integration} in {merged.listed()}"
            met = MergeConflicted(id=self.desk.stamp(), task=task.id, on_conflict=settings.on_conflict)
            if self.desk.tell(met).apart:  # (the machine's ``merge`` rule)
                kept = f"{clash}; {KEPT} — {self.hand.advice(task.id)}"
                return _failed(outcome, ErrorClass.CONFLICT, kept)
            added = await anyio.to_thread.run_sync(self._resolution, task, work, merged)
            note = f"{clash}: resolution task {added} added to the plan"
            return _noted(outcome, note, merged=f"conflict in {merged.listed()}: resolved by {added}", added=(added,))
        if merged.after != merged.before and settings.verify:
            try:
                failure = await self._verify(outcome, settings)
            except BaseException:  # cancelled: what was not verified is not left merged
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.integration.undo, merged.before)
                raise
            if failure is not None:
                await anyio.to_thread.run_sync(self.integration.undo, merged.before)
                message = f"verify `{settings.verify}` failed after merging {work.branch} (merge undone): {failure}"
                return _failed(outcome, ErrorClass.VERIFY, message)
        if merged.after == merged.before:
            return dataclasses.replace(outcome, merged=f"nothing to merge: {integration} has all of it")
        return dataclasses.replace(outcome, merged=f"merged into {integration} at {merged.after[:12]}")

    async def _verify(self, outcome: Outcome, settings: Settings) -> str | None:
        """Run ``verify`` in the integration worktree (the project's place in it); ``None`` when it
        passes, else the end of what it wrote."""
        attempt, ws = outcome.attempt, self.workspace
        stem = ws.log_stem(attempt.task, attempt.number)
        out, err = stem.with_name(stem.name + ".verify.out"), stem.with_name(stem.name + ".verify.err")
        assert settings.verify is not None
        launch = Launch(
            attempt.task.id,
            attempt.number,
            ("sh", "-c", settings.verify),
            self.trees.inside(ws.project_dir, self.trees.integration_path),
            {**os.environ, **attempt_environment(ws.root, attempt.task.id, attempt.number)},
            None,
            out,
            err,
            Limits(timeout=settings.timeout, grace=settings.kill_grace, log_cap=settings.log_cap),
        )
        run = await self.executor.inner.run(launch)
        await anyio.to_thread.run_sync(self.integration.tidy)
        if run.ok:
            return None
        said = (tail(out, VERIFY_TAIL) + "\n" + tail(err, VERIFY_TAIL)).strip()
        return f"{run.describe(launch.limits)}" + (f"\n{said[-VERIFY_TAIL:]}" if said else "")

    def _resolution(self, task: Task, work: Work, conflict: Conflict) -> str:
        """Write the task that resolves ``conflict`` into the plan; its id."""
        plan = self.prepared.plan
        taken = {t.lower() for t in plan.tasks}
        base = task.id.replace("[", "-").replace("]", "")  # (an instance's T-03[2]: no id has brackets)
        new_id = f"{base}-merge"
        number = 2
        while new_id.lower() in taken or id_problem(new_id) is not None:
            new_id = f"{base[:50]}-merge-{number}"
            number += 1
        dependents = tuple(t.id for t in plan.tasks.values() if task.id in t.dependencies)
        by_hand = backends.runs_script(self.prepared.plan.settings.backend)  # (no agent to resolve it)
        details = _resolution_brief(task, work, conflict, self.trees, by_hand=by_hand)
        self.writing.add(new_id)
        add_task(
            self.workspace.plan_file,
            NewTask(
                new_id,
                f"Merge {task.id}",
                f"Resolve the conflicts between {task.id}'s branch and {self.trees.integration}",
                (task.id,),
                task.priority_name,
                details,
                dependents,
                # (a person resolves it by hand: until then each attempt fails the same, so none is retried)
                retries=0 if by_hand else None,
            ),
        )
        return new_id

    # --- on the loop's task -----------------------------------------------------------------------

    def recorded(self, task_id: str) -> None:
        """``task_id``'s result is written (``Recorder.write``): the mark of its merge cleared, as the
        result records the merge, or that none stayed (a conflict, a failed ``verify`` undone)."""
        number = self.marked.pop(task_id, None)
        if number is not None:
            self.marks.clear(task_id, number)

    def adopt(self, added: tuple[str, ...], queue: ReadyQueue) -> None:
        """Tasks the merge queue wrote into the plan join this run: read from the plan file as it
        is now (their agent ids given, their briefs rendered), into the run's plan, settings,
        views, selection and ``queue``, with the dependents now waiting for them."""
        prepared, ws = self.prepared, self.workspace
        fresh = plan_of(ws)
        render_briefs(fresh, ws)
        plan = prepared.plan
        for task_id in added:
            self.writing.discard(task_id)
            task = fresh.tasks[task_id]
            settings = prepared.profiles.settings_for(plan, task)
            prepared.join(task, settings, prepared.profiles)
            for other in fresh.tasks.values():
                if task_id in other.dependencies and other.id in plan.tasks:
                    plan.tasks[other.id] = dataclasses.replace(plan.tasks[other.id], dependencies=other.dependencies)
                    plan.graph.add_edge(task_id, other.id)
                    prepared.views[other.id].dependencies = list(other.dependencies)
            self.take(task, settings)
            queue.add(task_id, priority=task.priority, order=plan.order[task_id])

    def take(self, task: Task, settings: Settings) -> None:
        """A task that joined the run goes to its worktree if its settings say so (its title for
        the commits made for it)."""
        self.executor.titles[task.id] = task.title
        if settings.isolation == "worktree":
            self.executor.isolated.add(task.id)


def _failed(outcome: Outcome, error: ErrorClass, message: str) -> Outcome:
    """The outcome of a completed attempt whose work could not be merged: the task fails."""
    result = dataclasses.replace(outcome.result, completed=False, error_class=error, message=message)
    return dataclasses.replace(outcome, result=result, merged=message)


def _noted(outcome: Outcome, note: str, **changes: object) -> Outcome:
    message = "; ".join(m for m in (outcome.result.message, note) if m)
    result: AgentResult = dataclasses.replace(outcome.result, message=message)
    return dataclasses.replace(outcome, result=result, **changes)  # type: ignore[arg-type]


def _resolution_brief(task: Task, work: Work, conflict: Conflict, trees: Trees, *, by_hand: bool) -> str:
    """What the resolution task is told: where, both sides, and every conflicting hunk (indented,
    not fenced: a shell task runs its first fenced block). ``by_hand``: a shell plan, with no
    agent to resolve it; its script passes once a person has resolved the conflict in the task's
    worktree."""
    files = " ".join(shlex.quote(f) for f in conflict.files)
    script = (
        "```bash\n"
        "# No agent resolves this conflict in a shell plan: resolve it in this task's worktree\n"
        f"# ({trees.directory}/<this task's id>), then run again.\n"
        f"if git grep -n -E '^(<{{7}}|>{{7}})( |$)' -- {files}; then\n"
        '  echo "the conflict is not resolved yet: resolve it in $PWD, then run again" >&2; exit 1\n'
        "fi\n```\n\n"
        if by_hand
        else ""
    )
    hunks = "\n".join("    " + line for line in conflict.hunks.splitlines())
    ours = "\n".join(f"- {line}" for line in conflict.ours) or "- (none listed)"
    theirs = "\n".join(f"- {line}" for line in conflict.theirs) or "- (none listed)"
    listed = ", ".join(f"`{f}`" for f in conflict.files)
    return f"""{script}The work of {task.id} ({task.title}), on branch `{work.branch}`, conflicts with the integration
branch `{trees.integration}` in: {listed}.

You work in a git worktree where `{work.branch}` is being merged: the
conflicting files hold git's markers. Resolve every conflict so that the intent of both sides is kept, remove every
marker line, and check that the result works. Do not commit, and do not abort the merge: the
orchestrator commits what you leave, and a file that still holds markers is not merged.

**The integration branch's side** (`{trees.integration}`):

{ours}

**{task.id}'s side** (`{work.branch}`):

{theirs}

**The conflicting hunks** (between `<<<<<<<` and `=======` the integration branch's lines, then
up to `>>>>>>>` {task.id}'s):

{hunks}
"""
