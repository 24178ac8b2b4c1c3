"""``orchestrator output``: what a task answered, its result's body alone (no YAML header), for a
script or a person to read; ``--json`` adds what the result records of it."""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.output import Commands, add_command, emit_json, task_id_in
from orchestrator.errors import NoOutputError, UsageError
from orchestrator.state.workspace import Workspace
from orchestrator.vocabulary import ExitCode, TaskStatus


def cmd_output(args: argparse.Namespace) -> int:
    from orchestrator.documents import read_output
    from orchestrator.state.results import read_record

    words = list(args.words)
    if len(words) > 2:
        raise UsageError("output takes one task id, after an optional workspace: orchestrator output [DIR] TASK")
    workspace = Workspace.find(words[0] if len(words) == 2 else None)
    plan = workspace.load_plan()
    task = plan.tasks[task_id_in(plan, words[-1])]
    path = workspace.result(task)
    record = read_record(path, task.id)
    body = read_output(path) if record is not None else None
    if record is None or body is None:
        raise NoOutputError(f"{task.id} has no result yet: run it first (`orchestrator run --only {task.id}`)")
    if record.status != TaskStatus.COMPLETED:
        why = f" ({record.reason})" if record.reason else ""
        raise NoOutputError(
            f"{task.id} has no output: its result says {record.status}{why} — "
            f"`orchestrator logs {task.id}` shows what it printed"
        )
    if args.json:
        emit_json(
            {
                "ok": True,
                "task": task.id,
                "result_file": workspace.relative(path),
                "output": body,
                "metadata": record.to_mapping(),
            }
        )
        return ExitCode.OK
    sys.stdout.write(body)  # (as the task printed it, ending with one newline: ``documents.output_of``)
    return ExitCode.OK


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "output",
        cmd_output,
        "print what a completed task answered: its result without the YAML header",
        json_help="print one JSON object: the output, the result file and its metadata",
    )
    p.add_argument("words", nargs="+", metavar="[DIR] TASK", help="the task (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [DIR] TASK"
