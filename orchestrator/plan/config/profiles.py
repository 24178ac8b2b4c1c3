"""Specialist profiles: the ``Assignee`` column names one; a markdown file in Claude Code's subagent format.

Frontmatter: ``name``, ``description``, ``tools``, ``model`` (Claude Code's keys) plus ours:
``backend``, ``max_parallel``, ``timeout``, ``permission_mode``, ``allowed_tools``, ``resources``
(on a Dask cluster: the worker resources each attempt asks for, ``[gpu]`` or ``{gpu: 2}``). ``tools`` is
what Claude Code makes of it: the only tools the agent has (``--tools``), not a pre-approval.
The body is the system prompt, appended to the agent's own with ``--append-system-prompt``.
Looked up in ``.orchestrator/agents/``, then the project's ``.claude/agents/``, then
``~/.claude/agents/``; the first match wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import documents
from orchestrator.errors import PlanError, Problem, shown
from orchestrator.plan.config.settings import Settings, parse_duration, parse_setting, suggest
from orchestrator.plan.model import Plan, Task
from orchestrator.vocabulary import ARGUMENT_LIMIT, listed


@dataclass(frozen=True, slots=True)
class Profile:
    """A specialist profile (Claude Code subagent format plus our keys); see profiles.py."""

    name: str
    path: Path
    description: str = ""
    prompt: str = ""
    tools: tuple[str, ...] | None = None  # the only tools the agent has; None: not restricted
    allowed_tools: tuple[str, ...] | None = None  # used without asking; None: the plan's, () none
    permission_mode: str | None = None
    model: str | None = None
    backend: str | None = None
    max_parallel: int | None = None
    timeout: float | None = None
    timeout_set: bool = False
    resources: tuple[tuple[str, float], ...] = ()  # on a Dask cluster: what each attempt asks of a worker


def parse_resources(value: Any) -> tuple[tuple[str, float], ...]:
    """A profile's ``resources``: names (one unit each: ``[gpu]``, ``gpu, fast``) or names with
    amounts (``{gpu: 2}``), as ``dask worker --resources`` declares them."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(name, 1) for name in value]
    else:
        raise ValueError("resources is a list of names or a mapping of names to amounts")
    found: dict[str, float] = {}
    for name, amount in pairs:
        text = str(name).strip()
        if not text or any(c.isspace() or c in ",=" for c in text):
            raise ValueError(f"resources: '{name}' is not a resource name")
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
            raise ValueError(f"resources: {text}'s amount must be a number above 0")
        found[text] = float(amount)
    return tuple(found.items())


def search_dirs(workspace_root: Path) -> list[Path]:
    """The workspace's agents/, the project's .claude/agents/, then the user's (Claude Code reads
    them from $CLAUDE_CONFIG_DIR/agents when that is set)."""
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    user = Path(config).expanduser() if config else Path(os.environ.get("HOME", "~")).expanduser() / ".claude"
    return [workspace_root / "agents", workspace_root.parent / ".claude" / "agents", user / "agents"]


def _profile(path: Path) -> Profile | Problem:
    try:
        meta, body = documents.parse(documents.decode(documents.read_regular(path)))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        line = exc.line if isinstance(exc, documents.MalformedFrontmatter) else 1
        return Problem(shown(path), line, f"cannot read profile: {exc}", "fix its YAML frontmatter")
    prompt = body.strip()
    if "\0" in prompt:
        return Problem(shown(path), 1, "the prompt holds a NUL byte (\\0), which no process takes", "delete it")
    size = len(prompt.encode("utf-8", "surrogateescape"))
    if size > ARGUMENT_LIMIT:
        return Problem(
            shown(path),
            1,
            f"the prompt is {size:,} bytes; it is given to the agent as one argument, of at most {ARGUMENT_LIMIT:,}",
            "shorten it: put reference material in files the agent reads",
        )
    name = str(meta.get("name") or path.stem)
    model = meta.get("model")
    fields: dict[str, Any] = {
        "name": name,
        "path": path,
        "description": str(meta.get("description") or ""),
        "prompt": prompt,
        "model": None if model in (None, "inherit") else str(model),
        "backend": str(meta["backend"]).lower() if meta.get("backend") else None,
    }
    try:
        if meta.get("tools") is not None:
            fields["tools"] = parse_setting("tools", meta["tools"])
        if meta.get("allowed_tools") is not None:
            fields["allowed_tools"] = parse_setting("allowed_tools", meta["allowed_tools"])
        if meta.get("permission_mode") is not None:
            fields["permission_mode"] = str(meta["permission_mode"])
        if meta.get("max_parallel") is not None:
            fields["max_parallel"] = int(meta["max_parallel"])
            if fields["max_parallel"] < 1:
                raise ValueError("max_parallel must be at least 1")
        if "timeout" in meta:
            fields["timeout"] = parse_duration(meta["timeout"])
            fields["timeout_set"] = True
        if meta.get("resources") is not None:
            fields["resources"] = parse_resources(meta["resources"])
    except (TypeError, ValueError) as exc:
        return Problem(
            shown(path),
            1,
            f"bad profile setting: {exc}",
            "max_parallel is a whole number ≥ 1, timeout a duration, tools and allowed_tools lists of tools, "
            "resources names or names with amounts",
        )
    return Profile(**fields)


class Profiles:
    """The profiles visible from one workspace, loaded lazily by name."""

    def __init__(self, workspace: Any) -> None:
        self.dirs = search_dirs(workspace.root)
        self._cache: dict[str, Profile | Problem | None] = {}

    def lookup(self, name: str) -> Profile | Problem | None:
        if name in self._cache:
            return self._cache[name]
        found: Profile | Problem | None = None
        for directory in self.dirs:
            candidate = directory / f"{name}.md"
            if candidate.is_file():
                found = _profile(candidate)
                break
            if directory.is_dir():
                for path in sorted(directory.glob("*.md")):
                    loaded = _profile(path)
                    if isinstance(loaded, Profile) and loaded.name == name:
                        found = loaded
                        break
                if found is not None:
                    break
        self._cache[name] = found
        return found

    def get(self, name: str | None) -> Profile | None:
        if not name:
            return None
        found = self.lookup(name)
        return found if isinstance(found, Profile) else None

    def names(self) -> list[str]:
        """The names of the profiles there are (their files' names), for a did-you-mean."""
        return sorted({path.stem for directory in self.dirs if directory.is_dir() for path in directory.glob("*.md")})

    def max_parallel(self, name: str | None) -> int | None:
        profile = self.get(name)
        return profile.max_parallel if profile else None

    def signature(self, task: Task) -> str:
        profile = self.get(task.profile)
        if profile is None:
            return ""
        # (what an earlier version hashed, so that its results stay up to date; the tools and the
        # permission mode are in the settings' own signature)
        return documents.sha256(f"{profile.prompt}\n{profile.tools or ()}\n{profile.model}")[:16]

    def settings_for(self, plan: Plan, task: Task) -> Settings:
        """Plan (with CLI overrides) < profile < the task's type < the task's own columns."""
        settings = plan.settings
        profile = self.get(task.profile)
        if profile is not None:
            changes: dict[str, Any] = {}
            if profile.backend:
                changes["backend"] = profile.backend
            if profile.model:
                changes["model"] = profile.model
            if profile.tools is not None:
                changes["tools"] = profile.tools
            if profile.allowed_tools is not None:  # `allowed_tools: []` clears the plan's
                changes["allowed_tools"] = profile.allowed_tools
            if profile.permission_mode:
                changes["permission_mode"] = profile.permission_mode
            if profile.timeout_set:
                changes["timeout"] = profile.timeout
            if changes:
                settings = settings.replace(**changes)
        return plan.settings_for(task, settings)

    def problems(self, plan: Plan) -> list[Problem]:
        problems: list[Problem] = []
        places = ", ".join(_short(d) for d in self.dirs)
        for task in plan.tasks.values():
            if not task.profile:
                continue
            found = self.lookup(task.profile)
            if found is None and (plan.settings.unknown_assignee == "error" or "profile" in task.from_type):
                problems.append(
                    Problem(
                        shown(plan.path),
                        task.line,
                        f"{task.id}: unknown profile '{task.profile}'"
                        + (f" (its type {task.type}'s)" if "profile" in task.from_type else "")
                        + suggest(task.profile, self.names()),
                        f"create {task.profile}.md in one of: {places}"
                        + ("" if "profile" in task.from_type else " (or set unknown_assignee: label)"),
                    )
                )
            elif isinstance(found, Problem):
                problems.append(found)
        return problems


def labels(plan: Plan, profiles: Profiles) -> list[str]:
    """A line for each Assignee with no profile file behind it: a label its tasks are filed
    under (they run with the plan's defaults), said once, with the profile it may have meant."""
    found: dict[str, list[Task]] = {}
    for task in plan.tasks.values():
        if task.profile and "profile" not in task.from_type and profiles.lookup(task.profile) is None:
            found.setdefault(task.profile, []).append(task)
    names = profiles.names()
    return [
        f"{shown(plan.path)}:{tasks[0].line}: assignee '{name}' has no profile{suggest(name, names)}: a label only "
        f"({listed([t.id for t in tasks[:3]], len(tasks))} {'runs' if len(tasks) == 1 else 'run'} with the plan's "
        "defaults) — `unknown_assignee: "
        "error` refuses such names"
        for name, tasks in found.items()
    ]


def _short(directory: Path) -> str:
    home = Path(os.environ.get("HOME", "~")).expanduser()
    try:
        return "~/" + str(directory.relative_to(home)) + "/"
    except ValueError:
        pass
    return shown(directory) + "/"


def check(plan: Plan, profiles: Profiles) -> None:
    problems = profiles.problems(plan)
    if problems:
        raise PlanError(problems)
