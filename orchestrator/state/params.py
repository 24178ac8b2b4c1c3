"""``state/params.json``: the parameter values ``run --param`` gave, remembered by the workspace.

A later ``run`` without ``--param`` (a resume after a failure), ``status``, ``graph`` and the
dashboard read the plan with them, so that they agree with the results that run made; a new
``--param`` replaces a value. The plan's declared defaults fill in the rest (``plan/config/params.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from orchestrator.documents import read_regular
from orchestrator.errors import WorkspaceError
from orchestrator.state import store

if TYPE_CHECKING:  # (types only: the workspace loads its plan with these, so they may not import it)
    from orchestrator.state.workspace import Workspace

_NOTE = "Written by orchestrator run --param: the values later commands read the plan with. Edit with run --param."


def remembered(workspace: Workspace) -> dict[str, str]:
    """The values the workspace's runs were given (none when no run was)."""
    path = workspace.params_file
    try:
        data = json.loads(read_regular(path))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WorkspaceError(
            f"{workspace.relative(path)}: cannot be read ({exc}) — delete it, and give run its --param values again"
        ) from None
    values = data.get("params") if isinstance(data, dict) else None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise WorkspaceError(
            f"{workspace.relative(path)}: not a mapping of parameter values — delete it, and give run its "
            "--param values again"
        )
    return {str(k): v for k, v in values.items()}


def remember(workspace: Workspace, given: Mapping[str, str]) -> None:
    """Keep ``given`` over what was remembered (nothing written when nothing changes)."""
    if not given:
        return
    before = remembered(workspace)
    values = {**before, **given}
    if values == before:
        return
    data = {"note": _NOTE, "params": values}
    store.write_text(workspace.params_file, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
