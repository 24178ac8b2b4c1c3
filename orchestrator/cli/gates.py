"""``orchestrator approve`` and ``reject``: a person's word at a task's Approval gate; ``answer``: a
person's answer to what a running task's agent asks (``ask: true``)."""

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


ANSWERS = ("allow", "deny")


def cmd_answer(args: argparse.Namespace) -> int:
    from orchestrator.run.held.asking import answer
    from orchestrator.state.approvals import local_user

    if len(args.words) not in (2, 3) or args.words[-1] not in ANSWERS:
        raise UsageError("answer: give the task and allow or deny: orchestrator answer [DIR] TASK allow|deny")
    workspace = find_workspace(args.words[0] if len(args.words) == 3 else None)
    plan = workspace.load_plan()
    task = plan.tasks[task_id_in(plan, args.words[-2])]
    allow = args.words[-1] == "allow"
    reason = " ".join((args.reason or "").split())
    said = answer(workspace, plan, task, allow, by=local_user(), always=args.always, reason=reason)
    if args.json:
        emit_json({**said.as_json(), "answer": args.words[-1], "always": args.always, "said": said.said})
    elif said.ok:
        print(said.said)
    else:
        warn(said.said)
    return ExitCode.OK if said.ok else ExitCode.FAILED


def register(sub: Commands[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "approve", cmd_approve, "let a task waiting at its Approval gate go on")
    p.add_argument("words", nargs="+", metavar="[DIR] TASK", help="the task (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK"
    p.add_argument("--reason", help="a word for the record (shown in history and the approvals file)")
    p = add_command(sub, "reject", cmd_reject, "refuse a task at its Approval gate: what depends on it is skipped")
    p.add_argument("words", nargs="+", metavar="[DIR] TASK", help="the task (after an optional workspace)")
    p.usage = "%(prog)s [-h] [--json] [--reason TEXT] [DIR] TASK"
    p.add_argument("--reason", help="why (shown in its result, status and what depends on it)")
    p = add_command(
        sub, "answer", cmd_answer, "allow or deny what a running task's agent asks (ask: true): answer T-03 allow|deny"
    )
    p.add_argument("words", nargs="+", metavar="[DIR] TASK allow|deny", help="the task, then allow or deny")
    p.usage = "%(prog)s [-h] [--json] [--always] [--reason TEXT] [DIR] TASK allow|deny"
    p.add_argument(
        "--always",
        action="store_true",
        help="answer the same question of this task so from now on, while its inputs are the same",
    )
    p.add_argument("--reason", help="a word for the record (history, the task's result); the agent is not shown it")
