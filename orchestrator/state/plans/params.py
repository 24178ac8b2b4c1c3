"""``state/params.json``: the parameter values the last runs gave, remembered by the workspace,
and which of them came from outside.

A later ``run`` without ``--param`` (a resume after a failure), ``status``, ``graph`` and the
dashboard read the plan with them, so that they agree with the results that run made; a new
``--param`` replaces a value. The plan's declared defaults fill in the rest (``plan/config/params.py``).

A run started from outside (a webhook's delivery, the API, an MCP tool: ``run/launch/background``)
takes the values it was given and nothing remembered: a delivery's ``pr`` is its run's alone, and
the next delivery's run does not inherit it. Its values are kept as ``untrusted`` (name -> where
from), so that a resume of that run from the command line still treats them as data from outside
(``plan/config/filling``), until ``run --param`` gives one anew.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.documents import read_regular
from orchestrator.errors import WorkspaceError
from orchestrator.state import store

if TYPE_CHECKING:  # (types only: the workspace loads its plan with these, so they may not import it)
    from orchestrator.state.workspace import Workspace

_NOTE = (
    "Written by orchestrator run: the values later commands read the plan with (untrusted: those from a webhook, "
    "the API or MCP, and from where). Edit with run --param."
)


@dataclass(frozen=True, slots=True)
class Remembered:
    """The values a workspace's runs were given, and those of them that came from outside."""

    values: dict[str, str] = field(default_factory=dict)
    untrusted: dict[str, str] = field(default_factory=dict)


def read(workspace: Workspace) -> Remembered:
    """What the workspace's runs were given (nothing when no run was)."""
    path = workspace.params_file
    try:
        data = json.loads(read_regular(path))
    except FileNotFoundError:
        return Remembered()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkspaceError(
            f"{workspace.relative(path)}: cannot be read ({exc}) — delete it, and give run its --param values again"
        ) from None
    values = data.get("params") if isinstance(data, dict) else None
    untrusted = data.get("untrusted", {}) if isinstance(data, dict) else None
    if (
        not isinstance(values, dict)
        or not all(isinstance(v, str) for v in values.values())
        or not isinstance(untrusted, dict)
        or not all(isinstance(v, str) for v in untrusted.values())
    ):
        raise WorkspaceError(
            f"{workspace.relative(path)}: not a mapping of parameter values — delete it, and give run its "
            "--param values again"
        )
    values = {str(k): v for k, v in values.items()}
    return Remembered(values, {str(k): v for k, v in untrusted.items() if str(k) in values})


def remembered(workspace: Workspace) -> dict[str, str]:
    """The values the workspace's runs were given (none when no run was)."""
    return read(workspace).values


def remember(workspace: Workspace, given: Mapping[str, str], *, source: str | None = None) -> None:
    """Keep ``given``: over what was remembered when it came from the person who runs the plan
    (those names trusted again), or, from outside (``source``: ``github``, ``api``...), instead of
    it, every value marked untrusted. Nothing is written when nothing changes."""
    before = read(workspace)
    if source is not None:
        after = Remembered(dict(given), dict.fromkeys(given, source))
    elif not given:
        return
    else:
        after = Remembered({**before.values, **given}, {k: v for k, v in before.untrusted.items() if k not in given})
    if after == before:
        return
    data: dict[str, object] = {"note": _NOTE, "params": after.values}
    if after.untrusted:
        data["untrusted"] = after.untrusted
    store.write_text(workspace.params_file, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
