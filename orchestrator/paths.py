"""File names more than one layer spells, at the bottom so that naming one imports nothing: the
plan's file (``PLAN_FILE``, which ``plan.model`` exports beside the ``Plan`` read from it). The
workspace's paths, every one built from these, are ``state/workspace``'s."""

from __future__ import annotations

PLAN_FILE = "master_plan.md"
