"""``command``: any argv from settings (``command: ["my-agent", "--flag"]``); brief on stdin, result on stdout."""

from __future__ import annotations

from pathlib import Path

from orchestrator.backends.base import (
    AgentResult,
    Backend,
    Invocation,
    Job,
    Observer,
    kept_output,
    limits_for,
    process_result,
)
from orchestrator.executors.base import ProcessRun
from orchestrator.plan.config.settings import Settings


class CommandBackend(Backend):
    name = "command"
    sandboxed = True
    # A stand-in that answers with the brief it is given, until the plan names the real program.
    stand_in = '["python3", "-c", "import sys; print(sys.stdin.read())"]'

    def invocation(self, job: Job) -> Invocation:
        return Invocation(job.settings.command, job.prompt, limits=limits_for(job.settings))

    def observer(self, job: Job) -> Observer:
        return kept_output(job.settings)

    def interpret(self, job: Job, run: ProcessRun, stdout: Path, stderr: Path, observer: Observer) -> AgentResult:
        return process_result(run, stdout, stderr, limits_for(job.settings), observer)

    def powers(self, settings: Settings) -> str:
        return (
            "runs the plan's command with your user's rights: whatever that program can do, it may do; "
            "its own options are its only limit"
        )

    def check(self, settings: Settings) -> str | None:
        if not settings.command:
            return 'the command backend needs a \'command\' setting, e.g. command: ["my-agent", "--flag"]'
        return None
