"""A small, fast YAML writer for the flat metadata of briefs and results.

PyYAML's representer is pure Python even with the C emitter: 0.4 ms a document, 4 s for 10,000
briefs. Our metadata is plain (strings, numbers, booleans, null, lists, nested mappings), so it is
written directly: plain scalars where YAML reads them back unchanged, JSON-quoted strings (valid
YAML double-quoted scalars) everywhere else. Reading stays with PyYAML, except where the text is
of a shape whose reading is beyond doubt (``load_simple``, ``load_flat``): importing PyYAML and
python-frontmatter costs a command about 50 ms, and most commands need neither. Tests hold both
readers to PyYAML's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Plain only if it starts with a letter and holds nothing YAML might read as something else.
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 _./()-]*$")
_SPECIAL = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "none", "nan", "inf"}


# Characters YAML does not allow raw (outside its printable set) or reads as line breaks.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
# json.dumps(value, ensure_ascii=False) builds an encoder on every call: a microsecond each.
_JSON_STRING = json.JSONEncoder(ensure_ascii=False).encode


def _quoted(value: str) -> str:
    """A YAML double-quoted scalar; JSON's escapes are YAML's, except astral ``\\U`` ones."""
    if not _UNSAFE.search(value):
        return _JSON_STRING(value)
    out = ['"']
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _UNSAFE.match(char):
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


# Keys and most values repeat from one document to the next (10,000 briefs share their keys, their
# settings and each other's ids), so their YAML is kept: a dict lookup instead of a regex match.
_STRINGS: dict[str, str] = {}
_STRINGS_LIMIT = 50_000
_STRINGS_LONGEST = 200


def _string(value: str) -> str:
    text = _STRINGS.get(value)
    if text is None:
        if _PLAIN.fullmatch(value) and not value.endswith(" ") and value.lower() not in _SPECIAL:
            text = value
        else:
            text = _quoted(value)
        if len(value) <= _STRINGS_LONGEST:
            if len(_STRINGS) >= _STRINGS_LIMIT:
                _STRINGS.clear()  # bounded in a long run: timestamps and messages never repeat
            _STRINGS[value] = text
    return text


def scalar(value: Any) -> str:
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML 1.1 (PyYAML) reads a float only with a dot in it: 1e+16 must be 1.0e+16.
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text
    return _string(str(value))


def _flow(value: Any) -> str:
    """Flow style (``{"a": [1, 2]}``) for structures nested in a list."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_quoted(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _quoted(value) if isinstance(value, str) else scalar(value)


def _lines(data: Mapping[str, Any], indent: str, out: list[str]) -> None:
    # Exact type checks first: isinstance against the Mapping ABC costs a microsecond a call. The
    # remembered text of a string is looked up here rather than through ``_string``: a brief's
    # metadata holds two dozen strings, and 10,000 briefs make the calls count.
    known = _STRINGS.get
    append = out.append
    for key, value in data.items():
        name = known(key) if type(key) is str else None
        if name is None:
            name = _string(key if type(key) is str else str(key))
        kind = type(value)
        if kind is str:
            text = known(value)
            append(f"{indent}{name}: {_string(value) if text is None else text}")
        elif value is None:
            append(f"{indent}{name}: null")
        elif kind is int:
            append(f"{indent}{name}: {value}")
        elif kind is dict:
            _mapping(name, value, indent, out)
        elif kind is list or kind is tuple:
            _sequence(name, value, indent, out)
        elif isinstance(value, Mapping):
            _mapping(name, value, indent, out)
        elif isinstance(value, list | tuple):
            _sequence(name, value, indent, out)
        else:
            append(f"{indent}{name}: {scalar(value)}")


def _mapping(name: str, value: Mapping[str, Any], indent: str, out: list[str]) -> None:
    if value:
        out.append(f"{indent}{name}:")
        _lines(value, indent + "  ", out)
    else:
        out.append(f"{indent}{name}: {{}}")


def _sequence(name: str, value: list[Any] | tuple[Any, ...], indent: str, out: list[str]) -> None:
    if not value:
        out.append(f"{indent}{name}: []")
        return
    known = _STRINGS.get
    append = out.append
    append(f"{indent}{name}:")
    for item in value:
        if type(item) is str:
            text = known(item)
            append(f"{indent}- {_string(item) if text is None else text}")
        elif isinstance(item, Mapping | list | tuple):
            append(f"{indent}- {_flow(item)}")
        else:
            append(f"{indent}- {scalar(item)}")


def dump(data: Mapping[str, Any]) -> str:
    """YAML for ``data`` (no trailing newline)."""
    out: list[str] = []
    _lines(data, "", out)
    return "\n".join(out)


# What YAML we read may hold, as written out: hand-written metadata and settings are far smaller.
# Past these, libyaml's composer recurses until the process crashes (60,000 levels), and aliases
# (``&a [*b, *b, ...]``) stand for more data than memory holds.
MAX_TEXT = 1024 * 1024  # characters
MAX_DEPTH = 64  # nested lists and mappings
MAX_NODES = 100_000  # values, every alias counted as all it stands for


def safe_load(text: str) -> Any:
    """PyYAML's safe loader (libyaml's where there is one), imported when first needed; raises
    ``yaml.YAMLError`` for text beyond ``MAX_TEXT``, ``MAX_DEPTH`` or ``MAX_NODES``, which is
    looked at first, as a stream of events (no recursion, nothing built)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    check_shape(text, loader)
    return yaml.load(text, Loader=loader)


def check_shape(text: str, loader: Any) -> None:
    """Raise ``yaml.MarkedYAMLError`` (with the line) where ``text`` goes beyond the bounds above,
    or an alias stands for a value that holds it; other errors are left for the load to find."""
    import yaml

    if len(text) > MAX_TEXT:
        raise yaml.YAMLError(f"{len(text):,} characters of YAML, more than the {MAX_TEXT:,} read")
    sizes: dict[str, int] = {}  # anchor -> the values it stands for
    open_: list[tuple[str | None, list[int]]] = [(None, [0])]  # each list or mapping open: anchor, values so far
    total = 0
    events = yaml.parse(text, Loader=loader)
    while True:
        try:
            event = next(events)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            if "nesting depth" in str(getattr(exc, "problem", "")):  # PyYAML 6.0.4's own bound, met first
                raise _refusal(exc, f"lists or mappings nested more than {MAX_DEPTH} deep") from None
            return  # malformed: the load says so, in its own words
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, (count,) = open_.pop()
            if anchor is not None:
                sizes[anchor] = count
            open_[-1][1][0] += count
            continue
        if not isinstance(event, yaml.CollectionStartEvent | yaml.ScalarEvent | yaml.AliasEvent):
            continue
        count = 1
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_):
                raise _refusal(event, f"the alias *{event.anchor} stands for a value that holds it")
            count = sizes.get(str(event.anchor), 1)
        total += count
        if total > MAX_NODES:
            raise _refusal(event, f"more than {MAX_NODES:,} values, each alias counted as all it stands for")
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) > MAX_DEPTH:
                raise _refusal(event, f"lists or mappings nested more than {MAX_DEPTH} deep")
            open_.append((event.anchor, [1]))
            continue
        if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            sizes[event.anchor] = 1
        open_[-1][1][0] += count


def _refusal(found: Any, problem: str) -> Exception:
    """The error for ``problem`` at an event's start, or where another error was marked."""
    import yaml

    return yaml.MarkedYAMLError(problem=problem, problem_mark=getattr(found, "start_mark", None) or found.problem_mark)


@lru_cache(maxsize=1)
def handler() -> Any:
    """python-frontmatter's YAML handler with our writer, reading with libyaml's safe loader."""
    from frontmatter.default_handlers import YAMLHandler

    class FastYAMLHandler(YAMLHandler):
        def load(self, fm: str, **kwargs: object) -> Any:
            return safe_load(fm)

        def export(self, metadata: dict[str, object], **kwargs: object) -> str:
            return dump(metadata)

    return FastYAMLHandler()


_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?[0-9]+\.[0-9]+(?:e[-+][0-9]+)?$")


def _read_scalar(text: str) -> tuple[bool, Any]:
    """(understood, value) for one scalar as ``dump`` writes it; remembered, since most recur from
    file to file (statuses, backends, small numbers). ``{}`` and ``[]`` are new objects each time."""
    if text == "{}":
        return True, {}
    if text == "[]":
        return True, []
    found = _SCALARS.get(text)
    if found is None:
        found = _parse_scalar(text)
        if len(_SCALARS) >= 4096:
            _SCALARS.clear()
        _SCALARS[text] = found
    return found


_SCALARS: dict[str, tuple[bool, Any]] = {}


def _parse_scalar(text: str) -> tuple[bool, Any]:
    if text in ("null", "true", "false"):
        return True, {"null": None, "true": True, "false": False}[text]
    if _INT.match(text):
        return True, int(text)
    if _FLOAT.match(text):
        return True, float(text)
    if text.startswith('"'):
        if "\\U" in text or "\\x" in text:
            return False, None  # YAML-only escapes: let PyYAML read it
        try:
            value = json.loads(text)
        except ValueError:
            return False, None
        return isinstance(value, str), value
    if _PLAIN.fullmatch(text) and text.lower() not in _SPECIAL:
        return True, text
    return False, None


def load_simple(lines: list[str]) -> dict[str, Any] | None:
    """Read metadata written by ``dump`` without PyYAML (a quarter millisecond a file with it), or
    ``None`` for anything outside that shape (a hand edit, a comment): the caller then uses PyYAML.

    Only what ``dump`` writes is understood: ``key: scalar``, ``key:`` with ``- scalar`` items, and
    ``key:`` with one level of ``  key: scalar`` lines. A test checks it agrees with PyYAML.
    """
    data: dict[str, Any] = {}
    open_key: str | None = None
    for raw in lines:
        line = raw.rstrip()
        if not line:
            return None
        if line.startswith("- "):
            if open_key is None:
                return None
            if isinstance(data[open_key], _Pending):
                data[open_key] = []
            if not isinstance(data[open_key], list):
                return None
            ok, value = _read_scalar(line[2:])
            if not ok or isinstance(value, dict | list):
                return None
            data[open_key].append(value)
            continue
        if line.startswith("  "):
            if open_key is None:
                return None
            if isinstance(data[open_key], _Pending):
                data[open_key] = {}
            if not isinstance(data[open_key], dict):
                return None
            key, sep, rest = line[2:].partition(": ")
            if not sep or not _PLAIN.fullmatch(key) or key.lower() in _SPECIAL or key in data[open_key]:
                return None
            ok, value = _read_scalar(rest)
            if not ok or isinstance(value, dict | list):
                return None
            data[open_key][key] = value
            continue
        if line.endswith(":"):
            key = line[:-1]
            if not _PLAIN.fullmatch(key) or key.lower() in _SPECIAL or key in data:
                return None
            # A list or a mapping follows; decided by the next line, and empty ones are written {} / [].
            data[key] = _Pending()
            open_key = key
            continue
        key, sep, rest = line.partition(": ")
        if not sep or not _PLAIN.fullmatch(key) or key.lower() in _SPECIAL or key in data:
            return None
        ok, value = _read_scalar(rest)
        if not ok:
            return None
        data[key] = value
        open_key = None
    return _settle(data)


class _Pending:
    """A ``key:`` whose items have not been seen yet (becomes a list or a dict)."""


def _settle(data: dict[str, Any]) -> dict[str, Any] | None:
    for value in data.values():
        if isinstance(value, _Pending):
            return None  # "key:" with nothing under it is null in YAML; not something dump writes
    return data


# What PyYAML's resolver makes of these plain words; any other plain word it reads as a string.
_YAML_WORDS: dict[str, Any] = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    **dict.fromkeys(("null", "Null", "NULL", "~"), None),
}
_FLAT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FLAT_INT = re.compile(r"0|-?[1-9][0-9]*")
_FLAT_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")
_FLAT_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9_./()@+,-]*(?: [A-Za-z0-9_./()@+,-]+)*")
_FLAT_MEASURE = re.compile(r"[0-9]+(?:\.[0-9]+)?[A-Za-z]+")  # 30m, 1.5h: strings to YAML, but 0x1f is not


def load_flat(lines: list[str]) -> dict[str, Any] | None:
    """A hand-written mapping of ``key: value`` lines (a plan's frontmatter) as PyYAML's safe loader
    reads it, or ``None`` when any line is of another shape (a comment, a nested value, quotes with
    escapes, a key or value YAML would resolve in a way not handled here): the caller then asks
    PyYAML. A test holds the two equal wherever this answers.

    Understood: blank lines; keys of letters, digits, ``_`` and ``-`` that start with a letter or
    ``_`` and are not words YAML reads as booleans or null; values that are decimal integers,
    decimal fractions, YAML's boolean and null words, plain words and phrases, measures such as
    ``30m``, and quoted strings without escapes.
    """
    data: dict[str, Any] = {}
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip(" "):
            continue
        key, sep, rest = line.partition(": ")
        if not sep or "\t" in line or "#" in line or key in data or not _FLAT_KEY.fullmatch(key):
            return None
        if key in _YAML_WORDS or key.lower() in _YAML_WORDS:
            return None
        ok, value = _flat_value(rest.strip(" "))
        if not ok:
            return None
        data[key] = value
    return data


def _flat_value(text: str) -> tuple[bool, Any]:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        inner = text[1:-1]
        return ("\\" not in inner and text[0] not in inner), inner
    if text in _YAML_WORDS:
        return True, _YAML_WORDS[text]
    if _FLAT_INT.fullmatch(text):
        return True, int(text)
    if _FLAT_FLOAT.fullmatch(text):
        return True, float(text)
    if _FLAT_WORDS.fullmatch(text):
        return True, text
    if _FLAT_MEASURE.fullmatch(text) and text[:2].lower() != "0x":
        return True, text
    return False, None
