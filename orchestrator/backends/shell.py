"""``shell``: the task is a bash script, and the script is what its brief says.

A shell task runs only a command written as one: its Command cell, or the first fenced code
block of its Task Details. Its description is never run: prose run as bash is a hazard, so a
shell task without either is a plan error (``validate`` names its line). The brief is rendered
with that script as the first fenced code block under ``## Task Description``, and that block is
what runs, so a person who edits the brief sees the edit run. The script runs under ``bash -e``
in the project directory with stdin closed; its stdout is the result. Upstream result files are
named in ``$ORCHESTRATOR_INPUTS`` (one path per line).

``bash -e`` stops a script at the first command that fails, silently: ``test -f x`` or a
``grep`` that matches nothing left a task failed with "exit code 1" and an empty stderr. An ERR
trap set on the script's first line (so its line numbers stay the script's) writes one line on
stderr naming the line and the command, and the result's reason says it.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.backends.base import (
    AgentResult,
    Backend,
    CannotInvoke,
    Invocation,
    Job,
    Observer,
    kept_output,
    limits_for,
    process_result,
    tail,
)
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.profiles import Profile
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.markdown import fence_closes, fence_opening, outside_fences
from orchestrator.plan.model import Task
from orchestrator.vocabulary import ARGUMENT_LIMIT, ErrorClass

SECTION = "Task Description"

# Before the script, on its first line: when bash -e stops it at a failing command, one line on
# stderr names the line and the command (an ERR trap, which -E hands to functions and subshells;
# not where the script turned -e off with `set +e`, which bash does not stop at).
_PRELUDE = (
    "trap 'case $- in *e*) printf \"[orchestrator] line %s: \\`%s\\` exited with %s: bash -e stops the script "
    'there\\n" "$LINENO" "${BASH_COMMAND//$\'"\'"\'\\n\'"\'"\'/ }" "$?" >&2;; esac\' ERR; '
)
_STOPPED = re.compile(r"^\[orchestrator\] line (\d+): `(.*)` exited with \d+: bash -e stops the script there$", re.M)
_SCRIPT_LIMIT = ARGUMENT_LIMIT - len(_PRELUDE.encode())  # the bytes of bash's one argument left for the script
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def script_of(brief: str) -> str | None:
    """The script a brief holds: the first fenced code block under its ``## Task Description``,
    or ``None`` when there is none (the section's prose is never taken for a script)."""
    section = _section(brief, SECTION)
    if section is None:
        return None
    script = fenced(section)
    return script if script is not None and script.strip() else None


def task_script(task: Task) -> str | None:
    """What a shell task runs, as the plan says: its Command cell, else the first fenced code
    block of its Task Details; ``None`` when it has neither."""
    if task.command:
        return task.command
    script = fenced(task.details) if task.details else None
    return script if script is not None and script.strip() else None


def fenced(text: str) -> str | None:
    """The contents of the first fenced code block in ``text``, or ``None``. A fence closes only
    on a line of its own character, at least as long, with nothing after it (CommonMark): a
    ```` fence may hold ``` lines, as a script's here-document of markdown does."""
    lines = text.strip().splitlines()
    for index, line in enumerate(lines):
        marker = fence_opening(line)
        if marker is None:
            continue
        end = next((i for i in range(index + 1, len(lines)) if fence_closes(lines[i], marker)), len(lines))
        return "\n".join(lines[index + 1 : end])
    return None


def _section(text: str, title: str) -> str | None:
    """The body of the ``##`` section called ``title`` (up to the next heading of its level or
    above), skipping headings inside code fences."""
    lines = text.splitlines()
    start: int | None = None
    level = 0
    for index in outside_fences(lines):
        line = lines[index]
        heading = _HEADING.match(line)
        if heading is None:
            continue
        if start is not None and len(heading.group(1)) <= level:
            return "\n".join(lines[start:index])
        if start is None and heading.group(2).strip().lower() == title.lower():
            start, level = index + 1, len(heading.group(1))
    return "\n".join(lines[start:]) if start is not None else None


def _unpassable(script: str) -> tuple[str, str] | None:
    """Why ``script`` cannot be given to bash as its one ``-c`` argument, and what to do; or None."""
    if "\0" in script:
        return "the script holds a NUL byte (\\0), which no process takes", "delete it"
    size = len(script.encode("utf-8", "surrogateescape"))
    if size > _SCRIPT_LIMIT:
        return (
            f"the script is {size:,} bytes, and bash takes it as one argument of at most {_SCRIPT_LIMIT:,}",
            "save the script in a file in the project, and make the task run that file (bash ./script.sh)",
        )
    return None


class ShellBackend(Backend):
    name = "shell"
    reads_prompt = False  # the script is in the brief; its inputs are named in the environment
    runs_script = True
    sandboxed = True

    def powers(self, settings: Settings) -> str:
        return (
            "runs the brief's script under bash with your user's rights: it can change or delete any "
            "file you can, and reach the network"
        )

    def invocation(self, job: Job) -> Invocation:
        script = script_of(job.brief)
        if script is None:
            raise CannotInvoke(
                f"{job.brief_name}: no code block under '## {SECTION}' — a shell task runs the first fenced "
                "code block there and never its prose; restore it, or delete the brief to have it rendered again "
                "(if it was rendered so, the workspace's templates/agent_task.md.j2 must keep that block)"
            )
        why = _unpassable(script)
        if why is not None:
            raise CannotInvoke(f"{job.brief_name}: {why[0]} — {why[1]}")
        return Invocation(("bash", "-e", "-E", "-c", _PRELUDE + script), None, limits=limits_for(job.settings))

    def check_task(self, task: Task, settings: Settings, profile: Profile | None = None) -> tuple[str, str] | None:
        script = task_script(task)  # as its brief will hold it
        if script is None or len(script) <= ARGUMENT_LIMIT // 4:  # (at most four bytes a character: it fits)
            return None
        return _unpassable(script)

    def observer(self, job: Job) -> Observer:
        return kept_output(job.settings)

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        result = process_result(run, stdout, stderr, limits_for(job.settings), observer)
        if result.error_class is ErrorClass.EXIT:
            # The first such line is where it stopped: a subshell's, then the line that ran it.
            found = _STOPPED.search(tail(stderr, 8_000))
            if found is not None:
                result.message = (
                    f"{result.message} at line {found.group(1)} of the script: `{found.group(2)}` failed, "
                    "and bash -e stops there"
                )
        return result
