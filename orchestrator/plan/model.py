"""What a plan is once read: ``Task`` rows, the run ``Settings``, and the task graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import Problem
from orchestrator.paths import PLAN_FILE as PLAN_FILE  # (the plan's file name, exported with the plan)
from orchestrator.plan import graph as graphs
from orchestrator.plan.config.hedging import Hedge
from orchestrator.plan.config.settings import Settings
from orchestrator.plan.config.tasktypes import BUILT_IN, TaskType
from orchestrator.plan.config.values import DEFAULT_PRIORITY as DEFAULT_PRIORITY
from orchestrator.plan.identity import Book
from orchestrator.plan.table.access import access_settings
from orchestrator.plan.table.deadlines import Deadline
from orchestrator.plan.table.items import Items

if TYPE_CHECKING:
    from orchestrator.plan.instances import Later

# The bytes a plan may have outside the status blocks the tool writes into it: past it, a command
# on the plan could outgrow MEMORY_RULE. Measured with bench/memory.py on plans of 1,000 tasks with
# long Task Details and an emoji (then the plan's text takes 4 bytes a character in memory, as
# every plan's does once a run wrote its status blocks), `run --executor fake`, the command that
# takes most, peaked at 113 MB for 1 MiB, 123 for 2, 169 for 3 and 204 for 5; 2.5 MiB keeps a
# margin. The blocks grow with the tasks (~60-180 bytes each) and are not counted, or a plan
# `validate` took would be refused once `render` had written them; the bench measures with them
# in. The size does not bound the tasks: 2.5 MiB of one-line rows are 57,023 tasks, whose `run`
# peaked at 582-682 MB and `report` at 555 (issue 66), some 11 KB a task over a fixed ~50 MB. So
# the rule counts the tasks too: every command measured keeps under it, the 10,000-task W4 at
# 143 MB of 271, the largest plan of long details at 119 of 187, of one-line rows at 682 of 843.
PLAN_LIMIT = 5 * 1024 * 1024 // 2
READ_LIMIT = 4 * PLAN_LIMIT  # bytes of master_plan.md read at most, its status blocks included
MEMORY_RULE = "a command's memory stays under 10 x the plan's size + 12 KB a task + 150 MB"
_BLOCK_BEGIN = b"<!-- orchestrator:begin "
_BLOCK_END = b"<!-- orchestrator:end "
PRIORITY_NAMES = {0: "P0", 1: "P1", 2: "P2", 3: "P3"}


@dataclass(frozen=True, slots=True)
class Task:
    """One row of the task table, with its Task Details body when it has one."""

    id: str
    name: str
    description: str
    dependencies: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    agent: str = ""  # its agent id (Agent-03): its brief, result and logs are named after it
    profile: str | None = None
    timeout: float | None = None
    timeout_set: bool = False  # a Timeout cell was given (its value may be None = no limit)
    deadline: Deadline | None = None  # a Deadline cell: when it should be done (``plan/table/deadlines``)
    estimate: float | None = None  # an Estimate cell: seconds a person expects it to take (``run/forecasts/estimates``)
    retries: int | None = None
    hedge: Hedge | None = None  # a Hedge cell (``plan/config/hedging``)
    hedge_set: bool = False  # a Hedge cell was given (``off`` included): said on the task itself
    best_of: int | None = None  # a Best of cell: attempts at once, one judged best (``plan/config/bestof``)
    backend: str | None = None
    command: str | None = None  # a Command cell: what a shell task runs (it never runs its description)
    access: str | None = None  # an Access cell: "read" or "edit" (``access.access_settings``)
    isolation: str | None = None  # an Isolation cell: "none" or "worktree"
    model: str | None = None  # a Model cell: the model its agent CLI is given (its ``model`` setting)
    type: str | None = None  # a Type cell: the name of its type (``plan/config/tasktypes.py``), lowercase
    approval: str | None = None  # an Approval cell, else its type's: "before" or "after"
    from_type: tuple[str, ...] = ()  # which of priority, profile, approval its type gave (its row did not)
    not_before: float | None = None  # a Not before cell: the moment (epoch) before which it does not start
    tags: tuple[str, ...] = ()
    blocked: str | None = None  # a Blocked cell: held by a person, with why ("" when no reason is given)
    condition: str | None = None  # a Condition cell: it runs only when this holds (``plan/table/conditions``)
    outputs: tuple[tuple[str, str], ...] = ()  # an Output cell: the JSON fields (name, type) its answer must hold
    details: str | None = None
    line: int = 0
    details_line: int = 0  # the plan's line that its Task Details' first line is on (0: none, or not read from a file)
    extra: dict[str, str] = field(default_factory=dict)
    # The parameters its text names, with their values (``plan/config/filling``).
    params: tuple[tuple[str, str], ...] = ()
    # The variables its scripts read those values from (``$ORCHESTRATOR_PARAM_NAME``): its attempts' environment.
    environment: tuple[tuple[str, str], ...] = ()
    # Dependencies on tasks `orchestrator archive` moved out of the table (``Plan.archived``): done
    # for good, so no edge and no wait; their results still reach this task as upstream results.
    archived_upstream: tuple[str, ...] = ()
    row_dependencies: tuple[str, ...] = ()  # with archived ones: its Dependencies cell, in order
    each: Items | None = None  # an Each cell: the row runs once per item (``plan/table/items``)
    # An instance of a row with an Each cell (``T-03[2]``): its row's id, its number and its item.
    row: str | None = None
    number: int = 0
    item: str | None = None

    @property
    def upstream_ids(self) -> tuple[str, ...]:
        """Every task it depends on, archived or not, in the order its row names them: what its
        brief, its inputs and its fingerprint are made of, before and after an ``archive``."""
        return self.row_dependencies or self.dependencies

    @property
    def instructions(self) -> str:
        """What the task is asked to do: its Task Details body, else its description, else its name."""
        return (self.details or self.description or self.name).strip()

    @property
    def title(self) -> str:
        return self.name or _first_words(self.description) or _first_words(self.command or "") or self.id

    @property
    def slug(self) -> str:
        """The file-name stem of this task's brief, result and logs (``agent-01``)."""
        return self.agent.lower()

    @property
    def priority_name(self) -> str:
        return PRIORITY_NAMES.get(self.priority, f"P{self.priority}")


@dataclass(frozen=True, slots=True)
class ArchivedTask:
    """A task ``orchestrator archive`` moved out of the table into ``archive/<date>.md``: its
    ``Task`` (id, agent id, name: its result file is named after it) and how it finished."""

    task: Task
    status: str  # "completed" satisfies a dependency; a task archived with --force does not
    archived: str  # the date, as its archive file is named (2026-11-25)
    file: str  # that file, as the user types it


@dataclass(eq=False)
class Plan:
    """A validated plan: settings, context and the tasks in table order."""

    path: Path
    settings: Settings
    request: str
    goal: str
    tasks: dict[str, Task]
    text: str = ""
    frontmatter: dict[str, object] = field(default_factory=dict)
    book: Book = field(default_factory=Book)  # the agent ids given in its workspace, these tasks' included
    params: dict[str, str] = field(default_factory=dict)  # its parameters' values (``plan/config/filling.resolve``)
    # Those of its parameters whose value came from outside (a webhook, the API, MCP), and from where.
    untrusted: dict[str, str] = field(default_factory=dict)
    context_params: tuple[tuple[str, str], ...] = ()  # the values its request and goal use
    # The types its tasks may name: built in, then types.yaml's, then its settings' (``tasktypes.merged``).
    types: dict[str, TaskType] = field(default_factory=lambda: dict(BUILT_IN))
    archived: dict[str, ArchivedTask] = field(default_factory=dict)  # tasks archived, not in the table
    table_line: int = 0  # the task table's header line (1-based; 0: not read from a file)
    # A run's rows over many items: their instances not in ``tasks`` yet, which join as its slots
    # free (``plan/instances.Later``, ``run/rows``). Empty outside a run.
    later: dict[str, Later] = field(default_factory=dict)

    def outside(self) -> int:
        """How many instances of its rows a run has not put in ``tasks`` yet (``later``)."""
        return sum(len(later.left) for later in self.later.values())

    def inputs_of(self, task: Task) -> list[Task]:
        """The tasks whose results reach ``task`` as upstream results, archived ones included, in
        the order its row names them."""
        if not task.archived_upstream:
            return [self.tasks[dep] for dep in task.dependencies]
        return [self.tasks[d] if d in self.tasks else self.archived[d].task for d in task.upstream_ids]

    @cached_property
    def graph(self) -> graphs.DiGraph:
        """The task graph as a networkx ``DiGraph``, edges from dependency to dependent, built on
        first use (``status`` never needs it)."""
        return graphs.build({task.id: task.dependencies for task in self.tasks.values()})

    @cached_property
    def order(self) -> dict[str, int]:
        """Each task's row position in the table."""
        return {task_id: index for index, task_id in enumerate(self.tasks)}

    def edges(self) -> list[tuple[str, str]]:
        """(dependency, dependent) pairs in table order."""
        return [(dep, task.id) for task in self.tasks.values() for dep in task.dependencies]

    @property
    def workspace(self) -> Path:
        return self.path.parent

    @property
    def project_dir(self) -> Path:
        return self.workspace.parent

    def __len__(self) -> int:
        return len(self.tasks)

    def type_of(self, task: Task) -> TaskType | None:
        return self.types.get(task.type) if task.type else None

    def settings_for(self, task: Task, base: Settings | None = None) -> Settings:
        """``base`` (the plan's settings by default, its profile's applied by ``Profiles``) with
        this task's type, then its own Timeout / Retries / Backend / Access / Isolation / Model
        cells applied: the task's row has the last word."""
        settings = self.settings if base is None else base
        changes: dict[str, Any] = {}
        kind = self.type_of(task)
        if kind is not None:
            backend = task.backend or kind.get("backend") or settings.backend
            changes.update(kind.settings(backend, access=not task.access))  # (an Access cell replaces its)
        if task.timeout_set:
            changes["timeout"] = task.timeout
        if task.retries is not None:
            changes["retries"] = task.retries
        if task.hedge_set:
            changes["hedge"] = task.hedge
        if task.best_of is not None:
            changes["best_of"] = task.best_of
        if task.backend:
            changes["backend"] = task.backend
        if task.isolation:
            changes["isolation"] = task.isolation
        if task.model:
            changes["model"] = task.model
        if task.access:
            changes.update(access_settings(changes.get("backend", settings.backend), task.access))
        return settings.replace(**changes) if changes else settings

    def topological_order(self) -> list[str]:
        """Dependencies first; tasks ready together in table order."""
        return graphs.topological_order(self.graph, self.order)

    def downstream(self, task_id: str) -> set[str]:
        """Every task that depends on ``task_id``, directly or not."""
        return graphs.descendants(self.graph, task_id)

    def upstream(self, task_id: str) -> list[str]:
        """The tasks ``task_id`` depends on, in the order its row names them."""
        return list(self.tasks[task_id].dependencies)

    def ancestors(self, task_ids: list[str]) -> set[str]:
        """Every task the given ones depend on, directly or not."""
        return graphs.ancestors(self.graph, task_ids)


def _first_words(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def own_size(data: bytes) -> int:
    """The bytes of a plan file outside the status blocks the tool writes into it (found as it
    writes their markers): what ``PLAN_LIMIT`` bounds."""
    size, at = len(data), 0
    while (begin := data.find(_BLOCK_BEGIN, at)) >= 0 and (end := data.find(_BLOCK_END, begin)) >= 0:
        after = data.find(b"\n", end)
        at = len(data) if after < 0 else after
        size -= at - begin
    return size


def too_large(where: str, size: int) -> Problem:
    """Why a plan of ``size`` bytes (outside its status blocks) is refused: past ``PLAN_LIMIT``,
    a command's memory would outgrow ``MEMORY_RULE`` (``bench/memory.py`` measures it)."""
    return Problem(
        where,
        0,
        f"holds {size:,} bytes outside its status blocks, more than the {PLAN_LIMIT:,} a plan may have ({MEMORY_RULE})",
        "split it into smaller plans, and put large text in files the tasks read",
    )
