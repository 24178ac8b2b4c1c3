"""The commands that run things: ``run``, ``reset``, ``aggregate`` and ``plan``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import (
    Commands,
    add_command,
    add_directory,
    emit_json,
    looks_like_workspace,
    task_id_in,
    warn,
)
from orchestrator.commands import words
from orchestrator.commands.starting import run_options
from orchestrator.errors import OrchestratorError, UsageError
from orchestrator.state import store
from orchestrator.state.lock import WorkspaceLock, replacing_plan
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import DEFAULT_DIR, Workspace, from_here
from orchestrator.vocabulary import ExitCode, TaskStatus, counted

if TYPE_CHECKING:
    from orchestrator.plan.model import Task
    from orchestrator.run.prepare import RunOptions
    from orchestrator.state.approvals import Decision


def cmd_run(args: argparse.Namespace) -> int:
    if args.launch is None:
        return _run(args)
    from orchestrator.state import launches

    # Started in the background by `run/launch/background` (the MCP server, the API, a webhook): how it
    # ends is noted in state/launches.json, as `schedule fire` notes a scheduled run's end.
    workspace = Workspace.find(args.directory)
    code: int = ExitCode.INTERRUPTED
    try:
        code = _run(args)
    except OrchestratorError as exc:
        code = exc.exit_code
        raise
    finally:
        launches.finished(workspace, args.launch, code)
    return code


def _run(args: argparse.Namespace) -> int:
    from orchestrator.executors import registry
    from orchestrator.executors.capabilities import Setup
    from orchestrator.output.choice import make_reporter
    from orchestrator.run.runner import Runner

    options = run_options(args)
    workspace = Workspace.find(args.directory)
    if args.dry_run:
        return _dry_run(args, workspace, options)
    reporter = make_reporter(as_json=args.json, verbose=args.verbose)
    try:
        # This process starts nothing but attempts: whatever is handed to it is theirs.
        chosen, scheduler, shared = executor_settings(workspace, args.executor)
        setup = Setup(whole_process=True, scheduler=args.scheduler or scheduler, shared=shared)
        summary = Runner(workspace, options, reporter, registry.make(chosen, setup)).run()
    except KeyboardInterrupt:  # pragma: no cover - a Ctrl-C before the loop installed its handler
        return ExitCode.INTERRUPTED
    finally:
        reporter.close()
    return summary.exit_code


def _dry_run(args: argparse.Namespace, workspace: Workspace, options: RunOptions) -> int:
    """``run --dry-run``: what would run and what it is expected to cost; exit 4 when that is over
    the budget (the run would not start), else 0."""
    from orchestrator.commands.starting import preview
    from orchestrator.executors import registry
    from orchestrator.vocabulary import money

    chosen = executor_settings(workspace, args.executor)[0]
    found = preview(workspace, options, simulated=registry.can(chosen).simulated)
    if args.json:
        emit_json(found)
    else:
        ran = found["run"]
        print(f"would run {counted(len(ran), 'task')}" + (f": {', '.join(ran[:12])}" if ran else ""))
        print(found["said"])
        for each in found["forecast"]["per_task"]:
            cost = each["cost_usd"]
            figure = f"{money(cost['p50'])} (p90 {money(cost['p90'])})" if cost else "—"
            print(f"  {each['task']:<12} {figure:<24} {each['based_on']}")
        if found["max_cost"] is not None:
            verdict = (
                "over it: the run would not start (--over-forecast starts it)" if found["over_budget"] else "within it"
            )
            print(f"budget: {money(found['max_cost'])} (max_cost), {verdict}")
    return ExitCode.HELD if found["over_budget"] else ExitCode.OK


def executor_settings(workspace: Workspace | None, option: str | None) -> tuple[str, str | None, bool]:
    """The executor a run (or ``doctor``) uses (``--executor``, else the plan's ``executor`` setting, else
    local), the plan's ``scheduler`` and ``shared_filesystem`` settings; read from the plan's
    frontmatter alone (the run checks the whole plan, values included, before it starts anything)."""
    from orchestrator.documents import read_metadata
    from orchestrator.executors import registry
    from orchestrator.plan.config.settings import parse_setting

    meta = read_metadata(workspace.plan_file) if workspace is not None and workspace.plan_file.is_file() else None
    meta = meta or {}
    chosen = option or meta.get("executor") or registry.DEFAULT
    scheduler = meta.get("scheduler")
    chosen = chosen if chosen in registry.names() else registry.DEFAULT  # (a bad value: the plan's check says so)
    try:
        shared = bool(parse_setting("shared_filesystem", meta.get("shared_filesystem", True)))
    except ValueError:
        shared = True  # (the plan's check says so)
    return chosen, scheduler if isinstance(scheduler, str) else None, shared


def cmd_reset(args: argparse.Namespace) -> int:
    from orchestrator.documents import read_metadata
    from orchestrator.output.sections import update_plan_file
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import journal as journals
    from orchestrator.state import planfile
    from orchestrator.state.results import keep_aside

    tasks = list(args.tasks)
    directory = args.directory
    if tasks and directory == DEFAULT_DIR and looks_like_workspace(tasks[0]):
        directory = tasks.pop(0)
    named = [t for word in tasks for t in word.replace(",", " ").split()]  # as run --only: T-01,T-02
    if tasks and not named:  # `reset "$IDS"` of a script whose list came out empty: not "every task"
        raise UsageError("reset: no task id given — name the tasks (T-01,T-02), or use --failed or --all")
    workspace = Workspace.find(directory)
    plan = plan_of(workspace)
    chosen = [args.all, args.failed, bool(named)]
    if sum(chosen) != 1:
        raise UsageError("say what to reset: task ids, --failed or --all (exactly one)")
    from orchestrator.run.items import instances_of, recount, rows_of, with_instances

    plan = with_instances(plan, workspace)  # (a row run per item: its instances' results too)
    named = [task_id_in(plan, t) for t in named]  # each as the plan spells it; a row, with its instances
    args.tasks = list(dict.fromkeys(t for task_id in named for t in (task_id, *instances_of(plan, task_id))))
    workspace.check_inside()
    lock = WorkspaceLock(workspace.lock_file, workspace.root.name)
    lock.acquire()  # never pull results from under a running runner
    gates: list[Decision] = []
    try:
        removed: list[str] = []
        chosen_ids: list[str] = []
        for task in plan.tasks.values():
            path = workspace.result(task)
            if args.tasks and task.id not in args.tasks:
                continue
            meta = read_metadata(path)
            owner = meta.get("task") if meta is not None else None
            if isinstance(owner, str) and owner != task.id:
                continue  # another task's result: not this one's to forget
            if args.failed and meta is not None and meta.get("status") == TaskStatus.COMPLETED:
                continue
            chosen_ids.append(task.id)  # (--failed: not completed, or with no result at all)
            if args.failed and meta is None:
                continue  # no result to remove
            if (kept := keep_aside(path, task.id)) is not None:  # a person's edit: kept, not deleted
                warn(kept.notice(workspace.relative(path)))
                removed.append(task.id)
            elif store.remove(path):
                removed.append(task.id)
        # What a dead runner's attempt of these left is not taken up either (kept from its log, its
        # session continued): they run afresh.
        journals.forget(workspace.journal_file, chosen_ids)
        from orchestrator.state.kept import cache

        cache.forget(workspace, chosen_ids)  # nor is a result the cache keeps: reset runs them for real
        gates = _gate_words(workspace, [plan.tasks[t] for t in chosen_ids], withdraw=args.approvals)
        views = current_views(plan, workspace)
        recount(plan, workspace, {view.id: view.status for view in views}, rows_of(plan, chosen_ids))
        try:
            update_plan_file(plan, workspace, views)
        except (planfile.PlanFileUnreadable, OSError) as exc:  # the results are reset all the same
            warn(f"{workspace.relative(workspace.plan_file)}: its status blocks are not updated ({exc})")
    finally:
        lock.release()
    if args.json:
        words = [{"task": d.task, "decision": d.decision, "by": d.by, "time": d.time} for d in gates]
        emit_json({"ok": True, "reset": removed, "approvals_withdrawn" if args.approvals else "approvals_kept": words})
    else:
        line = f"Reset {counted(len(removed), 'task')}" + (f": {', '.join(removed)}" if removed else "")
        print(line + _gates_said(gates, withdrawn=args.approvals))
    return ExitCode.OK


def _gate_words(workspace: Workspace, tasks: list[Task], *, withdraw: bool) -> list[Decision]:
    """The words in force at the gates of ``tasks``: kept (a run does not ask again while the
    task's inputs are the same: a reset task runs on the same ones), or with ``withdraw``
    (``reset --approvals``) taken back with their links, a line each in state/approvals.jsonl, so
    each gate asks again."""
    from orchestrator.state import approvals

    if withdraw:
        return approvals.withdraw(workspace, tasks, "reset --approvals")
    found = approvals.latest(workspace)
    return [found[task.id] for task in tasks if task.id in found]


def _gates_said(gates: list[Decision], *, withdrawn: bool) -> str:
    """What ``reset``'s line adds of the words at its tasks' gates: ``; kept T-04's approval
    (approved by ann at 25 Nov 14:02): ...`` and how to ask again, or that they were withdrawn;
    ``""`` for none."""
    from orchestrator.state.approvals import APPROVED, said

    if not gates:
        return ""
    told = ", ".join(f"{d.task}'s {'approval' if d.decision == APPROVED else 'rejection'} ({said(d)})" for d in gates)
    their = "its gate" if len(gates) == 1 else "their gates"
    if withdrawn:
        return f"; withdrew {told}: {their} {'asks' if len(gates) == 1 else 'ask'} again"
    ids = ",".join(d.task for d in gates)
    return f"; kept {told}: the next run does not ask at {their} — `orchestrator reset {ids} --approvals` asks again"


def cmd_aggregate(args: argparse.Namespace) -> int:
    from orchestrator.output.final import edited_final_notice, write_final_output
    from orchestrator.state import events

    workspace = Workspace.find(args.directory)
    plan = plan_of(workspace)
    workspace.check_inside()
    synthesis = None
    # Not beside a run, which writes final_output.md itself when it ends, from what it knows then.
    with WorkspaceLock(workspace.lock_file, workspace.root.name):
        if args.agent:
            from orchestrator.run.synthesis import synthesize

            synthesis = synthesize(plan, workspace)
        # The wall time is the last run's, as its last line and its final_output.md gave it.
        run_seconds = events.last_run_seconds(workspace.events_file)
        kept = write_final_output(plan, workspace, synthesis=synthesis, run_seconds=run_seconds)
    if kept is not None:
        warn(edited_final_notice(workspace, kept))
    cost = synthesis.cost_usd if synthesis else None
    if args.json:
        emit_json(
            {
                "ok": True,
                "final_output": str(workspace.final_output),
                "kept_edited": str(kept) if kept is not None else None,
                "synthesis_cost_usd": cost,
            }
        )
    else:
        print(f"Wrote {from_here(workspace.final_output)}" + (f" (synthesis ${cost:.4f})" if cost else ""))
    return ExitCode.OK


def _plan_words(args: argparse.Namespace) -> tuple[str, str]:
    """``plan [DIR] REQUEST`` (and the old ``--dir DIR``): the workspace and the request."""
    words = list(args.words)
    if len(words) > 2:
        raise UsageError(
            f"plan takes a workspace and one request, not {len(words)} words — put the request in quotes: "
            'orchestrator plan "Summarise this project"'
        )
    request = words.pop()
    if not request.strip():  # (a script's empty variable): the planner would be paid to guess
        raise UsageError(
            'plan needs a request: say what you want done, e.g. orchestrator plan "Summarise this project"'
        )
    directory = words[0] if words else None
    if args.dir is not None:
        warn("--dir is deprecated: give the workspace as the first argument, `orchestrator plan DIR REQUEST`")
        if directory is not None and directory != args.dir:
            raise UsageError(f"two workspaces: {directory} and --dir {args.dir} — give one")
        directory = args.dir
    return directory or DEFAULT_DIR, request


def cmd_plan(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from orchestrator.plan.config.settings import Settings
    from orchestrator.run.checks.preflight import check_planner
    from orchestrator.run.planner import make_plan

    directory, request = _plan_words(args)
    root = Path(directory)
    target = root / "master_plan.md"
    if target.exists() and not args.force and not args.dry_run:
        raise UsageError(f"{target} already exists — pass --force to replace it, or --dry-run to only print a plan")
    settings = Settings(backend=args.backend)
    if args.model:
        settings = settings.replace(model=args.model)
    if "timeout" in vars(args):  # given: a duration, or None for none
        settings = settings.replace(timeout=args.timeout)
    check_planner(settings.backend, settings.env)
    if args.dry_run:  # writes nothing: the planner's logs go to a directory that is removed after
        with tempfile.TemporaryDirectory(prefix="orchestrator-plan-") as scratch:
            planned = make_plan(request, root.absolute(), settings, logs=Path(scratch))
    else:
        # Held while the planner works, not only for the write: no run starts meanwhile on the
        # plan about to be replaced, and none going on has it replaced under it.
        with replacing_plan(root):
            planned = make_plan(request, root.absolute(), settings)
            for sub in ("agent_tasks", "results", "logs"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            store.write_text(target, planned.text)
    if args.json:
        emit_json(
            {
                "ok": True,
                "written": None if args.dry_run else str(target),
                "tasks": [
                    {"id": t.id, "name": t.title, "dependencies": list(t.dependencies)}
                    for t in planned.plan.tasks.values()
                ],
                "attempts": planned.attempts,
                "cost_usd": planned.cost_usd,
                "plan": planned.text if args.dry_run else None,
            }
        )
    elif args.dry_run:
        print(planned.text, end="")
    else:
        count = len(planned.plan.tasks)
        print(f"Wrote {target}: {counted(count, 'task')}. Next: `orchestrator run {root}`")
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    _register_run(sub)
    _register_reset(sub)
    _register_plan(sub)
    _register_aggregate(sub)


def _register_run(sub: Commands[argparse.ArgumentParser]) -> None:
    """``run``: its options from ``commands/table`` (the ones MCP and the API start a run with), its
    handler the run itself, in the foreground."""
    p = register_command(sub, "run", cmd_run)
    p.set_defaults(forced=None)
    p.add_argument(
        "--launch", help=argparse.SUPPRESS
    )  # started by run/launch/background: its entry in state/launches.json


def _register_reset(sub: Commands[argparse.ArgumentParser]) -> None:
    """``reset``."""
    p = add_command(sub, "reset", cmd_reset, "forget results so those tasks run again")
    p.set_defaults(directory=DEFAULT_DIR)
    p.add_argument("tasks", nargs="*", metavar="[DIR] TASK", help="task ids to reset (after an optional workspace)")
    p.add_argument("--failed", action="store_true", help="reset every task that did not complete")
    p.add_argument("--all", action="store_true", help="reset every task")
    p.add_argument(
        "--approvals",
        action="store_true",
        help="forget the word given at their Approval gates too (kept otherwise): each gate asks again",
    )


def _register_plan(sub: Commands[argparse.ArgumentParser]) -> None:
    """``plan``: the planning agent and where it writes."""
    from orchestrator import backends
    from orchestrator.plan.config.settings import Settings

    p = add_command(sub, "plan", cmd_plan, "ask an agent to decompose a request and write master_plan.md")
    p.usage = (
        f"%(prog)s [-h] [--json] [--backend {{{','.join(backends.agents())}}}] [--model MODEL] [--timeout DURATION] "
        "[--dry-run] [--force] [DIR] REQUEST"
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="[DIR] REQUEST",
        help="the workspace to write (default: .orchestrator), then what you want done, in words (quoted)",
    )
    p.add_argument("--dir", help=argparse.SUPPRESS)  # before 0.2 the workspace was --dir; still read
    p.add_argument(
        "--backend",
        default=Settings().backend,
        choices=backends.agents(),
        help=f"the planning agent (default {Settings().backend})",
    )
    p.add_argument("--model", help="model for the planning agent")
    p.add_argument(
        "--timeout",
        type=words.duration,
        default=argparse.SUPPRESS,
        metavar="DURATION",
        help="time limit for the planning agent: seconds, or 90s, 5m, 1h30m, none (default 30m)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    p.add_argument("--force", action="store_true", help="replace an existing master_plan.md")


def _register_aggregate(sub: Commands[argparse.ArgumentParser]) -> None:
    """``aggregate``."""
    p = add_command(sub, "aggregate", cmd_aggregate, "rebuild final_output.md from results/")
    add_directory(p)
    p.add_argument("--agent", action="store_true", help="add a synthesis written by an agent above the results")
