"""The command line: a thin shell over the library. ``main(argv) -> exit code``.

Exit codes: 0 ok; 1 some task failed or was skipped; 2 bad plan or usage, or a workspace file the
system refuses; 3 another run, render or reset holds the workspace; 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from orchestrator import __version__
from orchestrator.errors import OrchestratorError, PlanError, UsageError, workspace_error_from
from orchestrator.state.workspace import DEFAULT_DIR, Workspace

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

Handler = Callable[[argparse.Namespace], int]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    sys.stderr.write(message + "\n")


def without_gc_pauses(handler: Handler) -> Handler:
    """Run a one-shot command with the cyclic garbage collector off.

    Loading a plan builds tens of thousands of objects that live until the command ends, and the
    collector walked them again and again as they grew: 35 ms of ``validate`` and 90 ms of
    ``render`` at 10,000 tasks, for no garbage (these commands make no reference cycles to speak
    of; reference counting frees the rest). Not for ``run``, which lives long.
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


# --- commands -----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from orchestrator.output.render import skeleton
    from orchestrator.state import store

    root = Path(args.directory)
    plan_file = root / "master_plan.md"
    if plan_file.exists() and not args.force:
        raise UsageError(f"{plan_file} already exists — edit it, or pass --force to replace it")
    for sub in ("agent_tasks", "results", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    store.write_text(plan_file, skeleton(args.request or "", args.backend))
    if args.json:
        emit_json({"ok": True, "workspace": str(root), "plan": str(plan_file)})
    else:
        print(f"Created {plan_file}")
        print("Next: edit it (or let an agent write it), then `orchestrator validate` and `orchestrator run`.")
    return EXIT_OK


@without_gc_pauses
def cmd_validate(args: argparse.Namespace) -> int:
    from orchestrator.plan.graph import critical_path
    from orchestrator.plan.parser import load_plan

    workspace = Workspace.find(args.directory)
    plan = load_plan(workspace.plan_file)
    path, _ = critical_path(plan.dag, dict.fromkeys(plan.tasks, 1.0))
    depth = len(path)  # every task weighs 1, so the heaviest chain has one task in each layer
    _check_plan(plan, workspace)
    data = {
        "ok": True,
        "plan": str(workspace.plan_file),
        "tasks": len(plan.tasks),
        "dependencies": len(plan.edges()),
        "layers": depth,
        "longest_chain": path,
        "backend": plan.settings.backend,
        "max_parallel": plan.settings.max_parallel,
    }
    if args.json:
        emit_json(data)
    else:
        print(
            f"OK: {len(plan.tasks)} tasks, {data['dependencies']} dependencies, "
            f"{depth} layer{'s' if depth != 1 else ''}; "
            f"longest chain: {' -> '.join(path)}"
        )
    return EXIT_OK


def _check_plan(plan: Any, workspace: Workspace) -> None:
    """Backends and specialist profiles named in the plan must exist (validate, render and run)."""
    from orchestrator.run.preflight import check_plan

    check_plan(plan, workspace)


@without_gc_pauses
def cmd_render(args: argparse.Namespace) -> int:
    from orchestrator.output.render import prepare_briefs, updated_plan_file, write_briefs
    from orchestrator.plan.parser import load_plan
    from orchestrator.state import store
    from orchestrator.state.lock import WorkspaceLock

    workspace = Workspace.find(args.directory)
    plan = load_plan(workspace.plan_file)
    _check_plan(plan, workspace)
    # Everything is rendered before anything is written (the lock included): a broken template
    # then writes nothing.
    plan_bytes = updated_plan_file(plan, workspace)
    report = prepare_briefs(plan, workspace, force=args.force)
    # Not beside a run: its start clears temp files (a render's among them) and it writes the
    # same briefs and status sections. With nothing to write, no lock: a render that changes
    # nothing succeeds beside a run, and on a workspace it may not write.
    if report.pending or plan_bytes is not None or not workspace.tasks_dir.is_dir():
        with WorkspaceLock(workspace.lock_file, workspace.root.name):
            write_briefs(report, workspace)
            # Again, under the lock: a run that ended while this rendered has changed the
            # statuses (the templates rendered once already, so this cannot fail on them).
            plan_bytes = updated_plan_file(plan, workspace)
            if plan_bytes is not None:
                store.write_bytes(workspace.plan_file, plan_bytes)
    for name in report.kept_edited:
        warn(f"{name}: edited by hand since it was rendered; kept it (re-render with --force)")
    if args.json:
        emit_json({"ok": True, **report.as_json()})
    else:
        print(
            f"Rendered {len(plan.tasks)} briefs into {workspace.relative(workspace.tasks_dir)}/: "
            f"{len(report.written)} written, {len(report.unchanged)} unchanged, "
            f"{len(report.kept_edited)} kept (edited by hand)"
        )
    return EXIT_OK


@without_gc_pauses
def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator.output.views import status_table
    from orchestrator.plan.parser import load_plan
    from orchestrator.state.status import collect, counts

    workspace = Workspace.find(args.directory)
    plan = load_plan(workspace.plan_file)
    views = collect(plan, workspace)
    found = counts(views)
    extra = _status_extra(workspace)
    if args.json:
        cost = [v.cost_usd for v in views if v.cost_usd is not None]
        emit_json(
            {
                "workspace": str(workspace.root),
                "counts": found,
                "total": len(views),
                "cost_usd": round(sum(cost), 6) if cost else None,
                "tasks": [v.as_json() for v in views],
                **extra,
            }
        )
    else:
        print(status_table(views, found))
        for line in extra.get("notes", []):
            print(line)
    return EXIT_OK


def _status_extra(workspace: Workspace) -> dict[str, Any]:
    """Workspace-wide notes for ``status`` (e.g. a usage-limit pause)."""
    from orchestrator.state.pause import status_notes

    return status_notes(workspace)


@without_gc_pauses
def cmd_graph(args: argparse.Namespace) -> int:
    from orchestrator.output.views import dot, layers_text, mermaid
    from orchestrator.plan.graph import layers
    from orchestrator.plan.parser import load_plan
    from orchestrator.state.status import collect

    workspace = Workspace.find(args.directory)
    plan = load_plan(workspace.plan_file)
    if args.json:
        order = {task_id: i for i, task_id in enumerate(plan.tasks)}
        emit_json(
            {
                "nodes": [{"id": t.id, "agent": t.agent, "name": t.title} for t in plan.tasks.values()],
                "edges": [list(edge) for edge in plan.edges()],
                "layers": layers(plan.dag, order),
            }
        )
    elif args.format == "mermaid":
        print(mermaid(plan, collect(plan, workspace)))
    elif args.format == "dot":
        print(dot(plan))
    else:
        print(layers_text(plan, collect(plan, workspace)))
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[Handler, str]] = {
    "init": (cmd_init, "create a workspace with a master_plan.md skeleton"),
    "validate": (cmd_validate, "parse master_plan.md and check the task graph"),
    "render": (cmd_render, "write agent_tasks/agent-XX.md briefs and the status sections"),
    "status": (cmd_status, "show every task's state"),
    "graph": (cmd_graph, "show the task graph (layers, mermaid or dot)"),
}


def _add_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory",
        nargs="?",
        default=DEFAULT_DIR,
        help="the workspace (default: .orchestrator in the current directory)",
    )


def build_parser(
    extra: Sequence[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = (),
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run a markdown plan of atomic tasks as real sub-agents, in parallel, in dependency order.",
        epilog="Exit codes: 0 ok, 1 a task failed or was skipped, 2 bad plan or usage, "
        "3 workspace held by another run, render or reset, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str) -> argparse.ArgumentParser:
        handler, help_text = COMMANDS[name]
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
        return p

    p = command("init")
    _add_directory(p)
    p.add_argument("--request", help="the original request to put in the skeleton")
    p.add_argument("--backend", default="claude", help="backend written into the skeleton (default: claude)")
    p.add_argument("--force", action="store_true", help="replace an existing master_plan.md")
    _add_directory(command("validate"))
    p = command("render")
    _add_directory(p)
    p.add_argument("--force", action="store_true", help="re-render briefs even where edited by hand")
    _add_directory(command("status"))
    p = command("graph")
    _add_directory(p)
    p.add_argument("--format", choices=["text", "mermaid", "dot"], default="text")
    for add in extra:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_extensions())
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except OrchestratorError as exc:
        _report_error(exc, getattr(args, "json", False))
        return exc.exit_code
    except OSError as exc:  # a file it needs: unwritable workspace, full disk, a file in the way
        if isinstance(exc, BrokenPipeError):
            return EXIT_OK
        error = workspace_error_from(exc)
        if error is None:
            raise
        _report_error(error, getattr(args, "json", False))
        return error.exit_code
    except KeyboardInterrupt:
        warn("interrupted")
        return EXIT_INTERRUPTED


def entry() -> NoReturn:
    """The console script and ``python -m orchestrator``: ``main``, then exit at once.

    Once the command is done and its output flushed, nothing is left for the interpreter's
    shutdown to do but free every object one by one and run no handler of ours: after a run of
    1,000 tasks that took as long as 30 tasks' work. ``os._exit`` skips it, unless a tracer or
    profiler is installed (coverage, cProfile, a debugger), which writes its data at exit. ``main``
    itself returns normally, for callers that run it in-process.
    """
    code = main()
    if _observed():
        sys.exit(code)  # coverage, a profiler or a debugger: let it write what it gathered at exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away, or a closed stream
        pass
    os._exit(code)


def _observed() -> bool:
    """Whether a tracer or profiler watches this process (``sys.settrace``/``setprofile``, or a
    ``sys.monitoring`` tool on Python 3.12+, as coverage uses there)."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


def _report_error(exc: OrchestratorError, as_json: bool) -> None:
    problems = exc.problems if isinstance(exc, PlanError) else []
    if as_json:
        emit_json(
            {
                "ok": False,
                "error": type(exc).__name__,
                "message": str(exc),
                "problems": [{"file": p.file, "line": p.line, "message": p.message, "hint": p.hint} for p in problems],
            }
        )
    warn(str(exc))
    if problems:
        warn(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was written.")


def _extensions() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Sub-commands defined next to the code they drive (run, reset, aggregate, ...)."""
    from orchestrator.cli.commands import register

    return [register]
