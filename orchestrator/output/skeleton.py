"""A master_plan.md written for a person to edit: the ``init`` skeleton, and the plan ``plan``
writes from an agent's answer (``master_plan.md.j2``)."""

from __future__ import annotations

from orchestrator import backends
from orchestrator.output.templates import Templates


def cell(text: str) -> str:
    """Text made safe for one table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


_CELLS = ("id", "name", "description", "deps", "priority", "access", "type", "condition", "approval", "output")


def plan_markdown(
    request: str,
    tasks: list[dict[str, str]],
    *,
    backend: str,
    goal: str = "",
    criteria: str = "",
    command: str = "",
    params: dict[str, dict[str, str]] | None = None,
) -> str:
    """A master_plan.md from task rows (``id``, ``name``, ``description``, ``deps``, ``priority``,
    ``details``; ``access``, ``type``, ``condition``, ``approval``, ``output``: a column each when
    some row has one); ``command``: the ``command`` setting's line, for the command backend;
    ``params``: the ``params`` setting (name: default, description)."""
    import yaml

    rows = [
        {
            **row,
            **{key: cell(row.get(key, "")) for key in _CELLS},
        }
        for row in tasks
    ]
    return Templates.of(None).render(
        "master_plan.md.j2",
        request=request or "Describe what you want done.",
        backend=backend,
        command=command,
        tasks=rows,
        goal=cell(goal),
        criteria=cell(criteria),
        params=yaml.safe_dump({"params": params}, sort_keys=False, allow_unicode=True).rstrip() if params else "",
    )


_AGENT_TASKS = [
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

# A shell task runs only a command written as one (never its description): the same three tasks
# as scripts that run anywhere, to be replaced by yours.
_SHELL_TASKS = [
    {"id": "T-01", "name": "Survey", "description": "List the project's top-level files and folders",
     "deps": "None", "priority": "P1",
     "details": "```bash\nls -1p\n```"},
    {"id": "T-02", "name": "Assess", "description": "Find TODO and FIXME markers",
     "deps": "T-01", "priority": "P2",
     "details": "```bash\ngrep -rnI -E '\\b(TODO|FIXME)\\b' --exclude-dir=.git --exclude-dir=.orchestrator . "
                "| head -20 || true\n```"},
    {"id": "T-03", "name": "Report", "description": "Count the lines of T-01's and T-02's results",
     "deps": "T-01, T-02", "priority": "P2",
     "details": "```bash\n# $ORCHESTRATOR_INPUTS_FILE lists the result files of T-01 and T-02, one a line;\n"
                "# $ORCHESTRATOR_INPUTS_DIR/T-01.md holds what T-01 printed, alone (`orchestrator output T-01`).\n"
                "while IFS= read -r result; do\n"
                "  id=$(sed -n 's/^task: //p' \"$result\" | head -1)\n"
                "  echo \"- $id: $(grep -c . \"$ORCHESTRATOR_INPUTS_DIR/$id.md\" || true) lines\"\n"
                "done < \"$ORCHESTRATOR_INPUTS_FILE\"\n```"},
]  # fmt: skip


def skeleton(request: str, backend: str, *, empty: bool = False) -> str:
    """The master_plan.md that ``orchestrator init`` writes: valid, runnable, and meant to be
    edited; ``empty``: its task table has no rows, for ``orchestrator add`` to fill."""
    known = backend in backends.names()
    command = backends.get(backend).stand_in if known else ""
    tasks = [] if empty else _SHELL_TASKS if backends.runs_script(backend) else _AGENT_TASKS
    return plan_markdown(request, tasks, backend=backend, command=command)
