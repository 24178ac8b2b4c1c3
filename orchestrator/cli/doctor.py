"""``orchestrator doctor``: can this machine run the plan, and what will its agents be allowed to do."""

from __future__ import annotations

import argparse
import platform

from orchestrator import __version__
from orchestrator.cli.output import Commands, add_command, emit_json
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode, listed


def cmd_doctor(args: argparse.Namespace) -> int:
    from orchestrator.run.doctor import examine

    workspace = _workspace(args.directory)
    diagnosis = examine(workspace)
    if args.json:
        emit_json({**diagnosis.as_json(), "orchestrator": __version__, "python": platform.python_version()})
        return ExitCode.OK if diagnosis.ok else ExitCode.FAILED
    print(f"orchestrator {__version__}, Python {platform.python_version()}")
    system = diagnosis.system
    print(f"system: {system.name} (supported)" if system.supported else f"system: ❌ {system.problem}")
    if diagnosis.plan is None:
        print("plan: none here (every agent backend is checked)")
    elif diagnosis.plan_problem:
        print(f"plan: {diagnosis.plan}: ❌ {diagnosis.plan_problem}")
    else:
        print(f"plan: {diagnosis.plan}")
    for check in diagnosis.checks:
        found = check.installation
        mark = "❌" if check.problem else "✅" if check.needed else "·"
        if found is None:
            print(f"{mark} {check.backend}: no CLI needed")
        elif not found.installed:
            print(f"{mark} {check.backend}: {found.program} not installed — {found.install}")
        else:
            print(f"{mark} {check.backend}: {found.path} ({found.version or 'version unknown'})")
            login = "⚠️ " + found.login if found.logged_in is False else found.login
            print(f"    login: {login}")
        if not check.needed and diagnosis.plan is not None:
            print("    not used by this plan")
        for use in check.uses:
            who = [f"profile {use.profile}"] if use.profile else []
            who += [f"type {use.type}"] if use.type else []
            print(f"    {_tasks(use.tasks)} ({', '.join(who) or 'plan settings'}): {use.powers}")
    if diagnosis.types:
        print("tasks with a type: what each ends up with, and from where")
        for line in diagnosis.types:
            print(f"    {line}")
    if not diagnosis.ok:
        print(
            "Something the plan needs is missing (❌ above)." if system.supported else "This system cannot run plans."
        )
    elif diagnosis.plan is not None:
        print("All the plan needs is here.")
    return ExitCode.OK if diagnosis.ok else ExitCode.FAILED


def _workspace(directory: str | None) -> Workspace | None:
    """The workspace when there is a plan to look at; None: check every backend. A directory
    named on the command line must hold a plan (the error says so, in one line)."""
    if directory is not None:
        return Workspace.find(directory)
    found = Workspace.find(None, must_exist=False)
    return found if found.plan_file.is_file() else None


def _tasks(ids: list[str]) -> str:
    return listed(ids[:4], len(ids))


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "doctor",
        cmd_doctor,
        "check that the agent CLIs the plan needs are installed and logged in, and what each may do",
    )
    p.add_argument(
        "directory", nargs="?", default=None, help="the workspace (default: .orchestrator here, if there is one)"
    )
