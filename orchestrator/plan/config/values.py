"""How a setting's value is read: durations, sizes, numbers, words, argument lists, environments,
patterns.

Each reader takes the value as the plan (or a type, a profile, a flag) wrote it and gives it, or
raises ``ValueError`` saying what is wrong. ``plan/config/settings`` builds ``Settings`` of them and
``plan/config/tasktypes`` reads a type's fields with the same ones (``RETRIES``, ``ISOLATION``...), so
the two cannot drift; ``targets``, ``deadlines`` and ``params`` read their durations here too.
This module imports no other module of plan/: the floor they all stand on. (Its underscored
readers are plan/'s own, not for outside it.)
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Mapping

from orchestrator.redaction import check_pattern
from orchestrator.vocabulary import ARGUMENT_LIMIT

DEFAULT_PRIORITY = 2  # a task's priority when its row and its type say none (P2, normal)

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


def _seconds(value: object) -> float:
    """A duration read as every setting's is (``parse_duration``: ``5``, ``"5s"``, ``"0.5s"``,
    ``"2m"``, ``"1h30m"``), where 0 is no time at all rather than no limit:
    ``kill_grace``, the backoff's base and cap. A word for no limit (``none``, ``off``) is refused:
    there is no such thing for these."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS - {"0"}):
        raise ValueError(f"{_shown(value)} is not a duration: give seconds, or 30s, 2m, 1h30m (0 for none)")
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not a duration: give seconds, or 30s, 2m, 1h30m (0 for none)") from None
    return seconds or 0.0


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


def _patterns(value: object) -> tuple[str, ...]:
    """Regular expressions (Python's), a list or one: each checked as ``redaction`` will use it."""
    if value is None:
        return ()
    given = [value] if isinstance(value, str) else value
    if not isinstance(given, list | tuple) or not all(isinstance(item, str) for item in given):
        raise ValueError(f"{_shown(value)} is not a list of regular expressions, e.g. ['acme_[0-9a-f]{{32}}']")
    return tuple(check_pattern(item) for item in given)


def _caps(value: object) -> dict[str, int]:
    """A mapping of name to a whole number of at least 1 (``{claude: 2, codex: 1}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{_shown(value)} is not a mapping of backend: number, e.g. {{claude: 2}}")
    return {str(k).strip().lower(): _int(1)(v) for k, v in value.items()}


def _choice(*choices: str, among: Callable[[], list[str]] | None = None) -> Callable[[object], str]:
    """One of ``choices``, or of what ``among`` gives when the value is read (names registered from
    above: ``plan/config/kinds``)."""

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


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'x'?)"`` or ``""``."""
    import difflib

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


RETRIES = _int(0)  # a task's retries: the plan's setting and a type's field read alike
ISOLATION = _choice("none", "worktree")
