"""What ``validate`` tells beside the plan's problems: lines worth a look, none of them an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import OrchestratorError, shown
from orchestrator.plan.table.cells import release_command
from orchestrator.vocabulary import counted

if TYPE_CHECKING:
    from orchestrator.plan.model import Plan
    from orchestrator.state.workspace import Workspace


def own_columns(plan: Plan) -> list[str]:
    """A line for each column of the task table the tool does not read (``plan/table/rows``; ``run``
    says the same at its start)."""
    from orchestrator.plan.table.rows import unread_columns

    return unread_columns(plan)


def labels_and_holds(plan: Plan, workspace: Workspace) -> list[str]:
    """Assignees with no profile (labels), and the tasks a person holds back (a Blocked cell)."""
    from orchestrator.plan.config.profiles import Profiles, labels
    from orchestrator.vocabulary import TaskStatus

    cells = [task for task in plan.tasks.values() if task.blocked is not None]
    status = {}
    if cells:  # (the views replay the machine: only a plan with a Blocked cell needs them)
        from orchestrator.views.replay import collect

        status = {view.id: view.status for view in collect(plan, workspace)}
    held = [
        f"{shown(plan.path)}:{task.line}: {task.id} is blocked{f' ({task.blocked})' if task.blocked else ''}: it "
        f"and what depends on it wait until released (`{release_command(task.id, task.blocked)}`)"
        if status[task.id] == TaskStatus.BLOCKED
        else f"{shown(plan.path)}:{task.line}: {task.id}'s Blocked cell holds nothing: it is {status[task.id]} "
        "(a cell holds back a task not started yet) — empty the cell"
        for task in cells
    ]
    return labels(plan, Profiles(workspace)) + held


def unseen_work(plan: Plan, workspace: Workspace) -> list[str]:
    """A line for each task without ``isolation: worktree`` that depends on one with it: it runs in
    the checkout, where that task's work is not (it is on the integration branch until `merge`),
    and gets only its result."""
    from orchestrator.plan.config.profiles import Profiles

    profiles = Profiles(workspace)
    try:
        isolated = {
            task.id for task in plan.tasks.values() if profiles.settings_for(plan, task).isolation == "worktree"
        }
    except OrchestratorError:  # (a profile check_plan has told of)
        return []
    return [
        f"{shown(plan.path)}:{task.line}: {task.id} depends on {', '.join(upstream)} (isolation: worktree) but has no "
        f"isolation itself: it runs in your checkout and sees only their results, not their files (on "
        f"orchestrator/integration until `orchestrator merge`) — give it isolation: worktree to build on them"
        for task in plan.tasks.values()
        if task.id not in isolated and (upstream := [d for d in task.dependencies if d in isolated])
    ]


def pushing_agents(plan: Plan, workspace: Workspace) -> list[str]:
    """A line for each task in a worktree whose agent may push and open pull requests itself
    (``agent_pushes: true``): what the plan gives up by it."""
    from orchestrator.plan.config.profiles import Profiles

    profiles = Profiles(workspace)
    try:
        settings = {task.id: profiles.settings_for(plan, task) for task in plan.tasks.values()}
    except OrchestratorError:  # (a profile check_plan has told of)
        return []
    return [
        f"{shown(plan.path)}:{task.line}: {task.id} may push and open pull requests itself (agent_pushes: true): "
        "what it sends out is outside the effect ledger — a retry, a resume, a hedge or a losing candidate may "
        "push or open a pull request again, and its losers' work may reach the remote; `deliver` does it once"
        for task in plan.tasks.values()
        if settings[task.id].agent_pushes and settings[task.id].isolation == "worktree"
    ]


def typed(plan: Plan, workspace: Workspace) -> tuple[list[dict[str, object]], list[str]]:
    """Each task with a type: what it ends up with, and from where (``plan/provenance.py``), for
    ``--json`` and as lines (the first ``SHOWN_AT_MOST``)."""
    from orchestrator.plan import provenance
    from orchestrator.plan.config.profiles import Profiles

    profiles = Profiles(workspace)
    typed = provenance.as_json(plan, profiles)
    first = [task for task in plan.tasks.values() if task.type][: provenance.SHOWN_AT_MOST]
    lines = [provenance.line(plan, profiles, task) for task in first]
    if len(typed) > len(first):
        lines.append(f"... and {len(typed) - len(first)} more tasks with a type (`validate --json` lists them all)")
    return typed, lines


def branches(plan: Plan) -> tuple[list[dict[str, object]], list[dict[str, object]], list[str]]:
    """What the plan's Conditions and Approval gates do, once each in table order: ``T-02 runs
    if: T-01.failing == 0``, ``T-04: approval before it starts``; and the same for ``--json``
    (``conditions``: ``task``, ``condition``, ``reads``; ``gates``: ``task``, ``approval``)."""
    from orchestrator.plan.table.conditions import GATES, reads

    conditions: list[dict[str, object]] = []
    gates: list[dict[str, object]] = []
    lines: list[str] = []
    for task in plan.tasks.values():
        if task.condition:
            conditions.append({"task": task.id, "condition": task.condition, "reads": list(reads(task, plan.tasks))})
            lines.append(f"{task.id} runs if: {task.condition}")
        if task.approval in GATES:
            gates.append({"task": task.id, "approval": task.approval})
            lines.append(f"{task.id}: {GATES[task.approval]}")
    return conditions, gates, lines


def untrusted(plan: Plan, workspace: Workspace) -> list[str]:
    """A line for each agent task that may edit (no ``Access: read``) and reads a value a webhook's
    delivery gives (untrusted input: a pull request's title is anybody's words) with no approval
    gate before it or upstream, from a trigger that does not cap its runs at ``access: read``."""
    from orchestrator.plan.config import kinds
    from orchestrator.plan.config.profiles import Profiles

    given = plan.settings.triggers.given()
    outside = {name: [t for t in triggers if not plan.settings.triggers.capped(t)] for name, triggers in given.items()}
    outside = {name: triggers for name, triggers in outside.items() if triggers}
    if not outside:
        return []
    profiles = Profiles(workspace)
    agents = set(kinds.agents())
    lines: list[str] = []
    for task in plan.tasks.values():
        read = [name for name, _ in task.params if name in outside]
        kind = plan.type_of(task)
        access = task.access or (kind.get("access") if kind is not None else None)
        if not read or access == "read":
            continue
        try:
            backend = profiles.settings_for(plan, task).backend
        except OrchestratorError:  # (a profile check_plan has told of)
            continue
        before = (task.id, *plan.ancestors([task.id]))
        gated = any(plan.tasks[t].approval == "before" for t in before if t in plan.tasks)
        if backend not in agents or gated:
            continue
        sources = sorted({t for name in read for t in outside[name]})
        lines.append(
            f"{shown(plan.path)}:{task.line}: {task.id} ({backend}, which may edit files and run commands) reads "
            f"{', '.join('params.' + name for name in read)}, which a {' or '.join(sources)} delivery gives: untrusted "
            "input, anybody's words, with no approval gate before it — give it Access: read, an Approval: before "
            f"gate, or cap the trigger with access: read ({' and '.join(sources)})"
        )
    return lines


def timed(plan: Plan, workspace: Workspace) -> list[str]:
    """A line for each task whose Not before is still to come (a run holds it until then), and one
    for the workspace's schedule (``orchestrator schedule``): when the plan runs next."""
    import time

    from orchestrator.plan.table.times import not_before_reason
    from orchestrator.state import schedule

    now = time.time()
    told = [
        f"{shown(plan.path)}:{task.line}: {task.id} waits: {not_before_reason(task.not_before)} (its Not before): "
        "a run holds it until then, and goes on with the rest"
        for task in plan.tasks.values()
        if task.not_before is not None and task.not_before > now
    ]
    planned = schedule.shown(workspace, now)
    return told + ([schedule.note(planned)] if planned is not None else [])


UNCACHED_SHOWN = 10  # tasks named on each of validate's cache lines; `validate --json` lists them all


def cache_and_checkpoint(plan: Plan, workspace: Workspace) -> tuple[dict[str, object], list[str]]:
    """Which tasks the cache keeps and reuses and which it never does, and why (``run/resume/reuse.
    cache_rule``), and the last checkpoint (``checkpoint save``), for ``--json`` (``cached`` and
    ``uncached``: ``task``, ``why``; ``checkpoint``: ``checkpoints.Checkpoint.as_json`` or
    ``None``) and as a line each."""
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.run.resume.reuse import MAY_DO_MORE, SAID_TRUE, cache_rule
    from orchestrator.state.kept import checkpoints

    profiles = Profiles(workspace)
    try:
        rules = {task.id: cache_rule(task, profiles.settings_for(plan, task)) for task in plan.tasks.values()}
    except OrchestratorError:  # (a profile check_plan has told of)
        rules = {}
    cached: list[dict[str, str]] = [{"task": task, "why": why} for task, (kept, why) in rules.items() if kept]
    uncached: list[dict[str, str]] = [{"task": task, "why": why} for task, (kept, why) in rules.items() if not kept]
    never = _cache_line(plan, "Not reused from the cache (runs again when its inputs change)", uncached)
    if any(u["why"] in MAY_DO_MORE for u in uncached):
        never += (
            f" — declare its Output, or say {SAID_TRUE} (the plan's setting, or its type's), where its answer is "
            "all it does"
        )
    lines = [_cache_line(plan, "Cached (reused while its inputs are the same)", cached), never]
    last = checkpoints.every(workspace)[-1:]
    for found in last:
        lines.append(
            f"Last checkpoint: {found.name}, saved {found.saved} ({counted(found.results, 'result')}): "
            f"`orchestrator checkpoint restore {found.name}` goes back"
        )
    checkpoint = last[0].as_json() if last else None
    data: dict[str, object] = {"cached": cached, "uncached": uncached, "checkpoint": checkpoint}
    return data, [line for line in lines if line]


def _cache_line(plan: Plan, heading: str, tasks: list[dict[str, str]]) -> str:
    """``heading: T-01 (why), T-02 (why)``, the first ``UNCACHED_SHOWN``; ``every task (why)``
    when one reason holds of the whole plan; ``""`` for none."""
    reasons = sorted({t["why"] for t in tasks})
    if len(tasks) == len(plan.tasks) > 1 and len(reasons) == 1:
        return f"{heading}: every task ({reasons[0]})"
    if not tasks:
        return ""
    named = ", ".join(f"{t['task']} ({t['why']})" for t in tasks[:UNCACHED_SHOWN])
    more = len(tasks) - UNCACHED_SHOWN
    return heading + ": " + named + (f" and {more} more (`validate --json` lists them)" if more > 0 else "")


def hedging(plan: Plan, workspace: Workspace) -> tuple[dict[str, object], list[str]]:
    """Which tasks a straggler's hedge or best of N may race (``run/races/raceable.refusal``), for ``--json``
    (``hedged``: ``task``, ``bound``; ``not_hedged``: ``task``, ``why``, the tasks whose ``hedge`` or
    ``best_of`` is set but whose work is not safe to do twice) and a line each; nothing when none."""
    from orchestrator.plan.config.profiles import Profiles
    from orchestrator.run.races.raceable import refusal

    profiles = Profiles(workspace)
    hedged: list[dict[str, str]] = []
    refused: list[dict[str, str]] = []
    for task in plan.tasks.values():
        try:
            settings = profiles.settings_for(plan, task)
        except OrchestratorError:  # (a profile check_plan has told of)
            continue
        if settings.best_of > 1:
            why = refusal(plan, task, settings, field="best_of")
            if why is None:
                hedged.append({"task": task.id, "bound": f"best of {settings.best_of}, judge: {settings.judge}"})
            else:
                refused.append({"task": task.id, "why": why + f": its best of {settings.best_of} runs it once"})
            continue
        if settings.hedge is None:
            continue
        why = refusal(plan, task, settings)
        if why is None:
            hedged.append({"task": task.id, "bound": str(settings.hedge)})
        else:
            refused.append({"task": task.id, "why": why})
    lines = []
    if hedged:
        shown = ", ".join(f"{h['task']} ({h['bound']})" for h in hedged[:UNCACHED_SHOWN])
        more = f" and {len(hedged) - UNCACHED_SHOWN} more" if len(hedged) > UNCACHED_SHOWN else ""
        lines.append(f"Raced (a straggler's hedge, or best of N): {shown}{more}")
    lines += [f"Not raced, though it asks to be: {r['task']}: {r['why']}" for r in refused]
    return {"hedged": hedged, "not_hedged": refused}, lines


def unsandboxed(plan: Plan, workspace: Workspace) -> list[str]:
    """A line when runs from outside would run shell or command tasks with no sandbox (the plan's
    ``sandbox: off``, or a trigger's): what that gives whoever sends their values."""
    from orchestrator import backends
    from orchestrator.plan.config.profiles import Profiles

    profiles = Profiles(workspace)
    scripted: list[str] = []
    for task in plan.tasks.values():
        try:
            backend = profiles.settings_for(plan, task).backend
        except OrchestratorError:  # (a profile check_plan has told of)
            continue
        if backends.sandboxed(backend):
            scripted.append(task.id)
    if not scripted:
        return []
    triggers = plan.settings.triggers
    who = ["every run from outside (the API, MCP, run --untrusted)"] if plan.settings.sandbox == "off" else []
    who += [f"the {name} trigger's runs" for name in triggers.unsandboxed()]
    if not who:
        return []
    return [
        f"{shown(plan.path)}: sandbox: off — {' and '.join(who)} run {', '.join(scripted[:5])}"
        f"{' and more' if len(scripted) > 5 else ''} with no sandbox: a value from outside that reached code would "
        "run with your rights, read your home directory and reach the network — leave sandbox on (network if "
        "they need it) and give tasks that write Isolation: worktree"
    ]


def forecast(plan: Plan, workspace: Workspace) -> tuple[dict[str, object], list[str]]:
    """What a run of every task is expected to cost, from the runs before (``run/forecasts/spend``):
    ``forecast`` for ``--json`` and a line, with the budget (``max_cost``) beside it; nothing while
    no run is recorded."""
    from orchestrator.run.forecasts.spend import for_tasks
    from orchestrator.state import events
    from orchestrator.vocabulary import money

    if not events.size(workspace.events_file):
        return {}, []
    found = for_tasks(plan, workspace)
    if found.cost is None:  # (no run reported a cost: tasks of a shell, a command)
        return {"forecast": found.as_json()}, []
    limit = plan.settings.max_cost
    said = found.line().replace("forecast:", "Forecast of a run of every task:", 1)
    if limit is not None and found.cost is not None:
        said += f"; budget {money(limit)} (max_cost)" + (", which it is over" if found.cost.p50 > limit else "")
    return {"forecast": found.as_json()}, [said]
