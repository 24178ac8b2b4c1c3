"""Best of N: the ``best_of`` setting (plan, type, a task's ``Best of`` cell) runs N attempts of a
task at once, and ``judge`` (plan, type) chooses the one whose result becomes the task's
(``run/races/bestof.py`` runs them, ``run/races/judges.py`` judges):

    judge: first     the first to complete (the others stopped)
    judge: longest   the completed one with the longest answer; shortest: the shortest
    judge: agent     the task's own backend, shown every candidate's answer, picks one and says why
    judge: "pytest -q"   a command run in each candidate's worktree: the first to pass, else the best exit
"""

from __future__ import annotations

JUDGES = ("first", "longest", "shortest", "agent")
MOST = 8  # attempts a task may race at once
HINT = f"use a whole number from 1 to {MOST}"
JUDGE_HINT = "use first, longest, shortest, agent, or a command to run in each candidate's worktree"


def parse_best_of(value: object) -> int:
    """``3``: three attempts at once; ``1``, ``-``, ``none``: one, as always."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "-", "—", "none", "no", "off"}):
        return 1
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of attempts: {HINT}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{str(value)[:40]!r} is not a number of attempts: {HINT}") from None
    if not 1 <= number <= MOST:
        raise ValueError(f"{number} attempts at once: {HINT}")
    return number


def parse_judge(value: object) -> str:
    """One of ``JUDGES``, or a command (its text as written)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{str(value)[:40]!r} is no judge: {JUDGE_HINT}")
    text = value.strip()
    return text.lower() if text.lower() in JUDGES else text


def is_command(judge: str) -> bool:
    return judge not in JUDGES
