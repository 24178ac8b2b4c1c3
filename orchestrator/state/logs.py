"""A task's attempts and the log files each left: what ``logs``, ``logs --follow`` and the
dashboard show.

Which attempts a task made is not which log files exist: an attempt's ``.out`` and ``.err`` are
made by the first byte written to them, so an attempt that printed nothing (a quiet command, one
stopped by Ctrl-C while it slept) has none. The attempts are those the journal's ``spawn`` and
``start`` lines name (every run's: numbers go on across runs), those whose logs are there (a
workspace whose journal was removed), and the one its result file numbers, if that attempt ran.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.plan.model import Task
from orchestrator.state import journal
from orchestrator.state.results import read_record
from orchestrator.state.workspace import Workspace


def attempts(workspace: Workspace, task: Task) -> dict[int, dict[str, Path]]:
    """Every attempt of ``task``, by number, oldest first, each with the log files it left
    (``in``, ``out``, ``err``: a stream it never wrote to has no file)."""
    found: dict[int, dict[str, Path]] = {number: {} for number in journal.attempts_of(workspace.journal_file, task.id)}
    record = read_record(workspace.result(task), task.id)
    if record is not None and record.attempts > 0 and record.started:  # an attempt that ran: it has a start
        found.setdefault(record.attempts, {})
    found.update(workspace.attempt_logs(task))
    return dict(sorted(found.items()))


def numbers(found: dict[int, dict[str, Path]] | list[int]) -> str:
    """Attempt numbers as a person reads them: runs of consecutive numbers as ranges (1-6, 9)."""
    ordered = sorted(found)
    spans: list[tuple[int, int]] = []
    for number in ordered:
        if spans and spans[-1][1] == number - 1:
            spans[-1] = (spans[-1][0], number)
        else:
            spans.append((number, number))
    return ", ".join(str(a) if a == b else f"{a}-{b}" if b > a + 1 else f"{a}, {b}" for a, b in spans)
