"""The commands that change a workspace: ``add`` (``commands/adding``), ``update`` (``commands/editing``),
``approve`` and ``reject`` (a person's word at a gate: ``run/inflight/decisions``), ``cancel`` and
``retry`` (asked of the run going on, or done with the workspace held: ``run/inflight/requests``).
Each checks what it is given whole before it writes anything: a refused change leaves every file
as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.commands.calling import Call, Result
from orchestrator.commands.editing import update as update
from orchestrator.errors import UsageError
from orchestrator.plan.table.cells import NO_COMMAND
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import ExitCode

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan, Task


def add(call: Call) -> Result:
    """A task added to the plan; a run going on takes it within a second. A shell task given no
    command is written held (``Blocked: NO_COMMAND``) until ``update --command`` gives it one."""
    from orchestrator.commands.adding import add_row, check_words, read_details, task_json_of

    args, workspace = call.args, call.workspace
    description = args.description or ""
    check_words(args, description)
    details = read_details(args.details_file)
    added = add_row(args, workspace, description, details, args.details_file, hold=True)
    task_id, live, taken = added.id, added.live, added.taken
    where = workspace.relative(workspace.plan_file)
    notes: list[str] = []
    if added.held:
        # A script's `ID=$(orchestrator add ...)` gets its id all the same, and one line says what to do.
        notes.append(
            f"⚠️ {task_id} added to {where} with no command: a shell task runs one, so it waits (Blocked: "
            f"{NO_COMMAND}) until `orchestrator update {task_id} --command 'CMD'` gives it one"
        )

    def data() -> dict[str, object]:  # (the plan read again: only for what asks for the task's view)
        run = live.run if live else None
        return {
            "ok": True,
            "id": task_id,
            "run": run,
            "taken": taken is not None,
            "task": task_json_of(workspace, task_id, added.plan),
        }

    said = (
        f"➕ {task_id} added to {where}; the run going on (pid {live.pid if live else '?'}) has it"
        if taken is not None
        else f"➕ {task_id} added to {where}; it runs in the next `orchestrator run`"
    )
    # The id alone on stdout, for `ID=$(orchestrator add ...)`; what happened, for a person, on stderr.
    return Result(data, notes=notes, shown=lambda: task_id + "\n", aside=[] if added.held else [said])


def approve(call: Call) -> Result:
    return _decide(call, approve=True)


def reject(call: Call) -> Result:
    return _decide(call, approve=False)


def _decide(call: Call, *, approve: bool) -> Result:
    """A person's word at a task's Approval gate, on the inputs it has now."""
    from orchestrator.commands.words import task_in
    from orchestrator.run.inflight.decisions import decide

    workspace = call.workspace
    plan = plan_of(workspace)
    task = task_in(plan, call.args.task)
    by, via = who(call)
    voiced = call.voiced
    answer = decide(
        workspace, plan, task, approve, " ".join((call.args.reason or "").split()), by=by, via=via,
        url=voiced.url if voiced else None, inputs_seen=voiced.inputs_seen if voiced else None,
    )  # fmt: skip
    data = {**answer.as_json(), "decision": "approved" if approve else "rejected", "already": answer.already,
            "said": answer.said}  # fmt: skip
    if answer.ok:
        return Result(data, shown=lambda: answer.said + "\n")
    return Result(data, ExitCode.FAILED, said=answer.said)


def answer(call: Call) -> Result:
    """A person's answer to what a running task's agent asks (``ask: true``): it goes on, or is denied."""
    from orchestrator.commands.words import task_in
    from orchestrator.run.inflight.asking import answer as reply

    args, workspace = call.args, call.workspace
    plan = plan_of(workspace)
    task = task_in(plan, args.task)
    by, via = who(call)
    said = reply(
        workspace, plan, task, args.answer == "allow", by=by, via=via, url=call.voiced.url if call.voiced else None,
        always=bool(args.always), reason=" ".join((args.reason or "").split()), question=args.question,
    )  # fmt: skip
    data = {**said.as_json(), "answer": args.answer, "question": args.question, "always": bool(args.always),
            "said": said.said}  # fmt: skip
    if said.ok:
        return Result(data, shown=lambda: said.said + "\n")
    return Result(data, ExitCode.FAILED, said=said.said)


def who(call: Call) -> tuple[str, str | None]:
    """Who a word is by, and the door it came through: the person at this machine on the command
    line (no door named) and at the dashboard it serves; the one a door vouches for (a comment's
    author: ``Call.voiced``); a program (API, MCP) or a link by its door's name."""
    from orchestrator.state.approvals import local_user

    if call.voiced is not None:
        return call.voiced.by, call.source
    if call.source in ("cli", "dashboard"):
        return local_user(), None if call.source == "cli" else call.source
    return call.source, call.source


def _retry_items(call: Call, plan: Plan, row: Task) -> Result:
    """``retry T-03 --failed``: each item of the row ``T-03`` that did not complete back in the
    queue (of the run going on, or of the next run), as ``retry T-03[N]`` puts it; the row, its
    result and what depends on it follow once they have run."""
    from orchestrator.run.inflight.requests import request_all
    from orchestrator.state import items

    if row.each is None:
        raise UsageError(f"retry {row.id} --failed: {row.id} is not a row run per item — `retry {row.id}` retries it")
    undone = [f"{row.id}[{n}]" for n, _, state in items.instances_of(call.workspace, row.id) if state in _UNDONE]
    answers = request_all(call.workspace, plan, [plan.tasks[t] for t in undone if t in plan.tasks], "retry")
    back = [a.task for a in answers if a.ok]
    refused = [a for a in answers if not a.ok]
    data = {"ok": not refused, "task": row.id, "retried": back, "refused": [a.as_json() for a in refused]}
    said = f"↩️ {len(back):,} item{'s' if len(back) != 1 else ''} of {row.id} back in the queue" if back else ""
    said = said or f"{row.id} has no item that did not complete"
    notes = [a.said for a in refused[:5]]
    return Result(data, ExitCode.FAILED if refused else ExitCode.OK, notes=notes, shown=lambda: said + "\n")


_UNDONE = ("failed", "cancelled", "skipped", "interrupted")  # an item's states that ``retry --failed`` takes


def cancel(call: Call) -> Result:
    return _request(call, "cancel")


def retry(call: Call) -> Result:
    return _request(call, "retry")


def _request(call: Call, kind: str) -> Result:
    """``cancel`` or ``retry`` asked of the run going on, or done with the workspace held."""
    from orchestrator.commands.words import task_in
    from orchestrator.run.inflight.requests import request

    if kind not in ("cancel", "retry"):  # pragma: no cover - the table names these two
        raise UsageError(f"no request {kind}")
    from orchestrator.run.items import with_instances

    workspace = call.workspace
    plan = with_instances(plan_of(workspace), workspace)  # (`retry T-03[2]`: an instance of a row run per item)
    task = task_in(plan, call.args.task)
    if task.id not in plan.tasks:  # (an instance past its row's items: T-03[9] of three)
        count = sum(1 for other in plan.tasks.values() if other.row == task.row)
        span = f" ({task.row}[1] to {task.row}[{count}])" if count else ""
        raise UsageError(f"no task {call.args.task} in the plan — {task.row} has {count:,} items now{span}")
    if kind == "retry" and call.args.get("failed"):
        return _retry_items(call, plan, task)
    answer = request(workspace, plan, task, "cancel" if kind == "cancel" else "retry", call.args.get("reason"))
    data = {**answer.as_json(), "said": answer.said}
    if answer.ok:
        return Result(data, notes=list(answer.notes), shown=lambda: answer.said + "\n")
    return Result(data, ExitCode.FAILED, said=answer.said, notes=list(answer.notes))
