"""The cells of a task's row that a workflow adds to the core ones (``plan.rows``): how many
retries, whether a person holds it back (Blocked), the Condition it runs on, the Output fields it
answers with. (Type and Approval: ``plan.rows``, with the task's type.)"""

from __future__ import annotations

from typing import Any

from orchestrator.plan.bestof import HINT as BEST_OF_HINT
from orchestrator.plan.bestof import parse_best_of
from orchestrator.plan.cells import NUMBER_RE, blocked_cell, code_cell
from orchestrator.plan.conditions import parse_outputs
from orchestrator.plan.hedging import HINT as HEDGE_HINT
from orchestrator.plan.hedging import parse_hedge

_NONE = {"", "-", "—", "none", "no"}


def more_cells(row: dict[str, str], fields: dict[str, Any]) -> list[tuple[str, str]]:
    """Put what those cells of ``row`` say in ``fields``; returns the problems (what, what to do)."""
    problems: list[tuple[str, str]] = []
    retries = row.get("retries", "").strip()
    if retries and retries not in {"-", "—"}:
        if NUMBER_RE.fullmatch(retries):
            fields["retries"] = int(retries)
        else:
            problems.append((f"bad retries '{retries}'", "use a whole number from 0 up"))
    hedge = row.get("hedge", "").strip()
    if hedge and hedge not in {"-", "—", "default"}:
        try:
            fields["hedge"], fields["hedge_set"] = parse_hedge(hedge), True
        except ValueError:
            problems.append((f"bad Hedge cell '{hedge}'", HEDGE_HINT))
    if row.get("best_of", "").strip() not in {"", "-", "—", "default"}:
        try:
            fields["best_of"] = parse_best_of(row["best_of"])
        except ValueError:
            problems.append((f"bad Best of cell '{row['best_of'].strip()}'", BEST_OF_HINT))
    condition = code_cell(row.get("condition", "")).strip()
    if condition.lower() not in _NONE:
        fields["condition"] = condition
    if "blocked" in row:
        fields["blocked"] = blocked_cell(row["blocked"])
    if row.get("outputs", "").strip() not in _NONE:
        try:
            fields["outputs"] = parse_outputs(code_cell(row["outputs"]))
        except ValueError as exc:
            problems.append((f"bad Output cell: {exc}", "list the fields its answer holds: severity, count:int"))
    return problems
