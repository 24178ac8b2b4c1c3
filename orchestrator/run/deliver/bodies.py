"""What a delivery says on GitHub: a pull request's title and body, and the comment answered where
the run came from, each from the run's own account of itself (its tasks' states, its commit, its
links). A comment carries its effect's key in an HTML comment GitHub does not show
(``<!-- orchestrator-effect: KEY -->``), by which a run that died before it heard GitHub's answer
finds the comment it posted (``marked``) rather than posting a second.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.printable import visible
from orchestrator.state.status import TaskView
from orchestrator.vocabulary import TaskStatus, counted

MARK = "orchestrator-effect"
_MARKED = re.compile(r"<!-- orchestrator-effect: (.+?) -->")
_ICONS = {TaskStatus.COMPLETED: "✅", TaskStatus.FAILED: "❌", TaskStatus.SKIPPED: "⏭️", TaskStatus.CANCELLED: "🚫"}
_LIMIT = 60_000  # characters of a body: GitHub takes 65,536


@dataclass(frozen=True, slots=True)
class Account:
    """What a run says of itself: its plan's ``goal``, its tasks, its exit code, the commit it
    delivers (``None``: no branch), the file its outputs are in."""

    goal: str
    views: Sequence[TaskView]
    exit_code: int
    commit: str | None
    branch: str | None
    final_output: str

    def title(self) -> str:
        first = next((line.strip(" #") for line in self.goal.splitlines() if line.strip(" #")), "")
        return visible(f"orchestrator: {first}" if first else "orchestrator: the plan's work")[:200]

    def counts(self) -> str:
        done = sum(1 for view in self.views if view.status is TaskStatus.COMPLETED)
        return f"{done} of {counted(len(self.views), 'task')} completed"

    def tasks(self) -> str:
        lines = [f"| {_ICONS.get(v.status, '•')} | `{v.id}` | {_cell(v.name)} | {v.status.value} |" for v in self.views]
        return "| | Task | Name | Status |\n|---|---|---|---|\n" + "\n".join(lines) if lines else "(no task)"


def _cell(text: str) -> str:
    return visible(text).replace("|", "\\|").replace("\n", " ")[:200]


def pull_body(account: Account) -> str:
    """A pull request's body: what the run did, and what it is at."""
    head = f"The work of an orchestrator run on `{account.branch}`" + (
        f", at {account.commit[:12]}." if account.commit else "."
    )
    text = f"{head}\n\n**{account.counts()}** (exit {account.exit_code}).\n\n{account.tasks()}\n\n" + (
        f"The tasks' outputs: `{account.final_output}` in the workspace.\n"
    )
    return text[:_LIMIT]


def comment_body(account: Account, key: str, links: Sequence[tuple[str, str]]) -> str:
    """The comment on the pull request or issue the run came from: how it ended, and its links."""
    ended = "finished" if account.exit_code == 0 else f"ended with exit code {account.exit_code}"
    said = [f"The orchestrator run {ended}: **{account.counts()}**."]
    said += [f"{what}: {url}" for what, url in links]
    if account.commit:
        said.append(f"Its work: `{account.branch}` at {account.commit[:12]}.")
    text = "\n\n".join(said) + f"\n\n{account.tasks()}\n"
    return text[: _LIMIT - 200] + f"\n<!-- {MARK}: {key} -->\n"


def marked(body: object) -> str | None:
    """The effect's key a comment's body carries, if any."""
    found = _MARKED.search(body) if isinstance(body, str) else None
    return found.group(1) if found else None
