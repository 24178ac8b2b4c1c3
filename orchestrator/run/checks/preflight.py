"""Checks that need more than the plan file: backends exist and are configured, profiles exist,
a shell task has a command to run (its backend may come from a profile or ``run --backend``),
the directory tasks run in is there."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from orchestrator import backends
from orchestrator.backends.base import Backend
from orchestrator.backends.guard import WALLS
from orchestrator.backends.probe import Cli, agent_environment, probe
from orchestrator.backends.shell import task_script
from orchestrator.errors import BackendUnavailableError, OrchestratorError, PlanError, Problem, shown
from orchestrator.plan.config import kinds
from orchestrator.plan.config.profiles import Profiles
from orchestrator.plan.config.settings import (
    SETTING_NAMES,
    Settings,
    setting_line,
    settings_from_mapping,
    suggest,
)
from orchestrator.plan.markdown import FrontmatterError, split_frontmatter, split_lines
from orchestrator.plan.model import Plan, Task
from orchestrator.plan.parser import read_plan_text
from orchestrator.plan.table.conditions import plan_problems
from orchestrator.run.worktrees import isolation
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import listed


def check_plan(
    plan: Plan,
    workspace: Workspace,
    profiles: Profiles | None = None,
    *,
    notices: list[str] | None = None,
    base: bool = False,
    outside: str | None = None,
) -> None:
    """Raise ``PlanError`` with every problem: unknown backends, a backend missing a setting or
    unable to run a task as the plan states it, unknown profiles, a ``cwd`` that is not there.
    Given ``notices``, what is worth telling but no problem is added to it (``validate``: the
    workspace's files that git tracks and a worktree run writes). ``outside``: where the run's
    values came from when not from the person (``run --untrusted``): an agent nothing keeps out of
    the workspace is then refused, not told of."""
    profiles = profiles or Profiles(workspace)
    problems = profiles.problems(plan)
    known = backends.names()
    file = shown(plan.path)
    cwd = _cwd_problem(plan, workspace)
    if cwd is not None:
        problems.append(cwd)
    problems += [Problem(shown(plan.path), line, what, hint) for line, what, hint in plan_problems(plan.tasks)]
    if not plan.tasks and not plan.archived:  # (a plan whose tasks were all archived ran them)
        problems.append(
            Problem(
                file,
                plan.table_line,
                "the task table has no rows",
                'add one row per task under the header, or `orchestrator add "DESCRIPTION"` for each',
            )
        )
    tasks = _TaskChecks(plan, profiles, file, outside)
    for task in plan.tasks.values():
        problems += tasks.problems(task)
    problems += settings_problems(plan.settings, plan.text, file)
    problems += isolation.problems(plan, workspace, tasks.isolated, base=base)
    from orchestrator.run.deliver import followup

    for found in (isolation.delivery_problem(plan, tasks.isolated), followup.problem(plan)):
        problems += [found] if found is not None else []
    problems += _fallback_problems(plan, profiles, known, file)
    for name in plan.settings.backend_max_parallel:
        if name not in known:  # a cap on a misspelt name caps nothing
            problems.append(
                Problem(
                    file,
                    setting_line(plan.text, "backend_max_parallel"),
                    f"backend_max_parallel: unknown backend '{name}'{suggest(name, known)}",
                    f"use one of: {', '.join(known)}",
                )
            )
    if plan.settings.aggregate == "agent" and not reads_prompt(plan.settings.backend):  # found out at the end, else
        problems.append(
            Problem(
                file,
                setting_line(plan.text, "aggregate"),
                "aggregation by an agent (aggregate: agent) needs an agent backend, and the plan's backend is "
                f"{plan.settings.backend}",
                f"set backend to {backends.listing(backends.prompted())}, or aggregate to concat",
            )
        )
    if problems:
        # The same problem for many tasks is said once.
        unique = list({str(p): p for p in problems}.values())
        raise PlanError(unique)
    if notices is not None:
        notices += isolation.notices(workspace, plan, tasks.apart) + tasks.unguarded


def reads_prompt(name: str) -> bool:
    """Whether backend ``name`` reads a prompt (one not known: said as unknown, elsewhere)."""
    return name not in backends.names() or backends.get(name).reads_prompt


class _TaskChecks:
    """What ``check_plan`` finds wrong with each task as its row, type and profile state it; the
    tasks in worktrees, for the checks of the repository after."""

    def __init__(self, plan: Plan, profiles: Profiles, file: str, outside: str | None = None) -> None:
        self.plan, self.profiles, self.file = plan, profiles, file
        # Where the run's values came from, when not from the person: its own word, or its values' marks.
        self.outside = ", ".join(sorted({*([outside] if outside else []), *plan.untrusted.values()}))
        self.known = backends.names()
        self.isolated: list[tuple[Task, str | None]] = []  # the tasks with isolation: worktree, and their cwd
        self.apart: list[Settings] = []  # and their settings
        self._seen: set[tuple[str, str | None, str | None]] = set()
        self._plan_checks: dict[str, str | None] = {}
        self._found: dict[str, Backend] = {}  # one of each backend the tasks use
        self.unguarded: list[str] = []  # the tasks nothing keeps out of the workspace here (``walled``)

    def problems(self, task: Task) -> list[Problem]:
        plan, file = self.plan, self.file
        settings = self.profiles.settings_for(plan, task)
        if settings.isolation == "worktree":
            self.isolated.append((task, settings.cwd))
            self.apart.append(settings)
        name = settings.backend
        if name not in self.known:
            return [self._unknown(task, name)]
        backend = self._found.get(name)
        if backend is None:
            backend = self._found[name] = backends.get(name)
        problems = []
        unfit = backend.check_task(task, settings, self.profiles.get(task.profile))
        if unfit is not None:
            problems.append(Problem(file, task.line, f"{task.id}: {unfit[0]}", unfit[1]))
        command = _command_problem(task, name, file)
        if command is not None:
            problems.append(command)
        if task.model and name not in backends.agents():  # (else silently run without it)
            what = f"{task.id}: a Model cell does nothing for a {name} task, which starts no agent CLI"
            problems.append(Problem(file, task.line, what, f"empty the cell, or run the task on {_agents()}"))
        if task.access and not kinds.presets(name):
            what = f"{task.id}: an Access cell does not limit a {name} task, which runs with your user's rights"
            limited = backends.listing([b for b in backends.names(ordered=True) if kinds.presets(b)])
            problems.append(Problem(file, task.line, what, f"empty the cell, or run the task on {limited}"))
        checked = self._checked(task, name, backend, settings)
        walled = self._walled(task, name, backend, settings)
        return problems + [p for p in (checked, walled) if p is not None]

    def _walled(self, task: Task, name: str, backend: Backend, settings: Settings) -> Problem | None:
        """A task whose agent nothing keeps out of the workspace on this machine (``backends/guard``):
        refused when the run's values came from outside (a trigger, the API, MCP), told otherwise."""
        guard = backend.guard(settings)
        if guard is None or guard.holds or backend.read_only(settings):
            return None
        what = f"{task.id}: nothing keeps its agent ({name}) out of {WALLS} on this machine: {guard.how}"
        if not self.outside:
            self.unguarded.append(f"{self.file}:{task.line}: {what} — {guard.needs or 'see orchestrator doctor'}")
            return None
        hint = f"{guard.needs}, or give it Access: read" if guard.needs else "give it Access: read"
        return Problem(self.file, task.line, f"{what}, and this run came from outside ({self.outside})", hint)

    def _unknown(self, task: Task, name: str) -> Problem:
        kind = self.plan.type_of(task)
        typed = not task.backend and kind is not None and kind.get("backend") == name
        line = task.line if task.backend or typed else setting_line(self.plan.text, "backend")
        where = f"{task.id}: " if task.backend else f"{task.id}: its type {kind.name}'s " if typed and kind else ""
        what = f"{where}unknown backend '{name}'{suggest(name, self.known)}"
        return Problem(self.file, line, what, f"use one of: {', '.join(self.known)}")

    def _checked(self, task: Task, name: str, backend: Backend, settings: Settings) -> Problem | None:
        """The backend's own check of the settings: once with the plan's settings, and again for
        each profile that changes them (tools, permission mode): the same problem said once, where it is."""
        profile = self.profiles.get(task.profile)
        key = (name, task.profile if profile is not None else None, task.access)
        if key in self._seen:
            return None
        self._seen.add(key)
        why = backend.check(settings) or backend.asks_problem(settings)
        if not why:
            return None
        plan_why = backend.check(self.plan.settings) or backend.asks_problem(self.plan.settings)
        if profile is not None and why != self._plan_checks.setdefault(name, plan_why):
            return Problem(shown(profile.path), 1, f"backend '{name}': {why}", "fix the profile")
        return Problem(self.file, _blamed_line(self.plan.text, why), f"backend '{name}': {why}", "fix that setting")


def _agents() -> str:
    return backends.listing(backends.agents())


def settings_problems(settings: Settings, text: str, file: str) -> list[Problem]:
    """What is wrong with a plan's own settings (``text``: its file, for the lines) for its own
    backend, whether or not a task runs with them as they stand (the aggregating agent and a task
    added later do): an unknown backend, a setting it does not take."""
    name, known = settings.backend, backends.names()
    if name not in known:
        line = setting_line(text, "backend")  # (1 when a profile or --backend named it)
        hint = f"use one of: {', '.join(known)}"
        return [Problem(file, line, f"unknown backend '{name}'{suggest(name, known)}", hint)]
    backend = backends.get(name)
    why = backend.check(settings) or backend.asks_problem(settings)
    return [Problem(file, _blamed_line(text, why), f"backend '{name}': {why}", "fix that setting")] if why else []


def frontmatter_problems(path: Path) -> list[Problem]:
    """``settings_problems`` of the plan file's frontmatter, read from it alone: ``validate`` lists
    them beside the problems that keep the plan from parsing, so that all are fixed in one pass.
    (What only the tasks show, their own backends, profiles, Access cells and scripts, waits for a
    plan that parses.)"""
    try:
        text = read_plan_text(path)
        data = split_frontmatter(split_lines(text)).data
    except (OrchestratorError, FrontmatterError):
        return []  # said by the parser already
    settings, _ = settings_from_mapping(data)  # (a bad value is the parser's problem: the default here)
    return settings_problems(settings, text, shown(path))


def check_planner(backend: str, env: dict[str, str]) -> None:
    """``orchestrator plan`` asks one agent for the plan: its CLI is looked for first, as a run's
    are, so that a missing one is one line (exit 2) and nothing is written, not a failed call."""
    cli = backends.get(backend).cli()
    if cli is not None and not probe(cli, agent_environment(env), version=False).installed:
        raise BackendUnavailableError(
            f"{cli.program} is not installed (needed to plan): {cli.install} — nothing was written; "
            "`orchestrator doctor` shows what each backend needs"
        )


def check_installed(
    plan: Plan, profiles: Profiles, only: list[str] | None = None, *, done: Callable[[str], bool] | None = None
) -> None:
    """Raise ``BackendUnavailableError`` (one line) when an agent CLI that the tasks to run need
    is not installed: a run stops before it starts anything, not task by task. ``only``: the
    tasks to run (``None``: all); ``done(task_id)``: asked only of tasks whose CLI is missing,
    whether the task is finished already (the work of claude tasks done elsewhere does not
    stop a machine without claude from running the plan's shell tasks)."""
    missing: dict[str, list[str]] = {}
    hints: dict[str, str] = {}
    clis: dict[str, Cli | None] = {}  # backend -> the CLI it starts: asked once a backend
    seen: dict[tuple[str, str | None], bool] = {}  # (program, the PATH it is looked up in) -> found
    wanted = set(only) if only is not None else None  # (a list of 10,000 asked 10,000 times: 1 s)
    for task in plan.tasks.values():
        if wanted is not None and task.id not in wanted:
            continue
        settings = profiles.settings_for(plan, task)
        if settings.backend not in clis:
            clis[settings.backend] = backends.get(settings.backend).cli()
        cli = clis[settings.backend]
        if cli is None:
            continue
        # Only PATH decides where the program is found: the whole environment is made once a key.
        key = (cli.program, settings.env.get("PATH", os.environ.get("PATH")))
        if key not in seen:
            seen[key] = probe(cli, agent_environment(settings.env), version=False).installed
        if not seen[key] and (done is None or not done(task.id)):
            missing.setdefault(cli.program, []).append(task.id)
            hints[cli.program] = cli.install
    if missing:
        parts = []
        for program, tasks in missing.items():
            needed = listed(tasks[:3], len(tasks))
            parts.append(f"{program} is not installed (needed by {needed}): {hints[program]}")
        raise BackendUnavailableError(
            "; ".join(parts) + " — nothing was started; `orchestrator doctor` shows what the plan needs"
        )


def command_fault(task: Task, backend: str) -> Literal["missing", "unused"] | None:
    """What is wrong with a task's command on ``backend``: ``missing`` for a shell task with none
    (it runs a command written as one, never its description), ``unused`` for a command on a
    backend that runs none. ``add`` says the same of its options (``--command``)."""
    scripted = backends.runs_script(backend)
    if scripted and task_script(task) is None:
        return "missing"
    if not scripted and task.command:
        return "unused"
    return None


def _command_problem(task: Task, backend: str, file: str) -> Problem | None:
    fault = command_fault(task, backend)
    if fault == "missing" and task.blocked is not None:
        return None  # held until it has one (`add` without --command): said when it is released
    if fault == "missing":
        return Problem(
            file,
            task.line,
            f"{task.id} is a shell task with no command: its description is not run as a script",
            f"give it one: `orchestrator update {task.id} --command 'CMD'`, or a ```bash block under "
            f"'### {task.id}' in Task Details",
        )
    if fault == "unused":
        return Problem(
            file,
            task.line,
            f"{task.id} has a Command but runs on '{backend}', which does not run commands",
            "set its Backend cell to shell, or empty its Command cell",
        )
    return None


def _cwd_problem(plan: Plan, workspace: Workspace) -> Problem | None:
    """The ``cwd`` setting must name a directory that is there: every task would fail to start."""
    cwd = plan.settings.cwd
    if not cwd:
        return None
    where = Path(os.path.normpath(workspace.project_dir / cwd))
    if where.is_dir():
        return None
    what = "is not a directory" if where.exists() else "does not exist"
    return Problem(
        shown(plan.path),
        setting_line(plan.text, "cwd"),
        f"cwd '{cwd}': {where} {what}",
        "create that directory, or fix the path (it is relative to the project directory)",
    )


def _blamed_line(text: str, why: str) -> int:
    """The frontmatter line (``text``: the plan's) of the first setting a backend's complaint
    names (``permission_mode 'yolo' is not one of...``), or 1 when the frontmatter sets none."""
    for word in re.findall(r"[a-z_]+", why.replace("-", "_")):  # --permission-mode too
        if word in SETTING_NAMES:
            line = setting_line(text, word)
            if line > 1:
                return line
    return 1


def _fallback_problems(plan: Plan, profiles: Profiles, known: list[str], file: str) -> list[Problem]:
    """A ``fallback`` naming no backend, or one that cannot run the task as it stands: said once
    a name, at the plan's ``fallback`` line (a task type's: the task's row)."""
    problems: list[Problem] = []
    said: set[tuple[str, str | None]] = set()
    for task in plan.tasks.values():
        settings = profiles.settings_for(plan, task)
        ours = settings.fallback == plan.settings.fallback
        for name in settings.fallback:
            why = None
            if name not in known:
                why = (f"fallback: unknown backend '{name}'{suggest(name, known)}", f"use one of: {', '.join(known)}")
            elif (unfit := backends.get(name).check(settings.on(name, task.access))) is not None:
                why = (f"fallback: backend '{name}' cannot take {task.id} as it stands: {unfit}", "fix that setting")
            key = (name, None if ours else task.id)
            if why is not None and key not in said:  # (the line found only then: it reads the whole text)
                said.add(key)
                problems.append(Problem(file, setting_line(plan.text, "fallback") if ours else task.line, *why))
    return problems
