"""The sub-commands that run things: ``run``, ``reset`` and ``aggregate``."""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.plan.parser import load_plan
from orchestrator.state import store
from orchestrator.state.lock import WorkspaceLock
from orchestrator.state.workspace import Workspace


def _ids(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [part for part in text.replace(",", " ").split() if part]


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.cli.main import EXIT_INTERRUPTED
    from orchestrator.executors.process import keep_descriptors_from_children
    from orchestrator.output.reporter import make_reporter
    from orchestrator.run.runner import Runner, RunOptions

    if args.only and args.rerun:
        raise UsageError("--only and --rerun cannot be combined")
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    workspace = Workspace.find(args.directory)
    options = RunOptions(
        max_parallel=args.max_parallel,
        only=_ids(args.only),
        rerun=_ids(args.rerun),
        fail_fast=True if args.fail_fast else None,
        backend=args.backend,
        max_cost=args.max_cost,
        wait_for_orphans=args.wait_orphans,
        aggregate="agent" if args.aggregate == "agent" else None,
    )
    reporter = make_reporter(as_json=args.json)
    keep_descriptors_from_children()  # every child is ours: lets them start by posix_spawn
    try:
        summary = Runner(workspace, options, reporter).run()
    except KeyboardInterrupt:  # pragma: no cover - a Ctrl-C before the loop installed its handler
        return EXIT_INTERRUPTED
    finally:
        reporter.close()
    return summary.exit_code


def _looks_like_workspace(word: str) -> bool:
    from pathlib import Path

    path = Path(word)
    return path.is_dir() and ((path / "master_plan.md").exists() or (path / ".orchestrator").is_dir())


def cmd_reset(args: argparse.Namespace) -> int:
    from orchestrator.cli.main import emit_json
    from orchestrator.state.status import COMPLETED, read_metadata

    tasks = list(args.tasks)
    directory = args.directory
    if tasks and directory == ".orchestrator" and _looks_like_workspace(tasks[0]):
        directory = tasks.pop(0)
    args.tasks = tasks
    workspace = Workspace.find(directory)
    plan = load_plan(workspace.plan_file)
    chosen = [args.all, args.failed, bool(args.tasks)]
    if sum(chosen) != 1:
        raise UsageError("say what to reset: task ids, --failed or --all (exactly one)")
    if args.tasks:
        unknown = [t for t in args.tasks if t not in plan.tasks]
        if unknown:
            raise UsageError(f"no task {', '.join(unknown)} in the plan")
    lock = WorkspaceLock(workspace.lock_file, workspace.root.name)
    lock.acquire()  # never pull results from under a running runner
    try:
        removed: list[str] = []
        for task in plan.tasks.values():
            path = workspace.result(task)
            if args.tasks and task.id not in args.tasks:
                continue
            if args.failed:
                meta = read_metadata(path)
                if meta is None or meta.get("status") == COMPLETED:
                    continue
            if store.remove(path):
                removed.append(task.id)
        from orchestrator.output.render import update_plan_file

        update_plan_file(plan, workspace)
    finally:
        lock.release()
    if args.json:
        emit_json({"ok": True, "reset": removed})
    else:
        print(
            f"Reset {len(removed)} task{'s' if len(removed) != 1 else ''}"
            + (f": {', '.join(removed)}" if removed else "")
        )
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from orchestrator.cli.main import emit_json
    from orchestrator.output.final import write_final_output

    workspace = Workspace.find(args.directory)
    plan = load_plan(workspace.plan_file)
    synthesis = ""
    if args.agent:
        from orchestrator.run.synthesis import synthesize

        synthesis = synthesize(plan, workspace)
    write_final_output(plan, workspace, synthesis=synthesis)
    if args.json:
        emit_json({"ok": True, "final_output": str(workspace.final_output)})
    else:
        print(f"Wrote {workspace.relative(workspace.final_output)}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator.cli.main import emit_json
    from orchestrator.plan.settings import Settings
    from orchestrator.run.planner import make_plan
    from orchestrator.state import store

    root = Path(args.dir)
    target = root / "master_plan.md"
    if target.exists() and not args.force and not args.dry_run:
        raise UsageError(f"{target} already exists — pass --force to replace it, or --dry-run to only print a plan")
    settings = Settings(backend=args.backend)
    if args.model:
        settings = settings.replace(model=args.model)
    if args.timeout is not None:
        settings = settings.replace(timeout=args.timeout)
    planned = make_plan(args.request, root.absolute(), settings)
    if not args.dry_run:
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
        print(f"Wrote {target}: {len(planned.plan.tasks)} tasks. Next: `orchestrator run {root}`")
    return 0


def cmd_install_skill(args: argparse.Namespace) -> int:
    from orchestrator.cli.main import emit_json
    from orchestrator.cli.skill import install

    if args.user and args.project:
        raise UsageError("choose one of --user and --project")
    installed = install(user=not args.project, force=args.force)
    if args.json:
        emit_json({"ok": True, "path": str(installed.path), "name": installed.name, "unchanged": installed.unchanged})
    elif installed.unchanged:
        print(f"Skill '{installed.name}' is already installed and up to date in {installed.path}")
    else:
        print(f"Installed skill '{installed.name}' into {installed.path}")
    return 0


def register(sub: Any) -> None:
    """Add run / reset / aggregate to the CLI's sub-parsers."""

    def add(name: str, handler: Any, help_text: str, directory: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        if directory:
            parser.add_argument(
                "directory", nargs="?", default=".orchestrator", help="the workspace (default: .orchestrator)"
            )
        else:
            parser.set_defaults(directory=".orchestrator")
        parser.add_argument("--json", action="store_true", help="JSON output (for run: one event per line)")
        return parser

    p = add("run", cmd_run, "run the plan: every task not yet completed, in dependency order, in parallel")
    p.add_argument("--max-parallel", type=int, metavar="N", help="at most N tasks at once (default 4, or the plan's)")
    p.add_argument("--only", metavar="IDS", help="run just these tasks (their dependencies must be completed)")
    p.add_argument("--rerun", metavar="IDS", help="run these tasks again, and everything downstream of them")
    p.add_argument("--fail-fast", action="store_true", help="start nothing new once a task has failed")
    p.add_argument("--backend", help="backend for tasks that do not name one (claude, codex, gemini, shell, command)")
    p.add_argument("--max-cost", type=float, metavar="USD", help="start nothing new once the run has cost this much")
    p.add_argument("--aggregate", choices=["concat", "agent"], help="how final_output.md is made (default concat)")
    p.add_argument(
        "--wait-orphans",
        action="store_true",
        help="wait for attempts a dead runner left running instead of stopping them",
    )

    p = add("reset", cmd_reset, "forget results so those tasks run again", directory=False)
    p.add_argument("tasks", nargs="*", metavar="[DIR] TASK", help="task ids to reset (after an optional workspace)")
    p.add_argument("--failed", action="store_true", help="reset every task that did not complete")
    p.add_argument("--all", action="store_true", help="reset every task")

    p = add("plan", cmd_plan, "ask an agent to decompose a request and write master_plan.md", directory=False)
    p.add_argument("request", help="what you want done, in words")
    p.add_argument("--dir", default=".orchestrator", help="the workspace to write (default: .orchestrator)")
    p.add_argument(
        "--backend", default="claude", choices=["claude", "codex", "gemini"], help="the planning agent (default claude)"
    )
    p.add_argument("--model", help="model for the planning agent")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit for the planning agent")
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    p.add_argument("--force", action="store_true", help="replace an existing master_plan.md")

    p = add(
        "install-skill", cmd_install_skill, "install the Claude Code skill (SKILL.md and its docs)", directory=False
    )
    p.add_argument(
        "--user", action="store_true", help="into ~/.claude/skills/, or $CLAUDE_CONFIG_DIR/skills/ (the default)"
    )
    p.add_argument("--project", action="store_true", help="into ./.claude/skills/ of the current directory")
    p.add_argument("--force", action="store_true", help="replace a copy that was modified after it was installed")

    p = add("aggregate", cmd_aggregate, "rebuild final_output.md from results/")
    p.add_argument("--agent", action="store_true", help="add a synthesis written by an agent above the results")
