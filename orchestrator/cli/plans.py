"""The commands about a plan: ``validate``, ``render``, ``status``, ``logs``, ``graph``."""

from __future__ import annotations

import argparse
import functools
import gc
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.output import (
    Handler,
    add_command,
    add_directory,
    add_params,
    emit_json,
    given_params,
    task_id_in,
    warn,
)
from orchestrator.errors import OrchestratorError, PlanError, Problem, UsageError, WorkspaceError, shown
from orchestrator.plan.config.params import as_json, shown_values
from orchestrator.printable import visible
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.vocabulary import ExitCode, TaskStatus, counted, ordinal

if TYPE_CHECKING:
    from orchestrator.output.sections import Rendered
    from orchestrator.plan.model import Plan, Task


def without_gc_pauses(handler: Handler) -> Handler:
    """Run a one-shot command with the cyclic garbage collector off.

    Loading a plan builds tens of thousands of objects that live until the command ends, and the
    collector walked them again and again as they grew (35 ms of ``validate`` and 90 ms of
    ``render`` at 10,000 tasks), for no garbage. Not for ``run``, which lives long.
    """

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return handler(args)
        finally:
            if enabled:
                gc.enable()

    return run


@without_gc_pauses
def cmd_validate(args: argparse.Namespace) -> int:
    from orchestrator.plan.graph import longest_chain
    from orchestrator.run.checks.preflight import check_plan, frontmatter_problems
    from orchestrator.state import planfile
    from orchestrator.state.kept import archive

    workspace = Workspace.find(args.directory)
    try:
        plan = workspace.load_plan(given_params(args), complete=True)  # (as run reads it: a value for each)
    except PlanError as exc:  # with what the frontmatter's backend says of its settings: all at once
        more = [p for p in frontmatter_problems(workspace.plan_file) if p not in exc.problems]
        if not more:
            raise
        raise PlanError([*exc.problems, *more]) from None
    path = longest_chain({task.id: task.dependencies for task in plan.tasks.values()}, plan.order)
    depth = len(path)  # every task weighs 1, so the heaviest chain has one task in each layer
    notices: list[str] = []
    check_plan(plan, workspace, notices=notices, base=True)  # (as run checks it before it begins)
    if plan.settings.status_blocks:  # markers render and run would refuse to write between
        broken = planfile.broken_markers(plan.text)
        if broken:
            raise PlanError([Problem(shown(workspace.plan_file), line, what, hint) for line, what, hint in broken])
    from orchestrator.cli import notices as notes

    notices += notes.own_columns(plan)
    notices += notes.unseen_work(plan, workspace)
    notices += notes.labels_and_holds(plan, workspace)
    typed, typed_lines = notes.typed(plan, workspace)
    conditions, gates, branch_lines = notes.branches(plan)
    notices += archive.in_both(workspace, list(plan.tasks))
    notices += notes.timed(plan, workspace)
    notices += notes.untrusted(plan, workspace)
    kept, kept_lines = notes.cache_and_checkpoint(plan, workspace)
    hedges, hedge_lines = notes.hedging(plan, workspace)
    edges = len(plan.edges())
    data = {
        "ok": True,
        "plan": str(workspace.plan_file),
        "tasks": len(plan.tasks),
        "dependencies": edges,
        "layers": depth,
        "longest_chain": path,
        "backend": plan.settings.backend,
        "max_parallel": plan.settings.max_parallel,
        "notices": notices,
        "params": _params_json(plan),
        "types": typed,
        "conditions": conditions,
        "gates": gates,
        **kept,
        **hedges,
    }
    if args.json:
        emit_json(data)
    else:
        for notice in notices:
            warn(notice)
        print(
            f"OK: {counted(len(plan.tasks), 'task')}, "
            f"{counted(edges, 'dependency', 'dependencies')}, {counted(depth, 'layer')}; "
            f"deepest chain ({counted(len(path), 'task')}): {' -> '.join(path)}"
        )
        if plan.params:
            print(f"Parameters: {shown_values(plan.params)}")
        for line in branch_lines + typed_lines + kept_lines + hedge_lines:
            print(line)
    return ExitCode.OK


def _params_json(plan: Plan) -> dict[str, dict[str, str | None]]:
    """Each declared parameter: its default, description, choices and the value the plan was read with."""
    return {name: {**as_json(param), "value": plan.params.get(name)} for name, param in plan.settings.params.items()}


@without_gc_pauses
def cmd_render(args: argparse.Namespace) -> int:
    from orchestrator.output.briefs import edit_notice, prepare_briefs, write_briefs
    from orchestrator.output.sections import update_plan_file
    from orchestrator.run.checks.preflight import check_plan
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import planfile
    from orchestrator.state.lock import WorkspaceLock

    workspace = Workspace.find(args.directory)
    plan = workspace.load_plan(given_params(args), complete=True)
    check_plan(plan, workspace)
    # Everything is rendered before anything is written (the lock included): a broken template
    # then writes nothing.
    report = prepare_briefs(plan, workspace, force=args.force)
    try:
        rendered, outdated = _status_blocks(plan, workspace)  # (its templates too are rendered before any write)
    except planfile.PlanFileUnreadable as exc:
        raise WorkspaceError(f"{workspace.relative(workspace.plan_file)}: {exc}") from None
    # Not beside a run: its start clears temp files (a render's among them) and it writes the
    # same briefs and status blocks. With nothing to write, no lock: a render that changes
    # nothing succeeds beside a run, and on a workspace it may not write.
    if report.pending or report.set_aside or report.book is not None or outdated:
        workspace.check_inside()
        with WorkspaceLock(workspace.lock_file, workspace.root.name):
            write_briefs(report, workspace)
            # The statuses are read again under the lock: a run may have ended meanwhile (the
            # blocks rendered above are written if they still say the same).
            update_plan_file(plan, workspace, current_views(plan, workspace), rendered=rendered)
    for name, kept in report.moved_aside:  # (a person copied a brief onto another's: nothing moved without a word)
        warn(f"{name} is another task's brief: kept as {kept}")
    changed = dict((name, task_id) for task_id, name in report.changed_under_edit)
    for name in report.kept_edited:
        if name in changed:
            warn(edit_notice(changed[name], name))
        else:
            warn(f"{name}: edited by hand since it was rendered; kept it (re-render with --force)")
    if args.json:
        emit_json({"ok": True, **report.as_json()})
    else:
        print(
            f"Rendered {counted(len(plan.tasks), 'brief')} "
            f"into {from_here(workspace.tasks_dir)}/: "
            f"{len(report.written)} written, {len(report.unchanged)} unchanged, "
            f"{len(report.kept_edited)} kept (edited by hand)"
        )
    return ExitCode.OK


def _status_blocks(plan: Plan, workspace: Workspace) -> tuple[Rendered | None, bool]:
    """master_plan.md's status blocks as the workspace says now (``None`` for a plan without
    them), and whether the file says something else."""
    if not plan.settings.status_blocks:
        return None, False
    from orchestrator.output.sections import render_status
    from orchestrator.plan.parser import read_plan_text
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import planfile

    rendered = render_status(plan, workspace, current_views(plan, workspace))
    text = read_plan_text(workspace.plan_file)
    return rendered, planfile.splice(text, rendered.blocks) != text


@without_gc_pauses
def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator.cli.shown import shown, status_json, status_text

    found = shown(Workspace.find(args.directory), given_params(args))
    if args.json:
        emit_json(status_json(found))
    else:
        print(status_text(found))
    return ExitCode.OK


@without_gc_pauses
def cmd_graph(args: argparse.Namespace) -> int:
    from orchestrator.output.views import dot, layers_text, mermaid
    from orchestrator.plan.graph import layers
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state.summary import schedule_and_restore

    workspace = Workspace.find(args.directory)
    plan = workspace.load_plan(given_params(args))
    told, notes = schedule_and_restore(workspace)  # (as status tells them)
    if args.json:
        views = {view.id: view for view in current_views(plan, workspace)}  # what the other formats show
        emit_json(
            {
                "nodes": [
                    {
                        "id": t.id,
                        "agent": t.agent,
                        "name": t.title,
                        "type": t.type,
                        "status": str(views[t.id].status),
                        "out_of_date": views[t.id].out_of_date,
                        "simulated": views[t.id].simulated,
                        "reused": views[t.id].reused,  # from the cache, no process started: why
                        "condition": t.condition,
                        "approval": t.approval,
                    }
                    for t in plan.tasks.values()
                ],
                "edges": [list(edge) for edge in plan.edges()],
                "layers": layers(plan.graph, plan.order),
                "params": plan.params,
                **told,
            }
        )
    elif args.format == "mermaid":
        print(mermaid(plan, current_views(plan, workspace)))
    elif args.format == "dot":
        print(dot(plan, current_views(plan, workspace)))
    else:
        print(layers_text(plan, current_views(plan, workspace)))
        if plan.params:
            print(f"Parameters: {shown_values(plan.params)}")
        for line in notes:
            print(line)
    return ExitCode.OK


_STREAMS = (("in", "stdin"), ("out", "stdout"), ("err", "stderr"), ("verify.out", "verify stdout"),
            ("verify.err", "verify stderr"))  # fmt: skip
_OPTIONAL = ("in", "verify.out", "verify.err")  # shown when there: the others, empty or not


def _why_no_logs(workspace: Workspace, task: Task) -> str:
    """Why a task has no attempt to show: what its result says (skipped, and why; cancelled
    before it started...), else that it has not run yet."""
    from orchestrator.state.results import read_record

    record = read_record(workspace.result(task), task.id) if workspace.result(task).is_file() else None
    if record is None or record.status in (TaskStatus.PENDING, TaskStatus.WAITING, TaskStatus.RUNNING):
        return "it has not run yet"
    why = f" ({record.reason})" if record.reason else ""
    return f"it was {record.status} without starting{why}"


def _which_attempt(workspace: Workspace, plan: Plan, task: Task, number: int) -> str:
    """Attempt ``number`` as a person reads it: its place in its run of the task against that
    run's budget (``attempt 1 of 1``: not "retries used up"), and which run of the task it was;
    its number, which its log files carry, last (``--attempt 3``)."""
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.state.journal import runs_of

    found = runs_of(workspace.journal_file, task.id).get(number)
    if found is None:  # (a journal from before it said, or one started afresh)
        return f"attempt {number}"
    run, in_run = found
    try:
        budget = Profiles(workspace).settings_for(plan, task).retries + 1
    except OrchestratorError:
        budget = plan.settings.retries + 1
    budget = max(budget, in_run)  # (the plan may allow fewer retries by now)
    if run == 1:  # (its files' number is its place in the run)
        return f"attempt {in_run} of {budget}"
    return f"attempt {in_run} of {budget} of its {ordinal(run)} run (--attempt {number})"


@without_gc_pauses
def cmd_logs(args: argparse.Namespace) -> int:
    words = list(args.words)
    if len(words) > 2:
        raise UsageError("logs takes one task id, after an optional workspace: orchestrator logs [DIR] TASK")
    workspace = Workspace.find(words[0] if len(words) == 2 else None)
    plan = workspace.load_plan()
    task = plan.tasks[task_id_in(plan, words[-1])]
    if args.follow:
        from orchestrator.cli.watching import follow_logs

        return follow_logs(workspace, task, args.attempt, as_json=args.json)
    from orchestrator.state.journal import workers_of
    from orchestrator.state.logs import attempts as attempts_of
    from orchestrator.state.logs import numbers

    attempts = attempts_of(workspace, task)
    if not attempts:
        raise UsageError(f"{task.id} has no logs: {_why_no_logs(workspace, task)}")
    number = args.attempt if args.attempt is not None else max(attempts)
    if number not in attempts:
        raise UsageError(f"{task.id} has no attempt {number}; its attempts: {numbers(attempts)}")
    files = attempts[number]
    gone = _gone(workspace, task, number, files)
    if args.json:
        emit_json(
            {
                "ok": True,
                "task": task.id,
                "agent": task.agent,
                "attempt": number,
                "attempts": list(attempts),
                **({"worker": worker} if (worker := workers_of(workspace.journal_file, task.id).get(number)) else {}),
                "logs": [
                    {**_log_json(workspace, stream, files.get(stream)), "gone": gone.get(stream)}
                    for stream, _ in _STREAMS
                    if stream not in _OPTIONAL or stream in files
                ],
            }
        )
        return ExitCode.OK
    worker = workers_of(workspace.journal_file, task.id).get(number)  # on a cluster
    where = f" on worker {worker}" if worker else ""
    print(f"{task.id} [{task.agent}] {_which_attempt(workspace, plan, task, number)}{where}")
    for stream, name in _STREAMS:
        path = files.get(stream)
        if stream == "in":  # what the agent was given: its brief and upstream results
            if path is not None:
                print(f"── {name}: {from_here(path)}")
            continue
        if stream in _OPTIONAL and path is None:
            continue
        text = (_read(path) or b"").decode("utf-8", errors="replace")
        if stream in gone:  # the result names it: the attempt did print, and the file was deleted since
            print(f"── {name}: its log {from_here(workspace.project_dir / gone[stream])} is gone (deleted since)")
            continue
        if not text:  # nothing written: an empty file, or none (the first byte makes it)
            print(f"── {name}: empty")
            continue
        print(f"── {name}: {from_here(path) if path else ''}")
        text = visible(text)  # (logs/ keeps the raw bytes; a terminal is sent none it would act on)
        print(text, end="" if text.endswith("\n") else "\n")
    unmerged = _not_merged(workspace, task, number)
    if unmerged is not None:  # (what failed it is no stream's: its branch's merge, and what to do)
        print(f"── not merged: {visible(unmerged)}")
    return ExitCode.OK


def _not_merged(workspace: Workspace, task: Task, number: int) -> str | None:
    """Why attempt ``number``'s work was not merged (``isolation: worktree``), when the task failed so."""
    from orchestrator.state.results import read_record

    record = read_record(workspace.result(task), task.id)
    if record is None or record.attempts != number or record.status != TaskStatus.FAILED:
        return None
    return record.merge or None


def _gone(workspace: Workspace, task: Task, number: int, files: dict[str, Path]) -> dict[str, str]:
    """The streams of attempt ``number`` whose log its result names (as the project names it)
    but which are not there: deleted since, not "printed nothing"."""
    from orchestrator.state.results import read_record

    record = read_record(workspace.result(task), task.id)
    if record is None or record.attempts != number:
        return {}
    named = {name.rsplit(".", 1)[-1]: name for name in record.logs}
    return {stream: name for stream, name in named.items() if stream not in files and stream in ("out", "err")}


def _read(path: Path | None) -> bytes | None:
    """A log's bytes; None for one never written (or gone since it was listed)."""
    try:
        return path.read_bytes() if path is not None else None
    except FileNotFoundError:
        return None


def _log_json(workspace: Workspace, stream: str, path: Path | None) -> dict[str, object]:
    """One stream of an attempt for ``logs --json``. A stream it never wrote to is there, empty,
    its ``path`` null: its file was never made."""
    data = _read(path)
    return {
        "stream": stream,
        "path": workspace.relative(path) if path is not None and data is not None else None,
        "bytes": len(data or b""),
        "text": (data or b"").decode("utf-8", errors="replace"),
    }


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "validate", cmd_validate, "parse master_plan.md and check the task graph")
    add_directory(p)
    add_params(p, "check the plan with")
    p = add_command(sub, "render", cmd_render, "write agent_tasks/agent-XX.md briefs and the status blocks")
    add_directory(p)
    add_params(p, "render with")
    p.add_argument("--force", action="store_true", help="re-render briefs even where edited by hand")
    p = add_command(sub, "status", cmd_status, "show every task's state")
    add_directory(p)
    add_params(p, "tell what is up to date with")
    p = add_command(sub, "logs", cmd_logs, "show what a task's attempt printed: its stdout and stderr logs")
    p.add_argument("words", nargs="+", metavar="[DIR] TASK", help="the task (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--attempt N] [--follow] [DIR] TASK"
    p.add_argument("--attempt", type=int, metavar="N", help="this attempt (default: the last)")
    p.add_argument("--follow", "-f", action="store_true", help="print its output as it comes, until the attempt ends")
    p = add_command(sub, "graph", cmd_graph, "show the task graph (layers, mermaid or dot)")
    add_directory(p)
    p.add_argument(
        "--format",
        choices=["text", "mermaid", "dot"],
        default="text",
        help="text: layers of tasks that can run in parallel (default); mermaid or dot: graph source to render",
    )
    add_params(p, "show the graph with")
