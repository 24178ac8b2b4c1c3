"""``orchestrator approve`` and ``reject``: a person's word at a task's Approval gate."""

from __future__ import annotations

import argparse

from orchestrator.cli.output import Commands, add_command, emit_json, find_workspace, task_id_in, warn
from orchestrator.errors import UsageError
from orchestrator.vocabulary import ExitCode


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _decide(args: argparse.Namespace, *, approve: bool) -> int:
    from orchestrator.run.held.decisions import decide

    word = "approve" if approve else "reject"
    if len(args.words) > 2:
        raise UsageError(f"too many arguments: orchestrator {word} [DIR] TASK")
    workspace = find_workspace(args.words[0] if len(args.words) == 2 else None)
    plan = workspace.load_plan()
    task = plan.tasks[task_id_in(plan, args.words[-1])]
    answer = decide(workspace, plan, task, approve, " ".join((args.reason or "").split()))
    if args.json:
        emit_json({**answer.as_json(), "decision": "approved" if approve else "rejected", "already": answer.already})
    elif answer.ok:
        print(answer.said)
    else:
        warn(answer.said)
    return ExitCode.OK if answer.ok else ExitCode.FAILED


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "approve", cmd_approve, "let a task waiting at its Approval gate go on")
    p.add_argument("words", nargs="+", metavar="[DIR] TASK", help="the task (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK"
    p.add_argument("--reason", help="a word for the record (shown in history and the approvals file)")
    p = add_command(sub, "reject", cmd_reject, "refuse a task at its Approval gate: what depends on it is skipped")
    p.add_argument("words", nargs="+", metavar="[DIR] TASK", help="the task (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK"
    p.add_argument("--reason", help="why (shown in its result, status and what depends on it)")
