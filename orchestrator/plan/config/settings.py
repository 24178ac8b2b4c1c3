"""Run settings: defaults, master_plan.md frontmatter, per-task columns and CLI flags, validated."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.plan.config import kinds
from orchestrator.plan.config.approvals import Approvals, parse_approvals, parse_public_url
from orchestrator.plan.config.bestof import parse_best_of, parse_judge
from orchestrator.plan.config.deliver import Deliver, parse_deliver
from orchestrator.plan.config.hedging import Hedge, parse_hedge
from orchestrator.plan.config.params import Param, parse_params
from orchestrator.plan.config.targets import Target, parse_targets
from orchestrator.plan.config.tasktypes import TaskType, parse_types
from orchestrator.plan.config.triggers import Triggers, parse_triggers, sandbox_mode
from orchestrator.plan.config.values import (
    ISOLATION,
    RETRIES,
    _argument,
    _argv,
    _bool,
    _branch,
    _cache,
    _caps,
    _choice,
    _env,
    _float,
    _holds_nul,
    _int,
    _optional_float,
    _optional_int,
    _optional_str,
    _patterns,
    _seconds,
    _str,
    _tool_set,
    _words,
)
from orchestrator.plan.config.values import format_duration as format_duration
from orchestrator.plan.config.values import parse_duration as parse_duration
from orchestrator.plan.config.values import parse_retention as parse_retention
from orchestrator.plan.config.values import parse_size as parse_size
from orchestrator.plan.config.values import setting_line as setting_line
from orchestrator.plan.config.values import suggest as suggest
from orchestrator.plan.table.access import ACCESS_WORDS as ACCESS_WORDS
from orchestrator.plan.table.access import access_settings as access_settings
from orchestrator.plan.table.deadlines import Deadline, parse_deadline


def _positive_seconds(value: object) -> float:
    seconds = parse_duration(value)
    if seconds is None:
        raise ValueError(f"{value!r}: give a duration such as 10m (no answer in time is a deny)")
    return seconds


def _share(value: object) -> float:
    """A share of a whole: ``95%``, ``0.95`` or ``1``."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"{text!r}: give a share such as 95% or 0.95") from None
    if not 0.0 <= share <= 1.0 or isinstance(value, bool):
        raise ValueError(f"{text!r}: give a share from 0% to 100%")
    return share


def _parser(parse: Callable[[object], Any]) -> dict[str, Any]:
    return {"parse": parse}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that shapes a run. Frontmatter keys have the same names as these fields."""

    max_parallel: int = field(default=4, metadata=_parser(_int(1)))
    # At most this many at once on a backend (``{claude: 2}``), within max_parallel.
    backend_max_parallel: dict[str, int] = field(default_factory=dict, metadata=_parser(_caps))
    backend: str = field(default="claude", metadata=_parser(lambda v: _str(v).lower()))
    # The backends an attempt goes to, in order, while its own backend's circuit breaker is open.
    fallback: tuple[str, ...] = field(default=(), metadata=_parser(lambda v: tuple(w.lower() for w in _words(v))))
    # The tasks whose backends share one account's usage limit: a usage limit met by one pauses
    # them all, once, until its reset. None: the backend's name (each backend its own account).
    limit_group: str | None = field(default=None, metadata=_parser(_optional_str))
    timeout: float | None = field(default=1800.0, metadata=_parser(parse_duration))
    # 15 minutes: more than the longest a claude Bash tool call may run silently (10 minutes).
    inactivity_timeout: float | None = field(default=900.0, metadata=_parser(parse_duration))
    retries: int = field(default=2, metadata=_parser(RETRIES))
    # A straggler's second attempt (``run/races/hedge.py``): past 2x the p90 of its kind's durations
    # (the runs before's or this run's, ``run/races/bounds.py``)
    # (``2x``) or a duration (``10m``), one more starts beside it; the first to complete wins.
    hedge: Hedge | None = field(default=None, metadata=_parser(parse_hedge))
    # Best of N (``run/races/bestof.py``): N attempts of a task at once, and who chooses the one kept.
    best_of: int = field(default=1, metadata=_parser(parse_best_of))
    judge: str = field(default="first", metadata=_parser(parse_judge))
    # A row run once per item (its Each cell, ``run/items``): one item failing fails the row, and
    # what of it has not started does not start (fail); or the row completes listing its failed
    # items (continue), when at least ``min_success`` of them (a share: 95%, 0.95) completed.
    on_item_failure: str = field(default="fail", metadata=_parser(_choice("fail", "continue")))
    min_success: float = field(default=0.0, metadata=_parser(_share))
    # Durations as ``timeout``'s are read (``5``, ``5s``, ``1m30s``), 0 meaning none at all.
    backoff_base: float = field(default=1.0, metadata=_parser(_seconds))
    backoff_factor: float = field(default=2.0, metadata=_parser(_float(1.0)))
    backoff_cap: float = field(default=60.0, metadata=_parser(_seconds))
    kill_grace: float = field(default=5.0, metadata=_parser(_seconds))
    input_cap: int = field(default=20_000, metadata=_parser(_int(0)))
    # Characters of discoveries an agent's prompt holds (newest first), beside the channels'
    # instructions; 0: a prompt says nothing of the channels.
    context_cap: int = field(default=4_000, metadata=_parser(_int(0)))
    # Bytes of each stream an attempt's log keeps; None: all of it.
    log_cap: int | None = field(default=64 * 1024 * 1024, metadata=_parser(parse_size))
    fail_fast: bool = field(default=False, metadata=_parser(_bool))
    cwd: str | None = field(default=None, metadata=_parser(_optional_str))
    env: dict[str, str] = field(default_factory=dict, metadata=_parser(_env))
    command: tuple[str, ...] = field(default=(), metadata=_parser(_argv))
    # The agent CLIs' settings; a profile may override some per task.
    model: str | None = field(default=None, metadata=_parser(_optional_str))
    max_turns: int | None = field(default=None, metadata=_parser(_optional_int))
    permission_mode: str | None = field(default=None, metadata=_parser(_optional_str))
    # The only tools an agent has (claude's --tools); None: its CLI's default set.
    tools: tuple[str, ...] | None = field(default=None, metadata=_parser(_tool_set))
    # Tools used without asking (claude's --allowedTools): pre-approval, not a restriction.
    allowed_tools: tuple[str, ...] = field(default=(), metadata=_parser(_words))
    append_system_prompt: str | None = field(default=None, metadata=_parser(_argument))
    # An agent may ask a person for a tool call beyond what its Access gives it (claude's
    # --permission-prompt-tool, answered by `orchestrator answer`, the dashboard, GitHub or a link);
    # no answer within ask_timeout is a deny.
    ask: bool = field(default=False, metadata=_parser(_bool))
    ask_timeout: float = field(default=600.0, metadata=_parser(_positive_seconds))
    max_budget_usd: float | None = field(default=None, metadata=_parser(_optional_float))
    max_cost: float | None = field(default=None, metadata=_parser(_optional_float))
    # At max_cost the run starts nothing new and waits for a person's word (``orchestrator budget
    # +USD``): what runs finishes first (finish), or is stopped, a raise bringing it back (stop).
    at_budget: str = field(default="finish", metadata=_parser(_choice("finish", "stop")))
    # Spend spread over time: an attempt starts when its expected cost fits this many dollars an hour.
    max_cost_per_hour: float | None = field(default=None, metadata=_parser(_optional_float))
    # A backend's tokens spread over time (``{claude: 40000}``): an attempt of it starts when the tokens
    # it is expected to use fit this many a minute (its vendor's TPM limit, say).
    backend_tokens_per_minute: dict[str, int] = field(default_factory=dict, metadata=_parser(_caps))
    resume_sessions: bool = field(default=True, metadata=_parser(_bool))
    # A completed task whose inputs are those of a result the cache keeps reuses it (``run/resume/reuse``):
    # True, False, or None (``auto``): only where its answer is its work (``reuse.cache_rule``).
    cache: bool | None = field(default=None, metadata=_parser(_cache))
    aggregate: str = field(default="concat", metadata=_parser(_choice("concat", "agent")))
    # How final_output.md shows a task's output: as markdown, or as text in a code block; auto:
    # markdown for agents (they answer in it), and for shell tasks (a command's stdout) only when
    # the output plainly is markdown (``output.markup.looks_like_markdown``), else text.
    result_format: str = field(default="auto", metadata=_parser(_choice("auto", "markdown", "text")))
    # The status table and graph written into master_plan.md; off for a plan kept in version
    # control, whose file a run should leave as it is.
    status_blocks: bool = field(default=True, metadata=_parser(_bool))
    # Where a task works: none, in the project as it is (today's behaviour); worktree, in a git
    # worktree of its own on its own branch, merged into ``integration_branch`` once it completes.
    isolation: str = field(default="none", metadata=_parser(ISOLATION))
    # The branch completed tasks' branches are merged into, one at a time (each task's branch is
    # ``<integration_branch>-<task id>``); ``orchestrator merge`` brings it into yours.
    integration_branch: str = field(default="orchestrator/integration", metadata=_parser(_branch))
    # A task whose branch conflicts with the integration branch: resolve, a resolution task is added
    # to the plan; fail, the task fails with the conflict listed. Never resolved silently.
    on_conflict: str = field(default="resolve", metadata=_parser(_choice("resolve", "fail")))
    # A command run (by sh) on the integration branch after each merge; failing, it undoes the merge.
    verify: str | None = field(default=None, metadata=_parser(_optional_str))
    # In worktree isolation an agent commits and never pushes nor opens a pull request (its git's
    # pushes go nowhere, claude's deny rules): the run delivers, once. True: it may, outside the ledger.
    agent_pushes: bool = field(default=False, metadata=_parser(_bool))
    # What the run does with its work once it and its gates are done (``plan/config/deliver.py``):
    # push the integration branch, open or update one pull request, comment where the run came from.
    deliver: Deliver | None = field(default=None, metadata=_parser(parse_deliver))
    # An Assignee with no profile file: label, a name the task is filed under (it runs with the
    # plan's defaults; `validate` lists such names once, with a did-you-mean); error, refused.
    unknown_assignee: str = field(default="label", metadata=_parser(_choice("label", "error")))
    # Where the run's notifications go (``plan/config/targets.py``), besides the user's config file's.
    notify: tuple[Target, ...] = field(default=(), metadata=_parser(parse_targets))
    # The plan's parameters (``plan/config/params.py``): NAME: {default, description}, used as
    # ``{{ params.NAME }}`` in titles, descriptions, Task Details and commands; ``run --param``.
    params: dict[str, Param] = field(default_factory=dict, metadata=_parser(parse_params))
    # Task types the plan defines or changes (``plan/config/tasktypes.py``): ``{quick: {timeout: 1m}}``.
    types: dict[str, TaskType] = field(default_factory=dict, metadata=_parser(parse_types))
    # Where attempts run: local processes, or the workers of a Dask cluster (``run --executor``
    # replaces it), and that cluster's scheduler (``run --scheduler`` replaces it).
    executor: str = field(default="local", metadata=_parser(_choice(among=lambda: kinds.executors(in_plan=True))))
    scheduler: str | None = field(default=None, metadata=_parser(_optional_str))
    # Whether that cluster's workers see the project at its path (NFS, a cluster volume); false: an
    # attempt's files travel with it and what it writes comes back (``executors/luggage``).
    shared_filesystem: bool = field(default=True, metadata=_parser(_bool))
    # How long `orchestrator cleanup` keeps the logs of attempts that are not a task's latest;
    # None: for good (cleanup removes no log).
    retention: float | None = field(default=None, metadata=_parser(parse_retention))
    # When the whole run should be done: a moment, or a duration from its start (``plan/table/deadlines``).
    deadline: Deadline | None = field(default=None, metadata=_parser(parse_deadline))
    # Which webhook deliveries start a run (``serve``'s /hooks/), and the parameters each gives it
    # (``plan/config/triggers.py``).
    triggers: Triggers = field(default_factory=Triggers, metadata=_parser(parse_triggers))
    # How a run from outside (a webhook, the API, MCP, ``run --untrusted``) runs its shell and command
    # tasks: on, in a sandbox (``executors/sandbox``: the project read-only but a task's worktree, no
    # home, no network); network, the same with the network; off, as any run. A trigger's own wins.
    sandbox: str = field(default="on", metadata=_parser(sandbox_mode))
    # Where a person's word may come from beside the terminal: GitHub comments, a notification's
    # links (``plan/config/approvals.py``); and where `serve` is reached from outside, for the links.
    approvals: Approvals = field(default_factory=Approvals, metadata=_parser(parse_approvals))
    public_url: str | None = field(default=None, metadata=_parser(parse_public_url))
    # Patterns (Python regular expressions) whose matches are written [redacted: redact pattern N],
    # beside the secrets every run redacts (``redaction``): in logs, results, events, notifications.
    redact: tuple[str, ...] = field(default=(), metadata=_parser(_patterns))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def on(self, backend: str, access: str | None = None) -> Settings:
        """These settings for an attempt on ``backend`` instead of their own (a fallback's, a
        hedge's): the model (each vendor names its own) left to the backend's default, and a
        task's Access cell (``access``) read for that backend."""
        if backend == self.backend:
            return self
        changed: Mapping[str, object] = access_settings(backend, access) if access else {}
        return self.replace(backend=backend, model=None, **changed)


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def parse_setting(name: str, value: object) -> Any:
    """Parse one setting's raw value; raises ``KeyError`` for an unknown name, ``ValueError`` for a bad value."""
    spec = _FIELDS[name]
    return spec.metadata["parse"](value)


def settings_from_mapping(data: Mapping[str, Any]) -> tuple[Settings, list[tuple[str, str]]]:
    """Settings from raw frontmatter; also every (key, message) that was wrong, all at once."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, raw in data.items():
        name = str(key).strip().replace("-", "_")
        if name not in _FIELDS:
            problems.append((str(key), f"unknown setting '{key}'{suggest(name, SETTING_NAMES)}"))
            continue
        try:
            value = parse_setting(name, raw)
        except ValueError as exc:
            problems.append((str(key), f"bad value for '{key}': {exc}"))
            continue
        if _holds_nul(value):
            message = f"bad value for '{key}': it holds a NUL character (\\0), which no process takes"
            problems.append((str(key), message))
            continue
        values[name] = value
    return Settings(**values), problems
