"""Plans to start from: ``orchestrator templates list`` and ``orchestrator init --template NAME``.

A template is a directory holding a ``master_plan.md``: the bundled ones (``orchestrator/library/``,
the example scenarios made reusable with parameters), and the user's own, in
``$ORCHESTRATOR_TEMPLATES`` (a list of directories, separated by ``:``) or else
``$XDG_CONFIG_HOME/orchestrator/templates`` (``~/.config/orchestrator/templates``). A user's
template of a bundled one's name is used instead of it. Any workspace is a template: copy its
directory there (its master_plan.md is all that is read).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.paths import PLAN_FILE

BUNDLED = Path(__file__).parent.parent / "library"
VARIABLE = "ORCHESTRATOR_TEMPLATES"


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    path: Path  # its master_plan.md
    bundled: bool


def user_directories() -> list[Path]:
    """Where the user's templates are looked for, first first."""
    given = os.environ.get(VARIABLE)
    if given:
        return [Path(part).expanduser() for part in given.split(os.pathsep) if part]
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return [Path(config) / "orchestrator" / "templates"]


def templates() -> dict[str, Template]:
    """Every template by name, sorted; a user's before a bundled one of the same name."""
    found: dict[str, Template] = {}
    for directory in reversed(user_directories()):
        for template in _in(directory, bundled=False):
            found[template.name] = template
    for template in _in(BUNDLED, bundled=True):
        found.setdefault(template.name, template)
    return dict(sorted(found.items()))


def _in(directory: Path, *, bundled: bool) -> list[Template]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    plans = [(name, directory / name / PLAN_FILE) for name in names]
    return [Template(name, path, bundled) for name, path in plans if path.is_file()]


def find(name: str) -> Template:
    """The template ``name``; a ``UsageError`` listing the names when there is none."""
    from orchestrator.plan.config.settings import suggest

    known = templates()
    if name not in known:
        where = ", ".join(str(d) for d in user_directories())
        raise UsageError(
            f"--template {name}: no such template{suggest(name, list(known))} — use one of: "
            f"{', '.join(known) or 'none'} (`orchestrator templates list`; yours go in {where})"
        )
    return known[name]
