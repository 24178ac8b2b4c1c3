"""``shell``: the task's instructions are a bash script (the "queue of commands" use case).

The script is the task's Task Details body, or its Description when it has none. It runs under
``bash -e`` in the project directory with stdin closed; its stdout is the result. A script that is
one plain command of a program is exec'd the way bash would exec it, without bash (``direct.py``). Upstream result
files are named in ``$ORCHESTRATOR_INPUTS`` (one path per line).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.backends.base import AgentResult, Backend, Invocation, Job, Observer, limits_for, process_result
from orchestrator.executors.direct import simple_command
from orchestrator.executors.process import ProcessRun


def _script(instructions: str) -> str:
    """A Task Details body may hold the script in a fenced block; take its contents then."""
    lines = instructions.strip().splitlines()
    fence = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("```", "~~~"))), None)
    if fence is None:
        return instructions.strip()
    marker = lines[fence].lstrip()[:3]
    end = next((i for i in range(fence + 1, len(lines)) if lines[i].lstrip().startswith(marker)), len(lines))
    return "\n".join(lines[fence + 1 : end])


class ShellBackend(Backend):
    name = "shell"
    reads_prompt = False  # the script is the task's own text; its inputs are named in the environment

    def invocation(self, job: Job) -> Invocation:
        script = _script(job.task.instructions)
        return Invocation(
            ("bash", "-e", "-c", script), None, limits=limits_for(job.settings), direct=simple_command(script)
        )

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        return process_result(run, stdout, stderr, limits_for(job.settings))
