"""``python -m orchestrator``: the same CLI as the ``orchestrator`` console script."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
