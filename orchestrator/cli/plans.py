"""The commands about a plan: ``validate``, ``render``, ``status``, ``logs``, ``graph``."""

from __future__ import annotations

import argparse
import functools
import gc
from typing import TYPE_CHECKING

from orchestrator.cli.doors import arguments, handle, register_command
from orchestrator.cli.output import (
    Commands,
    Handler,
    add_command,
    add_directory,
    add_params,
    emit_json,
    find_workspace,
    given_params,
    warn,
)
from orchestrator.errors import WorkspaceError
from orchestrator.plan.config.params import shown_values
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.vocabulary import ExitCode, counted

if TYPE_CHECKING:
    from orchestrator.output.sections import Rendered
    from orchestrator.plan.model import Plan


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
def cmd_render(args: argparse.Namespace) -> int:
    from orchestrator.output.briefs import edit_notice, prepare_briefs, write_briefs
    from orchestrator.output.sections import update_plan_file
    from orchestrator.run.checks.preflight import check_plan
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import planfile
    from orchestrator.state.lock import WorkspaceLock

    workspace = Workspace.find(args.directory)
    plan = plan_of(workspace, given_params(args), complete=True)
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
def cmd_graph(args: argparse.Namespace) -> int:
    from orchestrator.output.views import dot, layers_text, mermaid
    from orchestrator.plan.graph import layers
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state.summary import schedule_and_restore

    workspace = Workspace.find(args.directory)
    plan = plan_of(workspace, given_params(args))
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


def cmd_logs(args: argparse.Namespace) -> int:
    """``logs``: as ``commands/logs`` gives them, or (``--follow``) as they come."""
    if not args.follow:
        return handle("logs")(args)
    from orchestrator.cli.watching import follow_logs
    from orchestrator.commands.words import task_in

    call = arguments("logs", args)
    workspace = find_workspace(call.directory)
    return follow_logs(workspace, task_in(plan_of(workspace), call.task), args.attempt, as_json=args.json)


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "validate")
    p = add_command(sub, "render", cmd_render, "write agent_tasks/agent-XX.md briefs and the status blocks")
    add_directory(p)
    add_params(p, "render with")
    p.add_argument("--force", action="store_true", help="re-render briefs even where edited by hand")
    register_command(sub, "status")
    register_command(sub, "logs", cmd_logs)
    p = add_command(sub, "graph", cmd_graph, "show the task graph (layers, mermaid or dot)")
    add_directory(p)
    p.add_argument(
        "--format",
        choices=["text", "mermaid", "dot"],
        default="text",
        help="text: layers of tasks that can run in parallel (default); mermaid or dot: graph source to render",
    )
    add_params(p, "show the graph with")
