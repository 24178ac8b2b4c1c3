"""``orchestrator doctor``: can this machine run the plan, and what will its agents be allowed to do."""

from __future__ import annotations

import argparse
import contextlib
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.backends.guard import WALLS
from orchestrator.cli.output import Commands, add_command, emit_json
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace, from_here
from orchestrator.version import __version__
from orchestrator.vocabulary import ExitCode, counted, listed

if TYPE_CHECKING:
    from orchestrator.run.checks.doctor import Diagnosis


def cmd_doctor(args: argparse.Namespace) -> int:
    from orchestrator.run.checks.doctor import examine

    workspace = _workspace(args.directory)
    diagnosis = examine(workspace)
    needed = [c.backend for c in diagnosis.checks if c.needed and c.installation is not None]
    cluster = _cluster(args, workspace, needed)
    # On a cluster the agent CLIs run on the workers: those are what must have them.
    here = diagnosis.ok if cluster is None else diagnosis.system.supported and diagnosis.plan_problem is None
    servers = _mcp_servers(workspace)
    ok = here and (cluster is None or not cluster["problems"]) and not any(s["problem"] for s in servers)
    if args.json:
        surveyed = {"cluster": cluster} if cluster is not None else {}
        emit_json({**diagnosis.as_json(), "ok": ok, **surveyed, "mcp": servers, "orchestrator": __version__,
                   "python": platform.python_version()})  # fmt: skip
        return ExitCode.OK if ok else ExitCode.FAILED
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
            if found.untested:
                print(f"    ⚠️ version {found.version}: {found.untested}")
            login = "⚠️ " + found.login if found.logged_in is False else found.login
            print(f"    login: {login}")
        if not check.needed and diagnosis.plan is not None:
            print("    not used by this plan")
        for use in check.uses:
            who = [f"profile {use.profile}"] if use.profile else []
            who += [f"type {use.type}"] if use.type else []
            print(f"    {_tasks(use.tasks)} ({', '.join(who) or 'plan settings'}): {use.powers}")
            if use.walls is not None:  # what keeps them out of the workspace (backends/guard)
                print(f"      {'walls' if use.walls.holds else '⚠️ walls'}: {WALLS}: {use.walls.said()}")
    _print_sandbox(diagnosis)
    if diagnosis.types:
        print("tasks with a type: what each ends up with, and from where")
        for line in diagnosis.types:
            print(f"    {line}")
    if cluster is not None:
        _print_cluster(cluster)
    for server in servers:
        mark = f"❌ {server['problem']}" if server["problem"] else "✅ starts"
        print(f"mcp: {server['config']}'s server '{server['name']}' ({server['command']}): {mark}")
    if any(server["problem"] for server in servers):
        print("Claude Code cannot start the MCP server (❌ above).")
        return ExitCode.FAILED
    if cluster is not None and here:
        print("The cluster cannot run the plan (❌ above)." if not ok else "All the plan needs is on the cluster.")
        return ExitCode.OK if ok else ExitCode.FAILED
    if not diagnosis.ok:
        print(
            "Something the plan needs is missing (❌ above)." if system.supported else "This system cannot run plans."
        )
    elif diagnosis.plan is not None:
        print("All the plan needs is here.")
    return ExitCode.OK if diagnosis.ok else ExitCode.FAILED


def _print_sandbox(diagnosis: Diagnosis) -> None:
    """Whether a run from outside can close its shell and command tasks in a sandbox here."""
    found = diagnosis.sandbox
    if found is None:
        return
    if found.problem is None:
        print(f"✅ sandbox: {found.version or 'bubblewrap'} (runs from outside run shell and command tasks in it)")
        return
    mark = "❌" if found.needed else "·"
    whose = (
        "this plan's triggers start runs that refuse their"
        if found.needed
        else "a run from outside (webhooks, the API, MCP) refuses its"
    )
    from orchestrator.executors.sandbox import INSTALL

    print(f"{mark} sandbox: {found.problem} — {whose} shell and command tasks without one: {INSTALL}")


def _cluster(args: argparse.Namespace, workspace: Workspace | None, needed: list[str]) -> dict[str, Any] | None:
    """With ``--executor dask`` (an executor on a cluster), or a plan whose ``executor`` setting
    says so: the cluster as ``doctor --json`` gives it (``cluster``); its scheduler as a run finds
    it (``--scheduler``, the plan's ``scheduler``, ``$ORCHESTRATOR_DASK_SCHEDULER``)."""
    from orchestrator.cli.running import executor_settings
    from orchestrator.executors import registry
    from orchestrator.executors.capabilities import Setup

    chosen, scheduler, shared = executor_settings(workspace, args.executor)
    if not registry.can(chosen).cluster:
        return None
    from orchestrator.errors import OrchestratorError
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.run.checks.cluster import asked_resources, survey

    cluster = registry.make(chosen, Setup(scheduler=args.scheduler or scheduler)).cluster
    if cluster is None:
        return None
    asked = {}
    if workspace is not None:
        with contextlib.suppress(OrchestratorError):  # (a plan that does not load is told above)
            asked = asked_resources(plan_of(workspace), Profiles(workspace))
    # With a shared filesystem every worker must see the project where this machine does.
    directories = [str(workspace.project_dir)] if workspace is not None and shared else []
    workers, problems = survey(cluster.scheduler, needed, cluster.timeout, asked, directories=directories)
    listed_workers = []
    for w in workers:
        clis = {p: {"path": i.path, "version": i.version, "login": i.login, "logged_in": i.logged_in}
                for p, i in w.clis.items()}  # fmt: skip
        listed_workers.append(
            {"name": w.name, "address": w.address, "threads": w.threads, "resources": dict(w.resources), "clis": clis,
             "orchestrator": w.version}
        )  # fmt: skip
    return {"scheduler": cluster.scheduler, "workers": listed_workers, "problems": problems}


def _print_cluster(cluster: dict[str, Any]) -> None:
    workers = cluster["workers"]
    print(f"cluster: {cluster['scheduler']}: {counted(len(workers), 'worker')}")
    for worker in workers:
        resources = ", ".join(f"{name}={amount:g}" for name, amount in sorted(worker["resources"].items()))
        version = f", orchestrator {worker['orchestrator']}" if worker["orchestrator"] else ""
        print(f"  {worker['name']} ({worker['address']}): {counted(worker['threads'], 'thread')}"
              + (f", resources {resources}" if resources else "") + version)  # fmt: skip
        for program, found in sorted(worker["clis"].items()):
            if found["path"] is None:
                print(f"    ❌ {program}: not installed")
            else:
                mark = "❌" if found["logged_in"] is False else "✅"
                version = found["version"] or "version unknown"
                print(f"    {mark} {program}: {found['path']} ({version}); {found['login']}")
    for problem in cluster["problems"]:
        print(f"❌ {problem}")


def _mcp_servers(workspace: Workspace | None) -> list[dict[str, Any]]:
    """The project's ``.mcp.json`` entries that run our MCP server, each started as Claude Code
    starts it (``mcp_setup.probe``): ``name``, ``command``, ``config`` (the file), ``problem``
    (``None``: it answered). None when the file has none (or there is no such file)."""
    import json

    from orchestrator.cli.agents.mcp_setup import CONFIG, ours, probe

    project = workspace.project_dir if workspace is not None else Path.cwd()
    try:
        servers = json.loads((project / CONFIG).read_text(encoding="utf-8")).get("mcpServers") or {}
    except (OSError, ValueError, AttributeError):
        return []
    found = []
    for name, server in servers.items() if isinstance(servers, dict) else ():
        if ours(server):
            command = " ".join([str(server["command"]), *map(str, server.get("args") or [])])
            config = from_here(project / CONFIG)
            found.append({"name": name, "command": command, "config": config, "problem": probe(server, project)})
    return found


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
    from orchestrator.executors import registry as executors

    p = add_command(
        sub,
        "doctor",
        cmd_doctor,
        "check that the agent CLIs the plan needs are installed and logged in, and what each may do",
    )
    p.add_argument(
        "directory", nargs="?", default=None, help="the workspace (default: .orchestrator here, if there is one)"
    )
    p.add_argument(
        "--executor",
        choices=executors.names(in_plan=True),
        default=None,
        help="where the plan's attempts run (default its `executor` setting): on a cluster (dask), the cluster is "
        "checked too (its workers, their resources, the agent CLIs on each)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --executor dask: the Dask scheduler (default the plan's `scheduler`, "
        "else $ORCHESTRATOR_DASK_SCHEDULER)",
    )
