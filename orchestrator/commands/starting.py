"""``run`` for other programs: the run's options read as the command line reads them
(``run_options``, which ``cli/running`` shares), the plan checked as ``run`` checks it before it
starts anything (nothing written on an error), then the run started in the background
(``run/launch/background``): its launch, or why not (a run going on: its ``pid``). Every value a
program gives a run is untrusted (``--untrusted SOURCE``: data, never an agent's instructions).
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from orchestrator.commands.calling import Call, Result
from orchestrator.commands.options import Arguments, command_line
from orchestrator.commands.runopts import options
from orchestrator.errors import UsageError
from orchestrator.plan.config.params import parse_assignments

if TYPE_CHECKING:
    from orchestrator.run.prepare import RunOptions
    from orchestrator.state.workspace import Workspace


def start(call: Call) -> Result:
    """The run started in the background, its launch (``run/launch/background.Started``)."""
    from orchestrator.executors import registry as executors
    from orchestrator.run.launch.background import start as launch
    from orchestrator.run.prepare import hold_to_budget, survey

    args, workspace = call.args, call.workspace
    chosen = run_options(args)
    chosen.untrusted = call.source
    simulated = executors.can(args.executor).simulated  # (the fake executor's made-up results count as done for it)
    if getattr(args, "dry_run", False):
        return Result(preview(workspace, chosen, simulated=simulated))
    hold_to_budget(survey(workspace, chosen, simulated=simulated), workspace, chosen)
    line = command_line(options(), args, leave_out=("untrusted",))
    started = launch(workspace, line, call.source, params=chosen.params, what=call.what, delivery=call.delivery)
    return Result(started.as_json())


def preview(workspace: Workspace, chosen: RunOptions, *, simulated: bool = False) -> dict[str, Any]:
    """``run --dry-run``: what the run would run, and what it is expected to cost (the forecast from
    the runs before, ``run/forecasts/spend``) against its budget; nothing started, nothing written."""
    from orchestrator.run.prepare import survey

    found = survey(workspace, chosen, simulated=simulated)
    forecast = found.forecast(workspace)
    limit = found.plan.settings.max_cost
    over = limit is not None and forecast.cost is not None and forecast.cost.p50 > limit
    return {
        "dry_run": True,
        "run": list(found.selection.run),
        "done": sorted(found.selection.done),
        "max_cost": limit,
        "over_budget": over,
        "forecast": forecast.as_json(),
        "said": forecast.line(),
    }


def _ids(text: str | None, flag: str) -> list[str] | None:
    """The task ids of ``--only``/``--rerun``; given but empty (``--only "$IDS"`` of a script whose
    list came out empty) is an error, not "every task"."""
    if text is None:
        return None
    ids = [part for part in text.replace(",", " ").split() if part]
    if not ids:
        raise UsageError(f"{flag}: no task id given — name the tasks (T-01,T-02), or leave out {flag}")
    return ids


def run_options(args: argparse.Namespace | Arguments) -> RunOptions:
    """What ``run``'s command line asks for, checked as far as it can be without the plan."""
    from orchestrator.run.runner import RunOptions

    if args.only is not None and args.rerun is not None:
        raise UsageError("--only and --rerun cannot be combined")
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    if args.max_cost is not None and not args.max_cost >= 0:
        raise UsageError("--max-cost must be a number of dollars, 0 or more")
    return RunOptions(
        max_parallel=args.max_parallel,
        only=_ids(args.only, "--only"),
        rerun=_ids(args.rerun, "--rerun"),
        forced=getattr(args, "forced", None),  # (no option: `schedule fire` sets it, to force only the roots)
        fail_fast=True if args.fail_fast else None,
        backend=args.backend.lower() if args.backend else None,  # as the plan's setting is read
        max_cost=args.max_cost,
        wait_for_orphans=args.wait_orphans,
        aggregate=args.aggregate,  # concat too: it replaces a plan's `aggregate: agent`
        params=parse_assignments(args.param),
        untrusted=_source(args.untrusted),
        read_only=args.read_only,
        wait=args.wait or args.wait_timeout is not None,
        wait_timeout=args.wait_timeout,
        over_forecast=bool(getattr(args, "over_forecast", False)),
        launch=getattr(args, "launch", None),
    )


def _source(text: str | None) -> str | None:
    """``--untrusted``'s SOURCE, a word of letters, digits, ``-_.:``."""
    if text is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", text):
        raise UsageError(f"--untrusted {text[:80]!r}: name where the values came from in one word, e.g. github")
    return text
