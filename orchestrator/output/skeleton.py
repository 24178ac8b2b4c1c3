"""A master_plan.md written for a person to edit: the ``init`` skeleton, and the plan ``plan``
writes from an agent's answer (``master_plan.md.j2``)."""

from __future__ import annotations

from orchestrator.output.templates import Templates


def cell(text: str) -> str:
    """Text made safe for one table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plan_markdown(
    request: str, tasks: list[dict[str, str]], *, backend: str, goal: str = "", criteria: str = ""
) -> str:
    """A master_plan.md from task rows (``id``, ``name``, ``description``, ``deps``, ``priority``, ``details``)."""
    rows = [
        {**row, **{key: cell(row.get(key, "")) for key in ("id", "name", "description", "deps", "priority")}}
        for row in tasks
    ]
    return Templates.of(None).render(
        "master_plan.md.j2",
        request=request or "Describe what you want done.",
        backend=backend,
        tasks=rows,
        goal=cell(goal),
        criteria=cell(criteria),
    )


def skeleton(request: str, backend: str) -> str:
    """The master_plan.md that ``orchestrator init`` writes: valid, runnable, and meant to be edited."""
    tasks = [
        {"id": "T-01", "name": "Survey", "description": "List the project's main parts and what each does",
         "deps": "None", "priority": "P1",
         "details": "Read the project's top-level files and folders. Write a short list of its main parts\n"
                    "and what each does."},
        {"id": "T-02", "name": "Assess", "description": "Point out the three most important problems",
         "deps": "T-01", "priority": "P2",
         "details": "Using the survey from T-01, point out the three most important problems you see,\n"
                    "each with the file it is in."},
        {"id": "T-03", "name": "Report", "description": "Summarise survey and problems in one page",
         "deps": "T-01, T-02", "priority": "P2",
         "details": "Combine the results of T-01 and T-02 into a one-page report."},
    ]  # fmt: skip
    return plan_markdown(request, tasks, backend=backend)
