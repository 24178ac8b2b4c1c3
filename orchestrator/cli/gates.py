"""``orchestrator approve`` and ``reject`` on the command line: a person's word at a task's Approval
gate; ``answer``: a person's answer to a question a running task's agent asks (``ask: true``). The work:
``commands/changing``, ``run/inflight/decisions``, ``run/inflight/asking``."""

from __future__ import annotations

import argparse

from orchestrator.cli.doors import register_command, show
from orchestrator.cli.output import Commands
from orchestrator.commands.calling import Call
from orchestrator.commands.options import from_namespace
from orchestrator.commands.table import ANSWERS, COMMANDS
from orchestrator.commands.words import question as question_id
from orchestrator.errors import UsageError


def cmd_answer(args: argparse.Namespace) -> int:
    """``answer [DIR] TASK [QUESTION] allow|deny``: its words split into the table's arguments
    (three words: the middle one is the question when it reads as one, ``Q2``, else the task after
    a workspace)."""
    words = list(args.words)
    usage = "orchestrator answer [DIR] TASK [QUESTION] allow|deny"
    if len(words) not in (2, 3, 4) or words[-1] not in ANSWERS:
        raise UsageError(f"answer: give the task, the question it asks (Q2) and allow or deny: {usage}")
    named = words[-2] if len(words) == 4 or (len(words) == 3 and _question(words[1])) else None
    if named is not None and not _question(named):
        raise UsageError(f"answer: {named} is not a question's id — use Q1, Q2... as status shows it: {usage}")
    rest = words[:-2] if named is not None else words[:-1]
    question = _question(named) if named is not None else args.question
    if named is not None and args.question is not None and args.question != question:
        raise UsageError(f"answer: {named} and --question {args.question} name two questions — name one")
    given = from_namespace(
        COMMANDS["answer"].options, args, directory=rest[0] if len(rest) == 2 else None, task=rest[-1],
        answer=words[-1], question=question,
    )  # fmt: skip
    return show(COMMANDS["answer"].function()(Call(given, "cli")), as_json=args.json)


def _question(word: str) -> str | None:
    """``word`` as a question's id (``Q2``), or ``None`` when it reads as none."""
    try:
        return question_id(word)
    except argparse.ArgumentTypeError:
        return None


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    register_command(sub, "approve")
    register_command(sub, "reject")
    register_command(sub, "answer", cmd_answer)
