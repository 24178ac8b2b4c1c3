"""The cells of a task table, read: ids, dependency lists, priorities, tags, a Blocked cell (the
columns themselves, and which reader each cell gets: ``plan/table/columns``).

Forgiving about form (emphasis around an id, "None." for no dependency, "P1 (high)"), strict
about what becomes part of a file name (``id_problem``).
"""

from __future__ import annotations

import re

from orchestrator.plan.config.values import DEFAULT_PRIORITY
from orchestrator.plan.markdown import normalize_heading

# Priority words and their level. Lower runs first; a bare integer N means PN.
PRIORITY_WORDS: dict[str, int] = {
    "p0": 0,
    "critical": 0,
    "urgent": 0,
    "highest": 0,
    "blocker": 0,
    "p1": 1,
    "high": 1,
    "p2": 2,
    "normal": 2,
    "medium": 2,
    "default": 2,
    "p3": 3,
    "low": 3,
    "lowest": 3,
}

ID_RE = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_ID_LENGTH = 64
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_NO_DEPS = {"", "none", "-", "—", "–", "n/a", "na", "nil", "null", "no", "no dependencies"}
NOT_IDS = {*_NO_DEPS, "and"}  # words a Dependencies cell reads as something other than an id


_TAGS_SPLIT_RE = re.compile(r"[,\s]+")


def tags_cell(text: str) -> tuple[str, ...]:
    """A Tags cell read: its words, split at commas and spaces."""
    return tuple(tag for tag in _TAGS_SPLIT_RE.split(text) if tag)


_NOT_BLOCKED = {*_NO_DEPS, "released", "false", "0"}
_BLOCKED_WORDS = {"yes", "y", "x", "true", "1", "blocked", "on hold", "hold", "✓", "✔", "🚧"}


# The Blocked cell of a shell task `add` wrote with no command: it waits until it is given one.
NO_COMMAND = "no command yet"


def release_command(task_id: str, blocked: str | None) -> str:
    """What releases a task held by its Blocked cell: a command, for one that waits for it."""
    if blocked == NO_COMMAND:
        return f"orchestrator update {task_id} --command 'CMD'"
    return f"orchestrator update {task_id} --status pending"


def blocked_cell(text: str) -> str | None:
    """A Blocked cell read: ``None`` when the task is not held, else why it is (``""`` when the
    cell only says it is: "yes", "x", "blocked")."""
    words = clean(text)
    if words.lower() in _NOT_BLOCKED:
        return None
    return "" if words.lower() in _BLOCKED_WORDS else words


_EMPHASIS_RE = re.compile(r"(`+|\*{1,3}|_{1,3})(.+)\1")


def clean(cell: str) -> str:
    """Strip markdown emphasis and code marks a writer may put around an id (``**T-01**``, `` `T-01` ``).

    Only matched pairs go, so ids such as ``T_`` or ``_draft`` keep their underscores.
    """
    text = cell.strip()
    if not text or (text[0] not in "*_`" and text[-1] not in "*_`"):
        return text
    while (match := _EMPHASIS_RE.fullmatch(text)) is not None:
        text = match.group(2).strip()
    return text


def code_cell(cell: str) -> str:
    """A cell that holds code (a Command): the text inside one pair of backtick runs, if it is
    wrapped in one (`` `grep -c x` ``), else the cell as it is; ``-`` or empty for none."""
    text = cell.strip()
    run = len(text) - len(text.lstrip("`"))
    if run and len(text) > 2 * run and text.endswith("`" * run) and "`" * run not in text[run:-run]:
        text = text[run:-run].strip()
    return "" if text in {"-", "—", "–"} else text


_DEP_SPLIT_RE = re.compile(r"[,;\s]+")
_MARKS_RE = re.compile(r"[*_`]")


def split_ids(cell: str) -> list[str]:
    """The ids of a Dependencies cell: separated by commas, semicolons, spaces or the word 'and'."""
    text = cell.strip()
    lowered = text.lower()
    if lowered in _NO_DEPS:
        return []
    # "None." or "(none)": only worth normalizing when the cell holds no digit, as ids mostly do.
    if not any(map(str.isdigit, lowered)) and normalize_heading(text) in _NO_DEPS:
        return []
    ids = _DEP_SPLIT_RE.split(text)
    if _MARKS_RE.search(text):  # else each part is as _clean leaves it: no whitespace, no marks
        ids = [clean(part) for part in ids]
    return [i for i in ids if i and i.lower() != "and"]


_PRIORITY_NOTE_RE = re.compile(r"\s*\(.*\)$")
NUMBER_RE = re.compile(r"\d{1,3}")
# An id that passes every check of id_problem, told in one match: what nearly every id looks like.
_PLAIN_ID_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 1}}}")


def parse_priority(cell: str) -> int:
    text = cell.strip().lower()
    if not text:
        return DEFAULT_PRIORITY
    if text in PRIORITY_WORDS:
        return PRIORITY_WORDS[text]
    text = _PRIORITY_NOTE_RE.sub("", clean(text))  # "P1 (high)"
    if text in PRIORITY_WORDS:
        return PRIORITY_WORDS[text]
    if NUMBER_RE.fullmatch(text):
        return int(text)
    raise ValueError(cell)


def id_problem(value: str, what: str = "task id") -> str | None:
    """Why ``value`` cannot be an id (it becomes part of file names), or ``None`` when it can."""
    if _PLAIN_ID_RE.fullmatch(value) and value.partition(".")[0].lower() not in _RESERVED:
        return None
    if not value:
        return f"empty {what}"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} '{value[:20]}…' is {len(value)} characters long (at most {MAX_ID_LENGTH})"
    if not ID_RE.match(value):
        bad = "".join(sorted({c for c in value if not re.match(r"[A-Za-z0-9._-]", c)}))
        return f"{what} '{value}' has characters outside A-Z a-z 0-9 . _ - ({bad!r})"
    if value.strip(".") == "" or value.startswith("."):
        return f"{what} '{value}' cannot start with '.'"
    if not re.search(r"[A-Za-z0-9]", value):
        return f"missing {what}: '{value}' has no letter or digit"
    if value.split(".")[0].lower() in _RESERVED:
        return f"{what} '{value}' is a reserved device name on Windows"
    return None
