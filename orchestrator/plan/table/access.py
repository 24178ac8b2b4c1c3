"""What an ``Access`` cell (or a type's ``access``) says, and what it gives a task on its backend.

The words are the plan's (``read``, ``edit`` and theirs); what each gives a task is its backend's
own (``Backend.access``, in the backend's module), read through ``plan/config/kinds``, where each backend
registers it.
"""

from __future__ import annotations

from typing import Any

from orchestrator.plan.config.kinds import presets

# The words an Access cell may say, and what each means: "read" for analysis and review (the agent
# reads, and changes nothing), "edit" for implementation (it edits files in its directory).
ACCESS_WORDS = {
    "read": "read",
    "read-only": "read",
    "readonly": "read",
    "edit": "edit",
    "edits": "edit",
    "write": "edit",
}


def access_settings(backend: str, access: str) -> dict[str, Any]:
    """The settings an Access cell (``read`` or ``edit``) gives a task on ``backend``: they replace
    the plan's and the profile's values for that task (none on a backend that has no such modes:
    ``validate`` refuses the cell there)."""
    return dict(presets(backend).get(access, {}))
