"""``orchestrator report``: how the run went: critical path, speed-up, cost, tokens, retries, a timeline."""

from __future__ import annotations

import argparse
import time

from orchestrator.cli.output import Commands, add_command, add_directory, emit_json, warn
from orchestrator.errors import workspace_error_from
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace

SVG_NAME = "report.svg"


def cmd_report(args: argparse.Namespace) -> int:
    from orchestrator.output import report
    from orchestrator.output.final import as_spent
    from orchestrator.output.learning import learning
    from orchestrator.run.resume.freshness import current_views
    from orchestrator.state import events, schedule, store
    from orchestrator.state.kept import checkpoints, synthesis

    workspace = Workspace.find(args.directory)
    plan = plan_of(workspace)
    views = as_spent(current_views(plan, workspace), workspace)  # (the states and causes status shows)
    found = report.build(plan, views, synthesis.read(workspace), events.run_slots(workspace.events_file))
    found.figures.update(learning(events.read_all(workspace.events_file)))  # estimates; the run before
    planned = schedule.shown(workspace, time.time())
    if planned is not None:  # (a workspace with no schedule: no key, as before)
        found.figures.update(schedule=planned, schedule_note=schedule.note(planned))
    back = checkpoints.restored(workspace)
    if back is not None:  # (the results shown are the checkpoint's, until the next run)
        found.figures.update(restored=back, restored_note=checkpoints.restored_note(back))
    title = workspace.project_dir.name
    svg_path = workspace.root / SVG_NAME
    workspace.check_inside()
    svg: str | None = workspace.relative(svg_path)
    try:
        store.write_text(svg_path, found.svg(title) + "\n")  # beside final_output.md, which the markdown links
    except OSError as exc:  # a workspace one may read but not write: the report is still worth having
        error = workspace_error_from(exc)
        if error is None:
            raise
        warn(f"{error} (the report is printed without its timeline file)")
        svg = None
    fmt = "json" if args.json else args.format
    if fmt == "json":
        emit_json({**found.as_json(), "svg": svg})
    elif fmt == "html":
        print(report.html(found, title), end="")
    else:
        print(report.markdown(found, title, SVG_NAME if svg else None), end="")
    return 0


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "report",
        cmd_report,
        "how the run went: critical path, speed-up, parallel efficiency, cost and tokens by task and backend, "
        "retries, and a timeline (writes .orchestrator/report.svg)",
        json_help="the figures as one JSON object (the same as --format json)",
    )
    add_directory(p)
    p.add_argument("--format", choices=("markdown", "html", "json"), default="markdown", help="default markdown")
