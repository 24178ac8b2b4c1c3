"""Run settings: defaults, master_plan.md frontmatter, per-task columns and CLI flags, validated."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.plan import kinds
from orchestrator.plan.params import Param, parse_params
from orchestrator.plan.targets import Target, parse_targets
from orchestrator.plan.triggers import Triggers, parse_triggers
from orchestrator.vocabulary import ARGUMENT_LIMIT

if TYPE_CHECKING:
    from orchestrator.plan.deadlines import Deadline
    from orchestrator.plan.tasktypes import TaskType

_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$")
_NONE_WORDS = {"none", "null", "off", "never", "no", "-", "—", "0", ""}


def _shown(value: object) -> str:
    """``repr(value)`` cut short: a message about a value is one line, whatever the value."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_duration(value: object) -> float | None:
    """Seconds from ``300``, ``"300s"``, ``"5m"``, ``"1h30m"``; ``None``/``0``/``"none"`` mean no limit."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{_shown(value)} is not a duration")
    if isinstance(value, int | float):
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise ValueError(f"{_shown(value)} is not a duration")
        return float(value) or None
    text = str(value).strip().lower()
    if text in _NONE_WORDS:
        return None
    match = _DURATION_RE.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"{_shown(value)} is not a duration")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total or None


_DAYS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|w)\s*$")


def parse_retention(value: object) -> float | None:
    """A duration (``parse_duration``), or days and weeks (``30d``, ``2w``): how long logs are kept."""
    match = _DAYS_RE.match(str(value).lower()) if isinstance(value, str) else None
    if match is None:
        return parse_duration(value)
    return float(match.group(1)) * (86400 if match.group(2) == "d" else 7 * 86400) or None


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$")
_SIZE_UNITS = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: object) -> int | None:
    """Bytes from ``1048576``, ``"512k"``, ``"64M"``, ``"64MB"``, ``"1 GiB"`` (K, M and G are powers of
    1024); ``None``/``"none"`` mean no limit. At least 1 KiB: a cap must leave room to say why."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"none", "null", "off", "no", "-"}):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{_shown(value)} is not a size")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _SIZE_RE.match(str(value).lower())
        if not match:
            raise ValueError(f"{_shown(value)} is not a size (use bytes, or 512K, 64M, 1G)")
        number = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if math.isnan(number) or math.isinf(number) or number < 1024:
        raise ValueError(f"{_shown(value)} is below the minimum of 1K")
    return int(number)


def format_duration(seconds: float | None) -> str:
    """``75.3`` -> ``"1m15s"``; under a minute one decimal (``12.5s``), under a second two
    (``0.04s``: a quick task read ``0.0s``, as if it took no time), and under a hundredth
    ``<0.01s``. Every duration the tool prints goes through here (the dashboard's app.js has
    the same rule)."""
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "0s"
    if seconds < 0.005:
        return "<0.01s"
    if seconds < 0.995:  # 0.996 would print as 1.00s
        return f"{seconds:.2f}s"
    if seconds < 59.95:  # 59.96 would print as 60.0s
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)  # half up, as app.js's Math.round
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


def _int(minimum: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise ValueError(f"{_shown(value)} is not a whole number")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError(f"{_shown(value)} is not a whole number") from None
        if number < minimum:
            raise ValueError(f"{number} is below the minimum of {minimum}")
        return number

    return parse


def _float(minimum: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        if isinstance(value, bool):
            raise ValueError(f"{_shown(value)} is not a number")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{_shown(value)} is not a number") from None
        if number < minimum or math.isnan(number) or math.isinf(number):
            raise ValueError(f"{_shown(value)} must be a number of at least {minimum}")
        return number

    return parse


def _cache(value: object) -> bool | None:
    """``true``, ``false``, or ``auto`` (the default: ``None``, the cache decides by the task)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        return _bool(value)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not true, false or auto") from None


def _optional_float(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
        return None
    return _float(0.0)(value) or None


def _optional_int(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
        return None
    return _int(1)(value)


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1"}:
        return True
    if text in {"false", "no", "off", "0"}:
        return False
    raise ValueError(f"{_shown(value)} is not true or false")


def _str(value: object) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip()
    raise ValueError(f"{_shown(value)} is not text")


def _optional_str(value: object) -> str | None:
    return None if value is None else (_str(value) or None)


def _argument(value: object) -> str | None:
    """Text given to an agent as one argument (``--append-system-prompt``): at most ``ARGUMENT_LIMIT`` bytes."""
    text = _optional_str(value)
    size = len(text.encode("utf-8", "surrogateescape")) if text else 0
    if size > ARGUMENT_LIMIT:
        raise ValueError(
            f"{size:,} bytes, and it is given to the agent as one argument of at most {ARGUMENT_LIMIT:,} "
            "(put reference material in a file the agent reads)"
        )
    return text


def _argv(value: object) -> tuple[str, ...]:
    """A command as a YAML list (``["my-agent", "--flag"]``) or one shell-quoted string."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ValueError(f"cannot split {_shown(value)}: {exc}") from None
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f'{_shown(value)} is not a command (use a list such as ["my-agent", "--flag"])')


def _words(value: object) -> tuple[str, ...]:
    """A list, or one string of items separated by commas or spaces outside parentheses, so that
    ``"Read, Bash(git log:*)"`` is two tools."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[str] = []
        current: list[str] = []
        depth = 0
        for char in value:
            if char == "(":
                depth += 1
            elif char == ")":
                depth = max(0, depth - 1)
            if depth == 0 and (char == "," or char.isspace()):
                items.append("".join(current))
                current = []
            else:
                current.append(char)
        items.append("".join(current))
        return tuple(item for item in items if item)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    raise ValueError(f"{_shown(value)} is not a list")


def _tool_set(value: object) -> tuple[str, ...] | None:
    """The tools an agent has: ``None`` (or ``default``) for its CLI's own set; a list, or one
    string like ``_words``; an empty list or string for none at all."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "default"):
        return None
    return _words(value)


def _env(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{_shown(value)} is not a mapping of NAME: value")
    env: dict[str, str] = {}
    for key, item in value.items():
        name = str(key)
        if not name or "=" in name:
            raise ValueError(f"{_shown(name)} is not a variable name (it may not be empty or hold '=')")
        if item is not None and not isinstance(item, str | int | float):
            raise ValueError(f"the value of {name} is {_shown(item)}, not text or a number")
        env[name] = str(item)
        size = len(f"{name}={env[name]}".encode("utf-8", "surrogateescape"))
        if size > ARGUMENT_LIMIT:  # every process of the task gets it: none could start
            raise ValueError(
                f"{name} is {size:,} bytes with its name, and an environment variable may be at most "
                f"{ARGUMENT_LIMIT:,} (put long text in a file, and its path in the variable)"
            )
    return env


def _caps(value: object) -> dict[str, int]:
    """A mapping of name to a whole number of at least 1 (``{claude: 2, codex: 1}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{_shown(value)} is not a mapping of backend: number, e.g. {{claude: 2}}")
    return {str(k).strip().lower(): _int(1)(v) for k, v in value.items()}


def _choice(*choices: str, among: Callable[[], list[str]] | None = None) -> Callable[[object], str]:
    """One of ``choices``, or of what ``among`` gives when the value is read (names registered from
    above: ``plan/kinds``)."""

    def parse(value: object) -> str:
        text = _str(value).lower()
        known = among() if among is not None else choices
        if text not in known:
            raise ValueError(f"{_shown(value)} is not one of {', '.join(known)}")
        return text

    return parse


def _branch(value: object) -> str:
    """A branch name as git takes one (``git check-ref-format --branch`` says the rest, in
    ``validate``): no spaces, none of ``~^:?*[\\``, no ``..``."""
    text = _str(value)
    if not text or re.search(r"[\s~^:?*\[\\]|\.\.|^[-/.]|[/.]$|\.lock$|@\{", text):
        raise ValueError(f"{_shown(value)} is not a branch name")
    return text


def _types(value: object) -> dict[str, TaskType]:
    """The ``types:`` setting (``plan/tasktypes.py``)."""
    from orchestrator.plan.tasktypes import parse_types

    return parse_types(value)


def _deadline(value: object) -> Deadline | None:
    """The ``deadline:`` setting (``plan/deadlines.py``)."""
    from orchestrator.plan.deadlines import parse_deadline

    return parse_deadline(value)


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
    retries: int = field(default=2, metadata=_parser(_int(0)))
    backoff_base: float = field(default=1.0, metadata=_parser(_float(0.0)))
    backoff_factor: float = field(default=2.0, metadata=_parser(_float(1.0)))
    backoff_cap: float = field(default=60.0, metadata=_parser(_float(0.0)))
    kill_grace: float = field(default=5.0, metadata=_parser(_float(0.0)))
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
    max_budget_usd: float | None = field(default=None, metadata=_parser(_optional_float))
    max_cost: float | None = field(default=None, metadata=_parser(_optional_float))
    resume_sessions: bool = field(default=True, metadata=_parser(_bool))
    # A completed task whose inputs are those of a result the cache keeps reuses it (``run/reuse``):
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
    isolation: str = field(default="none", metadata=_parser(_choice("none", "worktree")))
    # The branch completed tasks' branches are merged into, one at a time (each task's branch is
    # ``<integration_branch>-<task id>``); ``orchestrator merge`` brings it into yours.
    integration_branch: str = field(default="orchestrator/integration", metadata=_parser(_branch))
    # A task whose branch conflicts with the integration branch: resolve, a resolution task is added
    # to the plan; fail, the task fails with the conflict listed. Never resolved silently.
    on_conflict: str = field(default="resolve", metadata=_parser(_choice("resolve", "fail")))
    # A command run (by sh) on the integration branch after each merge; failing, it undoes the merge.
    verify: str | None = field(default=None, metadata=_parser(_optional_str))
    # An Assignee with no profile file: label, a name the task is filed under (it runs with the
    # plan's defaults; `validate` lists such names once, with a did-you-mean); error, refused.
    unknown_assignee: str = field(default="label", metadata=_parser(_choice("label", "error")))
    # Where the run's notifications go (``plan/targets.py``), besides the user's config file's.
    notify: tuple[Target, ...] = field(default=(), metadata=_parser(parse_targets))
    # The plan's parameters (``plan/params.py``): NAME: {default, description}, used as
    # ``{{ params.NAME }}`` in titles, descriptions, Task Details and commands; ``run --param``.
    params: dict[str, Param] = field(default_factory=dict, metadata=_parser(parse_params))
    # Task types the plan defines or changes (``plan/tasktypes.py``): ``{quick: {timeout: 1m}}``.
    types: dict[str, TaskType] = field(default_factory=dict, metadata=_parser(_types))
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
    # When the whole run should be done: a moment, or a duration from its start (``plan.deadlines``).
    deadline: Deadline | None = field(default=None, metadata=_parser(_deadline))
    # Which webhook deliveries start a run (``serve``'s /hooks/), and the parameters each gives it
    # (``plan/triggers.py``).
    triggers: Triggers = field(default_factory=Triggers, metadata=_parser(parse_triggers))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def parse_setting(name: str, value: object) -> Any:
    """Parse one setting's raw value; raises ``KeyError`` for an unknown name, ``ValueError`` for a bad value."""
    spec = _FIELDS[name]
    return spec.metadata["parse"](value)


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'x'?)"`` or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def setting_line(text: str, name: str) -> int:
    """The line of a plan's frontmatter (``text``: the whole file) that sets ``name`` (1 if none does)."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        for number, line in enumerate(lines[1:], start=2):
            if line.strip() in ("---", "..."):
                break
            if re.match(rf"^{name}\s*:", line.replace("-", "_")):
                return number
    return 1


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


# The words an Access cell may say, and what each means: "read" for analysis and review (the agent
# reads, and changes nothing), "edit" for implementation (it edits files in its directory). What
# each gives a task is its backend's (``Backend.access``, read through ``plan/kinds``).
ACCESS_WORDS = {
    "read": "read",
    "read-only": "read",
    "readonly": "read",
    "edit": "edit",
    "edits": "edit",
    "write": "edit",
}


def _holds_nul(value: object) -> bool:
    """Whether a parsed setting holds a NUL character anywhere (a YAML "\\0" escape): it would
    reach an argument, the environment or a path, and no process can be given one."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, tuple | list):
        return any(_holds_nul(item) for item in value)
    return False
