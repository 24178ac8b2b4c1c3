"""``orchestrator doctor``: whether this machine can run a plan, and what its agents may do.

    examine(workspace or None) -> Diagnosis

First, the system: Linux and macOS are supported, Windows through WSL (the runner needs POSIX
process groups and ``fcntl`` locks). For each backend the plan uses (every agent backend when
there is no plan): whether its CLI is installed, its version (and a warning when it is outside
those its backend was tested with), how it logs in, and for each group
of tasks that share its settings (the plan's, a profile's) what those agents will be allowed to
do, with the risk in plain words.
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass, field
from typing import Any

from orchestrator import backends
from orchestrator.backends.guard import Guard
from orchestrator.backends.probe import Installation, agent_environment, probe
from orchestrator.errors import PlanError
from orchestrator.executors import sandbox
from orchestrator.plan import provenance
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.triggers import GITHUB
from orchestrator.plan.model import Plan
from orchestrator.state.plans import plan_of
from orchestrator.state.workspace import Workspace

SUPPORTED_SYSTEMS = {"Linux": "Linux", "Darwin": "macOS"}  # platform.system(): the name people know


@dataclass(slots=True)
class System:
    """The operating system, and whether a run can work on it."""

    name: str
    problem: str | None  # None: supported

    @property
    def supported(self) -> bool:
        return self.problem is None


def this_system() -> System:
    """This machine's system: supported are Linux and macOS (POSIX process groups, ``fcntl``
    locks); elsewhere (Windows) the answer says to use WSL."""
    kind = platform.system() or "unknown"
    name = SUPPORTED_SYSTEMS.get(kind, kind)
    advice = "orchestrator runs on Linux and macOS; on Windows, run it inside WSL"
    if kind not in SUPPORTED_SYSTEMS:
        return System(name, f"{name} is not supported: {advice}")
    try:
        importlib.import_module("fcntl")
    except ImportError:
        return System(name, f"this Python has no fcntl module, which runs need: {advice}")
    return System(name, None)


@dataclass(slots=True)
class Use:
    """Tasks that run on a backend with the same settings."""

    profile: str | None
    tasks: list[str]
    powers: str
    type: str | None = None  # the task type they share, if one
    walls: Guard | None = None  # what keeps them out of the workspace here (``backends/guard``)


@dataclass(slots=True)
class BackendCheck:
    backend: str
    installation: Installation | None  # None: needs no CLI
    uses: list[Use] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        return bool(self.uses)

    @property
    def problem(self) -> str | None:
        """What stops this backend's tasks, if the plan needs it."""
        found = self.installation
        if not self.needed or found is None:
            return None
        if not found.installed:
            return f"{found.program} is not installed: {found.install}"
        if found.logged_in is False:
            return found.login
        return None


@dataclass(frozen=True, slots=True)
class SandboxCheck:
    """Whether a sandbox can be made here for a run from outside's shell and command tasks
    (``executors/sandbox``): ``problem`` why not; ``needed``: the plan's triggers start runs that
    have such tasks, sandboxed."""

    version: str | None
    problem: str | None
    needed: bool

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "problem": self.problem, "needed": self.needed, "install": sandbox.INSTALL}


def _sandbox(plan: Plan | None, scripted: bool) -> SandboxCheck:
    needed = False
    if plan is not None and scripted:
        triggers = plan.settings.triggers
        names = ([GITHUB] if triggers.github is not None else []) + list(triggers.hooks)
        needed = any((triggers.sandbox(name) or plan.settings.sandbox) != "off" for name in names)
    return SandboxCheck(sandbox.version(), sandbox.missing(), needed)


@dataclass(slots=True)
class Diagnosis:
    plan: str | None  # the plan file, as the workspace names it
    plan_problem: str | None
    checks: list[BackendCheck]
    system: System = field(default_factory=this_system)
    sandbox: SandboxCheck | None = None
    types: list[str] = field(default_factory=list)  # each typed task's settings and where from (``provenance``)
    types_json: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        shut = self.sandbox is not None and self.sandbox.needed and self.sandbox.problem is not None
        return (
            self.system.supported and self.plan_problem is None and all(c.problem is None for c in self.checks)
        ) and not shut

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "system": {"name": self.system.name, "supported": self.system.supported, "problem": self.system.problem},
            "plan": self.plan,
            "plan_problem": self.plan_problem,
            "sandbox": self.sandbox.as_json() if self.sandbox is not None else None,
            "types": self.types_json,
            "backends": [
                {
                    "backend": c.backend,
                    "needed": c.needed,
                    "installed": c.installation.installed if c.installation else None,
                    "path": c.installation.path if c.installation else None,
                    "version": c.installation.version if c.installation else None,
                    "untested": c.installation.untested if c.installation else None,
                    "login": c.installation.login if c.installation else None,
                    "logged_in": c.installation.logged_in if c.installation else None,
                    "install": c.installation.install if c.installation else None,
                    "problem": c.problem,
                    "uses": [
                        {
                            "profile": u.profile,
                            "type": u.type,
                            "tasks": u.tasks,
                            "powers": u.powers,
                            "walls": _walls(u.walls),
                        }
                        for u in c.uses
                    ],
                }
                for c in self.checks
            ],
        }


def _walls(guard: Guard | None) -> dict[str, Any] | None:
    """What keeps a group of tasks out of the workspace, as ``doctor --json`` says it (None: they
    write nothing, or start no agent)."""
    return None if guard is None else {"holds": guard.holds, "how": guard.how, "needs": guard.needs}


def examine(workspace: Workspace | None) -> Diagnosis:
    """What ``doctor`` reports for ``workspace`` (None: no plan; every agent backend)."""
    uses: dict[str, dict[tuple[str | None, str | None, str], Use]] = {}
    typed: list[str] = []
    typed_json: list[dict[str, Any]] = []
    envs: dict[str, dict[str, str]] = {}
    plan_name: str | None = None
    plan_problem: str | None = None
    plan: Plan | None = None
    if workspace is not None:
        plan_name = workspace.relative(workspace.plan_file)
        try:
            plan = plan_of(workspace)
            profiles = Profiles(workspace)
            for task in plan.tasks.values():
                settings = profiles.settings_for(plan, task)
                if settings.backend not in backends.names():
                    continue
                profile = profiles.get(task.profile)
                name = profile.name if profile is not None else None
                backend = backends.get(settings.backend)
                powers = backend.powers(settings)
                walls = None if backend.read_only(settings) else backend.guard(settings)
                key = (name, task.type, powers + (walls.said() if walls else ""))
                group = uses.setdefault(settings.backend, {}).setdefault(key, Use(name, [], powers, task.type, walls))
                group.tasks.append(task.id)
                if settings.backend not in envs:
                    envs[settings.backend] = agent_environment(settings.env)
            typed, typed_json = provenance.lines(plan, profiles), provenance.as_json(plan, profiles)
        except PlanError as exc:
            plan_problem = f"{exc} (run `orchestrator validate` for every problem)"
    names = list(uses) + [b for b in backends.agents() if b not in uses]  # the plan's first
    checks = []
    for name in names:
        cli = backends.get(name).cli()
        found = probe(cli, envs.get(name) or agent_environment({})) if cli is not None else None
        checks.append(BackendCheck(name, found, list(uses.get(name, {}).values())))
    scripted = any(backends.sandboxed(name) for name in uses)
    return Diagnosis(plan_name, plan_problem, checks, types=typed, types_json=typed_json,
                     sandbox=_sandbox(plan, scripted))  # fmt: skip
