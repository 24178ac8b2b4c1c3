"""``python -m orchestrator``: the same CLI as the ``orchestrator`` console script."""

from __future__ import annotations

from orchestrator.cli.main import entry

entry()
