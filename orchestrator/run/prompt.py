"""What an agent is given: its brief, its permissions, how to use the channels, upstream results
inline, and what other tasks discovered before it started; each part capped."""

from __future__ import annotations

import shlex
import sys

from orchestrator.documents import read_output
from orchestrator.moments import epoch_of
from orchestrator.plan.model import Plan, Task
from orchestrator.state import context
from orchestrator.state.workspace import Workspace


def cli_command() -> str:
    """How a task calls the orchestrator that runs it: this interpreter by its absolute path, so
    it works in a task whose PATH has no ``orchestrator`` (installed in a venv nobody activated)."""
    return f"{shlex.quote(sys.executable)} -m orchestrator"


def permissions_section(powers: str) -> str:
    """What an agent is told of its permissions: what it may do, and to say what it could not."""
    return (
        "## Your permissions\n\n"
        f"You run headless, with {powers}.\n"
        "A tool call outside these is denied. If a denied call keeps you from part of the task, "
        "say so in your answer: never report work as done that a denied call did not do.\n"
    )


def channels_section(task: str, command: str) -> str:
    """How an agent talks to the other tasks: the channel commands, as it can run them."""
    said = f'{command} share {task} "<text>"'
    return (
        "## Channels\n\n"
        f"You are task {task} of a plan the orchestrator runs; other tasks run beside you and after you. "
        "If you can run shell commands, talk to them with these commands, exactly as written:\n\n"
        f"- `{said}`: progress or a result other tasks may read (tasks downstream of you see it).\n"
        f'- `{command} note {task} "<text>"`: your private reasoning, kept with this task only.\n'
        f'- `{command} discover {task} "<text>"`: a finding that matters to every task (a wrong '
        "assumption in the plan, a quirk of a tool or an API); every task that starts after it is told.\n"
        f'- `{command} sync "<milestone>"`: a checkpoint in the run\'s record.\n'
        f"- `{command} context {task}`: what your upstream shared and every discovery so far.\n"
    )


def _discovered(workspace: Workspace) -> list[context.Entry]:
    """Every discovery so far, oldest first; none when the channel cannot be read (not a file, or
    unreadable: the task runs without them, and ``context`` says why)."""
    try:
        return context.read_kind(workspace, context.Kind.DISCOVER)
    except OSError:
        return []


def discoveries_since(workspace: Workspace, task: Task, since: float | None, cap: int) -> str:
    """For a session that goes on (``attempts.continuation_prompt``): what the other tasks
    discovered since its attempt's prompt was made (``since``, epoch seconds; None: not known, so
    all of it), which it was never told. Empty when there is nothing new."""

    def new(entry: context.Entry) -> bool:
        when = epoch_of(entry.time)
        return entry.task != task.id and (since is None or when is None or when >= since)

    news = [entry for entry in _discovered(workspace) if new(entry)]
    intro = "What other tasks found while your work was interrupted, newest first:"
    return discoveries_section(news, cap, f"{cli_command()} context {task.id}", intro=intro)


def discoveries_section(
    entries: list[context.Entry],
    cap: int,
    more: str,
    *,
    intro: str = "What other tasks found before you started, newest first:",
) -> str:
    """The discoveries (oldest first, as read), newest first in at most ``cap`` characters;
    what does not fit is counted, and ``more`` (a command) shows it all. Empty when there are none."""
    if not entries or cap <= 0:
        return ""
    shown: list[str] = []
    used = 0
    for entry in reversed(entries):
        block = f"### {entry.task or 'the run'} ({entry.time})\n\n{entry.text}\n"
        if used + len(block) > cap:
            if not shown:  # the newest alone is longer than the cap: as much of it as fits
                shown.append(block[: max(cap - 1, 0)].rstrip() + "…\n")
            break
        shown.append(block)
        used += len(block)
    parts = ["## Discoveries so far", "", intro, "", *shown]
    left = len(entries) - len(shown)
    if left:
        parts.append(f"… {left} earlier discover{'y' if left == 1 else 'ies'} left out: `{more}` shows them all.\n")
    return "\n".join(parts)


def build_prompt(
    plan: Plan,
    workspace: Workspace,
    task: Task,
    brief: str,
    cap: int,
    permissions: str | None = None,
    *,
    channels: str | None = None,
    context_cap: int = 0,
    elsewhere: bool = False,
) -> str:
    """The brief, what the agent may do (``permissions``: the backend's words, for agents), how
    to use the channels (``channels``: the command that calls the orchestrator), each
    dependency's result body, sharing ``cap`` characters between them, and the discoveries made
    before now, in at most ``context_cap`` characters (0: nothing of the channels).

    Whatever does not fit is left in the result file, whose path is given so the agent can read it:
    from the project directory, or absolute for an agent that runs ``elsewhere`` (its own
    worktree, a ``cwd``), which is also told where the brief's paths start.
    The permissions, channels and discoveries go in the prompt, not the brief file: a result's
    fingerprint covers the brief, and a completed task does not run again because another task
    discovered something after it.
    """
    if permissions:
        brief = brief.rstrip() + "\n\n" + permissions_section(permissions)
    found = ""
    if channels and context_cap > 0:
        brief = brief.rstrip() + "\n\n" + channels_section(task.id, channels)
        found = discoveries_section(_discovered(workspace), context_cap, f"{channels} context {task.id}")
    upstream = plan.inputs_of(task)
    if not upstream:
        return brief.rstrip() + "\n\n" + found if found else brief
    share = cap // len(upstream) if cap else 0
    parts = [brief.rstrip(), "", "## Upstream results", ""]
    if elsewhere:
        parts += [f"(You run outside the project directory: the brief's paths start at `{workspace.project_dir}`.)", ""]
    for dep in upstream:
        path = workspace.result(dep)
        body = (read_output(path) or "").rstrip("\n")
        where = str(path) if elsewhere else workspace.relative(path)
        parts.append(f"### {dep.id}: {dep.title} (`{where}`)")
        parts.append("")
        if not body:
            parts.append("(no output)")
        elif len(body) <= share:
            parts.append(body)
        else:
            parts.append(body[:share].rstrip())
            parts.append(f"\n… {len(body) - share:,} more characters in `{where}`")
        parts.append("")
    if found:
        parts.append(found)
    return "\n".join(parts)
