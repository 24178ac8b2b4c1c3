"""A command's options as data: one table that the argparse parser, the MCP tools' JSON Schemas, the
OpenAPI document and the docs' option tables are all made of, and that reads the arguments another
program sends (JSON), typed and checked, into the same ``Arguments`` the command line gives.

An ``Opt`` is one option: its name (the JSON key and argparse's ``dest``), its flags on the
command line (none: the word after the optional workspace, ``TASK`` or ``DESCRIPTION``), its kind
(``string``, ``integer``, ``number``, ``boolean``, ``strings``: repeatable), its choices, its
default, its help, and, where the command line takes words a program sends as the same string
(a duration, a count), the reader that turns one into the value (``read``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import NotText, UsageError

KINDS = ("string", "integer", "number", "boolean", "strings")
_PYTHON: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "strings": list,
}
STRING_LIMIT = 256 * 1024  # characters of one string argument a program may send (a longer text: a file)


@dataclass(frozen=True, slots=True)
class Opt:
    """One option of a command (see the module's docstring)."""

    name: str
    help: str
    kind: str = "string"
    flags: tuple[str, ...] = ()  # () : the word after the optional workspace
    choices: tuple[str, ...] = ()
    default: Any = None
    metavar: str | None = None
    read: Callable[[str], Any] | None = None  # the words given -> the value (argparse's type)
    form: str = ""  # what ``read`` takes, for a schema's description ("a duration: 90s, 5m")
    minimum: int | None = None
    required: bool = False
    everywhere: bool = True  # False: the command line's alone (``logs --follow`` streams until stopped)

    @property
    def positional(self) -> bool:
        return not self.flags

    @property
    def label(self) -> str:
        """The option as a person names it: its flag (``--param``), or its name when it is a word."""
        return self.flags[0] if self.flags else self.name

    def texts(self, given: Any) -> list[str]:
        """The strings ``given`` holds, checked to be text (``NotText``: 422, one line): on every
        door alike, so that a value no file or process can hold is refused before anything is written."""
        found = [item for item in given if isinstance(item, str)] if isinstance(given, list) else []
        found = [given] if isinstance(given, str) else found
        for text in found:
            if self.name != "directory":  # (a path may be any bytes: it is looked up, never written)
                NotText.check(self.label, text)
        return found

    def schema(self) -> dict[str, Any]:
        """The option as a JSON Schema property."""
        scalar: dict[str, Any] = {"type": "array" if self.kind == "strings" else self.kind}
        if self.kind == "strings":
            scalar = {
                "type": "array",
                "items": {"type": "string", **({"enum": list(self.choices)} if self.choices else {})},
            }
        elif self.choices:
            scalar["enum"] = list(self.choices)
        if self.minimum is not None:
            scalar["minimum"] = self.minimum
        if self.default is not None and self.kind != "strings":
            scalar["default"] = self.default
        described = self.help + (f" ({self.form})" if self.form else "")
        return {**scalar, "description": described}

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """The option on a command's argparse parser (a positional one is the command's own)."""
        how: dict[str, Any] = {"help": self.help, "dest": self.name}
        if self.kind == "boolean":
            parser.add_argument(*self.flags, action="store_true", **how)
            return
        if self.kind == "strings":
            how["action"] = "append"
        if self.choices:
            how["choices"] = list(self.choices)
        if self.default is not None:
            how["default"] = self.default
        if self.metavar is not None:
            how["metavar"] = self.metavar
        reader = self.read or ({"integer": int, "number": float}.get(self.kind))
        if reader is not None:
            how["type"] = reader
        parser.add_argument(*self.flags, **how)

    def take(self, command: str, given: Any) -> Any:
        """A value a program sent, checked as its kind, then read as the command line reads its words."""
        wanted = _PYTHON[self.kind]
        wrong = not isinstance(given, wanted) or (self.kind in ("integer", "number") and isinstance(given, bool))
        if self.kind == "strings" and not wrong:
            wrong = not all(isinstance(item, str) for item in given)
        if self.kind == "number" and not wrong and not math.isfinite(given):
            wrong = True
        if wrong:
            what = (
                "a list of strings"
                if self.kind == "strings"
                else f"{'an' if self.kind[0] in 'ai' else 'a'} {self.kind}"
            )
            raise UsageError(f"{command}: '{self.name}' must be {what}, not {_shown(given)}")
        for text in given if self.kind == "strings" else [given] if isinstance(given, str) else []:
            if "\x00" in text:
                raise UsageError(f"{command}: '{self.name}' holds a NUL character, which no file or process takes")
        for text in self.texts(given):
            if len(text) > STRING_LIMIT:
                raise UsageError(f"{command}: '{self.name}' is {len(text):,} characters long, at most {STRING_LIMIT:,}")
        items = given if self.kind == "strings" else [given]
        if self.choices and any(item not in self.choices for item in items):
            bad = next(item for item in items if item not in self.choices)
            raise UsageError(f"{command}: '{self.name}' must be one of {', '.join(self.choices)}, not {_shown(bad)}")
        if self.minimum is not None and given < self.minimum:
            raise UsageError(f"{command}: '{self.name}' must be {self.minimum} or more")
        if self.read is not None and isinstance(given, str):
            try:
                return self.read(given)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise UsageError(f"{command}: '{self.name}': {exc}") from None
        return given


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


DIRECTORY = Opt("directory", "the workspace (default: .orchestrator in the current directory)")


@dataclass(slots=True)
class Arguments:
    """A command's arguments by name, as the command line gave them or a program sent them: every
    option present, its default where none was given."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def schema(options: Iterable[Opt], *, directory: bool = True) -> dict[str, Any]:
    """A command's arguments as a JSON Schema object (``directory``: a workspace may be named)."""
    chosen = [o for o in options if o.everywhere and (directory or o.name != "directory")]
    return {
        "type": "object",
        "properties": {o.name: o.schema() for o in chosen},
        "required": [o.name for o in chosen if o.required],
        "additionalProperties": False,
    }


def from_program(command: str, options: Iterable[Opt], given: Mapping[str, Any], *, directory: bool) -> Arguments:
    """The arguments a program sent (a tool's, a route's), each checked as its option says, every
    option present: ``UsageError`` in one line for a name the command does not take, a value of
    the wrong kind, or a required one missing."""
    known = {o.name: o for o in options if o.everywhere and (directory or o.name != "directory")}
    values: dict[str, Any] = {}
    for name, value in given.items():
        found = known.get(name)
        if found is None:
            listed = ", ".join(sorted(known)) or "nothing"
            raise UsageError(f"{command}: no argument '{str(name)[:60]}' — it takes: {listed}")
        values[name] = found.take(command, value)
    missing = [o.name for o in known.values() if o.required and o.name not in values]
    if missing:
        raise UsageError(f"{command}: '{missing[0]}' is required")
    for option in options:
        if option.name not in values:
            values[option.name] = False if option.kind == "boolean" else option.default  # (as argparse leaves it)
    return Arguments(values)


def from_namespace(options: Iterable[Opt], args: argparse.Namespace, **extra: Any) -> Arguments:
    """The arguments the command line gave (argparse's namespace), by the same names: each word
    checked to be text as a program's are (``Opt.texts``)."""
    chosen = list(options)
    values = {**{o.name: getattr(args, o.name, None) for o in chosen}, **extra}
    for option in chosen:
        option.texts(values[option.name])
    return Arguments(values)


def dest_of(names: tuple[str, ...]) -> str:
    """The argument an option of ``names`` sets: its first long name's, as argparse makes it."""
    return next(name for name in names if name.startswith("--")).removeprefix("--").replace("-", "_")


def command_line(options: Iterable[Opt], args: Arguments, *, leave_out: Iterable[str] = ()) -> list[str]:
    """The options given, as the command line says them (``--flag=value``; a positional word and
    the options in ``leave_out`` left out): for a runner started in the background."""
    line: list[str] = []
    skipped = set(leave_out)
    for option in options:
        value = args.get(option.name)
        if option.positional or value is None or value is False or option.name in skipped:
            continue
        flag = next(f for f in option.flags if f.startswith("--"))
        if option.kind == "boolean":
            line.append(flag)
        elif option.kind == "strings":
            line += [f"{flag}={item}" for item in value]
        elif isinstance(value, float) and option.read is not None:
            line.append(f"{flag}={value:g}s")  # (a duration read into seconds, given back as seconds)
        else:
            line.append(f"{flag}={value}")
    return line
