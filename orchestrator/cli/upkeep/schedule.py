"""``orchestrator schedule add|list|remove|fire``: a plan run again and again by the machine's cron.

``add`` writes a line in the managed block of the user's crontab (``run/launch/crontab``) and the
workspace's record (``state/schedule``); cron runs ``schedule fire`` at each time, which runs the
plan as ``run`` does, its output appended to ``logs/schedule.log``, and notes how it went for
``check``. A firing that finds the previous run still going says so in that log, starts no second
runner and exits 3.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.output import Commands, Handler, add_command, add_params, emit_json, given_params, warn
from orchestrator.errors import LockedError, OrchestratorError, UsageError
from orchestrator.plan.table.times import iso
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import DEFAULT_DIR, Workspace, from_here
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan

_JSON = "print one JSON object instead of text"


def cmd_add(args: argparse.Namespace) -> int:
    from orchestrator.plan.config import cron
    from orchestrator.run.launch import crontab
    from orchestrator.run.notices.notify import user_config_path, user_targets
    from orchestrator.state import schedule
    from orchestrator.state.plans.params import remember

    try:
        expression = cron.parse(args.cron).text  # (a shorthand such as @daily as its five fields)
    except ValueError as exc:
        raise UsageError(f"--cron '{args.cron}': {exc} — nothing was written") from None
    workspace = Workspace.find(args.directory)
    params = given_params(args)
    plan = _as_fired(workspace, params)  # a plan every firing would refuse is refused now (exit 2)
    where = str(workspace.root)
    line = crontab.line_for(
        expression, workspace.root, workspace.project_dir, schedule.log_of(workspace), keep_done=args.keep_done
    )

    def put(table: crontab.Crontab) -> crontab.Crontab:
        kept = [e for e in table.entries if e.workspace != where]
        return crontab.Crontab(table.before, (*kept, crontab.Entry(where, expression, line)), table.after)

    before, _ = crontab.change(put)
    schedule.added(workspace, expression)
    remember(workspace, params)  # what each firing's `run` reads the plan with, as after `run --param`
    workspace.logs_dir.mkdir(parents=True, exist_ok=True)
    following = iso(schedule.next_firing(expression))
    replaced = before.find(where) is not None
    log = from_here(schedule.log_of(workspace))
    if args.json:
        emit_json(
            {
                "ok": True,
                "workspace": where,
                "cron": expression,
                "next": following,
                "replaced": replaced,
                "log": log,
                "newline_added": before.unended,
            }
        )
    else:
        done = "rescheduled" if replaced else "scheduled"
        print(f"{done} {from_here(workspace.root)}: '{expression}', next at {following}")
        print(f"each run's output is appended to {log}; `orchestrator check` tells when one is overdue or failed")
        if before.unended:  # (once: the crontab ends with one from now on)
            print("your crontab's last line had no newline at its end: one was added (Debian's cron ignores a last "
                  "line without one)")  # fmt: skip
    if crontab.daemon_running() is False:
        warn("no cron daemon runs on this machine: nothing fires until one does (Debian: service cron start)")
    if not plan.settings.notify and not user_targets()[0]:
        warn(
            f"no notify target (the plan's `notify:`, or {user_config_path()}'s): how each scheduled run went is "
            "told only by `orchestrator check` and `orchestrator history` — set `notify: URL` in either to be told"
        )
    return ExitCode.OK


def _as_fired(workspace: Workspace, params: dict[str, str]) -> Plan:
    """The plan as a firing's `run` will load it: ``params`` over those remembered over the
    defaults, every parameter with a value, the plan's checks (backends, profiles, commands,
    ``cwd``); what it would refuse is refused now, a ``UsageError`` or ``PlanError``."""
    from orchestrator.run.prepare import RunOptions, load_checked

    try:
        plan, _ = load_checked(workspace, RunOptions(params=params))
    except UsageError as exc:  # (a parameter without a value: given here, it is kept for every firing)
        said = str(exc).replace("`run --param", "`schedule add --param")
        raise UsageError(f"{said} — nothing was scheduled") from None
    return plan


def cmd_list(args: argparse.Namespace) -> int:
    from orchestrator.run.launch import crontab
    from orchestrator.state import schedule

    rows: list[dict[str, object]] = []
    for entry in crontab.parse(crontab.read()).entries:
        record: dict[str, object] = {}
        if Path(entry.workspace).is_dir():
            record = schedule.read(Workspace(Path(entry.workspace))) or {}
        rows.append(
            {
                "workspace": entry.workspace,
                "cron": entry.cron,
                "next": iso(schedule.next_firing(entry.cron)),
                "fired": iso(record.get("fired")),
                "exit_code": record.get("exit_code"),
                "skips": record.get("skips", 0),
                "exists": Path(entry.workspace).is_dir(),
            }
        )
    if args.json:
        emit_json({"ok": True, "schedules": rows})
        return ExitCode.OK
    if not rows:
        print("no schedules — `orchestrator schedule add WORKSPACE --cron '0 2 * * *'` adds one")
        return ExitCode.OK
    for row in rows:
        last = f"last fired {row['fired']} (exit {row['exit_code']})" if row["fired"] else "not fired yet"
        gone = "" if row["exists"] else " — the workspace is gone: `orchestrator schedule remove` it"
        print(f"{from_here(str(row['workspace']))}: '{row['cron']}', next at {row['next']}; {last}{gone}")
    return ExitCode.OK


def cmd_remove(args: argparse.Namespace) -> int:
    from orchestrator.run.launch import crontab
    from orchestrator.state import schedule

    try:
        workspace: Workspace | None = Workspace.find(args.directory)
    except OrchestratorError:  # gone since: its line can still go, by its path
        workspace = None
    path = Path(args.directory).absolute()
    wanted = {str(workspace.root)} if workspace is not None else {str(path), str(path / DEFAULT_DIR)}
    wanted |= {os.path.realpath(w) for w in wanted}

    def drop(table: crontab.Crontab) -> crontab.Crontab:
        return crontab.Crontab(table.before, tuple(e for e in table.entries if e.workspace not in wanted), table.after)

    before, after = crontab.change(drop)
    gone = [e.workspace for e in before.entries if e not in after.entries]
    if not gone:
        raise UsageError(f"{args.directory}: no schedule for it — `orchestrator schedule list` shows the schedules")
    if workspace is not None:
        schedule.removed(workspace)
    if args.json:
        emit_json({"ok": True, "removed": gone})
    else:
        print(f"removed the schedule of {from_here(gone[0])}")
    return ExitCode.OK


def cmd_fire(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import build_parser
    from orchestrator.run.resume.freshness import views_in
    from orchestrator.state import schedule
    from orchestrator.state.health import check

    workspace = Workspace.find(args.directory)
    now = time.time()
    say = warn if args.json else functools.partial(print, flush=True)  # (--json: stdout is the run's events)
    say(f"== {iso(now)}: scheduled run of {workspace.root}")
    schedule.update(workspace, fired=now)
    words = ["run", str(workspace.root), *(["--json"] if args.json else [])]
    try:
        forced: list[str] | None = None
        if not args.keep_done:  # every firing a fresh run of the whole plan, as a scheduled workflow is:
            tasks = plan_of(workspace).tasks  # every task runs again, the roots for real; a dependent
            words += ["--rerun", ",".join(tasks)]  # whose upstream printed the same is reused (early cutoff)
            forced = [task.id for task in tasks.values() if not task.dependencies]
        run = build_parser("run").parse_args(words)
        run.forced = forced
        code = int(run.handler(run))
    except LockedError as exc:
        say(f"skipped: {exc} — no second runner started; this firing exits 3")
        schedule.update(workspace, skipped=time.time(), skip=True)
        return ExitCode.LOCKED
    except OrchestratorError as exc:
        schedule.update(workspace, finished=time.time(), exit_code=exc.exit_code)
        raise
    except KeyboardInterrupt:
        schedule.update(workspace, finished=time.time(), exit_code=int(ExitCode.INTERRUPTED))
        raise
    schedule.update(workspace, finished=time.time(), exit_code=code)
    say(f"== {iso(time.time())}: the scheduled run exited {code}")
    if code == ExitCode.HELD:  # (no failure: it stopped where a person is needed, as `check` tells)
        for finding in check(workspace, views=views_in(workspace)).findings:
            if finding.kind == "awaiting_approval":
                say(f"   a person is needed: {finding.message}")
    return code


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "schedule",
        cmd_list,
        "run a plan again and again by the machine's cron: `schedule add WORKSPACE --cron EXPR`, `schedule list`, "
        "`schedule remove WORKSPACE` (a managed block of your crontab; your own lines are kept)",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", help="add, list, remove, or fire (what cron runs)")
    add = _action(actions, "add", cmd_add, "schedule the workspace's plan: a line in your crontab's managed block")
    add.add_argument("--cron", required=True, metavar="EXPR", help="when: five cron fields ('0 2 * * *') or @daily")
    add_params(add, "run every firing with (kept for later runs, as `run --param` keeps it)")
    _action(actions, "list", cmd_list, "the schedules in your crontab, when each fires next and how it last went")
    _action(actions, "remove", cmd_remove, "take the workspace's line out of your crontab")
    fire = _action(
        actions, "fire", cmd_fire, "what each cron line runs: a run, noted for `check`; skipped while one goes"
    )
    for parser in (add, fire):
        parser.add_argument(
            "--keep-done",
            action="store_true",
            help="run only what is not completed and up to date, as `run` does (default: every task afresh)",
        )


def _action(
    actions: Commands[argparse.ArgumentParser], name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=_JSON)
    if name != "list":
        parser.add_argument(
            "directory", nargs="?", default=DEFAULT_DIR, help="the workspace (default: .orchestrator here)"
        )
    return parser
