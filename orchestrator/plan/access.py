"""What an ``Access`` cell (or a type's ``access``) gives a task on each agent backend."""

from __future__ import annotations

from typing import Any

# What an Access cell means on each agent backend: "read" for analysis and review (the agent
# reads, and changes nothing), "edit" for implementation (it edits files in its directory).
# It replaces the plan's and the profile's values of these settings for that task.
ACCESS: dict[str, dict[str, dict[str, Any]]] = {
    "claude": {
        "read": {"tools": ("Read", "Grep", "Glob"), "allowed_tools": ()},
        "edit": {"permission_mode": "acceptEdits"},
    },
    "codex": {"read": {"permission_mode": "read-only"}, "edit": {"permission_mode": "workspace-write"}},
    "gemini": {"read": {"permission_mode": "plan"}, "edit": {"permission_mode": "auto_edit"}},
    "opencode": {"read": {"permission_mode": "read-only"}, "edit": {"permission_mode": "default"}},
}
ACCESS_WORDS = {
    "read": "read",
    "read-only": "read",
    "readonly": "read",
    "edit": "edit",
    "edits": "edit",
    "write": "edit",
}


def access_settings(backend: str, access: str) -> dict[str, Any]:
    """The settings an Access cell (``read`` or ``edit``) gives a task on ``backend`` (none on a
    backend that has no such modes: ``validate`` refuses the cell there)."""
    return dict(ACCESS.get(backend, {}).get(access, {}))
