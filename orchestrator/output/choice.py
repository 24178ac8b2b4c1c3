"""Which reporter a command gets: JSON lines (``--json``), the live panel on a terminal
(``output/panel``), plain lines otherwise (``output/reporter``)."""

from __future__ import annotations

import sys
from typing import TextIO

from orchestrator.output.reporter import JsonReporter, PlainReporter, Reporter


def make_reporter(*, as_json: bool, stream: TextIO | None = None) -> Reporter:
    if as_json:
        return JsonReporter(stream)
    out = stream or sys.stdout
    if out.isatty():  # (the panel and its lines are loaded for a terminal only)
        from orchestrator.output.panel import LiveReporter

        return LiveReporter()
    return PlainReporter(out)
