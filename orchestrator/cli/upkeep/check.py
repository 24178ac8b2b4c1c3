"""``orchestrator check``: exit 0 when every workspace named is well, 1 when one needs a person; and
``verify`` (its work in ``commands/verifying``), registered here beside it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from orchestrator.cli.doors import register_command
from orchestrator.cli.output import Commands, add_command, emit_json
from orchestrator.errors import OrchestratorError
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import DEFAULT_DIR, Workspace, from_here
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.state.health import Finding
    from orchestrator.state.status import TaskView


def cmd_check(args: argparse.Namespace) -> int:
    from orchestrator.output.digest import Section, render
    from orchestrator.run.resume.freshness import views_in
    from orchestrator.state.health import check

    sections: list[Section] = []
    code: int = ExitCode.OK
    reports: list[dict[str, object]] = []
    for directory in args.workspaces or [DEFAULT_DIR]:
        try:
            workspace = Workspace.find(directory)
        except OrchestratorError as exc:  # no workspace there: bad usage, for this one
            sections.append((directory, None, str(exc)))
            reports.append({"workspace": directory, "ok": False, "error": str(exc)})
            code = max(code, exc.exit_code)
            continue
        views = views_in(workspace)  # (what `status` shows: check counts the same)
        health = check(workspace, views=views)
        health.out_of_date = {v.id: v.out_of_date for v in views or () if v.out_of_date is not None}
        health.findings += _deadlines(workspace, views)
        sections.append((from_here(workspace.root), health, None))
        reports.append(health.as_json())
        if not health.ok:
            code = max(code, ExitCode.FAILED)
    if args.json:
        emit_json({"ok": code == ExitCode.OK, "exit_code": int(code), "workspaces": reports})
    elif not (args.quiet and code == ExitCode.OK):
        print(render(sections, args.format))
    return code


def _deadlines(workspace: Workspace, views: list[TaskView] | None) -> list[Finding]:
    """A deadline the estimates say will be missed, or was: a person should know (``run/forecasts/deadlines``)."""
    from orchestrator.run.forecasts.deadlines import RUN, deadline_line, workspace_verdicts
    from orchestrator.state.health import Finding

    if views is None:  # (a plan that does not load now: nothing to judge)
        return []
    found = workspace_verdicts(plan_of(workspace), workspace, views)
    return [
        Finding(
            f"deadline_{v['state']}", deadline_line(v).removeprefix("⏰ "), () if v["task"] == RUN else (v["task"],)
        )
        for v in found
    ]


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "check",
        cmd_check,
        "exit 0 when all is well, 1 when a workspace needs attention (a dead runner, a task past its limits, "
        "a pause, failures, results the fake executor made up): for cron and heartbeats",
    )
    p.add_argument(
        "workspaces", nargs="*", metavar="WORKSPACE", help="workspaces to check (default: .orchestrator here)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing when all is well")
    p.add_argument(
        "--format",
        choices=("text", "markdown", "discord", "slack"),
        default="text",
        help="text (default), a markdown digest, or a message formatted for Discord or Slack",
    )
    register_command(sub, "verify")  # (its work: commands/verifying)
