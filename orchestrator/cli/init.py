"""``orchestrator init``: a workspace and its master_plan.md, from the skeleton (three sample
tasks, or none: ``--empty``, for ``add`` to fill) or from a template of the library."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.cli.output import Commands, add_command, add_directory, add_params, emit_json, given_params
from orchestrator.errors import UsageError
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode


def cmd_init(args: argparse.Namespace) -> int:
    from orchestrator import backends
    from orchestrator.output.skeleton import skeleton
    from orchestrator.state import store
    from orchestrator.state.lock import replacing_plan

    if args.backend not in backends.names():
        raise UsageError(f"--backend: no backend '{args.backend}' — use one of: {', '.join(backends.names())}")
    root = Path(args.directory)
    plan_file = root / "master_plan.md"
    if plan_file.exists() and not args.force:
        raise UsageError(f"{plan_file} already exists — edit it, or pass --force to replace it")
    if args.empty and args.template:
        raise UsageError("--empty and --template cannot be combined: the template has its tasks")
    if args.template:
        text, given = _from_template(args, plan_file)
    else:
        text, given = skeleton(args.request or "", args.backend, empty=args.empty), {}
    with replacing_plan(root):
        for sub in ("agent_tasks", "results", "logs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        store.write_text(plan_file, text)
        if given:  # kept as run --param keeps them: status, run and the dashboard read the plan with them
            from orchestrator.state.plans.params import remember

            remember(Workspace(root.resolve()), given)
    if args.json:
        emit_json({"ok": True, "workspace": str(root), "plan": str(plan_file)})
    else:
        import shlex

        print(f"Created {plan_file}")
        # Named as it was given unless the commands find it from here without a name.
        named = "" if root.resolve() == (Path.cwd() / ".orchestrator").resolve() else " " + shlex.quote(str(root))
        then = f"`orchestrator validate{named}` and `orchestrator run{named}`"
        if args.empty:
            print(f'Next: `orchestrator add{named} "DESCRIPTION"` for each task (or edit its table), then {then}.')
        else:
            print(f"Next: edit it (or let an agent write it), then {then}.")
    return ExitCode.OK


def _from_template(args: argparse.Namespace, plan_file: Path) -> tuple[str, dict[str, str]]:
    """The text of template ``--template`` and the ``--param`` values, checked against it."""
    from orchestrator.plan import library, parser
    from orchestrator.plan.config import params

    if args.request:
        raise UsageError("--request and --template cannot be combined: the template has its request")
    template = library.find(args.template)
    text = parser.read_plan_text(template.path)
    given = given_params(args)
    declared = parser.parse_plan(text, template.path).settings.params
    params.values_for(declared, {}, given, complete=False, where=f"template {args.template}")
    return text, given


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    from orchestrator import backends
    from orchestrator.plan.config.settings import Settings

    p = add_command(sub, "init", cmd_init, "create a workspace with a master_plan.md skeleton")
    add_directory(p)
    p.add_argument("--request", help="the original request to put in the skeleton")
    p.add_argument(
        "--backend",
        default=Settings().backend,
        help=f"backend written into the skeleton: {backends.listing()} (default {Settings().backend}; shell: tasks "
        "as scripts)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing master_plan.md")
    p.add_argument("--template", metavar="NAME", help="start from this plan (`orchestrator templates list`)")
    p.add_argument(
        "--empty", action="store_true", help="an empty task table, for `orchestrator add` to fill (no sample tasks)"
    )
    add_params(p, "remember")
