"""``orchestrator approve`` and ``reject`` on the command line: a person's word at a task's Approval
gate; ``answer``: a person's answer to what a running task's agent asks (``ask: true``). The work:
``commands/changing``, ``run/inflight/decisions``, ``run/inflight/asking``."""

from __future__ import annotations

import argparse

from orchestrator.cli.doors import register_command, show
from orchestrator.cli.output import Commands
from orchestrator.commands.calling import Call
from orchestrator.commands.options import from_namespace
from orchestrator.commands.table import ANSWERS, COMMANDS
from orchestrator.errors import UsageError


def cmd_answer(args: argparse.Namespace) -> int:
    """``answer [DIR] TASK allow|deny``: its words split into the table's arguments."""
    words = list(args.words)
    if len(words) not in (2, 3) or words[-1] not in ANSWERS:
        raise UsageError("answer: give the task and allow or deny: orchestrator answer [DIR] TASK allow|deny")
    given = from_namespace(
        COMMANDS["answer"].options, args, directory=words[0] if len(words) == 3 else None, task=words[-2],
        answer=words[-1],
    )  # fmt: skip
    return show(COMMANDS["answer"].function()(Call(given, "cli")), as_json=args.json)


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "approve")
    register_command(sub, "reject")
    register_command(sub, "answer", cmd_answer)
