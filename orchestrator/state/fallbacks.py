"""Which failed tasks a fallback took over: a task that ran *because* one failed (its Condition
holds with it failed, and would not have held had it completed) ran and completed. Such a failure
is settled: the next run leaves it as it is (``run/resume/settled``) and counts it as done
(``run/held/holds.exit_code``), and a task whose Condition reads it decides on it as on any
outcome that stays, rather than waiting for it to run again (``views/replay.Waits``).
One rule for all three, so that ``status`` shows the gate the next run will stop at. A task that
runs whatever the outcome (``T-01 failed or T-01 completed``: a clean-up, say) hides no failure,
as a GitHub Actions job with ``if: always()`` does not.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.plan.model import Plan, Task
from orchestrator.plan.table.conditions import ConditionError, compile_condition
from orchestrator.vocabulary import TaskStatus


def taken_over(plan: Plan, statuses: Mapping[str, TaskStatus]) -> set[str]:
    """The failed tasks of ``plan`` a fallback took over, by each task's status."""
    return {
        dep
        for task in plan.tasks.values()
        if task.condition and statuses.get(task.id) == TaskStatus.COMPLETED
        for dep in task.dependencies
        if statuses.get(dep) == TaskStatus.FAILED and runs_because_it_failed(plan, statuses, task, dep)
    }


def holds_on_ends(plan: Plan, statuses: Mapping[str, TaskStatus], task: Task) -> bool:
    """Whether ``task``'s condition holds on its dependencies' outcomes as they are (a field it
    reads of an answer cannot be known here: not held)."""
    try:
        condition = compile_condition(task.condition or "", plan.tasks, task.dependencies)
        outcomes = {dep: str(statuses.get(dep, TaskStatus.PENDING)) for dep in task.dependencies}
        return bool(condition.evaluate(outcomes, {}))
    except ConditionError:
        return False


def runs_because_it_failed(plan: Plan, statuses: Mapping[str, TaskStatus], task: Task, failed: str) -> bool:
    """Whether ``task``'s condition would have been false had ``failed`` completed (its outcomes
    alone are looked at: a field it would read of a completed upstream cannot be known, and
    then it is taken to be a fallback)."""
    try:
        condition = compile_condition(task.condition or "", plan.tasks, task.dependencies)
        outcomes = {dep: str(statuses.get(dep, TaskStatus.PENDING)) for dep in task.dependencies}
        return not condition.evaluate({**outcomes, failed: str(TaskStatus.COMPLETED)}, {})
    except ConditionError:
        return True
