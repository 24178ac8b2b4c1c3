"""Which reporter a command gets: JSON lines (``--json``), the live panel on a terminal
(``output/panel``), plain lines otherwise (``output/reporter``)."""

from __future__ import annotations

import sys
from typing import TextIO

from orchestrator.output.reporter import JsonReporter, PlainReporter, Reporter


def make_reporter(*, as_json: bool, stream: TextIO | None = None, verbose: bool = False) -> Reporter:
    """``verbose``: each item of a row run per item told as any task is (``output/quiet``)."""
    if as_json:
        return JsonReporter(stream)
    out = stream or sys.stdout
    if out.isatty():  # (the panel and its lines are loaded for a terminal only)
        from orchestrator.output.panel import LiveReporter

        return LiveReporter(verbose=verbose)
    return PlainReporter(out, verbose=verbose)
