"""What a task ends up with, and where each value comes from: its row, its type, its profile, the
plan's settings, or the default. ``validate`` and ``doctor`` show it for each task with a type:

    T-03 (review): timeout 10m00s from type review, retries 2 from the plan, access read from type review

The order of precedence is ``Plan.settings_for``'s and ``Profiles.settings_for``'s: the row's own
cells, then its type, then its profile, then the plan's settings, then the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.plan.config.kinds import presets
from orchestrator.plan.config.profiles import Profile, Profiles
from orchestrator.plan.config.settings import Settings, format_duration
from orchestrator.plan.config.tasktypes import FIELDS, TaskType
from orchestrator.plan.model import PRIORITY_NAMES, Plan, Task
from orchestrator.plan.table.access import access_settings

ROW, PLAN, DEFAULT = "its row", "the plan", "the default"
_ALWAYS = ("timeout", "retries")  # shown for every task with a type, whoever sets them
_ACCESS_KEYS = ("tools", "allowed_tools", "permission_mode")
SHOWN_AT_MOST = 20  # lines ``validate`` prints; --json lists every task


@dataclass(frozen=True, slots=True)
class Origin:
    name: str  # a type's field: timeout, access, section...
    value: Any
    source: str  # its row, type review, profile reviewer, the plan, the default
    note: str = ""  # why it changes nothing (an access on a shell task)

    def __str__(self) -> str:
        where = "by default" if self.source == DEFAULT else f"from {self.source}"
        return f"{self.name} {shown(self.name, self.value)} {where}" + (f" ({self.note})" if self.note else "")

    def as_json(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"name": self.name, "value": value, "from": self.source, "note": self.note or None}


def shown(name: str, value: Any) -> str:
    if name == "timeout":
        return "none" if value is None else format_duration(value)
    if name == "priority":
        return PRIORITY_NAMES.get(value, f"P{value}")
    if isinstance(value, tuple):
        return ", ".join(value) if value else "none"
    if name == "section":
        return f'"{value}"'
    return "none" if value is None else str(value)


def origins(plan: Plan, profiles: Profiles, task: Task) -> list[Origin]:
    """Each field the task's type sets (and its timeout and retries), with the value the task
    ends up with and where that comes from; nothing for a task without a type."""
    kind = plan.type_of(task)
    if kind is None:
        return []
    settings = profiles.settings_for(plan, task)
    profile = profiles.get(task.profile)
    found: list[Origin] = []
    for name in FIELDS:
        if name == "description" or not (kind.sets(name) or name in _ALWAYS):
            continue
        value = _value(name, task, kind, settings)
        note = ""
        if name == "access" and not presets(settings.backend):
            note = f"nothing on {settings.backend}: it runs with your user's rights"
        found.append(Origin(name, value, _source(name, plan, task, kind, profile, settings), note))
    return found


def line(plan: Plan, profiles: Profiles, task: Task) -> str:
    """``T-03 (review): timeout 10m00s from type review, ...``."""
    return f"{task.id} ({task.type}): " + ", ".join(str(origin) for origin in origins(plan, profiles, task))


def lines(plan: Plan, profiles: Profiles) -> list[str]:
    """A line for each task with a type, in table order."""
    return [line(plan, profiles, task) for task in plan.tasks.values() if task.type]


def as_json(plan: Plan, profiles: Profiles) -> list[dict[str, Any]]:
    """What ``lines`` says, for ``--json``: ``task``, ``type``, ``settings`` (``name``, ``value``, ``from``)."""
    return [
        {"task": task.id, "type": task.type, "settings": [o.as_json() for o in origins(plan, profiles, task)]}
        for task in plan.tasks.values()
        if task.type
    ]


def _value(name: str, task: Task, kind: TaskType, settings: Settings) -> Any:
    if name in {"profile", "priority", "approval"}:
        return getattr(task, name)
    if name == "access":
        return task.access or kind.get("access")
    if name == "section":
        return kind.get("section")
    return getattr(settings, name)


def _source(name: str, plan: Plan, task: Task, kind: TaskType, profile: Profile | None, settings: Settings) -> str:
    own = f"type {kind.name}"
    if _in_row(name, task, settings):
        return ROW
    if kind.sets(name) or (name in _ACCESS_KEYS and name in kind.settings(settings.backend)):
        return own
    if profile is not None and _in_profile(name, profile):
        return f"profile {profile.name}"
    if name in {"profile", "priority", "approval", "access", "section"}:
        return DEFAULT
    return PLAN if any(str(key).strip().replace("-", "_") == name for key in plan.frontmatter) else DEFAULT


def _in_row(name: str, task: Task, settings: Settings) -> bool:
    if name in {"profile", "priority", "approval"}:
        return name not in task.from_type and (name != "profile" or task.profile is not None)
    if name in _ACCESS_KEYS:
        return bool(task.access) and name in access_settings(settings.backend, task.access or "")
    cells = {
        "timeout": task.timeout_set,
        "retries": task.retries is not None,
        "backend": bool(task.backend),
        "access": bool(task.access),
        "isolation": bool(task.isolation),
    }
    return cells.get(name, False)


def _in_profile(name: str, profile: Profile) -> bool:
    if name == "timeout":
        return profile.timeout_set
    return name in {"backend", "model", "tools", "allowed_tools", "permission_mode"} and (
        getattr(profile, name) not in (None, "")
    )
