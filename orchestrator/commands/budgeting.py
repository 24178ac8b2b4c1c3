"""``budget``: what the run going on may spend, shown; or raised (``+5``) or set (``12.50``)
while it goes on, and the tasks waiting for it go on (``run/inflight/budgeting``)."""

from __future__ import annotations

from typing import Any

from orchestrator.commands.calling import Call, Result
from orchestrator.state.plans import plan_of
from orchestrator.vocabulary import money


def budget(call: Call) -> Result:
    from orchestrator.commands.changing import who
    from orchestrator.run.inflight import budgeting

    workspace = call.workspace
    amount = call.args.get("amount")
    if amount is None:
        shown = budgeting.standing(workspace, plan_of(workspace).settings.max_cost)
        return Result(shown, shown=lambda: _shown(shown) + "\n")
    change = budgeting.Change.read(str(amount))
    by, via = who(call)
    raised = budgeting.ask(workspace, change, by=by, via=via)
    data = {"run": raised.run, "limit": raised.limit, "was": raised.was, "spent": raised.spent,
            "released": list(raised.released)}  # fmt: skip
    said = budgeting.raised_line(raised)
    return Result(data, shown=lambda: said + "\n")


def _shown(found: dict[str, Any]) -> str:
    limit = found["limit"]
    if found["run"] is None:
        said = f"max_cost {money(limit)}" if limit is not None else "no max_cost (a run spends what it needs)"
        return f"no run is going on; the plan's budget: {said}"
    head = f"the run going on (pid {found['pid']}) has spent ${found['spent']:.4f}"
    if limit is None:
        return head + ", with no budget"
    head += f" of {money(limit)} ({money(found['left'])} left)"
    if found["reached"]:
        head += f"; it waits for a higher budget ({len(found['waiting'])} tasks): `orchestrator budget +USD`"
    return head
