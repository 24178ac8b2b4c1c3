"""``Work``: what one attempt in a worktree left on its task's branch. Its own module, importing
only the vocabulary, because every ``ProcessRun`` may carry one (``executors.base``)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.vocabulary import counted, listed


@dataclass(frozen=True, slots=True)
class Work:
    """What a task's attempt left on its branch: recorded in its result file."""

    branch: str
    commit: str | None
    diffstat: str  # ``git diff --stat`` of the branch since it left the integration branch
    problem: str | None = None  # why its work could not be committed (it is still in the worktree)
    unresolved: tuple[str, ...] = ()  # a merge left in conflict: files still holding git's markers
    strayed: bool = False  # the attempt left its worktree off its branch, on work the branch cannot take
    ignored: tuple[str, ...] = ()  # files it left there that git ignores: never committed, never merged

    def ignored_note(self, where: str) -> str | None:
        """One line telling of the files git ignores that the task left in its worktree (at
        ``where``), naming a few; ``None`` when there are none."""
        if not self.ignored:
            return None
        return f"left {ignored_files(self.ignored)}, not merged — they stay in {where}"


def ignored_files(names: tuple[str, ...]) -> str:
    """``2 files git ignores (out/report.md, build.log)``: how many, and the first few by name."""
    return f"{counted(len(names), 'file')} git ignores ({listed(list(names[:3]), len(names))})"
